//! `POST /sdk/oauth/connect/session/cancel`: the person declined on the Connect page; the
//! session ends in `error` with `connect_denied`.

use super::web_connect_describe::{load, usable};
use portcullis::oauth::connect;
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::json;
use std::future::Future;
use std::pin::Pin;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::Policy::of(&[
    portcullis::iam::Action::BatchGetItem,
    portcullis::iam::Action::PutItem,
]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    session_token: String,
}

async fn cancel(ctx: &Ctx, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let body: Body = req.json()?;
    let (mut session, _) = load(ctx, &body.session_token).await?;
    usable(&session, req.received_at)?;
    let error = connect::error("connect_denied", "The user cancelled the connection.");
    crate::web::end_in_error(ctx, req, "web_connect_cancel", &mut session, error.clone()).await?;
    Ok(crate::web::json(
        &json!({ "status": "error", "error": error }),
    ))
}

pub fn handle(
    ctx: &Ctx,
    req: ApiRequest,
) -> Pin<Box<dyn Future<Output = ApiResponse> + Send + '_>> {
    Box::pin(async move {
        cancel(ctx, &req)
            .await
            .unwrap_or_else(|e| crate::web::error(&e))
    })
}
