use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct App {
    pub app_id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// What every runtime call of the app must satisfy (`PUT /v1/apps/{app_id}/policy`).
    #[serde(default)]
    pub policy: Option<crate::policy::Policy>,
}
