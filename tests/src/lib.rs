//! Test kit: a real stack per test binary (the DynamoDB and KMS endpoint in
//! `AWS_ENDPOINT_URL`, a fresh table), organisations and apps made through the operator API,
//! and signed requests sent through the same route table the servers use.
//!
//! A new test is a few lines: `let env = env().await; let app = env.app().await;` then
//! `app.sdk("POST", "/sdk/token", body).await`.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use portcullis::context::{Config, RootSecretSource};
use portcullis::{ApiRequest, Ctx};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::OnceCell;

pub mod oauth;
pub mod upstream;

/// Where the in-process stack says it lives (Connect links, the OAuth redirect URI).
pub const PUBLIC_URL: &str = "http://portcullis.test";

pub const ROOT_SECRET: &str = "test-root-secret-for-the-suite-0123456789";

pub struct Env {
    pub ctx: Arc<Ctx>,
}

static ENV: OnceCell<Env> = OnceCell::const_new();

/// The stack of this test binary: one table, created on first use.
pub async fn env() -> &'static Env {
    ENV.get_or_init(|| async {
        // Warnings (e.g. a refused DynamoDB call) show in the output of a failing test.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn")
            .try_init();
        assert!(
            std::env::var("AWS_ENDPOINT_URL").is_ok(),
            "set AWS_ENDPOINT_URL to a DynamoDB+KMS endpoint (make test starts moto)"
        );
        let table = format!("it-{}", uuid::Uuid::new_v4().simple());
        let config = Config {
            table,
            kms_key_id: "alias/portcullis".into(),
            signature_window: std::time::Duration::from_secs(300),
            root_secret: RootSecretSource::Literal(ROOT_SECRET.to_string().into()),
            public_url: Some(PUBLIC_URL.to_string()),
        };
        let ctx = Ctx::new(config, &portcullis::context::aws_config().await);
        portcullis::setup::ensure(&ctx)
            .await
            .expect("table and KMS key");
        Env { ctx: Arc::new(ctx) }
    })
    .await
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert!(
            (200..300).contains(&self.status),
            "expected success, got {} {}",
            self.status,
            self.body
        );
        &self.body
    }

    #[track_caller]
    pub fn expect(&self, status: u16, code: &str) -> &Self {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "body: {}",
            self.body
        );
        assert!(
            self.body["message"].is_string(),
            "error envelope has a message: {}",
            self.body
        );
        self
    }
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A request as it would arrive, before signing.
pub fn request(method: &str, target: &str, body: &[u8]) -> ApiRequest {
    ApiRequest::new(
        Method::from_bytes(method.as_bytes()).expect("method"),
        target.to_string(),
        HeaderMap::new(),
        Bytes::copy_from_slice(body),
    )
}

pub fn set(req: &mut ApiRequest, name: &str, value: &str) {
    req.headers.insert(
        HeaderName::from_bytes(name.as_bytes()).expect("header name"),
        HeaderValue::from_str(value).expect("header value"),
    );
}

/// Signs like alter-sdk, with the timestamp given.
pub fn signed_at(key: &str, method: &str, target: &str, body: &[u8], ts: i64) -> ApiRequest {
    let mut req = request(method, target, body);
    for (name, value) in portcullis::signing::request_headers(key, method, target, body, ts) {
        set(&mut req, name, &value);
    }
    if !body.is_empty() {
        set(&mut req, "content-type", "application/json");
    }
    req
}

pub fn body_bytes(body: &Value) -> Vec<u8> {
    if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(body).expect("json")
    }
}

impl Env {
    /// Sends a request through the route table, as the local server and Lambda do.
    pub async fn send(&self, req: ApiRequest) -> Resp {
        let r = portcullis_functions::routes::dispatch(&self.ctx, req).await;
        let body = if r.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&r.body).unwrap_or(Value::Null)
        };
        let mut headers = HeaderMap::new();
        for (k, v) in r.headers {
            headers.append(k, v);
        }
        Resp {
            status: r.status.as_u16(),
            headers,
            body,
        }
    }

    pub async fn signed(&self, key: &str, method: &str, target: &str, body: Value) -> Resp {
        self.send(signed_at(key, method, target, &body_bytes(&body), now()))
            .await
    }

    /// A new organisation; answers its owner's operator key.
    pub async fn org(&self) -> Org {
        let mut req = request(
            "POST",
            "/v1/bootstrap",
            &body_bytes(&json!({"org_name": "Test org", "owner_email": "owner@test.local"})),
        );
        set(&mut req, "authorization", &format!("Bearer {ROOT_SECRET}"));
        let r = self.send(req).await;
        let b = r.ok();
        Org {
            org_id: b["org"]["id"].as_str().expect("org id").to_string(),
            operator_key: b["operator_key"]["api_key"]
                .as_str()
                .expect("key")
                .to_string(),
        }
    }

    /// A new organisation with one app, an every-scope app key, a bearer secret allowed on
    /// loopback and a system grant of it.
    pub async fn app(&self) -> TestApp {
        let org = self.org().await;
        let app_id = org
            .op(self, "POST", "/v1/apps", json!({"name": "test app"}))
            .await
            .ok()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let key = org.app_key(self, &app_id, None).await;
        let token = format!("tok-{}", uuid::Uuid::new_v4().simple());
        let secret_id = org
            .secret(self, &app_id, "bearer", json!({"token": token}))
            .await;
        let grant_id = org.grant(self, &app_id, &secret_id).await;
        TestApp {
            org,
            app_id,
            key,
            token,
            secret_id,
            grant_id,
        }
    }
}

