//! Policy documents (docs/policies.md): what a runtime call must satisfy, set on an app, an
//! agent or a grant. Every present part must pass, on every `/sdk/token` and `/sdk/proxy`
//! call, and anything that cannot be evaluated refuses (fail closed): an unknown caller IP
//! against an allowlist, a method or endpoint the call does not state against restrictions.

use crate::cidr;
use crate::error::ApiError;
use crate::store::{ItemKey, TxError, Write, keys};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::IpAddr;
use time::OffsetDateTime;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// HTTP methods the grant may be used for (restricted grants are proxy-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_methods: Option<Vec<String>>,
    /// Path patterns it may be used for: `/v1/items`, `/v1/items/*` (one segment), `/v1/**`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_endpoints: Option<Vec<String>>,
    /// CIDRs the calling service must come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_allowlist: Option<Vec<String>>,
    /// When calls may be made, in an IANA time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Calls per fixed window (UTC minute, hour, day, calendar month).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<Vec<Quota>>,
    /// Calls that wait for people to approve them (proxy mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    /// Methods that need approval; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Path patterns that need approval (as `allowed_endpoints`); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<String>>,
    /// Distinct approvals needed, each by its own link (N of N), 1 to 5.
    #[serde(default = "one")]
    pub approvers: u8,
    /// How long a request waits for its approvals: 60 s to 7 days, default 1 hour.
    #[serde(default = "hour")]
    pub expires_in_seconds: i64,
}

fn one() -> u8 {
    1
}

fn hour() -> i64 {
    3600
}

