//! Managed-secret Connect: the session token (`ms_sess_…`, see `oauth::bearer`), which way a
//! session completes, and the cookie that binds it to the browser whose sign-in proved the
//! user.

use crate::error::ApiError;
use crate::model::secret_connect::{Path, SecretConnectSession};
use crate::model::{Grant, GrantKind, GrantStatus, Principal};
use crate::oauth::bearer;
use crate::store::{Item, keys, to_item};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

/// Long enough to sign in and find a key; short enough that a leaked link goes stale.
pub const SESSION_LIFE: time::Duration = time::Duration::minutes(15);

/// A delegation a user makes here lasts at most this long.
pub const MAX_DELEGATION_TTL: i64 = 90 * 86_400;

const PREFIX: &str = "ms_sess_";

pub fn new_token(app_id: Uuid) -> (String, String) {
    bearer::new_token(PREFIX, app_id)
}

pub fn parse_token(token: &str) -> Option<(Uuid, String)> {
    bearer::parse_token(PREFIX, token)
}

pub fn item(s: &SecretConnectSession) -> Item {
    to_item(s, &keys::secret_connect_session(s.app_id, &s.ref_id), &[])
}

pub fn session_not_found() -> ApiError {
    ApiError::not_found("connect_session_not_found", "Connect session")
}

/// The browser cookie of one session (per session, so two tabs do not unbind each other).
pub fn cookie_name(s: &SecretConnectSession) -> String {
    format!("pcms_{}", &s.ref_id[..16])
}

/// A fresh browser secret for the cookie, and the hash the session keeps.
pub fn new_browser_secret() -> (String, String) {
    let secret = bearer::random(24);
    let hash = bearer::sha256_hex(&secret);
    (secret, hash)
}

pub fn browser_matches(hash: &str, cookie: Option<&str>) -> bool {
    cookie.is_some_and(|c| bearer::hash_matches(hash, c))
}

/// Grants of this secret the user may approve for this session: active, not a delegation,
/// and (when an agent is to be delegated to) the user's own, since a delegation carries one
/// user's consent and a group's grant is not theirs to give away.
pub fn usable_for(g: &Grant, secret_id: Uuid, with_agent: bool, now: OffsetDateTime) -> bool {
    let of_secret =
        matches!(&g.kind, GrantKind::ManagedSecret { secret_id: s, .. } if *s == secret_id);
    of_secret
        && g.delegation.is_none()
        && g.status_at(now) == "active"
        && (!with_agent || matches!(g.principal, Principal::User { .. }))
}

/// The ID of a user's own-key grant for a secret: one per user and secret, so two
/// confirmations racing cannot both store a key (a revoked one may be replaced).
pub fn own_key_id(secret_id: Uuid, app_user_id: Uuid) -> Uuid {
    Uuid::new_v5(&secret_id, format!("own-key:{app_user_id}").as_bytes())
}

/// The user's own key for this secret (any status): at most one is live at a time.
pub fn own_key_of(grants: &[Grant], user: Uuid, secret_id: Uuid) -> Option<&Grant> {
    let me = Principal::User {
        app_user_id: user.to_string(),
    };
    grants
        .iter()
        .filter(|g| g.principal == me && g.delegation.is_none() && g.status == GrantStatus::Active)
        .find(|g| {
            matches!(&g.kind, GrantKind::ManagedSecret { secret_id: s, end_user_key: true, .. } if *s == secret_id)
        })
}

/// Which way the session completes (spec §7.7): the user's grant to approve (`label` first,
/// else the newest), a repair of their own key (asked for, or the only way left when it
/// expired), or a new key.
pub fn choose_path(
    grants: &[Grant],
    user: Uuid,
    secret_id: Uuid,
    with_agent: bool,
    label: Option<&str>,
    now: OffsetDateTime,
) -> Path {
    let mut usable: Vec<&Grant> = grants
        .iter()
        .filter(|g| usable_for(g, secret_id, with_agent, now))
        .collect();
    usable.sort_by_key(|g| std::cmp::Reverse(g.created_at));
    let chosen = label
        .and_then(|l| usable.iter().find(|g| g.label.as_deref() == Some(l)))
        .or(usable.first());
    if let Some(g) = chosen {
        return Path::FastPath {
            grant_id: g.grant_id,
        };
    }
    match own_key_of(grants, user, secret_id) {
        Some(g) => Path::Repair {
            grant_id: g.grant_id,
        },
        None => Path::KeyEntry,
    }
}

/// `409 no_eligible_grants` with the reason the SDK reads from `details.details.reason`.
pub fn no_eligible_grants(reason: &str, message: &str) -> ApiError {
    ApiError::conflict("no_eligible_grants", message).details(json!({ "reason": reason }))
}
