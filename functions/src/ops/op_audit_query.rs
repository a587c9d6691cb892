//! `GET /v1/apps/{app_id}/audit`: the app's audit rows, newest first, filtered by time range,
//! key prefix, grant, principal, action and outcome, paged by cursor.

use super::common::{app_in_path, app_of, query_body};
use portcullis::audit::{self, AuditFilter};
use portcullis::pipeline::{AUDIT_READERS, Access, Call, Operation, Outcome, Surface};
use portcullis::store::{Item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde_json::json;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Query]);

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_audit_query";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(AUDIT_READERS);
    type Body = AuditFilter;

    fn parse(req: &ApiRequest) -> Result<AuditFilter, ApiError> {
        query_body(req, &["limit"])
    }

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        filter: AuditFilter,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let (items, next) = audit::query(
            &ctx.store,
            &keys::app_partition(app_of(call)),
            &filter,
            call.now,
        )
        .await?;
        Ok(Outcome::respond(ApiResponse::ok(
            &json!({ "items": items.iter().map(|e| e.view()).collect::<Vec<_>>(), "next_cursor": next }),
        )))
    }
}

super::handler!(Op);
