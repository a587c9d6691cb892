//! Stored records. Each record type knows its table key; API views are built elsewhere, so a
//! stored field (a hash, a sealed value) never reaches a response by accident.

pub mod agent;
pub mod app;
pub mod approval;
pub mod connect;
pub mod grant;
pub mod idp;
pub mod key;
pub mod org;
pub mod principal;
pub mod provider;
pub mod secret;
pub mod secret_connect;
pub mod tokens;

pub use agent::{Agent, AgentStatus, AgentType};
pub use app::App;
pub use grant::{Grant, GrantKind, GrantStatus};
pub use idp::{AppUser, ClaimMappings, IdpConfig, IdpPreset};
pub use key::{DirectoryEntry, KeyOwner, KeyRecord};
pub use org::{Member, Org, Role};
pub use principal::Principal;
pub use provider::{ProviderConfig, ProviderDef};
pub use secret::{ManagedSecret, SecretValue, Template};
pub use tokens::{TokenSecret, TokenSet};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// RFC 3339 with a `Z` offset, as the SDK's strict validators expect.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("UTC timestamps format")
}

pub fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
}

/// Caller-supplied JSON (policies, reported bodies) is stored as text: DynamoDB refuses some
/// JSON (empty map keys, numbers beyond 1e125, deep nesting) and must never see it as a map.
pub mod json_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::Value;

    pub fn serialize<S: Serializer>(v: &Option<Value>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&v.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        Ok(text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t))))
    }
}
