//! `GET /v1/org/audit`: the organisation's own audit rows (bootstrap, members, operator keys,
//! apps), newest first.

use super::common::query_body;
use portcullis::audit::{self, AuditFilter};
use portcullis::pipeline::{AUDIT_READERS, Access, Call, Operation, Outcome, Surface};
use portcullis::store::{Item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde_json::json;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Query]);

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_org_audit_query";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(AUDIT_READERS);
    type Body = AuditFilter;

    fn parse(req: &ApiRequest) -> Result<AuditFilter, ApiError> {
        query_body(req, &["limit"])
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        filter: AuditFilter,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let org_id = call.caller.org_id.expect("operator calls have an org");
        let (items, next) =
            audit::query(&ctx.store, &keys::org_partition(org_id), &filter, call.now).await?;
        Ok(Outcome::respond(ApiResponse::ok(
            &json!({ "items": items.iter().map(|e| e.view()).collect::<Vec<_>>(), "next_cursor": next }),
        )))
    }
}

super::handler!(Op);
