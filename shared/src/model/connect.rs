use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectStatus {
    Pending,
    Completed,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectError {
    pub error_code: String,
    pub error_message: String,
}

/// The provider round trip in flight: what the callback needs to finish it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectAttempt {
    pub provider_id: String,
    /// sha256 of the `state` sent to the provider (the state itself is never stored).
    pub state_hash: String,
    /// PKCE verifier; useless without the single-use code that only the provider hands out.
    pub code_verifier: Option<String>,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
}

/// A Connect session (`POST /sdk/oauth/connect/session`): found by `ref_id`, the first half
/// of the sha256 of its token; the token itself is never stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectSession {
    pub app_id: Uuid,
    pub ref_id: String,
    pub providers: Vec<String>,
    #[serde(default)]
    pub required_scopes: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub return_url: Option<String>,
    #[serde(default)]
    pub allowed_origin: Option<String>,
    #[serde(default)]
    pub repair_grant_id: Option<Uuid>,
    #[serde(default)]
    pub label: Option<String>,
    /// `requested_grant.restrictions`: the new grant's methods and endpoints.
    #[serde(default)]
    pub restrictions: Option<crate::policy::Policy>,
    /// Whose grants this session makes: the user a verified `user_token` named, else the app.
    #[serde(default)]
    pub principal: Option<super::Principal>,
    /// `agent=`: the user consents to let this agent use the new grant (a delegation).
    #[serde(default)]
    pub agent_id: Option<Uuid>,
    #[serde(default)]
    pub delegable: bool,
    #[serde(default)]
    pub scope_constraint: Option<Vec<String>>,
    #[serde(default, with = "super::json_text")]
    pub grant_policy: Option<Value>,
    #[serde(default, with = "super::json_text")]
    pub metadata: Option<Value>,
    pub direct: bool,
    pub switch_account: bool,
    pub status: ConnectStatus,
    #[serde(default)]
    pub attempt: Option<ConnectAttempt>,
    /// The poll answer's `grants` once completed.
    #[serde(default, with = "super::json_text")]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<ConnectError>,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// DynamoDB TTL (epoch seconds): the item disappears a day after it expires.
    pub ttl: i64,
}
