//! `POST /sdk/oauth/audit/api-call`: the SDK's report of a provider call it made with a
//! retrieved credential (spec §7.2), kept as the detail of an audit row.

use super::common::record;
use aws_sdk_dynamodb::types::AttributeValue;
use portcullis::model::{Grant, GrantKind, rfc3339};
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::service::{grants, secrets};
use portcullis::store::{Item, ItemKey, Write, from_item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, wire};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Decrypt]);

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
            "url": wire::strip_query(&body.url),
            "response_status": body.response_status,
            "latency_ms": body.latency_ms,
            "request_headers": wire::safe_headers(&body.request_headers.unwrap_or_default()),
            "response_headers": wire::safe_headers(&body.response_headers.unwrap_or_default()),
            "request_body": wire::cap(body.request_body),
            "response_body": wire::cap(body.response_body),
        }));
        // Everything the caller wrote into the row, keys included.
        call.audit.detail = call.audit.detail.take().map(|d| wire::scrub(d, &redact));
        call.audit.reason = call
            .audit
            .reason
            .take()
            .map(|r| wire::scrub_text(r, &redact));
        let context = std::mem::take(&mut call.audit.context);
        call.audit.context = match wire::scrub(Value::Object(context), &redact) {
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
    let out = match &grant.kind {
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
    Ok(wire::with_encodings(out))
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
    Ok(wire::revealing(&injected.value))
}

super::handler!(Op);
