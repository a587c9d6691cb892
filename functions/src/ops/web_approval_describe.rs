//! `POST /sdk/approvals/decide/describe`: what the approver page shows for a gate's link —
//! who asks, what call, why, and where the group stands. The link's token is the credential.

use portcullis::model::App;
use portcullis::model::approval::Approval;
use portcullis::service::approvals;
use portcullis::store::{from_item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use std::future::Future;
use std::pin::Pin;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::Policy::of(&[portcullis::iam::Action::BatchGetItem]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    token: String,
}

/// The approval and app a link names, and its gate: only for the link's own token.
pub async fn load(ctx: &Ctx, token: &str) -> Result<(Approval, App, usize), ApiError> {
    let (app_id, id, gate) = approvals::parse_token(token).ok_or_else(approvals::not_found)?;
    let mut items = ctx
        .store
        .get_many(&[keys::approval(app_id, id), keys::app(app_id)])
        .await?;
    let app: Option<App> = items[1].take().map(from_item).transpose()?;
    let a: Option<Approval> = items[0].take().map(from_item).transpose()?;
    match (a, app) {
        (Some(a), Some(app)) if approvals::token_matches(&a, gate, token) => Ok((a, app, gate)),
        _ => Err(approvals::not_found()),
    }
}

async fn describe(ctx: &Ctx, req: &ApiRequest) -> Result<serde_json::Value, ApiError> {
    let body: Body = req.json()?;
    let (a, app, gate) = load(ctx, &body.token).await?;
    Ok(crate::approvals::describe(
        &a,
        &app.name,
        gate,
        req.received_at,
    ))
}

pub fn handle(
    ctx: &Ctx,
    req: ApiRequest,
) -> Pin<Box<dyn Future<Output = ApiResponse> + Send + '_>> {
    Box::pin(async move {
        match describe(ctx, &req).await {
            Ok(v) => crate::web::json(&v),
            Err(e) => crate::web::error(&e),
        }
    })
}
