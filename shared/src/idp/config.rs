//! An operator's identity-provider settings → the stored `IdpConfig`. Presets fill in the
//! issuer and key URLs from a domain; custom OIDC takes them directly or by discovery.

use super::jwt::Alg;
use crate::error::ApiError;
use crate::model::idp::Signin;
use crate::model::{ClaimMappings, IdpConfig, IdpPreset};
use crate::service::validate;
use serde::Deserialize;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpInput {
    pub preset: IdpPreset,
    /// Auth0 tenant (`acme.us.auth0.com`), Clerk Frontend API (`clerk.acme.com`) or Okta org
    /// (`acme.okta.com`) domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// Okta's authorization server (default `default`).
    #[serde(default)]
    pub authorization_server: Option<String>,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub jwks_url: Option<String>,
    #[serde(default)]
    pub audience: Option<Audience>,
    #[serde(default)]
    pub authorized_parties: Vec<String>,
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    #[serde(default)]
    pub claims: Option<ClaimsInput>,
    /// Lets Portcullis run the IdP's OIDC sign-in (`/sdk/auth/session`) with this client.
    #[serde(default)]
    pub signin: Option<SigninInput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigninInput {
    pub client_id: String,
    /// Write-only: may be left out to keep the stored one for the same `client_id`.
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsInput {
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub groups: Option<String>,
    pub roles: Option<String>,
}

fn domain(input: &IdpInput) -> Result<String, ApiError> {
    let d = input.domain.as_deref().ok_or_else(|| {
        ApiError::validation("`domain` is required for this preset (e.g. acme.us.auth0.com)")
    })?;
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').count() >= 2
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if !ok {
        return Err(ApiError::validation(
            "`domain` must be a host name such as acme.us.auth0.com (no scheme, no path)",
        ));
    }
    Ok(d.to_ascii_lowercase())
}

fn claim_path(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) if !v.is_empty() && v.len() <= 200 && !v.chars().any(char::is_control) => {
            Ok(Some(v))
        }
        Some(_) => Err(ApiError::validation(format!(
            "`claims.{field}` must be a claim name or dotted path of at most 200 characters"
        ))),
    }
}

/// A preset's (issuer, JWKS URL, groups claim).
fn preset_urls(input: &IdpInput) -> Result<(String, String, Option<&'static str>), ApiError> {
    Ok(match input.preset {
        IdpPreset::Auth0 => {
            let d = domain(input)?;
            (
                format!("https://{d}/"),
                format!("https://{d}/.well-known/jwks.json"),
                None,
            )
        }
        IdpPreset::Clerk => {
            let d = domain(input)?;
            (
                format!("https://{d}"),
                format!("https://{d}/.well-known/jwks.json"),
                None,
            )
        }
        IdpPreset::Okta => {
            let d = domain(input)?;
            let server = input.authorization_server.as_deref().unwrap_or("default");
            if server.is_empty()
                || server.len() > 64
                || !server.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Err(ApiError::validation(
                    "`authorization_server` is an Okta authorization server ID such as `default`",
                ));
            }
            let issuer = format!("https://{d}/oauth2/{server}");
            let jwks = format!("{issuer}/v1/keys");
            (issuer, jwks, Some("groups"))
        }
        // Custom OIDC has no preset URLs (`build` takes them from the input).
        IdpPreset::Oidc => return Err(ApiError::internal()),
    })
}

/// Builds the stored configuration; `existing` keeps the ID, creation time and first sign-in,
/// and refuses changed claim mappings once a user has signed in.
pub async fn build(
    ctx: &crate::Ctx,
    input: IdpInput,
    app_id: Uuid,
    existing: Option<&IdpConfig>,
    now: OffsetDateTime,
) -> Result<IdpConfig, ApiError> {
    let (issuer, jwks_url, groups_default) = match input.preset {
        IdpPreset::Oidc => {
            let issuer = input.issuer.clone().ok_or_else(|| {
                ApiError::validation("`issuer` is required for a custom OIDC provider")
            })?;
            let issuer = validate::fetch_url("issuer", &issuer)?;
            let jwks = match &input.jwks_url {
                Some(u) => validate::fetch_url("jwks_url", u)?,
                None => discover(&issuer).await?.jwks_uri,
            };
            (issuer, jwks, None)
        }
        _ => {
            if input.issuer.is_some() || input.jwks_url.is_some() {
                return Err(ApiError::validation(
                    "presets derive `issuer` and `jwks_url` from `domain`; use preset `oidc` to set them",
                ));
            }
            preset_urls(&input)?
        }
    };
    let audiences = match input.audience {
        None => Vec::new(),
        Some(Audience::One(a)) => vec![a],
        Some(Audience::Many(list)) => list,
    };
    for a in audiences.iter().chain(&input.authorized_parties) {
        if a.is_empty() || a.len() > 512 || a.chars().any(char::is_control) {
            return Err(ApiError::validation(
                "audiences and authorized parties are non-empty strings of at most 512 characters",
            ));
        }
    }
    if audiences.len() > 10 || input.authorized_parties.len() > 10 {
        return Err(ApiError::validation(
            "at most 10 audiences and 10 authorized parties",
        ));
    }
    if audiences.is_empty() && input.authorized_parties.is_empty() {
        // Without either, a token the IDP issued for any other application would do.
        return Err(ApiError::validation(
            "set `audience` (the `aud` your tokens carry) or `authorized_parties` (their `azp`)",
        ));
    }
    let algorithms = match input.algorithms {
        None => vec![Alg::RS256],
        Some(names) if names.is_empty() => {
            return Err(ApiError::validation("`algorithms` cannot be empty"));
        }
        Some(names) => {
            let mut algs = Vec::new();
            for n in names {
                let alg = Alg::parse(&n).ok_or_else(|| {
                    ApiError::validation(format!(
                        "`algorithms` may hold RS256, ES256 and EdDSA, not `{}`",
                        n.chars().take(16).collect::<String>()
                    ))
                })?;
                if !algs.contains(&alg) {
                    algs.push(alg);
                }
            }
            algs
        }
    };
    let c = input.claims.unwrap_or_default();
    let claims = ClaimMappings {
        user_id: claim_path("user_id", c.user_id)?.unwrap_or_else(|| "sub".into()),
        email: claim_path("email", c.email)?.or(Some("email".into())),
        groups: claim_path("groups", c.groups)?.or(groups_default.map(str::to_string)),
        roles: claim_path("roles", c.roles)?,
    };
    if let Some(old) = existing
        && old.first_sign_in_at.is_some()
        && old.issuer != issuer
    {
        // App user IDs derive from the IdP's ID and the subject: another issuer's subjects
        // would become this one's users.
        return Err(ApiError::conflict(
            "idp_issuer_locked",
            "the issuer cannot change after the first sign-in: another issuer's users would take over these users' grants",
        )
        .hint("delete the identity provider and configure the new one (its users start afresh)"));
    }
    if let Some(old) = existing
        && old.first_sign_in_at.is_some()
        && old.claims != claims
    {
        return Err(ApiError::conflict(
            "idp_claims_locked",
            "claim mappings cannot change after the first sign-in: the same people would become other app users",
        )
        .hint("send the current `claims`, or delete the identity provider and configure a new one (its users start afresh)"));
    }
    let signin = signin(
        ctx,
        app_id,
        &issuer,
        input.signin,
        existing.and_then(|o| o.signin.as_ref()),
        existing.is_some_and(|o| o.issuer == issuer),
    )
    .await?;
    Ok(IdpConfig {
        idp_id: existing.map_or_else(Uuid::new_v4, |o| o.idp_id),
        app_id,
        preset: input.preset,
        issuer,
        jwks_url,
        audiences,
        authorized_parties: input.authorized_parties,
        algorithms,
        claims,
        first_sign_in_at: existing.and_then(|o| o.first_sign_in_at),
        created_at: existing.map_or(now, |o| o.created_at),
        updated_at: now,
        signin,
    })
}

