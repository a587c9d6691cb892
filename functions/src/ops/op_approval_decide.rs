//! `POST /v1/apps/{app_id}/approvals/{approval_id}/decide`: an operator decides one gate
//! (`{decision: "approve"|"deny", reason?, gate?}`, the first undecided gate by default);
//! the approval that completes the group makes the call.

use super::common::{app_in_path, app_of, record};
use portcullis::model::approval::{Approval, GateState};
use portcullis::pipeline::{ADMINS, Access, Call, Operation, Outcome, Surface};
use portcullis::service::approvals;
use portcullis::store::{Item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE.with(&[
    portcullis::iam::Action::UpdateItem,
    portcullis::iam::Action::GenerateDataKey,
    portcullis::iam::Action::Decrypt,
]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    decision: String,
    reason: Option<String>,
    /// 1-based.
    gate: Option<usize>,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_approval_decide";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Body;

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let id = call.req.uuid_param("approval_id", approvals::not_found())?;
        call.audit.resource_type = Some("approval".into());
        call.audit.resource_id = Some(id.to_string());
        let approve = match body.decision.as_str() {
            "approve" => true,
            "deny" => false,
            _ => return Err(ApiError::validation("`decision` is approve or deny")),
        };
        let a: Approval = record(
            ctx.store
                .get(&keys::approval(app_of(call), id), true)
                .await?,
        )?
        .ok_or_else(approvals::not_found)?;
        let gate = match body.gate {
            Some(n) if (1..=a.gates.len()).contains(&n) => n - 1,
            Some(_) => return Err(ApiError::validation("`gate` is 1 to the number of gates")),
            None => a
                .gates
                .iter()
                .position(|g| g.status == GateState::Pending)
                .unwrap_or(0),
        };
        let by = call.caller.created_by();
        let (a, exchange) =
            crate::approvals::decide(ctx, call.req, a, gate, approve, body.reason, by).await?;
        call.audit.detail = exchange;
        Ok(Outcome::respond(ApiResponse::ok(&approvals::status_view(
            &a,
            time::OffsetDateTime::now_utc(),
        ))))
    }
}

super::handler!(Op);
