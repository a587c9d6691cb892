//! Calls to a provider's OAuth endpoints: code exchange, refresh, revocation, userinfo.
//! Answers are parsed defensively: a provider's malformed answer is a failure, never data.

use crate::model::ProviderDef;
use crate::model::provider::TokenAuth;
use base64::Engine;
use serde_json::Value;
use std::sync::OnceLock;
use std::time::Duration;
use zeroize::Zeroizing;

/// Longer than any refresh lease must allow for (see `refresh::LEASE`).
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(PROVIDER_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            // A token endpoint that redirects is misconfigured; never resend credentials.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("portcullis")
            .build()
            .expect("HTTP client")
    })
}

pub struct ClientCredentials<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
}

/// A usable token answer.
pub struct TokenAnswer {
    pub access_token: Zeroizing<String>,
    pub refresh_token: Option<Zeroizing<String>>,
    pub expires_in: Option<i64>,
    pub scope: Option<String>,
    pub id_token: Option<String>,
}

#[derive(Debug)]
pub enum Failure {
    /// The provider refused the grant itself (`invalid_grant`): only a reconnect mends it.
    InvalidGrant,
    /// Anything else: the caller may try again later. `permanent` when retrying cannot help
    /// (a 4xx such as `invalid_client`).
    Other {
        error_type: &'static str,
        message: String,
        permanent: bool,
    },
}

impl Failure {
    fn other(error_type: &'static str, message: impl Into<String>, permanent: bool) -> Self {
        Failure::Other {
            error_type,
            message: message.into(),
            permanent,
        }
    }

    /// The `retry_info` of an answer after this one failed attempt.
    pub fn retry_info(&self) -> Value {
        let (error_type, message, permanent) = match self {
            Failure::InvalidGrant => ("invalid_grant", "the provider refused the grant", true),
            Failure::Other {
                error_type,
                message,
                permanent,
            } => (*error_type, message.as_str(), *permanent),
        };
        serde_json::json!({
            "total_attempts": 1,
            "successful_attempt": Value::Null,
            "errors": [{
                "attempt": 1,
                "error": message,
                "error_type": error_type,
                "delay_s": 0,
                "permanent": permanent,
            }],
        })
    }
}

async fn token_request(
    def: &ProviderDef,
    creds: &ClientCredentials<'_>,
    mut form: Vec<(&str, &str)>,
) -> Result<TokenAnswer, Failure> {
    let mut req = http()
        .post(&def.token_url)
        .header("accept", "application/json");
    match def.token_auth {
        TokenAuth::ClientSecretBasic => {
            req = req.basic_auth(creds.client_id, Some(creds.client_secret));
        }
        TokenAuth::ClientSecretPost => {
            form.push(("client_id", creds.client_id));
            form.push(("client_secret", creds.client_secret));
        }
    }
    let resp = req.form(&form).send().await.map_err(network)?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status.is_server_error() {
        return Err(Failure::other(
            "http_5xx",
            format!("the provider answered {}", status.as_u16()),
            false,
        ));
    }
    if !status.is_success() {
        let code = body["error"].as_str().unwrap_or("");
        if code == "invalid_grant" {
            return Err(Failure::InvalidGrant);
        }
        return Err(Failure::other(
            "http_4xx",
            format!(
                "the provider answered {} {}",
                status.as_u16(),
                // Provider error codes are short tokens; never echo free text.
                code.chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .take(64)
                    .collect::<String>()
            ),
            true,
        ));
    }
    parse_token_answer(&body)
}

fn network(e: reqwest::Error) -> Failure {
    let kind = if e.is_timeout() { "timeout" } else { "network" };
    Failure::other(
        kind,
        format!("the provider could not be reached ({kind})"),
        false,
    )
}

/// Only a non-empty access token of a bearer type (any case; Slack says `bot` or `user` for
/// its bearer tokens) is a token answer.
pub fn parse_token_answer(body: &Value) -> Result<TokenAnswer, Failure> {
    let malformed = |what: &str| {
        Failure::other(
            "malformed_response",
            format!("the provider's token answer {what}"),
            false,
        )
    };
    let access = body["access_token"]
        .as_str()
        .filter(|s| !s.is_empty() && !s.contains(['\r', '\n', '\0']))
        .ok_or_else(|| malformed("has no access token"))?;
    if let Some(t) = body.get("token_type").filter(|t| !t.is_null())
        && !t.as_str().is_some_and(|t| {
            ["bearer", "bot", "user"]
                .iter()
                .any(|b| t.eq_ignore_ascii_case(b))
        })
    {
        return Err(malformed("is not a bearer token"));
    }
    let expires_in = match body.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_i64()
                .ok_or_else(|| malformed("has a bad expires_in"))?,
        ),
        Some(Value::String(s)) => Some(
            s.trim()
                .parse()
                .map_err(|_| malformed("has a bad expires_in"))?,
        ),
        Some(_) => return Err(malformed("has a bad expires_in")),
    };
    if expires_in.is_some_and(|e| e < 0) {
        return Err(malformed("has a negative expires_in"));
    }
    let refresh_token = body["refresh_token"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(|s| Zeroizing::new(s.to_string()));
    Ok(TokenAnswer {
        access_token: Zeroizing::new(access.to_string()),
        refresh_token,
        expires_in,
        scope: body["scope"].as_str().map(String::from),
        id_token: body["id_token"].as_str().map(String::from),
    })
}