/// The sign-in client: endpoints by discovery, the secret sealed (or kept, when the same
/// client is configured again without one).
async fn signin(
    ctx: &crate::Ctx,
    app_id: Uuid,
    issuer: &str,
    input: Option<SigninInput>,
    existing: Option<&Signin>,
    same_issuer: bool,
) -> Result<Option<Signin>, ApiError> {
    let Some(input) = input else {
        return Ok(None);
    };
    let client_id = validate::name("signin.client_id", &input.client_id, 255)?;
    let client_secret = match (input.client_secret, existing) {
        (Some(secret), _) => {
            if secret.is_empty() || secret.len() > 1024 {
                return Err(ApiError::validation(
                    "`signin.client_secret` is 1 to 1024 characters",
                ));
            }
            ctx.sealer
                .seal(
                    app_id,
                    &IdpConfig::signin_secret_aad(app_id),
                    secret.as_bytes(),
                )
                .await?
        }
        // Kept only for the same client at the same issuer: never sent to a new token endpoint.
        (None, Some(old)) if old.client_id == client_id && same_issuer => old.client_secret.clone(),
        (None, _) => {
            return Err(ApiError::validation(
                "`signin.client_secret` is required for a new sign-in client",
            ));
        }
    };
    let scopes = match input.scopes {
        None => vec!["openid".into(), "email".into(), "profile".into()],
        Some(s) => {
            let s = validate::scopes("signin.scopes", &s)?;
            if !s.iter().any(|x| x == "openid") {
                return Err(ApiError::validation(
                    "`signin.scopes` must include `openid`",
                ));
            }
            s
        }
    };
    let found = discover(issuer).await?;
    let (Some(authorize_url), Some(token_url)) =
        (found.authorization_endpoint, found.token_endpoint)
    else {
        return Err(ApiError::validation(
            "the issuer's discovery document names no authorization or token endpoint",
        ));
    };
    Ok(Some(Signin {
        client_id,
        client_secret,
        authorize_url: validate::endpoint_url(
            "authorization_endpoint (discovered)",
            &authorize_url,
        )?,
        token_url: validate::fetch_url("token_endpoint (discovered)", &token_url)?,
        scopes,
    }))
}

/// What an issuer's discovery document tells us.
struct Discovery {
    jwks_uri: String,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
}

/// OpenID Connect discovery, after checking the document names the same issuer (OIDC
/// Discovery 4.3).
async fn discover(issuer: &str) -> Result<Discovery, ApiError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let unreachable = || {
        ApiError::validation(format!(
            "could not read {url}: give `jwks_url`, or check `issuer`"
        ))
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|_| ApiError::internal())?;
    let response = client.get(&url).send().await.map_err(|_| unreachable())?;
    if !response.status().is_success() {
        return Err(unreachable());
    }
    let body = super::jwks::read_capped(response, 64 * 1024)
        .await
        .ok_or_else(unreachable)?;
    let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|_| unreachable())?;
    if doc.get("issuer").and_then(|v| v.as_str()) != Some(issuer) {
        return Err(ApiError::validation(
            "the discovery document names another issuer: `issuer` must match it exactly",
        ));
    }
    let text = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let jwks = text("jwks_uri").ok_or_else(unreachable)?;
    Ok(Discovery {
        jwks_uri: validate::fetch_url("jwks_uri (discovered)", &jwks)?,
        authorization_endpoint: text("authorization_endpoint"),
        token_endpoint: text("token_endpoint"),
    })
}
