//! `POST /sdk/oauth/connect/authorize`: the provider's authorization URL for a session, with
//! a fresh single-use `state` and a PKCE challenge (S256) bound to it.

use super::web_connect_describe::{load, usable};
use portcullis::model::connect::ConnectAttempt;
use portcullis::oauth::connect;
use portcullis::service::providers;
use portcullis::store::{TxError, Write};
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
]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    session_token: String,
    provider_id: String,
}

async fn authorize(ctx: &Ctx, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let body: Body = req.json()?;
    let (mut session, _) = load(ctx, &body.session_token).await?;
    usable(&session, req.received_at)?;
    if !session.providers.contains(&body.provider_id) {
        return Err(ApiError::validation(
            "this session does not offer that provider",
        ));
    }
    let config = providers::get(ctx, session.app_id, &body.provider_id)
        .await?
        .ok_or_else(|| portcullis::providers::provider_not_configured(&body.provider_id))?;
    let def = portcullis::providers::effective(&config)?;
    let scopes = session
        .required_scopes
        .get(&body.provider_id)
        .cloned()
        .unwrap_or_else(|| config.scopes.clone());
    let redirect_uri = providers::redirect_uri(ctx, req, &config)?;
    let (state, state_hash) = connect::new_state(&session);
    let (verifier, challenge) = connect::pkce();

    let mut url = url::Url::parse(&def.authorize_url).map_err(|_| ApiError::internal())?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &config.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("state", &state);
        if !scopes.is_empty() {
            q.append_pair("scope", &scopes.join(&def.scope_separator));
        }
        if def.pkce {
            q.append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
        }
        for (k, v) in &def.authorize_params {
            q.append_pair(k, v);
        }
    }
    session.attempt = Some(ConnectAttempt {
        provider_id: body.provider_id.clone(),
        state_hash,
        code_verifier: def.pkce.then_some(verifier),
        redirect_uri,
        scopes,
    });
    let audit = crate::web::audit_row(
        req,
        session.app_id,
        "web_connect_authorize",
        200,
        None,
        &session.ref_id,
        Some(json!({ "provider_id": body.provider_id })),
    );
    let writes = vec![
        crate::web::while_pending(connect::item(&session)),
        Write::Put {
            item: audit,
            condition: None,
        },
    ];
    match ctx.store.transact(writes).await {
        Ok(()) => {}
        Err(TxError::ConditionFailed(_)) => {
            return Err(usable(&session, req.received_at).err().unwrap_or_else(|| {
                ApiError::conflict(
                    "connect_session_used",
                    "this Connect session has already finished",
                )
            }));
        }
        Err(TxError::Unavailable(e)) => return Err(e),
    }
    Ok(crate::web::json(&json!({ "authorize_url": url.as_str() })))
}

pub fn handle(
    ctx: &Ctx,
    req: ApiRequest,
) -> Pin<Box<dyn Future<Output = ApiResponse> + Send + '_>> {
    Box::pin(async move {
        authorize(ctx, &req)
            .await
            .unwrap_or_else(|e| crate::web::error(&e))
    })
}
