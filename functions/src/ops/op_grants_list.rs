//! `GET /v1/apps/{app_id}/grants`: every grant of the app, oldest first.

use super::common::{app_in_path, app_of, page, query_body};
use portcullis::pipeline::{ADMINS, Access, Call, Operation, Outcome, Surface};
use portcullis::service::grants;
use portcullis::store::Item;
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Query]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    limit: Option<usize>,
    offset: Option<usize>,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_grants_list";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Body;

    fn parse(req: &ApiRequest) -> Result<Body, ApiError> {
        query_body(req, &["limit", "offset"])
    }

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let limit = body.limit.unwrap_or(100);
        let offset = body.offset.unwrap_or(0);
        if !(1..=1000).contains(&limit) || offset > 10_000 {
            return Err(ApiError::validation(
                "`limit` is 1 to 1000 and `offset` at most 10000",
            ));
        }
        let (all, truncated) = grants::list(&ctx.store, app_of(call), None, 10_000).await?;
        let views: Vec<_> = all.iter().map(|g| views::grant(g, call.now)).collect();
        let (items, has_more) = page(&views, offset, limit);
        Ok(Outcome::respond(ApiResponse::ok(&json!({
            "items": items, "total": views.len(), "limit": limit, "offset": offset,
            "has_more": has_more, "is_truncated": truncated,
        }))))
    }
}

super::handler!(Op);
