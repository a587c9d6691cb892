//! `GET /sdk/approvals/{approval_id}/result`: the executed call's `ApprovalResult`, handed out
//! once (then erased); a denied, expired or failed approval answers its own code.

use super::common::record;
use super::sdk_approval_get::reachable;
use portcullis::pipeline::{Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::service::approvals;
use portcullis::store::{Item, ItemKey};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde_json::Value;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Decrypt]);

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_approval_result";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("proxy:execute");
    type Body = Empty;

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Empty, app: Option<Uuid>) -> Vec<ItemKey> {
        super::sdk_approval_get::prefetch_approval(req, app)
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let id = call.req.uuid_param("approval_id", approvals::not_found())?;
        call.audit.resource_type = Some("approval".into());
        call.audit.resource_id = Some(id.to_string());
        let mut a = reachable(call, record(items.first_mut().and_then(Option::take))?)?;
        match a.status_at(call.now) {
            "executed" => {}
            "denied" => {
                return Err(ApiError::forbidden(
                    "approval_denied",
                    "the request was denied",
                ));
            }
            "expired" => {
                return Err(ApiError::new(
                    http::StatusCode::GONE,
                    "approval_expired",
                    "the request expired before it was approved",
                ));
            }
            "failed" => {
                return Err(ApiError::new(
                    http::StatusCode::BAD_GATEWAY,
                    "approval_execution_failed",
                    "the approved call could not be made",
                )
                .field("execution_error", serde_json::json!(a.execution_error)));
            }
            _ => {
                return Err(ApiError::conflict(
                    "approval_pending",
                    "the request has not been executed yet",
                ));
            }
        }
        let sealed = match (&a.result, a.result_taken) {
            (Some(s), false) => s.clone(),
            _ => {
                return Err(ApiError::new(
                    http::StatusCode::GONE,
                    "approval_result_taken",
                    "the result was already handed out",
                ));
            }
        };
        let plain = ctx.sealer.open(a.app_id, &a.aad(), &sealed).await?;
        let answer: Value = serde_json::from_slice(&plain).map_err(|_| ApiError::internal())?;
        // Handed out once: erased in this request's transaction.
        let read = a.version;
        a.version += 1;
        a.result = None;
        a.result_taken = true;
        Ok(Outcome::with_writes(
            ApiResponse::ok(&answer).header("cache-control", "no-store"),
            vec![approvals::put_over(&a, read)],
            ApiError::new(
                http::StatusCode::GONE,
                "approval_result_taken",
                "the result was already handed out",
            ),
        ))
    }
}

super::handler!(Op);
