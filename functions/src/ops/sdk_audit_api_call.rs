//! `POST /sdk/oauth/audit/api-call`: the SDK's report of a provider call it made with a
//! retrieved credential (spec §7.2), kept as the detail of an audit row.

use super::common::record;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use portcullis::model::{Grant, GrantKind, SecretValue, rfc3339};
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::service::{grants, secrets};
use portcullis::store::{Item, ItemKey, Write, from_item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// Bodies kept in audit rows are capped, as the hosted product does.
/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Decrypt]);

const BODY_CAP: usize = 10_000;

#[derive(Deserialize)]
pub struct Body {
    grant_id: String,
    provider_id: Option<String>,
    token_generation: Option<String>,
    method: String,
    url: String,
    // The SDK sends null for both when the call never reached the provider.
    #[serde(default)]
    request_headers: Option<Map<String, Value>>,
    request_body: Option<Value>,
    response_status: i64,
    #[serde(default)]
    response_headers: Option<Map<String, Value>>,
    response_body: Option<Value>,
    latency_ms: Option<i64>,
    reason: Option<String>,
    context: Option<Map<String, Value>>,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_audit_api_call";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("audit:emit");
    type Body = Body;

    fn prefetch(ctx: &Ctx, _: &ApiRequest, body: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        match (app, Uuid::parse_str(&body.grant_id)) {
            (Some(app), Ok(grant_id)) => grants::prefetch_credential(ctx, app, grant_id),
            _ => Vec::new(),
        }
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        Uuid::parse_str(&body.grant_id)
            .map_err(|_| ApiError::validation("`grant_id` must be a UUID"))?;
        // Only grants of this app can be reported on: another app's reads as missing.
        let grant: Grant = record(items.first_mut().and_then(Option::take))?
            .ok_or_else(grants::grant_not_found)?;
        super::common::reachable(call, &grant)?;
        // Providers may echo the credential back (introspection, debug endpoints): whatever the
        // SDK reports is scrubbed of the grant's own secret before it is stored.
        let redact = credential_strings(
            ctx,
            &grant,
            items.get_mut(1).and_then(Option::take),
            items.get_mut(2).and_then(Option::take),
        )
        .await?;
        call.audit.grant_id = Some(grant.grant_id.to_string());
        call.audit.resource_type = Some("grant".into());
        call.audit.resource_id = Some(grant.grant_id.to_string());
        call.audit.reason = body.reason.as_ref().map(|r| r.chars().take(1024).collect());
        for (k, v) in body.context.unwrap_or_default().into_iter().take(20) {
            if let Value::String(s) = v
                && portcullis::audit::context_entry_ok(&k, &s)
            {
                call.audit.context.entry(k).or_insert(Value::String(s));
            }
        }
        call.audit.detail = Some(json!({
            "kind": "provider_call",
            "provider_id": body.provider_id,
            "token_generation": body.token_generation,
            "method": body.method.chars().take(16).collect::<String>(),
            "url": strip_query(&body.url),
            "response_status": body.response_status,
            "latency_ms": body.latency_ms,
            "request_headers": safe_headers(&body.request_headers.unwrap_or_default()),
            "response_headers": safe_headers(&body.response_headers.unwrap_or_default()),
            "request_body": cap(body.request_body),
            "response_body": cap(body.response_body),
        }));
        // Everything the caller wrote into the row, keys included.
        call.audit.detail = call.audit.detail.take().map(|d| scrub(d, &redact));
        call.audit.reason = call.audit.reason.take().map(|r| scrub_text(r, &redact));
        let context = std::mem::take(&mut call.audit.context);
        call.audit.context = match scrub(Value::Object(context), &redact) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        if body.response_status == 401 {
            stale_on_unauthorized(ctx, &grant, body.token_generation.as_deref()).await;
        }
        Ok(Outcome::respond(ApiResponse::empty(
            http::StatusCode::NO_CONTENT,
        )))
    }
}

/// The provider refused the token it was given: if that token is still the grant's current
/// one, mark it expired so the next token call refreshes it (for providers whose tokens carry
/// no expiry, this is the only way to learn that they ended).
async fn stale_on_unauthorized(ctx: &Ctx, grant: &Grant, generation: Option<&str>) {
    let (GrantKind::OAuth { .. }, Some(generation)) = (&grant.kind, generation) else {
        return;
    };
    let write = Write::Update {
        key: keys::grant_tokens(grant.app_id, grant.grant_id),
        update: "SET expires_at = :now".into(),
        condition: Some("generation = :gen AND has_refresh_token = :t".into()),
        names: Vec::new(),
        values: vec![
            (
                ":now".into(),
                AttributeValue::S(rfc3339(time::OffsetDateTime::now_utc())),
            ),
            (
                ":gen".into(),
                AttributeValue::S(generation.chars().take(64).collect()),
            ),
            (":t".into(), AttributeValue::Bool(true)),
        ],
    };
    if ctx.store.transact(vec![write]).await.is_err() {
        tracing::debug!("401 report did not match the current token; nothing to mark");
    }
}

/// The strings that would reveal the grant's credential if stored.
async fn credential_strings(
    ctx: &Ctx,
    grant: &Grant,
    prefetched: Option<Item>,
    secret: Option<Item>,
) -> Result<Vec<String>, ApiError> {
    let mut out = match &grant.kind {
        GrantKind::OAuth { .. } => {
            let set = match prefetched {
                Some(item) => Some(from_item(item)?),
                None => grants::tokens_of(ctx, grant).await?,
            };
            match set {
                Some(set) => {
                    let t = portcullis::oauth::tokens::open(ctx, &set).await?;
                    [Some(t.access_token.clone()), t.refresh_token.clone()]
                        .into_iter()
                        .flatten()
                        .collect()
                }
                None => Vec::new(),
            }
        }
        GrantKind::ManagedSecret { .. } => {
            managed_secret_strings(ctx, grant, prefetched, secret).await?
        }
    };
    // Also as they would appear percent-encoded in a URL or form body.
    let encoded: Vec<String> = out
        .iter()
        .map(|s| form_urlencoded::byte_serialize(s.as_bytes()).collect())
        .collect();
    out.extend(encoded);
    out.retain(|s| s.len() >= 4);
    out.sort();
    out.dedup();
    Ok(out)
}

async fn managed_secret_strings(
    ctx: &Ctx,
    grant: &Grant,
    own_key: Option<Item>,
    secret: Option<Item>,
) -> Result<Vec<String>, ApiError> {
    let Some(injected) = secrets::injected(ctx, grant, secret, own_key).await? else {
        return Ok(Vec::new());
    };
    Ok(match &injected.value {
        SecretValue::Token { token } => vec![token.clone()],
        SecretValue::ApiKey { api_key } => vec![api_key.clone()],
        SecretValue::Basic { username, password } => vec![
            password.clone(),
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}")),
        ],
    })
}

/// Replaces every occurrence of a credential string, in values and in keys.
fn scrub(v: Value, secrets: &[String]) -> Value {
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

fn scrub_text(mut s: String, secrets: &[String]) -> String {
    for secret in secrets {
        if s.contains(secret.as_str()) {
            s = s.replace(secret.as_str(), "[REDACTED]");
        }
    }
    s
}

fn strip_query(url: &str) -> String {
    url.split(['?', '#'])
        .next()
        .unwrap_or_default()
        .chars()
        .take(2048)
        .collect()
}

/// Drops any header that can carry a credential, whatever the SDK already stripped.
fn safe_headers(headers: &Map<String, Value>) -> Map<String, Value> {
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

fn cap(body: Option<Value>) -> Value {
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

super::handler!(Op);
