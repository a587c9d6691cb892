//! `GET /v1/org`: the caller's organisation and who is calling.

use super::common::record;
use portcullis::model::Org;
use portcullis::pipeline::{AUDIT_READERS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::store::{Item, keys};
use portcullis::{ApiError, ApiResponse, Ctx, views};
use serde_json::json;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_org_get";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(AUDIT_READERS);
    type Body = Empty;

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let org_id = call.caller.org_id.expect("operator calls have an org");
        let org: Org = record(ctx.store.get(&keys::org(org_id), true).await?)?
            .ok_or_else(ApiError::internal)?;
        let member = call
            .caller
            .member
            .as_ref()
            .expect("operator calls have a member");
        Ok(Outcome::respond(ApiResponse::ok(&json!({
            "org": org.view(),
            "me": views::member(member),
            "key": views::key(&call.caller.key),
        }))))
    }
}

super::handler!(Op);
