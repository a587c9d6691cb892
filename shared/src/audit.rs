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
    /// Operation-specific facts (e.g. the reported provider call of `sdk_audit_api_call`),
    /// stored as JSON text.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::model::json_text"
    )]
    pub detail: Option<Value>,
    pub latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// Whether a context entry may be stored: keys 1–64 characters, values up to 512, neither
/// with control characters (DynamoDB refuses empty attribute names, logs must stay one line).
pub fn context_entry_ok(key: &str, value: &str) -> bool {
    let clean = |s: &str| !s.chars().any(char::is_control);
    (1..=64).contains(&key.chars().count())
        && value.chars().count() <= 512
        && clean(key)
        && clean(value)
}

impl AuditEvent {
    /// The row as the API shows it: `detail` as JSON, not as its stored text.
    pub fn view(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("audit rows serialise");
        if let Some(detail) = &self.detail {
            v["detail"] = detail.clone();
        }
        v
    }

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
    day_string(t.date())
}

fn day_string(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Matching rows of one shard, newest first, until it alone could fill the page.
async fn shard_rows(
    store: &Store,
    mut q: Query<'_>,
    lo: &str,
    f: &AuditFilter,
    needed: usize,
) -> Result<Vec<(String, AuditEvent)>, ApiError> {
    let mut rows = Vec::new();
    loop {
        let page = store.query(q.clone()).await?;
        for item in page.items {
            let sk = crate::store::s(&item, "sk").unwrap_or_default().to_string();
            if sk.as_str() < lo {
                return Ok(rows);
            }
            let event: AuditEvent = crate::store::from_item(item)?;
            if f.matches(&event) {
                rows.push((sk, event));
            }
        }
        match page.last_key {
            Some(k) if rows.len() < needed => q.start = Some(k),
            _ => return Ok(rows),
        }
    }
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
/// Days one request reads before answering with a cursor to continue: bounds the work of a
/// sparse query over a long range (16 queries per day, run in parallel).
const DAYS_PER_REQUEST: usize = 7;
pub const OUTCOMES: &[&str] = &["success", "denied", "not_found", "invalid", "error"];
const SHARD_PAGE: i32 = 100;

#[derive(Serialize, Deserialize)]
struct Cursor {
    day: String,
    sk: String,
}

fn parse_time(s: &str, what: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.to_offset(time::UtcOffset::UTC))
        .map_err(|_| {
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
    if let Some(o) = &f.outcome
        && !OUTCOMES.contains(&o.as_str())
    {
        return Err(ApiError::validation(format!(
            "`outcome` must be one of {}",
            OUTCOMES.join(", ")
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
    let mut days_read = 0;
    // Where to resume when this request stops early (see DAYS_PER_REQUEST).
    let mut resume: Option<Cursor> = None;
    while day >= from.date() && out.len() < want {
        let day_s = day_string(day);
        let upper = match &cursor {
            Some(c) if c.day == day_s => c.sk.clone().min(hi.clone()),
            Some(c) if c.day < day_s => {
                day = day.previous_day().expect("date in range");
                continue;
            }
            _ => hi.clone(),
        };
        if days_read == DAYS_PER_REQUEST {
            resume = Some(Cursor {
                day: day_s,
                sk: upper,
            });
            break;
        }
        days_read += 1;
        let needed = want - out.len();
        // Every shard of the day at once, merged newest first.
        let shards = (0..keys::AUDIT_SHARDS).map(|shard| {
            let q = Query {
                sort_before: Some(upper.clone()),
                forward: false,
                limit: Some(SHARD_PAGE),
                ..Query::partition(keys::audit_partition(owner_partition, &day_s, shard))
            };
            shard_rows(store, q, &lo, f, needed)
        });
        let mut rows: Vec<(String, AuditEvent)> = Vec::new();
        for shard in futures_util::future::join_all(shards).await {
            rows.extend(shard?);
        }
        rows.sort_by(|a, b| b.0.cmp(&a.0));
        out.extend(rows.into_iter().take(needed));
        day = match day.previous_day() {
            Some(d) => d,
            None => break,
        };
    }
    let encode = |c: &Cursor| B64URL.encode(serde_json::to_vec(c).expect("cursor"));
    let next = if out.len() > limit {
        out.truncate(limit);
        let (sk, last) = out.last().expect("limit ≥ 1");
        Some(encode(&Cursor {
            day: last.time.get(..10).unwrap_or_default().to_string(),
            sk: sk.clone(),
        }))
    } else {
        resume.as_ref().map(encode)
    };
    Ok((out.into_iter().map(|(_, e)| e).collect(), next))
}

pub fn now_string(t: OffsetDateTime) -> String {
    rfc3339(t)
}
