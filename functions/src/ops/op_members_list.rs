//! `GET /v1/org/members`: the organisation's members.

use portcullis::model::Member;
use portcullis::pipeline::{ADMINS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::service::orgs;
use portcullis::store::{Item, keys};
use portcullis::{ApiError, ApiResponse, Ctx, views};
use serde_json::json;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Query]);

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_members_list";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Empty;

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let org_id = call.caller.org_id.expect("operator calls have an org");
        let members: Vec<Member> = orgs::collection(&ctx.store, org_id, keys::ORG_MEMBERS).await?;
        let items: Vec<_> = members.iter().map(views::member).collect();
        Ok(Outcome::respond(ApiResponse::ok(
            &json!({ "items": items }),
        )))
    }
}

super::handler!(Op);
