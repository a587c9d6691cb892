//! Managed-secret Connect sessions (`POST /sdk/managed-secrets/connect/session`): an end user
//! enters their own key for a managed secret, or approves the use of access they already
//! hold, on a hosted page, after signing in at the app's identity provider.

use super::connect::ConnectError;
use crate::crypto::Sealed;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// How the session completes, decided when it is made (spec §7.7 `path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "path", rename_all = "snake_case")]
pub enum Path {
    /// The user already holds a usable grant: they approve its use.
    FastPath { grant_id: Uuid },
    /// The user holds none: they enter their own key, which becomes their grant.
    KeyEntry,
    /// The user replaces their own key in place (same grant, limits and delegations).
    Repair { grant_id: Uuid },
}

impl Path {
    pub fn name(&self) -> &'static str {
        match self {
            Path::FastPath { .. } => "fast_path",
            Path::KeyEntry => "key_entry",
            Path::Repair { .. } => "repair",
        }
    }

    pub fn grant_id(&self) -> Option<Uuid> {
        match self {
            Path::FastPath { grant_id } | Path::Repair { grant_id } => Some(*grant_id),
            Path::KeyEntry => None,
        }
    }
}

/// The identity-provider round trip in flight, bound to the browser that started it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigninAttempt {
    pub state_hash: String,
    pub code_verifier: Sealed,
    pub nonce: String,
    /// sha256 of the browser's cookie (the cookie itself is never stored).
    pub browser_hash: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Pending,
    Completed,
    Error,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretConnectSession {
    pub app_id: Uuid,
    pub ref_id: String,
    pub secret_id: Uuid,
    pub secret_slug: String,
    /// The user the `user_token` named: only they can complete the session.
    pub app_user_id: Uuid,
    #[serde(default)]
    pub agent_id: Option<Uuid>,
    /// Made with the agent's own key: what the user holds is not told to it, and onward
    /// sharing starts unticked.
    pub by_agent_key: bool,
    pub path: Path,
    #[serde(default)]
    pub label: Option<String>,
    pub delegable_requested: bool,
    pub direct: bool,
    pub allow_user_policy_rules: bool,
    /// Lifetime of the grant the consent makes: the default and the most the user may pick.
    #[serde(default)]
    pub default_ttl_seconds: Option<i64>,
    #[serde(default)]
    pub max_ttl_seconds: Option<i64>,
    #[serde(default)]
    pub return_url: Option<String>,
    #[serde(default)]
    pub allowed_origin: Option<String>,
    pub status: SessionStatus,
    #[serde(default)]
    pub signin: Option<SigninAttempt>,
    /// sha256 of the cookie of the browser whose sign-in proved it is the session's user.
    #[serde(default)]
    pub signed_in_browser: Option<String>,
    #[serde(default, with = "super::json_text")]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<ConnectError>,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// DynamoDB TTL: gone a day after it expires.
    pub ttl: i64,
}

impl SecretConnectSession {
    pub fn status_at(&self, now: OffsetDateTime) -> &'static str {
        match self.status {
            SessionStatus::Pending if now >= self.expires_at => "expired",
            SessionStatus::Pending => "pending",
            SessionStatus::Completed => "completed",
            SessionStatus::Error => "error",
        }
    }

    /// The sealing context of the session's secrets.
    pub fn aad(&self, what: &str) -> String {
        format!("secret-connect:{}:{what}", self.ref_id)
    }
}
