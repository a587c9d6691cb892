//! `GET /sdk/agents/{agent_id}/keys`: the agent's keys (never their secrets).

use super::common::record;
use portcullis::model::{Agent, KeyRecord};
use portcullis::pipeline::{Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::service::agents;
use portcullis::store::{Item, ItemKey, Query, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use serde_json::json;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Query]);

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_agent_keys_list";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("agents:read");
    type Body = Empty;

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Empty, app: Option<Uuid>) -> Vec<ItemKey> {
        agents::prefetch(req, app)
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        call.req.uuid_param("agent_id", agents::agent_not_found())?;
        let agent: Agent = record(items.first_mut().and_then(Option::take))?
            .ok_or_else(agents::agent_not_found)?;
        let keys: Vec<KeyRecord> = ctx
            .store
            .query_all(Query::index(
                keys::agent_keys_index(agent.app_id, agent.agent_id),
                "gsi1",
            ))
            .await?;
        Ok(Outcome::respond(ApiResponse::ok(
            &json!({ "items": keys.iter().map(views::agent_key).collect::<Vec<_>>() }),
        )))
    }
}

super::handler!(Op);
