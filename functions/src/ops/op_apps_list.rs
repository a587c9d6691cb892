//! `GET /v1/apps`: the organisation's apps.

use portcullis::model::App;
use portcullis::pipeline::{AUDIT_READERS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::service::orgs;
use portcullis::store::{Item, keys};
use portcullis::{ApiError, ApiResponse, Ctx};
use serde_json::json;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Query]);

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_apps_list";
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
        let apps: Vec<App> = orgs::collection(&ctx.store, org_id, keys::ORG_APPS).await?;
        let items: Vec<_> = apps.iter().map(portcullis::views::app).collect();
        Ok(Outcome::respond(ApiResponse::ok(
            &json!({ "items": items }),
        )))
    }
}

super::handler!(Op);
