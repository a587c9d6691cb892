//! Requests-per-minute limits on keys and agents, shared by every Lambda instance: a counter
//! item per subject and minute, raised in the request's own transaction under the condition
//! that it is still below the limit. A refused request therefore raises nothing (all limits or
//! none), and the check adds no round trip: the counter is read with the key record and
//! written with the audit row.

use crate::error::ApiError;
use crate::http::ApiResponse;
use crate::store::{Item, ItemKey, Write, keys};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use time::OffsetDateTime;

/// Fixed one-minute windows.
pub const WINDOW_SECONDS: i64 = 60;

#[derive(Debug, Clone)]
pub struct Limit {
    /// What is limited, as the SDK's `RateLimitError.scope`: `api_key` or `agent`.
    pub scope: &'static str,
    pub counter: ItemKey,
    pub limit: u32,
    /// Requests already counted in this window (as read with the key).
    pub used: u32,
    pub window_end: i64,
}

pub fn window_start(now: OffsetDateTime) -> i64 {
    now.unix_timestamp().div_euclid(WINDOW_SECONDS) * WINDOW_SECONDS
}

/// The counter of a subject (`key:<id>`, `agent:<id>`) for the window of `now`.
pub fn counter(owner_partition: &str, subject: &str, now: OffsetDateTime) -> ItemKey {
    keys::rate_counter(owner_partition, subject, window_start(now))
}

pub fn used(item: Option<Item>) -> u32 {
    item.and_then(|i| {
        i.get("n")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
    })
    .unwrap_or(0)
}

impl Limit {
    pub fn new(
        scope: &'static str,
        counter: ItemKey,
        limit: u32,
        used: u32,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            scope,
            counter,
            limit,
            used,
            window_end: window_start(now) + WINDOW_SECONDS,
        }
    }

    /// Counts this request if the window still has room.
    pub fn increment(&self) -> Write {
        Write::Update {
            key: self.counter.clone(),
            update: "SET n = if_not_exists(n, :zero) + :one, #ttl = :ttl".into(),
            condition: Some("attribute_not_exists(n) OR n < :limit".into()),
            names: vec![("#ttl".into(), "ttl".into())],
            values: vec![
                (":zero".into(), AttributeValue::N("0".into())),
                (":one".into(), AttributeValue::N("1".into())),
                (":limit".into(), AttributeValue::N(self.limit.to_string())),
                (
                    ":ttl".into(),
                    AttributeValue::N((self.window_end + WINDOW_SECONDS).to_string()),
                ),
            ],
        }
    }

    pub fn exceeded(&self, now: OffsetDateTime) -> ApiError {
        let retry = (self.window_end - now.unix_timestamp()).max(1) as u64;
        ApiError::new(
            http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            format!(
                "more than {} requests in a minute for this {}",
                self.limit,
                self.scope.replace('_', " ")
            ),
        )
        .field("scope", json!(self.scope))
        .field("limit", json!(self.limit))
        .field("window_seconds", json!(WINDOW_SECONDS))
        .field("retry_after", json!(retry))
        .retry_after(retry)
    }
}

/// `X-RateLimit-*` of the tightest limit (after this request), as the SDK's `last_rate_limit`.
pub fn headers(mut r: ApiResponse, limits: &[Limit], counted: bool) -> ApiResponse {
    let Some(tight) = limits.iter().min_by_key(|l| l.limit.saturating_sub(l.used)) else {
        return r;
    };
    let used = tight.used + u32::from(counted);
    r = r
        .header("x-ratelimit-limit", &tight.limit.to_string())
        .header(
            "x-ratelimit-remaining",
            &tight.limit.saturating_sub(used).to_string(),
        )
        .header("x-ratelimit-reset", &tight.window_end.to_string());
    if tight.used >= tight.limit {
        r = r.header("x-alter-rate-limited-scope", tight.scope);
    }
    r
}