pub struct Org {
    pub org_id: String,
    pub operator_key: String,
}

impl Org {
    pub async fn op(&self, env: &Env, method: &str, target: &str, body: Value) -> Resp {
        env.signed(&self.operator_key, method, target, body).await
    }

    pub async fn app_key(&self, env: &Env, app_id: &str, scopes: Option<Vec<&str>>) -> String {
        let r = self
            .op(
                env,
                "POST",
                &format!("/v1/apps/{app_id}/keys"),
                json!({"name": "k", "scopes": scopes}),
            )
            .await;
        r.ok()["api_key"].as_str().expect("api key").to_string()
    }

    pub async fn secret(&self, env: &Env, app_id: &str, template: &str, value: Value) -> String {
        let r = self
            .op(env, "POST", &format!("/v1/apps/{app_id}/secrets"), json!({
                "name": format!("secret {}", uuid::Uuid::new_v4().simple()),
                "template": template,
                "header_name": if template == "api_key" { json!("X-Api-Key") } else { Value::Null },
                "allowed_hosts": ["127.0.0.1", "localhost"],
                "value": value,
            }))
            .await;
        r.ok()["id"].as_str().expect("secret id").to_string()
    }

    pub async fn grant(&self, env: &Env, app_id: &str, secret_id: &str) -> String {
        let r = self
            .op(
                env,
                "POST",
                &format!("/v1/apps/{app_id}/secrets/{secret_id}/grants"),
                json!({"principal": {"type": "system"}}),
            )
            .await;
        r.ok()["grant_id"].as_str().expect("grant id").to_string()
    }

    /// The app's audit rows, newest first.
    pub async fn audit(&self, env: &Env, app_id: &str, query: &str) -> Vec<Value> {
        let r = self
            .op(
                env,
                "GET",
                &format!("/v1/apps/{app_id}/audit?{query}"),
                Value::Null,
            )
            .await;
        r.ok()["items"].as_array().expect("items").clone()
    }
}

pub struct TestApp {
    pub org: Org,
    pub app_id: String,
    pub key: String,
    pub token: String,
    pub secret_id: String,
    pub grant_id: String,
}

impl TestApp {
    pub async fn sdk(&self, env: &Env, method: &str, target: &str, body: Value) -> Resp {
        env.signed(&self.key, method, target, body).await
    }

    /// The ID of one of this app's keys, found by its prefix in the operator listing.
    pub async fn key_id(&self, env: &Env, key: &str) -> String {
        let keys = self
            .org
            .op(
                env,
                "GET",
                &format!("/v1/apps/{}/keys", self.app_id),
                Value::Null,
            )
            .await;
        let prefix: String = key.chars().take(14).collect();
        let items = keys.ok()["items"].as_array().expect("items").clone();
        let found = items
            .iter()
            .find(|k| k["key_prefix"] == prefix.as_str())
            .expect("the key is listed");
        found["id"].as_str().expect("id").to_string()
    }

    pub fn token_body(&self, grant_id: &str) -> Value {
        json!({"grant_id": grant_id, "reason": null, "request": {"method": "GET", "url": "http://127.0.0.1:9/x"}})
    }

    pub async fn audit(&self, env: &Env, query: &str) -> Vec<Value> {
        self.org.audit(env, &self.app_id, query).await
    }
}

/// A fresh app of the suite's shared stack.
pub async fn app_fixture() -> TestApp {
    env().await.app().await
}

/// The same request again (for replays): same headers, body and target.
pub fn clone_request(req: &ApiRequest) -> ApiRequest {
    let mut copy = ApiRequest::new(
        req.method.clone(),
        req.target.clone(),
        req.headers.clone(),
        req.body.clone(),
    );
    copy.source_ip = req.source_ip;
    copy
}

/// Runs futures concurrently on this task and collects their outputs in order.
pub async fn join_all<F: std::future::Future>(fs: Vec<F>) -> Vec<F::Output> {
    futures_util::future::join_all(fs).await
}

/// Signs with identity headers (v2), as the SDK does for a client with `caller=`.
pub fn signed_as(
    key: &str,
    method: &str,
    target: &str,
    body: &Value,
    caller: &str,
    caller_type: &str,
) -> ApiRequest {
    let bytes = body_bytes(body);
    let mut req = signed_at(key, method, target, &bytes, now());
    let h = |n: &str| req.header(n).unwrap().to_string();
    let (ts, nonce, sha) = (
        h("x-alter-timestamp"),
        h("x-alter-nonce"),
        h("x-alter-content-sha256"),
    );
    let parts = portcullis::signing::SignedParts {
        method,
        target,
        timestamp: &ts,
        nonce: &nonce,
        content_sha256: &sha,
        scope_constraints: "",
        request_rule: "",
        caller,
        caller_type,
        actor_id: "",
        actor_context: "",
    };
    let sig = portcullis::signing::sign(
        &portcullis::apikey::signing_key(key),
        &parts.string_to_sign(),
    );
    set(&mut req, "x-alter-signature", &sig);
    set(&mut req, "x-alter-signature-v2", &sig);
    set(&mut req, "x-alter-caller", caller);
    set(&mut req, "x-alter-caller-type", caller_type);
    req
}
