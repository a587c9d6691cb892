use super::Principal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// What a grant gives access to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "grant_kind", rename_all = "snake_case")]
pub enum GrantKind {
    /// Name and slug are copied from the secret (neither ever changes) so listings need no join.
    ManagedSecret {
        secret_id: Uuid,
        slug: String,
        name: String,
        /// The user entered their own key (`credential_kind: end_user`), held in the grant's
        /// credential item; otherwise the secret's own value is used (`developer`).
        #[serde(default)]
        end_user_key: bool,
    },
    /// Tokens an end user (or the app) authorized through Connect; they live in the grant's
    /// `TokenSet` item.
    #[serde(rename = "oauth")]
    OAuth {
        provider_id: String,
        /// What the provider actually granted (split on its separator).
        scopes: Vec<String>,
        #[serde(default)]
        account_identifier: Option<String>,
        #[serde(default)]
        account_display_name: Option<String>,
        #[serde(default)]
        api_base_url: Option<String>,
        /// API hosts its token may be sent to (the provider's, placeholders filled).
        #[serde(default)]
        hosts: Vec<String>,
    },
}

impl GrantKind {
    /// The provider ID callers address the grant by: the OAuth provider or the secret slug.
    /// Whether the credential lives with the grant (OAuth tokens, an end user's own key)
    /// rather than in a managed secret.
    pub fn credential_in_grant(&self) -> bool {
        match self {
            GrantKind::ManagedSecret { end_user_key, .. } => *end_user_key,
            GrantKind::OAuth { .. } => true,
        }
    }

    pub fn provider_id(&self) -> &str {
        match self {
            GrantKind::ManagedSecret { slug, .. } => slug,
            GrantKind::OAuth { provider_id, .. } => provider_id,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantStatus {
    Active,
    Revoked,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    pub grant_id: Uuid,
    pub app_id: Uuid,
    pub kind: GrantKind,
    pub principal: Principal,
    #[serde(default)]
    pub label: Option<String>,
    pub status: GrantStatus,
    #[serde(default, with = "super::json_text")]
    pub grant_policy: Option<Value>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The grant's own TTL (not a token's): past it the grant reads as `expired`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Who made it: `operator:<member id>` or `key:<key id>`.
    pub created_by: String,
    /// A scope the app requires is missing (granted too narrowly, required later, or reported
    /// by the provider): the user must reconnect to widen it.
    #[serde(default)]
    pub scope_mismatch: bool,
    /// The provider refused the refresh token (`invalid_grant`): only a reconnect mends it.
    #[serde(default)]
    pub needs_reconnect: bool,
    /// Set on a delegation: an agent's grant derived from another grant, with the consent of
    /// the user who owns the chain's root.
    #[serde(default)]
    pub delegation: Option<Delegation>,
    /// Whoever holds this grant may delegate it onward (set by the consenting user at each hop).
    #[serde(default)]
    pub delegable: bool,
    /// Agents this grant is delegated to; each child's ID derives from this grant's and the
    /// agent's (`child_id`), so a revocation reaches them without a lookup.
    #[serde(default)]
    pub delegated_agent_ids: Vec<Uuid>,
    /// What every use of this grant (and of delegations made from it) must satisfy.
    #[serde(default)]
    pub policy: Option<crate::policy::Policy>,
}

/// Where a delegated grant comes from. The credential stays with the chain's root grant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delegation {
    pub parent_grant_id: Uuid,
    /// The chain above this grant, root first (its length is the depth).
    pub ancestors: Vec<Uuid>,
    /// The consenting user's principal key (`user:<app user id>`).
    pub delegated_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub delegated_at: OffsetDateTime,
    /// Provider scopes the delegation narrows to (OAuth only): such a grant is proxy-only.
    #[serde(default)]
    pub scope_constraint: Option<Vec<String>>,
}

/// Longest delegation chain: user's grant → agent → agent → agent.
pub const MAX_DELEGATION_DEPTH: usize = 3;

/// The ID of the delegation of `parent` to `agent`: one per pair, found without a lookup.
pub fn child_id(parent: Uuid, agent: Uuid) -> Uuid {
    Uuid::new_v5(&parent, format!("delegation:{agent}").as_bytes())
}

impl Grant {
    pub fn depth(&self) -> usize {
        self.delegation.as_ref().map_or(0, |d| d.ancestors.len())
    }

    /// The grant that holds the credential (OAuth tokens): the chain's root, or itself.
    pub fn root_id(&self) -> Uuid {
        self.delegation
            .as_ref()
            .and_then(|d| d.ancestors.first().copied())
            .unwrap_or(self.grant_id)
    }

    pub fn status_at(&self, now: OffsetDateTime) -> &'static str {
        match self.status {
            GrantStatus::Revoked => "revoked",
            GrantStatus::Active if self.expires_at.is_some_and(|t| t <= now) => "expired",
            GrantStatus::Active => "active",
        }
    }
}