impl ApprovalRule {
    /// Whether a call needs this approval. Endpoints match case-insensitively and a path that
    /// cannot be read one way only always matches: in doubt, a person decides.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        let path = normalize_path(path).map(|p| p.to_ascii_lowercase());
        self.methods
            .as_ref()
            .is_none_or(|m| m.iter().any(|m| m == method))
            && self.endpoints.as_ref().is_none_or(|e| {
                path.as_ref().is_none_or(|path| {
                    e.iter()
                        .any(|e| path_matches(&e.to_ascii_lowercase(), path))
                })
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub time_zone: String,
    /// `mon` … `sun`; every day when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<String>>,
    /// `HH:MM`, inclusive; with `to` (exclusive). `from` after `to` spans midnight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Per {
    Minute,
    Hour,
    Day,
    Month,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub per: Per,
    pub limit: u32,
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
const DAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn invalid(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        http::StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_policy",
        format!("`{field}`: {why}"),
    )
    .hint("see docs/policies.md for the policy document format")
}

fn minutes(field: &str, hhmm: &str) -> Result<u16, ApiError> {
    let parsed = hhmm
        .split_once(':')
        .filter(|(h, m)| {
            h.len() == 2 && m.len() == 2 && (h.to_string() + m).bytes().all(|b| b.is_ascii_digit())
        })
        .and_then(|(h, m)| Some((h.parse::<u16>().ok()?, m.parse::<u16>().ok()?)))
        .filter(|(h, m)| *h < 24 && *m < 60);
    parsed
        .map(|(h, m)| h * 60 + m)
        .ok_or_else(|| invalid(field, "a time is `HH:MM`, 00:00 to 23:59"))
}

impl Policy {
    /// A policy document as sent (`null` or `{}` is no policy), checked.
    pub fn parse(field: &str, v: &Value) -> Result<Option<Policy>, ApiError> {
        if v.is_null() || v.as_object().is_some_and(|m| m.is_empty()) {
            return Ok(None);
        }
        let mut p: Policy =
            serde_json::from_value(v.clone()).map_err(|e| invalid(field, e.to_string()))?;
        // An empty list would read as "nothing" in one place and "anything" in another.
        let lists = [
            ("allowed_methods", p.allowed_methods.as_ref()),
            ("allowed_endpoints", p.allowed_endpoints.as_ref()),
            ("ip_allowlist", p.ip_allowlist.as_ref()),
            (
                "approval.methods",
                p.approval.as_ref().and_then(|a| a.methods.as_ref()),
            ),
            (
                "approval.endpoints",
                p.approval.as_ref().and_then(|a| a.endpoints.as_ref()),
            ),
        ];
        if let Some((name, _)) = lists.iter().find(|(_, l)| l.is_some_and(|l| l.is_empty())) {
            return Err(invalid(
                &format!("{field}.{name}"),
                "a list, when given, names at least one entry",
            ));
        }
        if let Some(methods) = &mut p.allowed_methods {
            for m in methods.iter_mut() {
                *m = m.to_ascii_uppercase();
                if !METHODS.contains(&m.as_str()) {
                    return Err(invalid(
                        &format!("{field}.allowed_methods"),
                        format!("methods are {}", METHODS.join(", ")),
                    ));
                }
            }
        }
        if let Some(e) = &p.allowed_endpoints
            && (e.len() > 50
                || e.iter()
                    .any(|p| !p.starts_with('/') || p.len() > 512 || p.contains(['?', '#'])))
        {
            return Err(invalid(
                &format!("{field}.allowed_endpoints"),
                "at most 50 paths, each starting with `/`, without query or fragment",
            ));
        }
        if let Some(ips) = &p.ip_allowlist {
            p.ip_allowlist = Some(
                cidr::parse_list(ips)
                    .map_err(|e| invalid(&format!("{field}.ip_allowlist"), e.message))?,
            );
        }
        if let Some(s) = &p.schedule {
            let f = format!("{field}.schedule");
            jiff::tz::TimeZone::get(&s.time_zone)
                .map_err(|_| invalid(&f, "`time_zone` is not an IANA time zone"))?;
            if s.days
                .as_ref()
                .is_some_and(|d| d.is_empty() || d.iter().any(|d| !DAYS.contains(&d.as_str())))
            {
                return Err(invalid(
                    &f,
                    "`days` lists mon, tue, wed, thu, fri, sat, sun",
                ));
            }
            match (&s.from, &s.to) {
                (Some(a), Some(b)) if minutes(&f, a)? == minutes(&f, b)? => {
                    return Err(invalid(&f, "`from` and `to` are the same time"));
                }
                (Some(_), Some(_)) | (None, None) => {}
                _ => return Err(invalid(&f, "give both `from` and `to`, or neither")),
            }
        }
        if let Some(a) = &mut p.approval {
            let f = format!("{field}.approval");
            if !(1..=5).contains(&a.approvers) || !(60..=604_800).contains(&a.expires_in_seconds) {
                return Err(invalid(
                    &f,
                    "`approvers` is 1 to 5 and `expires_in_seconds` 60 to 604800",
                ));
            }
            for m in a.methods.iter_mut().flatten() {
                *m = m.to_ascii_uppercase();
                if !METHODS.contains(&m.as_str()) {
                    return Err(invalid(&f, format!("methods are {}", METHODS.join(", "))));
                }
            }
            if a.endpoints
                .iter()
                .flatten()
                .any(|p| !p.starts_with('/') || p.len() > 512)
            {
                return Err(invalid(&f, "endpoints are paths starting with `/`"));
            }
        }
        if let Some(q) = &p.quotas
            && (q.is_empty() || q.len() > 4 || q.iter().any(|q| q.limit == 0))
        {
            return Err(invalid(
                &format!("{field}.quotas"),
                "1 to 4 quotas, each with a `limit` of at least 1",
            ));
        }
        Ok((p != Policy::default()).then_some(p))
    }

    /// Restricted grants may be used in proxy mode only (the call is known there).
    pub fn restricts_calls(&self) -> bool {
        self.allowed_methods.is_some() || self.allowed_endpoints.is_some()
    }
}

/// What a call is, as far as policies look at it.
pub struct CallFacts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub ip: Option<IpAddr>,
    pub now: OffsetDateTime,
}

fn denied(code: &'static str, whose: &str, message: String) -> ApiError {
    ApiError::forbidden(code, message).field("policy", json!(whose))
}

/// A request path as endpoint rules see it: unreserved percent-escapes decoded, `;params`
/// dropped, empty segments and a trailing `/` collapsed. `None` for paths that servers may
/// read as another path (an encoded `/` or `\`, `.` or `..` segments): rules then treat the
/// call as unknown — not allowed, and needing approval.
pub fn normalize_path(path: &str) -> Option<String> {
    let mut segments = Vec::new();
    for raw in path.split('/') {
        let raw = raw.split(';').next().unwrap_or_default();
        let mut seg = String::new();
        let bytes = raw.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = raw.get(i + 1..i + 3)?;
                let b = u8::from_str_radix(hex, 16).ok()?;
                if b == b'/' || b == b'\\' || b == b'%' || b < 0x20 {
                    return None;
                }
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    seg.push(b as char);
                } else {
                    seg.push_str(&raw[i..i + 3].to_ascii_uppercase());
                }
                i += 3;
            } else {
                seg.push(bytes[i] as char);
                i += 1;
            }
        }
        if seg == "." || seg == ".." || seg.contains('\\') {
            return None;
        }
        if !seg.is_empty() {
            segments.push(seg);
        }
    }
    Some(format!("/{}", segments.join("/")))
}

