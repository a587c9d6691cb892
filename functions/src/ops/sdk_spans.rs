//! `POST /sdk/spans`: an agent's own spans (tool calls, steps) for the trace the audit trail
//! ties together (alter-sdk `spans.emit`). `{spans: [1–50]}` → `{accepted}`: the spans newly
//! stored; a span sent again (same trace and span ID) is absorbed, so retried batches are
//! idempotent. Operators read a trace with `GET /v1/apps/{app_id}/traces/{trace_id}`.

use portcullis::model::rfc3339;
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::store::{Condition, Item, ItemKey, Write, keys, to_item};
use portcullis::{ApiError, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

/// Spans are kept 30 days.
const KEEP_DAYS: i64 = 30;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    spans: Vec<SpanInput>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpanInput {
    trace_id: String,
    name: String,
    start_time: String,
    span_id: Option<String>,
    parent_span_id: Option<String>,
    end_time: Option<String>,
    #[serde(default)]
    attributes: Map<String, Value>,
}

fn text(field: &str, v: &str, max: usize) -> Result<String, ApiError> {
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(ApiError::validation(format!(
            "`{field}` is 1 to {max} characters without control characters"
        )));
    }
    Ok(v.to_string())
}

/// A checked span and the key it is stored under.
fn span(s: SpanInput, call: &Call<'_>) -> Result<(ItemKey, Value), ApiError> {
    let trace_id = text("trace_id", &s.trace_id, 255)?;
    let span_id = match &s.span_id {
        Some(id) => text("span_id", id, 32)?,
        None => Uuid::new_v4().simple().to_string()[..16].to_string(),
    };
    let parent = s
        .parent_span_id
        .as_deref()
        .map(|p| text("parent_span_id", p, 32))
        .transpose()?;
    let start = super::common::parse_time("start_time", &s.start_time)?;
    let end = s
        .end_time
        .as_deref()
        .map(|e| super::common::parse_time("end_time", e))
        .transpose()?;
    if end.is_some_and(|e| e < start) {
        return Err(ApiError::validation("`end_time` is before `start_time`"));
    }
    if s.attributes.len() > 50
        || s.attributes.iter().any(|(k, v)| {
            k.is_empty() || k.len() > 128 || v.as_str().is_none_or(|v| v.len() > 1024)
        })
    {
        return Err(ApiError::validation(
            "`attributes` holds at most 50 strings (names up to 128, values up to 1024 characters)",
        ));
    }
    let app = call.caller.app();
    let record = json!({
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": text("name", &s.name, 255)?,
        "start_time": rfc3339(start),
        "end_time": end.map(rfc3339),
        "attributes": s.attributes,
        "agent_id": call.caller.agent.as_ref().map(|a| a.agent_id),
        "key_prefix": call.audit.key_prefix,
        "received_at": rfc3339(call.now),
        "ttl": (call.now + time::Duration::days(KEEP_DAYS)).unix_timestamp(),
    });
    Ok((keys::span(app, &trace_id, &span_id), record))
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_spans";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("spans:emit");
    type Body = Body;

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        if body.spans.is_empty() || body.spans.len() > 50 {
            return Err(ApiError::validation("`spans` holds 1 to 50 spans"));
        }
        let mut spans = Vec::new();
        for s in body.spans {
            let (key, record) = span(s, call)?;
            // The same span twice in one batch counts once.
            if !spans.iter().any(|(k, _): &(ItemKey, Value)| *k == key) {
                spans.push((key, record));
            }
        }
        // Already stored ones are absorbed: one read tells which are new.
        let keys: Vec<ItemKey> = spans.iter().map(|(k, _)| k.clone()).collect();
        let stored = ctx.store.get_many(&keys).await?;
        let writes: Vec<Write> = spans
            .iter()
            .zip(stored)
            .filter(|(_, found)| found.is_none())
            .map(|((key, record), _)| Write::Put {
                item: to_item(record, key, &[]),
                condition: Some(Condition::absent()),
            })
            .collect();
        call.audit.detail = Some(json!({ "spans": spans.len(), "accepted": writes.len() }));
        Ok(Outcome::with_writes(
            ApiResponse::ok(&json!({ "accepted": writes.len() })),
            writes,
            ApiError::conflict(
                "span_conflict",
                "a span of this batch was stored meanwhile; retry",
            ),
        ))
    }
}

super::handler!(Op);
