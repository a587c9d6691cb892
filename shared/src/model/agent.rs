use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentType {
    Agent,
    Service,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    Active,
    /// Suspended: its keys are refused with `agent_inactive` until resumed.
    Inactive,
    /// Deleted: final; its keys are refused with `agent_revoked`.
    Revoked,
}

/// A managed agent: a named workload identity of an app with its own keys and access set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Agent {
    pub agent_id: Uuid,
    pub app_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    pub agent_type: AgentType,
    pub status: AgentStatus,
    /// `{provider: [scopes]}` plus `managed_secret_slugs: [slugs]`: what the agent may use.
    #[serde(default, with = "super::json_text")]
    pub scopes: Option<Value>,
    /// Narrower scopes that replace `scopes` at `scopes_applies_at` (staged narrowing).
    #[serde(default, with = "super::json_text")]
    pub scopes_pending: Option<Value>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub scopes_applies_at: Option<OffsetDateTime>,
    #[serde(default, with = "super::json_text")]
    pub metadata: Option<Value>,
    #[serde(default, with = "super::json_text")]
    pub policy: Option<Value>,
    /// Requests per minute across all of the agent's keys (and impersonation), if limited.
    #[serde(default)]
    pub rate_limit_per_minute: Option<u32>,
    /// Optimistic concurrency for scope changes; bumped by every change.
    pub version: u64,
    /// Keys not revoked; bounded by `MAX_AGENT_KEYS` with a conditional update.
    #[serde(default)]
    pub active_keys: u32,
    /// Keys ever minted, for key names `{agent}-{N}`.
    #[serde(default)]
    pub keys_minted: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// Most keys one agent may hold at once.
pub const MAX_AGENT_KEYS: u32 = 10;

impl Agent {
    /// The scopes in force at `now`: staged narrowing applies once its time has come.
    pub fn scopes_at(&self, now: OffsetDateTime) -> Value {
        match (&self.scopes_pending, self.scopes_applies_at) {
            (Some(pending), Some(at)) if at <= now => pending.clone(),
            _ => self
                .scopes
                .clone()
                .unwrap_or_else(|| Value::Object(Default::default())),
        }
    }

    /// Whether the agent's access set covers a grant of this kind: its OAuth provider, or its
    /// managed secret.
    pub fn allows_grant(&self, kind: &super::GrantKind, now: OffsetDateTime) -> bool {
        match kind {
            super::GrantKind::ManagedSecret { slug, .. } => self.allows_secret(slug, now),
            super::GrantKind::OAuth { provider_id, .. } => self.allows_provider(provider_id, now),
        }
    }

    /// Whether the agent may use grants of this OAuth provider (a key of its scopes).
    pub fn allows_provider(&self, provider_id: &str, now: OffsetDateTime) -> bool {
        provider_id != "managed_secret_slugs" && self.scopes_at(now)[provider_id].is_array()
    }

    /// Whether the agent may use the managed secret with this slug.
    pub fn allows_secret(&self, slug: &str, now: OffsetDateTime) -> bool {
        self.scopes_at(now)["managed_secret_slugs"]
            .as_array()
            .is_some_and(|slugs| slugs.iter().any(|s| s == slug))
    }
}