/// Whether `path` matches `pattern` (`*` one segment, a trailing `/**` any rest).
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let (pattern, rest_ok) = match pattern.strip_suffix("/**") {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let want: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    let got: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if got.len() < want.len() || (!rest_ok && got.len() != want.len()) {
        return false;
    }
    want.iter()
        .zip(&got)
        .all(|(w, g)| *w == "*" && !g.is_empty() || w == g)
}

/// Checks a policy (`whose`: `app`, `agent`, `grant`) against a call, quotas aside.
pub fn check(p: &Policy, whose: &str, call: &CallFacts<'_>) -> Result<(), ApiError> {
    if let Some(methods) = &p.allowed_methods
        && !methods.iter().any(|m| m == call.method)
    {
        return Err(denied(
            "method_not_allowed",
            whose,
            format!("the {whose} policy does not allow {} calls", call.method),
        ));
    }
    if let Some(endpoints) = &p.allowed_endpoints
        && !normalize_path(call.path)
            .is_some_and(|path| endpoints.iter().any(|e| path_matches(e, &path)))
    {
        return Err(denied(
            "endpoint_not_allowed",
            whose,
            format!("the {whose} policy does not allow calls to this endpoint"),
        ));
    }
    if let Some(ips) = &p.ip_allowlist
        && !cidr::allows(ips, call.ip)
    {
        return Err(denied(
            "ip_not_allowed",
            whose,
            format!("the {whose} policy does not allow calls from this address"),
        ));
    }
    if let Some(s) = &p.schedule
        && !in_schedule(s, call.now)
    {
        return Err(denied(
            "outside_allowed_hours",
            whose,
            format!("the {whose} policy does not allow calls at this time"),
        ));
    }
    Ok(())
}

fn in_schedule(s: &Schedule, now: OffsetDateTime) -> bool {
    let Ok(tz) = jiff::tz::TimeZone::get(&s.time_zone) else {
        return false;
    };
    let Ok(ts) = jiff::Timestamp::from_second(now.unix_timestamp()) else {
        return false;
    };
    let local = ts.to_zoned(tz);
    let day = DAYS[local.weekday().to_monday_zero_offset() as usize];
    // A window spanning midnight belongs to the day it started on.
    let minute = local.hour() as u16 * 60 + local.minute() as u16;
    let window = match (&s.from, &s.to) {
        (Some(f), Some(t)) => match (minutes("", f), minutes("", t)) {
            (Ok(f), Ok(t)) => Some((f, t)),
            _ => return false,
        },
        _ => None,
    };
    let (day_ok, time_ok) = match window {
        None => (day_listed(s, day), true),
        Some((f, t)) if f < t => (day_listed(s, day), (f..t).contains(&minute)),
        Some((f, _)) if minute >= f => (day_listed(s, day), true),
        Some((_, t)) => {
            let yesterday = DAYS[(local.weekday().to_monday_zero_offset() as usize + 6) % 7];
            (day_listed(s, yesterday), minute < t)
        }
    };
    day_ok && time_ok
}

fn day_listed(s: &Schedule, day: &str) -> bool {
    s.days
        .as_ref()
        .is_none_or(|days| days.iter().any(|d| d == day))
}

/// One quota's counter for the window of `now`: its key, its limit and when it resets.
pub struct Counter {
    pub whose: String,
    pub per: Per,
    pub key: ItemKey,
    pub limit: u32,
    pub resets_at: i64,
}

