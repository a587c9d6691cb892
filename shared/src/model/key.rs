use crate::apikey::KeyType;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Who a key belongs to: an app (runtime keys) or an organisation member (operator keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum KeyOwner {
    App { app_id: Uuid },
    Member { org_id: Uuid, member_id: Uuid },
}

/// The global pointer from a key hash to its owner and record. Immutable once written, so
/// instances may cache it forever; everything that can change lives on the record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DirectoryEntry {
    pub key_hash: String,
    pub key_id: Uuid,
    pub owner: KeyOwner,
    /// The managed agent an agent key belongs to (read with the key in one round trip).
    #[serde(default)]
    pub agent_id: Option<Uuid>,
    /// The key a derived key came from: read with it, so revoking the parent stops it at once.
    #[serde(default)]
    pub parent_key_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key_id: Uuid,
    pub owner: KeyOwner,
    pub name: String,
    pub key_type: KeyType,
    pub key_prefix: String,
    pub key_hash: String,
    pub scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub deprecated_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub agent_id: Option<Uuid>,
    #[serde(default)]
    pub parent_key_id: Option<Uuid>,
    #[serde(default)]
    pub cidr_allowlist: Vec<String>,
    #[serde(default)]
    pub rate_limit_rpm: Option<u32>,
    /// Set when the key was rotated: it works until `expires_at` (the overlap), then answers
    /// `key_rotated_grace_expired`.
    #[serde(default)]
    pub rotated_to: Option<Uuid>,
}

/// Where a key stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Active,
    Deprecated,
    Expired,
    /// Past the overlap of a rotation.
    RotatedAway,
    Revoked,
}

impl KeyRecord {
    pub fn state(&self, now: OffsetDateTime) -> KeyState {
        if self.revoked_at.is_some_and(|t| t <= now) {
            KeyState::Revoked
        } else if self.expires_at.is_some_and(|t| t <= now) && self.rotated_to.is_some() {
            KeyState::RotatedAway
        } else if self.expires_at.is_some_and(|t| t <= now) {
            KeyState::Expired
        } else if self.deprecated_at.is_some() {
            KeyState::Deprecated
        } else {
            KeyState::Active
        }
    }
}
