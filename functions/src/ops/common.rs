//! Small helpers several operations share.

use portcullis::store::{Item, from_item};
use portcullis::{ApiError, ApiRequest};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// A prefetched item as a record, or `None` when it does not exist.
pub fn record<T: DeserializeOwned>(item: Option<Item>) -> Result<Option<T>, ApiError> {
    item.map(from_item).transpose()
}

/// Query parameters as a typed body; `numeric` names the fields that are numbers.
pub fn query_body<T: DeserializeOwned>(req: &ApiRequest, numeric: &[&str]) -> Result<T, ApiError> {
    let mut map = Map::new();
    for (k, v) in req.query_pairs() {
        // The signature sorts parameters, so with a repeated name the order (and so which value
        // wins) is not signed: refuse the ambiguity.
        if map.contains_key(&k) {
            return Err(ApiError::validation(format!(
                "query parameter `{k}` is given more than once"
            )));
        }
        let value = if numeric.contains(&k.as_str()) {
            v.parse::<u64>().map(Value::from).map_err(|_| {
                ApiError::validation(format!(
                    "query parameter `{k}` must be a non-negative integer"
                ))
            })?
        } else {
            Value::String(v)
        };
        map.insert(k, value);
    }
    serde_json::from_value(Value::Object(map))
        .map_err(|e| ApiError::validation(format!("invalid query: {e}")))
}

pub fn parse_time(field: &str, s: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.to_offset(time::UtcOffset::UTC))
        .map_err(|_| {
            ApiError::validation(format!(
                "`{field}` must be an RFC 3339 time, e.g. 2027-01-01T00:00:00Z"
            ))
        })
}

/// An optional future expiry.
pub fn future_time(
    field: &str,
    s: Option<&str>,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, ApiError> {
    let Some(s) = s else { return Ok(None) };
    let t = parse_time(field, s)?;
    if t <= now {
        return Err(ApiError::validation(format!(
            "`{field}` must be in the future"
        )));
    }
    Ok(Some(t))
}

/// `offset`/`limit` paging over an in-memory list, answered with `has_more`.
pub fn page<T: Clone>(all: &[T], offset: usize, limit: usize) -> (Vec<T>, bool) {
    let end = offset.saturating_add(limit).min(all.len());
    let slice = if offset < all.len() {
        all[offset..end].to_vec()
    } else {
        Vec::new()
    };
    (slice, end < all.len())
}

/// `target_app` of operator operations under `/v1/apps/{app_id}`.
pub fn app_in_path(req: &ApiRequest) -> Option<Result<uuid::Uuid, ApiError>> {
    Some(req.uuid_param("app_id", ApiError::not_found("app_not_found", "app")))
}

/// The app of an operator call under `/v1/apps/{app_id}` (checked by the pipeline).
pub fn app_of(call: &portcullis::pipeline::Call<'_>) -> uuid::Uuid {
    call.caller
        .app_id
        .expect("app-scoped operator calls carry their app")
}

/// An agent's own key reaches only the grants bound to that agent; anything else reads as
/// missing.
pub fn reachable(
    call: &portcullis::pipeline::Call<'_>,
    grant: &portcullis::model::Grant,
) -> Result<(), ApiError> {
    match call.caller.agent_key_owner() {
        Some(agent)
            if grant.principal
                != (portcullis::model::Principal::Agent {
                    agent_id: agent.agent_id,
                }) =>
        {
            Err(portcullis::service::grants::grant_not_found())
        }
        _ => Ok(()),
    }
}

/// The end user a call's `user_token` names, verified against the app's identity provider
/// (`items`: what `portcullis::idp::prefetch` asked for). The writes of a first sight go into
/// `writes`, to commit with the call; the audit row names the user.
pub async fn end_user(
    ctx: &portcullis::Ctx,
    call: &mut portcullis::pipeline::Call<'_>,
    token: &str,
    items: &mut [Option<Item>],
    writes: &mut Vec<portcullis::store::Write>,
) -> Result<portcullis::idp::EndUser, ApiError> {
    let resolved = portcullis::idp::resolve(ctx, call.caller.app(), token, items, call.now).await?;
    call.audit.principal_type = Some("user".into());
    call.audit.principal_id = Some(resolved.user.app_user_id.to_string());
    writes.extend(resolved.writes);
    Ok(resolved.user)
}

/// Operations for the app's own keys only (sign-in, OAuth Connect): an agent acts for users
/// through delegations.
pub fn app_key_only(call: &portcullis::pipeline::Call<'_>, what: &str) -> Result<(), ApiError> {
    match call.caller.agent_key_owner() {
        Some(_) => Err(ApiError::forbidden(
            "app_key_required",
            format!(
                "{what} are for the app's own keys; an agent acts for users through delegations"
            ),
        )),
        None => Ok(()),
    }
}

/// A policy document as stored on a record (docs/policies.md): checked, normalised; `null` or
/// `{}` is none.
pub fn policy_document(field: &str, v: Option<Value>) -> Result<Option<Value>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    Ok(portcullis::policy::Policy::parse(field, &v)?
        .map(|p| serde_json::to_value(p).expect("policies serialise")))
}
