//! `GET /sdk/agents/{agent_id}`: one agent of the app.

use super::common::record;
use portcullis::model::Agent;
use portcullis::pipeline::{Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::service::agents;
use portcullis::store::{Item, ItemKey};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_agent_get";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("agents:read");
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
        let agent: Agent = record(items.first_mut().and_then(Option::take))?
            .ok_or_else(agents::agent_not_found)?;
        call.audit.resource_type = Some("agent".into());
        call.audit.resource_id = Some(agent.agent_id.to_string());
        Ok(Outcome::respond(ApiResponse::ok(&views::agent(
            &agent, call.now,
        ))))
    }
}

super::handler!(Op);
