//! The OAuth side of the test kit: a real OAuth provider process per test
//! (`tests/oauth-provider`, on `oauth2-mock-server` from npm), an app configured to use it,
//! and the Connect flow driven over HTTP exactly as a browser would: describe, authorize, the
//! provider's redirect, the callback.

use crate::{Env, Resp, TestApp, request};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The provider ID the tests configure (a custom provider: it is not in the catalogue).
pub const PROVIDER: &str = "acme-oauth";

pub struct Provider {
    pub issuer: String,
    http: reqwest::Client,
    _child: Child,
}

impl Provider {
    /// A fresh provider process: its own codes, tokens, log and behaviour.
    pub async fn start() -> Provider {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let script = root.join("oauth-provider/provider.mjs");
        assert!(
            root.join("oauth-provider/node_modules").exists(),
            "run `npm ci --prefix tests/oauth-provider` (make test does)"
        );
        let mut child = Command::new("node")
            .arg(script)
            .arg("--port")
            .arg("0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs the test OAuth provider");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .await
            .expect("ready line");
        let ready: Value = serde_json::from_str(&line).expect("ready JSON");
        Provider {
            issuer: ready["issuer"].as_str().expect("issuer").to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            _child: child,
        }
    }

    /// Changes how the provider behaves from now on (see tests/oauth-provider/README.md).
    pub async fn config(&self, config: Value) {
        let r = self
            .http
            .post(format!("{}/control/config", self.issuer))
            .json(&config)
            .send()
            .await
            .expect("control");
        assert!(r.status().is_success(), "control/config {config}");
    }

    /// What the provider received: token requests, revocations, authorize requests.
    pub async fn log(&self) -> Value {
        self.http
            .get(format!("{}/control/log", self.issuer))
            .send()
            .await
            .expect("log")
            .json()
            .await
            .expect("log JSON")
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/control/{path}", self.issuer))
            .json(&body)
            .send()
            .await
            .expect("control");
        assert!(r.status().is_success(), "control/{path} {body}");
        r.json().await.expect("control JSON")
    }

    /// As an identity provider: a signed ID token for `claims` (merged over `iss`, `iat`,
    /// `nbf`, `exp`; `null` removes one), with the audience the tests configure by default.
    pub async fn id_token(&self, claims: Value) -> String {
        self.id_token_with(json!({ "claims": with_audience(claims) }))
            .await
    }

    /// `body` as `/control/idp/token` takes it (`claims`, `expires_in`, `alg`, `kid`).
    pub async fn id_token_with(&self, body: Value) -> String {
        self.control("idp/token", body).await["token"]
            .as_str()
            .expect("token")
            .to_string()
    }

    /// A new signing key at the IDP (a rotation): its `kid`.
    pub async fn new_key(&self, alg: &str) -> String {
        self.control("idp/keys", json!({ "alg": alg })).await["kid"]
            .as_str()
            .expect("kid")
            .to_string()
    }

    /// The public keys the IDP publishes.
    pub async fn jwks(&self) -> Value {
        self.http
            .get(format!("{}/jwks", self.issuer))
            .send()
            .await
            .expect("jwks")
            .json()
            .await
            .expect("jwks JSON")
    }

    pub async fn refresh_count(&self) -> u64 {
        self.log().await["refresh_count"].as_u64().unwrap_or(0)
    }

    /// Calls the provider's protected API with a token: its status.
    pub async fn api(&self, token: &str) -> u16 {
        self.http
            .get(format!("{}/api/me", self.issuer))
            .bearer_auth(token)
            .send()
            .await
            .expect("api")
            .status()
            .as_u16()
    }

    /// Follows an authorization URL the way a browser would: the provider's redirect back.
    pub async fn authorize(&self, url: &str) -> String {
        let r = self.http.get(url).send().await.expect("authorize");
        assert_eq!(r.status().as_u16(), 302, "the provider redirects back");
        r.headers()["location"]
            .to_str()
            .expect("location")
            .to_string()
    }

    /// The custom-provider definition an operator would PUT for this process.
    pub fn definition(&self, tweak: Value) -> Value {
        let mut def = json!({
            "name": "Acme",
            "authorize_url": format!("{}/authorize", self.issuer),
            "token_url": format!("{}/token", self.issuer),
            "revocation_url": format!("{}/revoke", self.issuer),
            "userinfo_url": format!("{}/userinfo", self.issuer),
            "account_field": "email",
            "api_base_url": self.issuer,
            "hosts": ["127.0.0.1"],
            "scope_separator": " ",
            "pkce": true,
            "token_auth": "client_secret_basic",
            "refresh": {"refresh_tokens": true, "rotates": true, "default_ttl_seconds": null},
            "default_scopes": ["read"],
        });
        if let (Some(d), Some(t)) = (def.as_object_mut(), tweak.as_object()) {
            for (k, v) in t {
                d.insert(k.clone(), v.clone());
            }
        }
        def
    }
}

/// The audience the tests configure for their identity providers.
pub const AUDIENCE: &str = "portcullis-tests";

fn with_audience(mut claims: Value) -> Value {
    if let Some(c) = claims.as_object_mut() {
        c.entry("aud").or_insert(json!(AUDIENCE));
    }
    claims
}