pub async fn exchange_code(
    def: &ProviderDef,
    creds: &ClientCredentials<'_>,
    code: &str,
    redirect_uri: &str,
    code_verifier: Option<&str>,
) -> Result<TokenAnswer, Failure> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
    ];
    if let Some(v) = code_verifier {
        form.push(("code_verifier", v));
    }
    token_request(def, creds, form).await
}

/// A refresh request carries the grant type, the refresh token and client credentials only.
pub async fn refresh(
    def: &ProviderDef,
    creds: &ClientCredentials<'_>,
    refresh_token: &str,
) -> Result<TokenAnswer, Failure> {
    token_request(
        def,
        creds,
        vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// RFC 7009 revocation; the outcome is reported, never fatal (the grant is revoked anyway).
pub async fn revoke(
    def: &ProviderDef,
    creds: &ClientCredentials<'_>,
    token: &str,
    hint: &str,
) -> Result<(), String> {
    let Some(url) = &def.revocation_url else {
        return Err("not_supported".into());
    };
    let mut form = vec![("token", token), ("token_type_hint", hint)];
    let mut req = http().post(url);
    match def.token_auth {
        TokenAuth::ClientSecretBasic => {
            req = req.basic_auth(creds.client_id, Some(creds.client_secret));
        }
        TokenAuth::ClientSecretPost => {
            form.push(("client_id", creds.client_id));
            form.push(("client_secret", creds.client_secret));
        }
    }
    match req.form(&form).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("http_{}", r.status().as_u16())),
        Err(e) if e.is_timeout() => Err("timeout".into()),
        Err(_) => Err("network".into()),
    }
}

/// The account a token belongs to: the provider's userinfo field when its entry names one,
/// else the ID token the token endpoint answered (read directly from the provider over TLS,
/// so its claims need no signature check).
pub async fn account_of(def: &ProviderDef, answer: &TokenAnswer) -> Option<String> {
    if let Some(account) = userinfo_account(def, answer).await {
        return Some(account);
    }
    let claims = answer.id_token.as_deref().and_then(id_token_claims)?;
    claims["email"]
        .as_str()
        .or(claims["sub"].as_str())
        .map(clean_account)
}

async fn userinfo_account(def: &ProviderDef, answer: &TokenAnswer) -> Option<String> {
    let (url, field) = (def.userinfo_url.as_ref()?, def.account_field.as_deref()?);
    let resp = http()
        .get(url)
        .bearer_auth(answer.access_token.as_str())
        .header("accept", "application/json")
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let info: Value = resp.json().await.ok()?;
    let mut v = &info;
    for part in field.split('.') {
        v = v.get(part)?;
    }
    match v {
        Value::String(s) if !s.is_empty() => Some(clean_account(s)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn clean_account(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(320).collect()
}

fn id_token_claims(jwt: &str) -> Option<Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fails(body: Value) -> bool {
        parse_token_answer(&body).is_err()
    }

    #[test]
    fn token_answers_are_checked_before_use() {
        assert!(fails(json!({})));
        assert!(fails(json!({"access_token": null})));
        assert!(fails(json!({"access_token": ""})));
        assert!(fails(json!({"access_token": "a\r\nb"})));
        assert!(fails(json!({"access_token": "a", "token_type": "mac"})));
        assert!(fails(json!({"access_token": "a", "expires_in": "soon"})));
        assert!(fails(json!({"access_token": "a", "expires_in": -5})));
        let a = parse_token_answer(
            &json!({"access_token": "a", "token_type": "bearer", "expires_in": "3600"}),
        )
        .unwrap();
        assert_eq!(a.expires_in, Some(3600));
        assert!(a.refresh_token.is_none());
        let b = parse_token_answer(
            &json!({"access_token": "a", "refresh_token": "", "expires_in": 60}),
        )
        .unwrap();
        assert!(
            b.refresh_token.is_none(),
            "an empty refresh token is no refresh token"
        );
    }
}
