use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who a grant belongs to. OAuth grants belong to users; managed-secret grants to any kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Principal {
    /// The app itself (its backend), not any one user or agent.
    System,
    User {
        app_user_id: String,
    },
    Agent {
        agent_id: Uuid,
    },
    Group {
        external_group_id: String,
        idp_id: Option<String>,
    },
}

impl Principal {
    pub fn kind(&self) -> &'static str {
        match self {
            Principal::System => "system",
            Principal::User { .. } => "user",
            Principal::Agent { .. } => "agent",
            Principal::Group { .. } => "group",
        }
    }

    /// Stable text form, used in index keys and audit rows.
    pub fn key(&self) -> String {
        match self {
            Principal::System => "system".into(),
            Principal::User { app_user_id } => format!("user:{app_user_id}"),
            Principal::Agent { agent_id } => format!("agent:{agent_id}"),
            Principal::Group {
                external_group_id, ..
            } => format!("group:{external_group_id}"),
        }
    }

    pub fn id(&self) -> Option<String> {
        match self {
            Principal::System => None,
            Principal::User { app_user_id } => Some(app_user_id.clone()),
            Principal::Agent { agent_id } => Some(agent_id.to_string()),
            Principal::Group {
                external_group_id, ..
            } => Some(external_group_id.clone()),
        }
    }
}