/// Start and end (epoch seconds) of the fixed UTC window of `now`.
fn window(per: Per, now: OffsetDateTime) -> (i64, i64) {
    let t = now.unix_timestamp();
    let fixed = |len: i64| {
        let start = t.div_euclid(len) * len;
        (start, start + len)
    };
    match per {
        Per::Minute => fixed(60),
        Per::Hour => fixed(3600),
        Per::Day => fixed(86_400),
        Per::Month => {
            let first = now
                .date()
                .replace_day(1)
                .expect("day 1 exists")
                .midnight()
                .assume_utc();
            let (y, m) = match now.month() {
                time::Month::December => (now.year() + 1, time::Month::January),
                m => (now.year(), m.next()),
            };
            let next = time::Date::from_calendar_date(y, m, 1)
                .expect("a month's first day")
                .midnight()
                .assume_utc();
            (first.unix_timestamp(), next.unix_timestamp())
        }
    }
}

/// The counters a policy's quotas raise for `subject` (`grant:<id>`, `agent:<id>`).
pub fn counters(
    p: &Policy,
    whose: &str,
    app: uuid::Uuid,
    subject: &str,
    now: OffsetDateTime,
) -> Vec<Counter> {
    p.quotas
        .iter()
        .flatten()
        .map(|q| {
            let (start, end) = window(q.per, now);
            let per = serde_json::to_value(q.per).expect("per");
            Counter {
                whose: whose.to_string(),
                per: q.per,
                key: keys::quota_counter(app, subject, per.as_str().unwrap_or("window"), start),
                limit: q.limit,
                resets_at: end,
            }
        })
        .collect()
}

