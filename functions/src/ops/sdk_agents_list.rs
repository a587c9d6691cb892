//! `GET /sdk/agents?include_revoked&limit&offset` and `?name=`: the app's agents.

use super::common::{page, query_body};
use portcullis::model::{Agent, AgentStatus};
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::store::{Item, Query, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use serde::Deserialize;
use serde_json::json;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Query]);

#[derive(Deserialize)]
pub struct Body {
    include_revoked: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
    name: Option<String>,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_agents_list";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("agents:read");
    type Body = Body;

    fn parse(req: &ApiRequest) -> Result<Body, ApiError> {
        query_body(req, &["limit", "offset"])
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        q: Body,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let (limit, offset) = (q.limit.unwrap_or(100), q.offset.unwrap_or(0));
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::validation("`limit` must be between 1 and 1000"));
        }
        let include_revoked = match q.include_revoked.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(ApiError::validation("`include_revoked` is true or false")),
        };
        let all: Vec<Agent> = ctx
            .store
            .query_all(Query::index(keys::agents_index(call.caller.app()), "gsi1"))
            .await?;
        let shown: Vec<_> = all
            .iter()
            .filter(|a| include_revoked || a.status != AgentStatus::Revoked)
            .filter(|a| q.name.as_ref().is_none_or(|n| a.name == *n))
            .map(|a| views::agent(a, call.now))
            .collect();
        let (items, has_more) = page(&shown, offset, limit);
        Ok(Outcome::respond(ApiResponse::ok(&json!({
            "items": items, "total": shown.len(), "limit": limit, "offset": offset, "has_more": has_more,
        }))))
    }
}

super::handler!(Op);
