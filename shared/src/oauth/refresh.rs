//! A fresh access token for every call: refreshed first when it would expire within a
//! minute, by exactly one caller across every Lambda instance.
//!
//! The single flight is a lease on the grant's token item: a conditional write that only
//! succeeds when nobody holds an unexpired lease on the token generation the caller saw.
//! The holder calls the provider and writes the new tokens (releasing the lease in the same
//! write); everyone else re-reads the item until the generation changes and uses the new
//! token, and a caller that runs out of time answers `token_refresh_in_progress` — never the
//! old token.

use crate::Ctx;
use crate::error::ApiError;
use crate::model::{Grant, TokenSecret, TokenSet};
use crate::oauth::client::{self, Failure};
use crate::oauth::tokens;
use crate::service::providers;
use crate::store::{Condition, TxError, Write, from_item, keys};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

/// A token is handed out only if it stays valid this long.
pub const MARGIN: time::Duration = time::Duration::seconds(60);
/// Outlives the provider call it covers (`client::PROVIDER_TIMEOUT`) with room to write.
const LEASE: Duration = Duration::from_secs(30);
/// How long a caller waits for another caller's refresh: most of a slow provider's answer
/// time, well inside the function's timeout.
const WAIT: Duration = Duration::from_secs(7);
/// Waiters re-read the grant after this, then less often (up to `POLL_MAX`), so a crowd
/// waiting on one refresh does not crowd the table.
const POLL: Duration = Duration::from_millis(150);
const POLL_MAX: Duration = Duration::from_millis(600);

