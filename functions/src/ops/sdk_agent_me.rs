//! `GET /sdk/agents/me`: the agent whose key is calling.

use portcullis::pipeline::{Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::store::Item;
use portcullis::{ApiError, ApiResponse, Ctx, views};

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_agent_me";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::AnyKey;
    type Body = Empty;

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let agent = call.caller.agent_key_owner().ok_or_else(|| {
            ApiError::forbidden(
                "me_requires_agent_key",
                "/sdk/agents/me answers for agent keys only",
            )
        })?;
        Ok(Outcome::respond(ApiResponse::ok(&views::agent(
            agent, call.now,
        ))))
    }
}

super::handler!(Op);
