use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Org {
    pub org_id: Uuid,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Longest life of a derived key in this organisation's apps (default 24 h).
    #[serde(default)]
    pub max_derived_key_ttl_hours: Option<u32>,
}

pub const DEFAULT_MAX_DERIVED_KEY_TTL_HOURS: u32 = 24;

impl Org {
    pub fn max_derived_key_ttl_hours(&self) -> u32 {
        self.max_derived_key_ttl_hours
            .unwrap_or(DEFAULT_MAX_DERIVED_KEY_TTL_HOURS)
    }

    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.org_id,
            "name": self.name,
            "created_at": super::rfc3339(self.created_at),
            "max_derived_key_ttl_hours": self.max_derived_key_ttl_hours(),
        })
    }
}

/// What a member may do through the operator API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including members.
    Owner,
    /// Apps, keys, secrets, grants and audit; not members.
    Admin,
    /// Reads audit logs and nothing else.
    Auditor,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    pub org_id: Uuid,
    pub member_id: Uuid,
    pub email: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub removed_at: Option<OffsetDateTime>,
}
