//! `POST /sdk/agents/{agent_id}/keys`: another key for the agent (shown once). The agent's
//! active-key count is raised in the same transaction, conditionally: concurrent mints never
//! exceed the per-agent limit.

use super::common::record;
use portcullis::model::{Agent, AgentStatus, agent::MAX_AGENT_KEYS};
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::service::{agents, keys as key_service};
use portcullis::store::{Item, ItemKey};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use serde_json::json;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

fn limit_reached() -> ApiError {
    ApiError::conflict(
        "agent_key_limit_reached",
        format!("an agent holds at most {MAX_AGENT_KEYS} active keys; revoke one first"),
    )
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_agent_key_mint";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("agents:write");
    type Body = serde_json::Value;

    fn prefetch(
        _: &Ctx,
        req: &ApiRequest,
        _: &serde_json::Value,
        app: Option<Uuid>,
    ) -> Vec<ItemKey> {
        agents::prefetch(req, app)
    }

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        _: serde_json::Value,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        call.req.uuid_param("agent_id", agents::agent_not_found())?;
        let agent: Agent = record(items.first_mut().and_then(Option::take))?
            .ok_or_else(agents::agent_not_found)?;
        match agent.status {
            AgentStatus::Active => {}
            AgentStatus::Inactive => {
                return Err(ApiError::conflict(
                    "agent_inactive",
                    "a suspended agent gets no new keys",
                ));
            }
            AgentStatus::Revoked => {
                return Err(ApiError::conflict(
                    "agent_revoked",
                    "a deleted agent gets no new keys",
                ));
            }
        }
        if agent.active_keys >= MAX_AGENT_KEYS {
            return Err(limit_reached());
        }
        let key = agents::mint_key(&agent, agent.keys_minted + 1, call.now);
        call.audit.resource_type = Some("key".into());
        call.audit.resource_id = Some(key.record.key_id.to_string());
        let mut writes = key_service::create_writes(&key.record);
        writes.push(agents::count_new_key(agent.app_id, agent.agent_id));
        let mut answer = views::agent_key(&key.record);
        answer["api_key"] = json!(key.plaintext.as_str());
        Ok(Outcome::with_writes(
            ApiResponse::json(http::StatusCode::CREATED, &answer),
            writes,
            limit_reached(),
        ))
    }
}

super::handler!(Op);
