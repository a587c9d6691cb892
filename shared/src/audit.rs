//! Audit rows: one per request that reaches a known app (or organisation), written before the
//! answer in the same transaction as the request's own writes, so there is never an answered
//! request without its row, nor a row for a change that did not happen.
//!
//! Rows hold identifiers, outcomes and caller-supplied context only. Values that could be
//! secret (keys, tokens, secret values) never enter an `AuditEvent`.

use crate::error::ApiError;
use crate::model::{micros, rfc3339};
use crate::store::{Item, Query, Store, keys, to_item};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuditEvent {
    pub request_id: String,
    pub time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// The operation, e.g. `sdk_token`.
    pub action: String,
    /// `success`, `denied` (auth, scope, policy), `not_found`, `invalid` (bad input), `error`.
    pub outcome: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    /// Who acted: `app`, `agent`, `member`, `root`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub context: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Operation-specific facts (e.g. the reported provider call of `sdk_audit_api_call`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
    pub latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

impl AuditEvent {
    pub fn outcome_for(status: u16) -> &'static str {
        match status {
            200..=299 => "success",
            401 | 403 | 429 => "denied",
            404 | 410 => "not_found",
            400..=499 => "invalid",
            _ => "error",
        }
    }

    /// The row as an item of `owner` (an app ID, or `ORG#<id>`), sharded by request ID.
    pub fn to_item(&self, owner_partition: &str, at: OffsetDateTime) -> Item {
        let day = day_of(at);
        let shard = shard_of(&self.request_id);
        let key = keys::ItemKey {
            pk: keys::audit_partition(owner_partition, &day, shard),
            sk: keys::audit_sort(micros(at), &self.request_id),
        };
        to_item(self, &key, &[])
    }
}

fn day_of(t: OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn shard_of(request_id: &str) -> u32 {
    crc32fast::hash(request_id.as_bytes()) % keys::AUDIT_SHARDS
}

/// Filters of an audit query; every filter that is set must match.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    pub from: Option<String>,
    pub to: Option<String>,
    pub key_prefix: Option<String>,
    pub grant_id: Option<String>,
    pub principal_id: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

impl AuditFilter {
    fn matches(&self, e: &AuditEvent) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        eq(&self.key_prefix, &e.key_prefix)
            && eq(&self.grant_id, &e.grant_id)
            && eq(&self.principal_id, &e.principal_id)
            && self.action.as_ref().is_none_or(|a| *a == e.action)
            && self.outcome.as_ref().is_none_or(|o| *o == e.outcome)
    }
}

pub const MAX_QUERY_DAYS: i64 = 90;
const SHARD_PAGE: i32 = 100;

#[derive(Serialize, Deserialize)]
struct Cursor {
    day: String,
    sk: String,
}

fn parse_time(s: &str, what: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|_| {
        ApiError::validation(format!(
            "`{what}` must be an RFC 3339 time, e.g. 2026-12-03T10:00:00Z"
        ))
    })
}

/// Newest first across every shard of every day in range, filtered, cursor-paginated.
pub async fn query(
    store: &Store,
    owner_partition: &str,
    f: &AuditFilter,
    now: OffsetDateTime,
) -> Result<(Vec<AuditEvent>, Option<String>), ApiError> {
    let to =
        f.to.as_deref()
            .map(|s| parse_time(s, "to"))
            .transpose()?
            .unwrap_or(now);
    let from = f
        .from
        .as_deref()
        .map(|s| parse_time(s, "from"))
        .transpose()?
        .unwrap_or(to - Duration::days(7));
    if from > to {
        return Err(ApiError::validation("`from` must not be after `to`"));
    }
    if to - from > Duration::days(MAX_QUERY_DAYS) {
        return Err(ApiError::validation(format!(
            "a query spans at most {MAX_QUERY_DAYS} days"
        )));
    }
    let limit = f.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation("`limit` must be between 1 and 500"));
    }
    let cursor: Option<Cursor> = f
        .cursor
        .as_deref()
        .map(|c| {
            B64URL
                .decode(c)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| ApiError::validation("`cursor` is not one this API returned"))
        })
        .transpose()?;
    let lo = keys::audit_sort(micros(from), "");
    let hi = keys::audit_sort(micros(to) + 1, "");

    // One row more than the page, to know whether a next page exists.
    let want = limit + 1;
    let mut out: Vec<(String, AuditEvent)> = Vec::new();
    let mut day = to.date();
    while day >= from.date() && out.len() < want {
        let day_s = format!(
            "{:04}-{:02}-{:02}",
            day.year(),
            u8::from(day.month()),
            day.day()
        );
        let upper = match &cursor {
            Some(c) if c.day == day_s => c.sk.clone().min(hi.clone()),
            Some(c) if c.day < day_s => {
                day = day.previous_day().expect("date in range");
                continue;
            }
            _ => hi.clone(),
        };
        // Rows of the day, from every shard, merged newest first.
        let mut rows: Vec<(String, AuditEvent)> = Vec::new();
        let needed = want - out.len();
        for shard in 0..keys::AUDIT_SHARDS {
            let mut start = None;
            let mut from_shard = 0;
            loop {
                let mut q = Query::partition(keys::audit_partition(owner_partition, &day_s, shard));
                q.sort_before = Some(upper.clone());
                q.forward = false;
                q.limit = Some(SHARD_PAGE);
                q.start = start.take();
                let page = store.query(q).await?;
                let mut stop = false;
                for item in page.items {
                    let sk = crate::store::s(&item, "sk").unwrap_or_default().to_string();
                    if sk < lo {
                        stop = true;
                        break;
                    }
                    let event: AuditEvent = crate::store::from_item(item)?;
                    if f.matches(&event) {
                        rows.push((sk, event));
                        from_shard += 1;
                    }
                }
                // Enough from this shard once it alone could fill the page.
                match page.last_key {
                    Some(k) if !stop && from_shard < needed => start = Some(k),
                    _ => break,
                }
            }
        }
        rows.sort_by(|a, b| b.0.cmp(&a.0));
        out.extend(rows.into_iter().take(needed));
        day = match day.previous_day() {
            Some(d) => d,
            None => break,
        };
    }
    let next = (out.len() > limit).then(|| {
        out.truncate(limit);
        let (sk, last) = out.last().expect("limit ≥ 1");
        let c = Cursor {
            day: last.time.get(..10).unwrap_or_default().to_string(),
            sk: sk.clone(),
        };
        B64URL.encode(serde_json::to_vec(&c).expect("cursor"))
    });
    Ok((out.into_iter().map(|(_, e)| e).collect(), next))
}

pub fn now_string(t: OffsetDateTime) -> String {
    rfc3339(t)
}
