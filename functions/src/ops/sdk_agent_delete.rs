//! `DELETE /sdk/agents/{agent_id}`: the agent becomes `revoked` and its keys stop at once
//! (every agent-key request reads the agent's status). Idempotent; the name is freed.

use super::common::record;
use portcullis::model::{Agent, AgentStatus};
use portcullis::pipeline::{Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::service::agents;
use portcullis::store::{Item, ItemKey};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::DeleteItem]);

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_agent_delete";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("agents:write");
    type Body = Empty;

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Empty, app: Option<Uuid>) -> Vec<ItemKey> {
        agents::prefetch(req, app)
    }

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        call.req.uuid_param("agent_id", agents::agent_not_found())?;
        let mut agent: Agent = record(items.first_mut().and_then(Option::take))?
            .ok_or_else(agents::agent_not_found)?;
        call.audit.resource_type = Some("agent".into());
        call.audit.resource_id = Some(agent.agent_id.to_string());
        if agent.status == AgentStatus::Revoked {
            return Ok(Outcome::respond(ApiResponse::ok(&views::agent(
                &agent, call.now,
            ))));
        }
        let read_version = agent.version;
        agent.status = AgentStatus::Revoked;
        agent.version += 1;
        Ok(Outcome::with_writes(
            ApiResponse::ok(&views::agent(&agent, call.now)),
            vec![
                agents::put_if_unchanged(&agent, read_version),
                agents::release_name(&agent),
            ],
            ApiError::conflict(
                "agent_concurrent_update",
                "the agent changed while it was being deleted; retry",
            ),
        ))
    }
}

super::handler!(Op);
