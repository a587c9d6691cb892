//! `POST /sdk/managed-secrets/connect/cancel`: the user declined on the page; the session ends
//! in `error` with `connect_denied` and nothing is stored.

use super::web_secret_connect_describe::{load, usable};
use portcullis::model::secret_connect::SessionStatus;
use portcullis::oauth::connect;
use portcullis::service::secret_connect;
use portcullis::store::{TxError, Write};
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
    let error = connect::error("connect_denied", "The user cancelled the request.");
    session.status = SessionStatus::Error;
    session.error = Some(error.clone());
    session.signin = None;
    let writes = vec![
        crate::web::while_pending(secret_connect::item(&session)),
        Write::Put {
            item: crate::web::audit_row(
                req,
                session.app_id,
                "web_secret_connect_cancel",
                400,
                Some("connect_denied"),
                &session.ref_id,
                None,
            ),
            condition: None,
        },
    ];
    match ctx.store.transact(writes).await {
        Ok(()) | Err(TxError::ConditionFailed(_)) => {}
        Err(TxError::Unavailable(e)) => return Err(e),
    }
    Ok(crate::web::json(&json!({
        "status": "error",
        "error": error,
        "allowed_origin": session.allowed_origin,
        "return_url": session.return_url,
    })))
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
