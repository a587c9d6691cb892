//! `POST /sdk/oauth/connect/session/describe`: what the Connect page shows for a session
//! (app, providers, scopes, status). The session token in the body is the credential.

use portcullis::model::connect::ConnectSession;
use portcullis::model::{App, ProviderConfig};
use portcullis::oauth::connect;
use portcullis::store::{from_item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, model::rfc3339};
use serde::Deserialize;
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::Policy::of(&[portcullis::iam::Action::BatchGetItem]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    session_token: String,
}

/// A session the page may still act on: pending and unexpired.
pub fn usable(s: &ConnectSession, now: time::OffsetDateTime) -> Result<(), ApiError> {
    match connect::status_at(s, now) {
        "pending" => Ok(()),
        "expired" => Err(ApiError::new(
            http::StatusCode::GONE,
            "connect_session_expired",
            "this Connect session has expired; start again from the app",
        )),
        _ => Err(ApiError::conflict(
            "connect_session_used",
            "this Connect session has already finished; start again from the app",
        )),
    }
}

/// The session a browser request names, with its app read in the same round trip.
pub async fn load(ctx: &Ctx, token: &str) -> Result<(ConnectSession, App), ApiError> {
    let (app_id, r) = connect::parse_token(token).ok_or_else(connect::session_not_found)?;
    let mut items = ctx
        .store
        .get_many(&[keys::connect_session(app_id, &r), keys::app(app_id)])
        .await?;
    let app: Option<App> = items[1].take().map(from_item).transpose()?;
    let session: Option<ConnectSession> = items[0].take().map(from_item).transpose()?;
    match (session, app) {
        (Some(s), Some(a)) => Ok((s, a)),
        _ => Err(connect::session_not_found()),
    }
}

async fn describe(ctx: &Ctx, req: &ApiRequest) -> Result<Value, ApiError> {
    let body: Body = req.json()?;
    let (s, app) = load(ctx, &body.session_token).await?;
    let configs = ctx
        .store
        .get_many(
            &s.providers
                .iter()
                .map(|id| keys::provider(s.app_id, id))
                .collect::<Vec<_>>(),
        )
        .await?;
    let mut providers = Vec::new();
    for item in configs.into_iter().flatten() {
        let c: ProviderConfig = from_item(item)?;
        let name = match &c.custom {
            Some(d) => d.name.clone(),
            None => portcullis::providers::find(&c.provider_id)
                .map_or(c.provider_id.clone(), |d| d.name.clone()),
        };
        let scopes = s
            .required_scopes
            .get(&c.provider_id)
            .cloned()
            .unwrap_or(c.scopes);
        providers.push(json!({ "provider_id": c.provider_id, "name": name, "scopes": scopes, "account_hint": null }));
    }
    Ok(json!({
        "app": { "name": app.name },
        "status": connect::status_at(&s, req.received_at),
        "expires_at": rfc3339(s.expires_at),
        "direct": s.direct,
        "repair": s.repair_grant_id.is_some(),
        "allowed_origin": s.allowed_origin,
        "return_url": s.return_url,
        "providers": providers,
        "error": s.error,
    }))
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
