//! The retrieve-mode token answer (`POST /sdk/token`, spec §7.1): for a managed secret, and
//! for an OAuth grant's fresh access token.

use crate::model::{Grant, SecretValue, Template};
use crate::service::secrets::Injected;
use base64::Engine;
use serde_json::{Value, json};

/// How a managed secret's value is sent: the header, its format (`{token}` is the value) and
/// the value. `None` for a value that does not fit its template (it cannot be created: corrupt).
pub fn injection(
    template: &Template,
    value: &SecretValue,
) -> Option<(String, &'static str, String)> {
    Some(match (template, value) {
        (Template::Bearer, SecretValue::Token { token }) => {
            ("Authorization".to_string(), "Bearer {token}", token.clone())
        }
        (Template::ApiKey { header }, SecretValue::ApiKey { api_key }) => {
            (header.clone(), "{token}", api_key.clone())
        }
        (Template::Basic, SecretValue::Basic { username, password }) => (
            "Authorization".to_string(),
            "Basic {token}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}")),
        ),
        _ => return None,
    })
}

pub fn answer(grant: &Grant, injected: &Injected) -> Value {
    let Injected {
        secret,
        value,
        generation,
    } = injected;
    let Some((header, format, token)) = injection(&secret.template, value) else {
        return Value::Null;
    };
    json!({
        "access_token": token,
        "grant_id": grant.grant_id,
        "token_type": "Bearer",
        "expires_in": Value::Null,
        "expires_at": Value::Null,
        "scopes": [],
        "provider_id": secret.slug,
        "scope_mismatch": false,
        "token_generation": generation,
        "injection_header": header,
        "injection_format": format,
        "additional_credentials": Value::Null,
        "additional_injections": Value::Null,
        "retry_info": Value::Null,
    })
}

pub fn oauth_answer(
    grant: &Grant,
    fresh: &crate::oauth::refresh::Fresh,
    now: time::OffsetDateTime,
) -> Value {
    let crate::model::GrantKind::OAuth {
        provider_id,
        scopes,
        ..
    } = &grant.kind
    else {
        return Value::Null;
    };
    let expires_in = fresh
        .set
        .expires_at
        .map(|t| (t - now).whole_seconds().max(0));
    json!({
        "access_token": fresh.secret.access_token,
        "grant_id": grant.grant_id,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "expires_at": fresh.set.expires_at.map(crate::model::rfc3339),
        "scopes": scopes,
        "provider_id": provider_id,
        "scope_mismatch": grant.scope_mismatch,
        "token_generation": fresh.set.generation,
        "injection_header": "Authorization",
        "injection_format": "Bearer {token}",
        "additional_credentials": Value::Null,
        "additional_injections": Value::Null,
        "retry_info": Value::Null,
    })
}