pub struct Fresh {
    pub secret: TokenSecret,
    pub set: TokenSet,
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn needs_refresh(set: &TokenSet, now: OffsetDateTime) -> bool {
    set.expires_at.is_some_and(|t| t - now < MARGIN)
}

pub fn reconnect_required(grant: &Grant, set: Option<&TokenSet>) -> ApiError {
    let provider = grant.kind.provider_id();
    // An access token that simply ran out with nothing to renew it: expired, not revoked.
    if set.is_some_and(|s| !s.has_refresh_token) {
        return ApiError::forbidden(
            "grant_expired",
            "the access token expired and the provider gave no refresh token; the user must reconnect",
        )
        .field("grant_id", json!(grant.grant_id))
        .field("provider_id", json!(provider))
        .hint("start a Connect session with repair_grant_id to reconnect in place");
    }
    ApiError::forbidden(
        "credential_revoked",
        "the provider no longer accepts this grant's refresh token; the user must reconnect",
    )
    .field("grant_id", json!(grant.grant_id))
    .field("provider_id", json!(provider))
    .hint("start a Connect session with repair_grant_id to reconnect in place")
}

fn in_progress(grant: &Grant) -> ApiError {
    ApiError::conflict(
        "token_refresh_in_progress",
        "another request is refreshing this grant's token; retry shortly",
    )
    .field("grant_id", json!(grant.grant_id))
    .retry_after(1)
}

fn refresh_failed(grant: &Grant, retry_info: serde_json::Value) -> ApiError {
    ApiError::new(
        http::StatusCode::BAD_GATEWAY,
        "token_refresh_failed",
        "the provider did not renew the access token; the grant is unchanged, retry later",
    )
    .field("grant_id", json!(grant.grant_id))
    .field("provider_id", json!(grant.kind.provider_id()))
    .field("retry_info", retry_info)
}

async fn read(ctx: &Ctx, grant: &Grant) -> Result<Option<TokenSet>, ApiError> {
    ctx.store
        .get(&keys::grant_tokens(grant.app_id, grant.grant_id), true)
        .await?
        .map(from_item)
        .transpose()
}

/// The grant's token, refreshed first if needed. `set` is the token item as read with the
/// grant.
pub async fn fresh(
    ctx: &Ctx,
    grant: &Grant,
    set: TokenSet,
    now: OffsetDateTime,
) -> Result<Fresh, ApiError> {
    // A delegation uses, and refreshes, its root grant's tokens: the credential lives there.
    let root;
    let grant = if grant.delegation.is_some() {
        root = Grant {
            grant_id: grant.root_id(),
            delegation: None,
            ..grant.clone()
        };
        &root
    } else {
        grant
    };
    if grant.needs_reconnect || set.needs_reconnect {
        return Err(reconnect_required(grant, Some(&set)));
    }
    if !needs_refresh(&set, now) {
        let secret = tokens::open(ctx, &set).await?;
        return Ok(Fresh { secret, set });
    }
    if !set.has_refresh_token {
        mark_needs_reconnect(ctx, grant, None).await?;
        return Err(reconnect_required(grant, Some(&set)));
    }
    let started = now_ms();
    let deadline = Instant::now() + WAIT;
    let mut seen = set;
    loop {
        let lease_id = Uuid::new_v4().to_string();
        if take_lease(ctx, &seen, &lease_id).await? {
            return lead(ctx, grant, seen, &lease_id).await;
        }
        // Someone else holds the lease: wait for their token.
        let mut pause = POLL;
        loop {
            let jitter = rand::random_range(0..100);
            tokio::time::sleep(pause + Duration::from_millis(jitter)).await;
            pause = (pause * 2).min(POLL_MAX);
            if Instant::now() >= deadline {
                return Err(in_progress(grant));
            }
            let latest = read(ctx, grant).await?.ok_or_else(|| revoked(grant))?;
            if latest.needs_reconnect {
                return Err(reconnect_required(grant, Some(&latest)));
            }
            if latest.generation != seen.generation {
                let secret = tokens::open(ctx, &latest).await?;
                return Ok(Fresh {
                    secret,
                    set: latest,
                });
            }
            if latest.failed_at_ms.is_some_and(|t| t >= started) {
                let info = latest.failure.clone().unwrap_or(json!(null));
                return Err(refresh_failed(grant, info));
            }
            if latest.lease_until_ms.is_none_or(|t| t < now_ms()) {
                // The holder gave up or died: take over.
                seen = latest;
                break;
            }
        }
    }
}

fn revoked(grant: &Grant) -> ApiError {
    ApiError::forbidden("grant_revoked", "this grant has been revoked")
        .field("grant_id", json!(grant.grant_id))
}

async fn take_lease(ctx: &Ctx, seen: &TokenSet, lease_id: &str) -> Result<bool, ApiError> {
    let now = now_ms();
    let write = Write::Update {
        key: keys::grant_tokens(seen.app_id, seen.grant_id),
        update: "SET lease_id = :lease, lease_until_ms = :until".into(),
        condition: Some(
            "generation = :gen AND (attribute_not_exists(lease_until_ms) OR lease_until_ms < :now)"
                .into(),
        ),
        names: Vec::new(),
        values: vec![
            (":lease".into(), AttributeValue::S(lease_id.into())),
            (
                ":until".into(),
                AttributeValue::N((now + LEASE.as_millis() as i64).to_string()),
            ),
            (
                ":gen".into(),
                AttributeValue::S(seen.generation.to_string()),
            ),
            (":now".into(), AttributeValue::N(now.to_string())),
        ],
    };
    match ctx.store.transact(vec![write]).await {
        Ok(()) => Ok(true),
        Err(TxError::ConditionFailed(_)) => Ok(false),
        Err(TxError::Unavailable(e)) => Err(e),
    }
}

fn held_by(lease_id: &str) -> Condition {
    Condition::new("lease_id = :lease").value(":lease", AttributeValue::S(lease_id.into()))
}

/// The lease holder's part: one call to the provider, then one write of the outcome.
async fn lead(ctx: &Ctx, grant: &Grant, seen: TokenSet, lease_id: &str) -> Result<Fresh, ApiError> {
    let provider = match providers::configured(ctx, grant.app_id, grant.kind.provider_id()).await {
        Ok(p) => p,
        Err(e) => {
            release(ctx, &seen, lease_id, None).await;
            return Err(e);
        }
    };
    let old = tokens::open(ctx, &seen).await?;
    let refresh_token = old.refresh_token.clone().unwrap_or_default();
    match client::refresh(&provider.def, &provider.credentials(), &refresh_token).await {
        Ok(answer) => {
            let now = OffsetDateTime::now_utc();
            let (set, secret) = tokens::from_answer(
                ctx,
                grant.app_id,
                grant.grant_id,
                &provider.def,
                &answer,
                old.refresh_token.as_deref(),
                now,
            )
            .await?;
            let write = Write::Put {
                item: tokens::item(&set),
                condition: Some(held_by(lease_id)),
            };
            match ctx.store.transact(vec![write]).await {
                Ok(()) => Ok(Fresh { secret, set }),
                // The lease ran out before the write: whoever took over decides.
                Err(TxError::ConditionFailed(_)) => Err(in_progress(grant)),
                Err(TxError::Unavailable(e)) => Err(e),
            }
        }
        Err(Failure::InvalidGrant) => {
            mark_needs_reconnect(ctx, grant, Some(lease_id)).await?;
            tracing::info!(grant_id = %grant.grant_id, "provider refused the refresh token");
            Err(reconnect_required(grant, None))
        }
        Err(failure) => {
            let info = failure.retry_info();
            tracing::warn!(grant_id = %grant.grant_id, failure = ?failure, "token refresh failed");
            release(ctx, &seen, lease_id, Some(&info)).await;
            Err(refresh_failed(grant, info))
        }
    }
}

/// Gives the lease back, recording a passing failure for the callers that waited on it.
async fn release(ctx: &Ctx, seen: &TokenSet, lease_id: &str, failure: Option<&serde_json::Value>) {
    let (update, mut values) = match failure {
        Some(info) => (
            "SET failed_at_ms = :at, failure = :info REMOVE lease_id, lease_until_ms",
            vec![
                (":at".to_string(), AttributeValue::N(now_ms().to_string())),
                (":info".to_string(), AttributeValue::S(info.to_string())),
            ],
        ),
        None => ("REMOVE lease_id, lease_until_ms", Vec::new()),
    };
    values.push((":lease".into(), AttributeValue::S(lease_id.into())));
    let write = Write::Update {
        key: keys::grant_tokens(seen.app_id, seen.grant_id),
        update: update.into(),
        condition: Some("lease_id = :lease".into()),
        names: Vec::new(),
        values,
    };
    if ctx.store.transact(vec![write]).await.is_err() {
        tracing::warn!("refresh lease release failed; it expires on its own");
    }
}

/// Flags the grant (visible in listings) and its tokens (seen by waiting callers) at once.
async fn mark_needs_reconnect(
    ctx: &Ctx,
    grant: &Grant,
    lease_id: Option<&str>,
) -> Result<(), ApiError> {
    let mut tokens_update = Write::Update {
        key: keys::grant_tokens(grant.app_id, grant.grant_id),
        update: "SET needs_reconnect = :t REMOVE lease_id, lease_until_ms".into(),
        condition: Some("attribute_exists(pk)".into()),
        names: Vec::new(),
        values: vec![(":t".into(), AttributeValue::Bool(true))],
    };
    if let (
        Some(lease),
        Write::Update {
            condition, values, ..
        },
    ) = (lease_id, &mut tokens_update)
    {
        *condition = Some("lease_id = :lease".into());
        values.push((":lease".into(), AttributeValue::S(lease.into())));
    }
    let grant_update = Write::Update {
        key: keys::grant(grant.app_id, grant.grant_id),
        update: "SET needs_reconnect = :t".into(),
        condition: Some("attribute_exists(pk)".into()),
        names: Vec::new(),
        values: vec![(":t".into(), AttributeValue::Bool(true))],
    };
    match ctx.store.transact(vec![grant_update, tokens_update]).await {
        Ok(()) | Err(TxError::ConditionFailed(_)) => Ok(()),
        Err(TxError::Unavailable(e)) => Err(e),
    }
}
