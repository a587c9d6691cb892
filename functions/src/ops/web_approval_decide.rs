//! `POST /sdk/approvals/decide`: a person decides through their gate's link (single use):
//! `{token, decision: "approve"|"deny", reason?}`. The approval that completes the group makes
//! the call (see `approvals`); the page shows the outcome.

use super::web_approval_describe::load;
use portcullis::model::approval::ApprovalState;
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::json;
use std::future::Future;
use std::pin::Pin;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::Policy::of(&[
    portcullis::iam::Action::GetItem,
    portcullis::iam::Action::BatchGetItem,
    portcullis::iam::Action::PutItem,
    portcullis::iam::Action::UpdateItem,
    portcullis::iam::Action::GenerateDataKey,
    portcullis::iam::Action::Decrypt,
]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    token: String,
    decision: String,
    reason: Option<String>,
}

async fn decide(ctx: &Ctx, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let body: Body = req.json()?;
    let approve = match body.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return Err(ApiError::validation("`decision` is approve or deny")),
    };
    let (a, _, gate) = load(ctx, &body.token).await?;
    let outcome = crate::approvals::decide(
        ctx,
        req,
        a,
        gate,
        approve,
        body.reason,
        format!("link:{}", gate + 1),
    )
    .await;
    let (a, exchange) = match outcome {
        Ok(done) => done,
        Err(e) => return Err(e),
    };
    let detail = json!({
        "approval_id": a.approval_id,
        "gate": gate + 1,
        "decision": body.decision,
        "status": a.status_at(req.received_at),
        "exchange": exchange,
    });
    ctx.store
        .transact(vec![crate::approvals::link_audit(
            req, &a, 200, None, detail,
        )])
        .await
        .map_err(|_| ApiError::internal())?;
    Ok(crate::web::json(&json!({
        "status": a.status_at(req.received_at),
        "executed": a.status == ApprovalState::Executed,
        "execution_error": a.execution_error,
    })))
}

pub fn handle(
    ctx: &Ctx,
    req: ApiRequest,
) -> Pin<Box<dyn Future<Output = ApiResponse> + Send + '_>> {
    Box::pin(async move {
        decide(ctx, &req)
            .await
            .unwrap_or_else(|e| crate::web::error(&e))
    })
}
