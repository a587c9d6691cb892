//! What every handler needs, built once per instance (per Lambda cold start, or once for the
//! local server) and shared by all requests it serves.

use crate::crypto::Sealer;
use crate::error::ApiError;
use crate::model::DirectoryEntry;
use crate::store::Store;
use aws_config::BehaviorVersion;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use uuid::Uuid;
use zeroize::Zeroizing;

#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    pub kms_key_id: String,
    /// Accepted distance between the signed timestamp and the server clock, both ways.
    pub signature_window: Duration,
    /// Where the root secret comes from: a literal (local runs) or a Secrets Manager ARN.
    pub root_secret: RootSecretSource,
    /// The base URL browsers and providers reach this deployment at (Connect links and the
    /// OAuth redirect URI), e.g. `https://abc.execute-api.eu-west-1.amazonaws.com/prod`.
    pub public_url: Option<String>,
}

#[derive(Clone)]
pub enum RootSecretSource {
    Literal(Zeroizing<String>),
    SecretsManager(String),
    Unset,
}

impl std::fmt::Debug for RootSecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootSecretSource::Literal(_) => f.write_str("Literal(…)"),
            RootSecretSource::SecretsManager(arn) => write!(f, "SecretsManager({arn})"),
            RootSecretSource::Unset => f.write_str("Unset"),
        }
    }
}

impl Config {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let root_secret = if let Some(s) = var("PORTCULLIS_ROOT_SECRET") {
            RootSecretSource::Literal(Zeroizing::new(s))
        } else if let Some(arn) = var("PORTCULLIS_ROOT_SECRET_ARN") {
            RootSecretSource::SecretsManager(arn)
        } else {
            RootSecretSource::Unset
        };
        Self {
            table: var("PORTCULLIS_TABLE").unwrap_or_else(crate::store::table::default_table_name),
            kms_key_id: var("PORTCULLIS_KMS_KEY_ID").unwrap_or_else(|| "alias/portcullis".into()),
            signature_window: Duration::from_secs(
                var("PORTCULLIS_SIGNATURE_WINDOW_SECONDS")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(300),
            ),
            root_secret,
            public_url: var("PORTCULLIS_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string()),
        }
    }
}

pub struct Ctx {
    pub config: Config,
    pub store: Store,
    pub sealer: Sealer,
    secrets: aws_sdk_secretsmanager::Client,
    /// key hash → directory entry; entries never change, so they never go stale.
    directory: Mutex<HashMap<String, DirectoryEntry>>,
    /// (app, grant) → managed secret: a grant's secret never changes either.
    grant_secret: Mutex<HashMap<(Uuid, Uuid), Uuid>>,
    /// Identity providers' signing keys (`idp::jwks`).
    pub jwks: crate::idp::jwks::Cache,
    /// app → (identity provider ID, user-ID claim) as last read: lets a call carrying a user
    /// token read the user's record in its first round trip (`idp::prefetch`).
    idp_seen: Mutex<HashMap<Uuid, (Uuid, String)>>,
}

const CACHE_LIMIT: usize = 20_000;

/// The AWS SDK configuration: endpoint from `AWS_ENDPOINT_URL` (moto, LocalStack or AWS),
/// rustls with ring instead of the default aws-lc build.
pub async fn aws_config() -> aws_config::SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    // Jittered exponential backoff over a few attempts: throttling and 5xx answers are retried
    // before a request gives up with 503 (Lambda's own timeout bounds the total).
    let retry = aws_config::retry::RetryConfig::standard().with_max_attempts(5);
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry)
        .region(aws_config::Region::new(
            std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|_| "us-east-1".into()),
        ))
        .http_client(http)
        .load()
        .await
}

impl Ctx {
    pub async fn from_env() -> Self {
        Self::new(Config::from_env(), &aws_config().await)
    }

    pub fn new(config: Config, aws: &aws_config::SdkConfig) -> Self {
        Self {
            store: Store::new(aws_sdk_dynamodb::Client::new(aws), config.table.clone()),
            sealer: Sealer::new(aws_sdk_kms::Client::new(aws), config.kms_key_id.clone()),
            secrets: aws_sdk_secretsmanager::Client::new(aws),
            config,
            directory: Mutex::new(HashMap::new()),
            grant_secret: Mutex::new(HashMap::new()),
            jwks: Default::default(),
            idp_seen: Mutex::new(HashMap::new()),
        }
    }

    /// The public base URL: `PORTCULLIS_PUBLIC_URL`, else the one API Gateway was reached at.
    /// Connect cannot work without it.
    pub fn public_url<'a>(&'a self, req: &'a crate::ApiRequest) -> Result<&'a str, ApiError> {
        let url = self.config.public_url.as_deref();
        url.or(req.public_base.as_deref()).ok_or_else(|| {
            tracing::error!("PORTCULLIS_PUBLIC_URL is not set: Connect links cannot be made");
            ApiError::unavailable("this deployment has no public URL configured for Connect")
        })
    }

    pub fn cached_directory(&self, key_hash: &str) -> Option<DirectoryEntry> {
        self.directory.lock().expect("cache").get(key_hash).cloned()
    }

    pub fn remember_directory(&self, entry: DirectoryEntry) {
        let mut c = self.directory.lock().expect("cache");
        if c.len() >= CACHE_LIMIT {
            c.clear();
        }
        c.insert(entry.key_hash.clone(), entry);
    }

    pub fn cached_grant_secret(&self, app_id: Uuid, grant_id: Uuid) -> Option<Uuid> {
        self.grant_secret
            .lock()
            .expect("cache")
            .get(&(app_id, grant_id))
            .copied()
    }

    pub fn remember_grant_secret(&self, app_id: Uuid, grant_id: Uuid, secret_id: Uuid) {
        let mut c = self.grant_secret.lock().expect("cache");
        if c.len() >= CACHE_LIMIT {
            c.clear();
        }
        c.insert((app_id, grant_id), secret_id);
    }

    pub fn cached_idp(&self, app_id: Uuid) -> Option<(Uuid, String)> {
        self.idp_seen.lock().expect("cache").get(&app_id).cloned()
    }

    pub fn remember_idp(&self, app_id: Uuid, idp_id: Uuid, user_claim: &str) {
        let mut c = self.idp_seen.lock().expect("cache");
        if c.len() >= CACHE_LIMIT {
            c.clear();
        }
        c.insert(app_id, (idp_id, user_claim.to_string()));
    }

    /// The root secret that authorises bootstrap, fetched when first needed.
    pub async fn root_secret(&self) -> Result<Option<Zeroizing<String>>, ApiError> {
        crate::iam::require(crate::iam::Action::GetRootSecret)?;
        match &self.config.root_secret {
            RootSecretSource::Literal(s) => Ok(Some(s.clone())),
            RootSecretSource::Unset => Ok(None),
            RootSecretSource::SecretsManager(arn) => {
                let out = self
                    .secrets
                    .get_secret_value()
                    .secret_id(arn)
                    .send()
                    .await
                    .map_err(|_| ApiError::unavailable("the root secret could not be read"))?;
                Ok(out.secret_string.map(Zeroizing::new))
            }
        }
    }
}