/// Counts the call against every counter at once, or none: a full window answers
/// `429 quota_exceeded` with `retry_after` (seconds until it resets).
pub async fn count(
    ctx: &crate::Ctx,
    counters: &[Counter],
    now: OffsetDateTime,
) -> Result<(), ApiError> {
    if counters.is_empty() {
        return Ok(());
    }
    let writes = counters
        .iter()
        .map(|c| Write::Update {
            key: c.key.clone(),
            update: "SET n = if_not_exists(n, :zero) + :one, #ttl = :ttl".into(),
            condition: Some("attribute_not_exists(n) OR n < :limit".into()),
            names: vec![("#ttl".into(), "ttl".into())],
            values: vec![
                (":zero".into(), AttributeValue::N("0".into())),
                (":one".into(), AttributeValue::N("1".into())),
                (":limit".into(), AttributeValue::N(c.limit.to_string())),
                (
                    ":ttl".into(),
                    AttributeValue::N((c.resets_at + 3600).to_string()),
                ),
            ],
        })
        .collect();
    match ctx.store.transact(writes).await {
        Ok(()) => Ok(()),
        Err(TxError::ConditionFailed(failed)) => {
            let full = failed
                .first()
                .and_then(|i| counters.get(*i))
                .unwrap_or(&counters[0]);
            let retry = (full.resets_at - now.unix_timestamp()).max(1) as u64;
            let per = serde_json::to_value(full.per).expect("per");
            Err(ApiError::new(
                http::StatusCode::TOO_MANY_REQUESTS,
                "quota_exceeded",
                format!(
                    "the {} policy allows {} calls per {}",
                    full.whose,
                    full.limit,
                    per.as_str().unwrap_or("window")
                ),
            )
            .field("policy", json!(full.whose))
            .field("limit", json!(full.limit))
            .field("window", per)
            .field("retry_after", json!(retry))
            .retry_after(retry))
        }
        Err(TxError::Unavailable(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_patterns() {
        assert!(path_matches("/v1/items", "/v1/items"));
        assert!(!path_matches("/v1/items", "/v1/items/1"));
        assert!(path_matches("/v1/items/*", "/v1/items/1"));
        assert!(!path_matches("/v1/items/*", "/v1/items/"));
        assert!(!path_matches("/v1/items/*", "/v1/items/1/x"));
        assert!(path_matches("/v1/**", "/v1/items/1/x"));
        assert!(!path_matches("/v1/**", "/v2/items"));
    }

    #[test]
    fn paths_are_read_one_way_or_refused() {
        assert_eq!(
            normalize_path("/v1//refunds/").as_deref(),
            Some("/v1/refunds")
        );
        assert_eq!(
            normalize_path("/v1/%72efunds;x=1").as_deref(),
            Some("/v1/refunds")
        );
        assert_eq!(normalize_path("/v1/a%20b").as_deref(), Some("/v1/a%20b"));
        for odd in [
            "/v1/items/..%2Fadmin",
            "/v1/../admin",
            "/v1/./x",
            "/v1/%2e%2e/admin",
            "/v1/a%5Cb",
            "/v1/%zz",
        ] {
            assert_eq!(normalize_path(odd), None, "{odd}");
        }
        let rule: ApprovalRule =
            serde_json::from_value(json!({"methods": ["POST"], "endpoints": ["/v1/refunds"]}))
                .unwrap();
        for spelled in [
            "/v1/refunds",
            "/v1/refunds/",
            "/v1//refunds",
            "/v1/%72efunds",
            "/V1/Refunds",
            "/v1/refunds;x=1",
            "/v1/x/..%2Frefunds",
        ] {
            assert!(rule.matches("POST", spelled), "{spelled}");
        }
        assert!(!rule.matches("POST", "/v1/orders"));
        let p = Policy::parse("p", &json!({"allowed_endpoints": ["/v1/items/*"]}))
            .unwrap()
            .unwrap();
        let facts = |path| CallFacts {
            method: "GET",
            path,
            ip: None,
            now: OffsetDateTime::now_utc(),
        };
        assert!(check(&p, "grant", &facts("/v1/items/7")).is_ok());
        assert!(check(&p, "grant", &facts("/v1/items/..%2Fadmin")).is_err());
        assert!(check(&p, "grant", &facts("/v1/items/7/x")).is_err());
    }

    #[test]
    fn schedules_in_a_time_zone_including_across_midnight() {
        let s = |days: Option<Vec<&str>>, from: &str, to: &str| Schedule {
            time_zone: "Europe/Paris".into(),
            days: days.map(|d| d.into_iter().map(String::from).collect()),
            from: Some(from.into()),
            to: Some(to.into()),
        };
        // 2027-01-15T08:00:00Z is a Friday, 09:00 in Paris.
        let friday_9 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert!(in_schedule(
            &s(Some(vec!["fri"]), "09:00", "17:00"),
            friday_9
        ));
        assert!(!in_schedule(
            &s(Some(vec!["thu"]), "09:00", "17:00"),
            friday_9
        ));
        assert!(!in_schedule(&s(None, "09:01", "17:00"), friday_9));
        // 22:00–06:00 started Thursday covers Friday 01:00 but not Friday 09:00.
        let friday_1 = friday_9 - time::Duration::hours(8);
        assert!(in_schedule(
            &s(Some(vec!["thu"]), "22:00", "06:00"),
            friday_1
        ));
        assert!(!in_schedule(
            &s(Some(vec!["fri"]), "22:00", "06:00"),
            friday_1
        ));
        assert!(!in_schedule(
            &s(Some(vec!["thu"]), "22:00", "06:00"),
            friday_9
        ));
    }

    #[test]
    fn documents_are_checked() {
        for bad in [
            json!({"allowed_methods": ["FETCH"]}),
            json!({"allowed_endpoints": ["items"]}),
            json!({"ip_allowlist": ["not a cidr"]}),
            json!({"schedule": {"time_zone": "Mars/Base"}}),
            json!({"schedule": {"time_zone": "UTC", "from": "9:00", "to": "17:00"}}),
            json!({"schedule": {"time_zone": "UTC", "from": "+1:00", "to": "17:00"}}),
            json!({"schedule": {"time_zone": "UTC", "from": "09:00"}}),
            json!({"quotas": [{"per": "week", "limit": 1}]}),
            json!({"quotas": [{"per": "day", "limit": 0}]}),
            json!({"surprise": true}),
            json!({"ip_allowlist": []}),
            json!({"allowed_methods": []}),
            json!({"approval": {"methods": []}}),
        ] {
            assert!(Policy::parse("policy", &bad).is_err(), "{bad}");
        }
        let p = Policy::parse("policy", &json!({"allowed_methods": ["get"]}))
            .unwrap()
            .unwrap();
        assert_eq!(p.allowed_methods, Some(vec!["GET".to_string()]));
        assert_eq!(Policy::parse("policy", &json!({})).unwrap(), None);
    }

    #[test]
    fn month_windows_follow_the_calendar() {
        let t = time::macros::datetime!(2027-12-31 23:59 UTC);
        let (start, end) = window(Per::Month, t);
        assert_eq!(
            start,
            time::macros::datetime!(2027-12-01 0:00 UTC).unix_timestamp()
        );
        assert_eq!(
            end,
            time::macros::datetime!(2028-01-01 0:00 UTC).unix_timestamp()
        );
    }
}