impl TestApp {
    /// Makes the provider process this app's identity provider (custom OIDC, by discovery).
    pub async fn use_idp(&self, env: &Env, p: &Provider, tweak: Value) -> Resp {
        let mut body = json!({"preset": "oidc", "issuer": p.issuer, "audience": AUDIENCE});
        if let (Some(b), Some(t)) = (body.as_object_mut(), tweak.as_object()) {
            for (k, v) in t {
                b.insert(k.clone(), v.clone());
            }
        }
        self.org
            .op(env, "PUT", &format!("/v1/apps/{}/idp", self.app_id), body)
            .await
    }

    /// Configures the provider process for this app (client `portcullis-test`).
    pub async fn use_provider(
        &self,
        env: &Env,
        p: &Provider,
        scopes: &[&str],
        tweak: Value,
    ) -> Resp {
        self.org
            .op(
                env,
                "PUT",
                &format!("/v1/apps/{}/providers/{PROVIDER}", self.app_id),
                json!({
                    "client_id": "portcullis-test",
                    "client_secret": "portcullis-test-secret",
                    "scopes": scopes,
                    "allowed_scopes": ["read", "write", "admin"],
                    "custom": p.definition(tweak),
                }),
            )
            .await
    }

    /// A Connect session for the test provider: its token.
    pub async fn connect_session(&self, env: &Env, extra: Value) -> String {
        let mut body = json!({
            "allowed_providers": [PROVIDER],
            "return_url": null,
            "allowed_origin": null,
            "metadata": null,
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let r = self
            .sdk(env, "POST", "/sdk/oauth/connect/session", body)
            .await;
        r.ok()["session_token"].as_str().expect("token").to_string()
    }

    pub async fn poll(&self, env: &Env, session: &str) -> Value {
        self.sdk(
            env,
            "POST",
            "/sdk/oauth/connect/session/poll",
            json!({ "session_token": session }),
        )
        .await
        .ok()
        .clone()
    }

    /// Connects the provider end to end; answers the new grant's ID.
    pub async fn connect(&self, env: &Env, p: &Provider) -> String {
        let session = self.connect_session(env, json!({})).await;
        let page = browse(env, p, &session).await;
        assert!(page.contains("\"ok\":true"), "result page: {page}");
        let polled = self.poll(env, &session).await;
        assert_eq!(polled["status"], "completed", "{polled}");
        polled["grants"][0]["grant_id"]
            .as_str()
            .expect("grant id")
            .to_string()
    }

    pub async fn token(&self, env: &Env, grant_id: &str, url: &str) -> Resp {
        self.sdk(
            env,
            "POST",
            "/sdk/token",
            json!({"grant_id": grant_id, "reason": null, "request": {"method": "GET", "url": url}}),
        )
        .await
    }
}

/// Sends a browser request (no key, no signature) through the route table.
pub async fn web(env: &Env, method: &str, target: &str, body: Value) -> (u16, String) {
    let bytes = crate::body_bytes(&body);
    let r = portcullis_functions::routes::dispatch(&env.ctx, request(method, target, &bytes)).await;
    (
        r.status.as_u16(),
        String::from_utf8_lossy(&r.body).into_owned(),
    )
}

/// The authorization URL the Connect page would send the person to.
pub async fn authorize_url(env: &Env, session: &str) -> String {
    let (status, body) = web(
        env,
        "POST",
        "/sdk/oauth/connect/authorize",
        json!({"session_token": session, "provider_id": PROVIDER}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    v["authorize_url"].as_str().expect("url").to_string()
}

/// The callback target (path and query) of a provider redirect to the public URL.
pub fn callback_target(location: &str) -> String {
    location
        .strip_prefix(crate::PUBLIC_URL)
        .unwrap_or_else(|| panic!("redirect to the public URL: {location}"))
        .to_string()
}

/// A person going through the flow: authorize at the provider, come back to the callback.
/// Answers the result page's HTML.
pub async fn browse(env: &Env, p: &Provider, session: &str) -> String {
    let url = authorize_url(env, session).await;
    let location = p.authorize(&url).await;
    let (status, page) = web(env, "GET", &callback_target(&location), Value::Null).await;
    assert_eq!(status, 200);
    page
}

/// A browser with a cookie jar, for the pages whose steps are bound to one browser.
#[derive(Default)]
pub struct Browser {
    cookies: Vec<(String, String)>,
}

/// What a page request answered: status, `Location` and body.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("JSON: {}", self.body))
    }
}

impl Browser {
    pub async fn send(&mut self, env: &Env, method: &str, target: &str, body: Value) -> Page {
        let bytes = crate::body_bytes(&body);
        let mut req = request(method, target, &bytes);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            crate::set(&mut req, "cookie", &jar.join("; "));
        }
        let r = portcullis_functions::routes::dispatch(&env.ctx, req).await;
        let mut location = None;
        for (name, value) in &r.headers {
            let value = value.to_str().unwrap_or_default().to_string();
            match name.as_str() {
                "set-cookie" => {
                    let pair = value.split(';').next().unwrap_or_default();
                    let (n, v) = pair.split_once('=').expect("cookie pair");
                    self.cookies.retain(|(k, _)| k != n);
                    self.cookies.push((n.to_string(), v.to_string()));
                }
                "location" => location = Some(value),
                _ => {}
            }
        }
        Page {
            status: r.status.as_u16(),
            location,
            body: String::from_utf8_lossy(&r.body).into_owned(),
        }
    }

    /// The cookie a response set, by name prefix (for attributes checks).
    pub fn has_cookie(&self, prefix: &str) -> bool {
        self.cookies.iter().any(|(n, _)| n.starts_with(prefix))
    }
}
