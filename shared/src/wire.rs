//! What an audit row keeps of an HTTP exchange made with a credential (proxy mode, and the
//! SDK's reports of its own calls): no header that can carry a credential, bodies capped at
//! 10 KB with a placeholder, and every occurrence of the grant's own secret redacted, raw or
//! encoded, wherever a provider may have echoed it.

use crate::model::SecretValue;
use base64::Engine;
use serde_json::{Map, Value};

/// Bodies kept in audit rows are capped, as the hosted product does.
pub const BODY_CAP: usize = 10_000;

/// The strings a managed secret's value is sent as.
pub fn revealing(value: &SecretValue) -> Vec<String> {
    match value {
        SecretValue::Token { token } => vec![token.clone()],
        SecretValue::ApiKey { api_key } => vec![api_key.clone()],
        SecretValue::Aws {
            secret_access_key,
            session_token,
            ..
        } => std::iter::once(secret_access_key.clone())
            .chain(session_token.clone())
            .collect(),
        SecretValue::Basic { username, password } => vec![
            password.clone(),
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}")),
        ],
    }
}

/// The strings, also as they appear percent-encoded in a URL or form body; short ones (which
/// would redact ordinary text) dropped.
pub fn with_encodings(mut strings: Vec<String>) -> Vec<String> {
    let encoded: Vec<String> = strings
        .iter()
        .map(|s| form_urlencoded::byte_serialize(s.as_bytes()).collect())
        .collect();
    strings.extend(encoded);
    strings.retain(|s| s.len() >= 4);
    strings.sort();
    strings.dedup();
    strings
}

/// Replaces every occurrence of a credential string, in values and in keys.
pub fn scrub(v: Value, secrets: &[String]) -> Value {
    match v {
        Value::String(s) => Value::String(scrub_text(s, secrets)),
        Value::Array(a) => Value::Array(a.into_iter().map(|v| scrub(v, secrets)).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (scrub_text(k, secrets), scrub(v, secrets)))
                .collect(),
        ),
        other => other,
    }
}

pub fn scrub_text(mut s: String, secrets: &[String]) -> String {
    for secret in secrets {
        if s.contains(secret.as_str()) {
            s = s.replace(secret.as_str(), "[REDACTED]");
        }
    }
    s
}

pub fn strip_query(url: &str) -> String {
    url.split(['?', '#'])
        .next()
        .unwrap_or_default()
        .chars()
        .take(2048)
        .collect()
}

/// Drops any header that can carry a credential, whatever the SDK already stripped.
pub fn safe_headers(headers: &Map<String, Value>) -> Map<String, Value> {
    const SENSITIVE: &[&str] = &[
        "authorization",
        "cookie",
        "token",
        "secret",
        "key",
        "signature",
        "password",
        "session",
        "credential",
        "x-amz-",
    ];
    headers
        .iter()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            !SENSITIVE.iter().any(|s| k.contains(s))
        })
        .take(50)
        .map(|(k, v)| {
            (
                k.chars().take(128).collect(),
                match v {
                    Value::String(s) => Value::String(s.chars().take(1024).collect()),
                    _ => Value::Null,
                },
            )
        })
        .collect()
}

pub fn cap(body: Option<Value>) -> Value {
    let Some(body) = body else { return Value::Null };
    let text = match &body {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.len() > BODY_CAP {
        Value::String(format!("<body too large: {} bytes>", text.len()))
    } else {
        body
    }
}
