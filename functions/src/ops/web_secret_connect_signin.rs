//! `POST /sdk/managed-secrets/connect/signin`: the page sends the user to the app's identity
//! provider before it shows anything. This browser gets a cookie whose hash the attempt keeps:
//! the sign-in only counts for the browser that started it, so a forwarded link or a stolen
//! session token cannot be approved from elsewhere.

use super::web_secret_connect_describe::{load, usable};
use aws_sdk_dynamodb::types::AttributeValue;
use portcullis::idp::signin;
use portcullis::model::IdpConfig;
use portcullis::model::secret_connect::{SecretConnectSession, SigninAttempt};
use portcullis::service::secret_connect;
use portcullis::store::{Condition, TxError, Write, from_item, keys};
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
    portcullis::iam::Action::GenerateDataKey,
]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    session_token: String,
}

async fn start(ctx: &Ctx, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let body: Body = req.json()?;
    let (mut session, _) = load(ctx, &body.session_token).await?;
    usable(&session, req.received_at)?;
    let config: IdpConfig = ctx
        .store
        .get(&keys::idp(session.app_id), true)
        .await?
        .map(from_item)
        .transpose()?
        .ok_or_else(super::sdk_auth_session_create::not_configured)?;
    let sign_in = config
        .signin
        .as_ref()
        .ok_or_else(super::sdk_auth_session_create::not_configured)?;
    let (state, state_hash) = signin::new_state(session.app_id, &session.ref_id);
    let (verifier, challenge) = portcullis::oauth::connect::pkce();
    let nonce = signin::new_nonce();
    let (browser, browser_hash) = secret_connect::new_browser_secret();
    let code_verifier = ctx
        .sealer
        .seal(
            session.app_id,
            &session.aad("verifier"),
            verifier.as_bytes(),
        )
        .await?;
    session.signin = Some(SigninAttempt {
        state_hash,
        code_verifier,
        nonce: nonce.clone(),
        browser_hash,
    });
    let redirect = super::sdk_auth_session_create::redirect_uri(ctx, req)?;
    let authorize_url = signin::authorize_url(sign_in, &redirect, &state, &nonce, &challenge);
    let writes = vec![
        crate::web::while_pending(secret_connect::item(&session)),
        Write::Put {
            item: crate::web::audit_row(
                req,
                session.app_id,
                "web_secret_connect_signin",
                200,
                None,
                &session.ref_id,
                None,
            ),
            condition: None,
        },
    ];
    match ctx.store.transact(writes).await {
        Ok(()) => {}
        Err(TxError::ConditionFailed(_)) => {
            return Err(ApiError::conflict(
                "connect_session_used",
                "this Connect session has already finished; start again from the app",
            ));
        }
        Err(TxError::Unavailable(e)) => return Err(e),
    }
    // Sent back to the page's routes and to the sign-in callback, under any stage prefix.
    let public = url::Url::parse(ctx.public_url(req)?).map_err(|_| ApiError::internal())?;
    let path = format!("{}/sdk/", public.path().trim_end_matches('/'));
    let secure = if public.scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    let max_age = (session.expires_at - req.received_at)
        .whole_seconds()
        .max(0);
    let cookie = format!(
        "{}={browser}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
        secret_connect::cookie_name(&session)
    );
    Ok(crate::web::json(&json!({ "authorize_url": authorize_url })).header("set-cookie", &cookie))
}

/// The identity provider sent the user back (through `/sdk/auth/callback`, whose `state`
/// named this session). The sign-in counts only on the browser that started it and only for
/// the session's user; a failed one leaves the session pending for another try. Either way
/// the user goes back to the page, which tells them how it went.
pub async fn finish(
    ctx: &Ctx,
    req: &ApiRequest,
    mut session: SecretConnectSession,
    config: &IdpConfig,
) -> Result<ApiResponse, ApiError> {
    use super::web_auth_callback::{Proof, exchange, failed};
    let expired =
        "This sign-in link has expired or was already used. Go back to the app and start again.";
    let state = req.query("state").unwrap_or_default();
    let Some(attempt) = session.signin.clone() else {
        return Ok(failed(expired));
    };
    if session.status_at(req.received_at) != "pending"
        || !portcullis::oauth::bearer::hash_matches(&attempt.state_hash, &state)
    {
        return Ok(failed(expired));
    }
    let cookie = req.cookie(&secret_connect::cookie_name(&session));
    let outcome = match (
        req.query("error"),
        req.query("code"),
        config.signin.as_ref(),
    ) {
        _ if !secret_connect::browser_matches(&attempt.browser_hash, cookie) => "other_browser",
        (Some(e), _, _) if e == "access_denied" => "cancelled",
        (None, Some(code), Some(sign_in)) => {
            let verifier = ctx
                .sealer
                .open(
                    session.app_id,
                    &session.aad("verifier"),
                    &attempt.code_verifier,
                )
                .await?;
            let proof = Proof {
                app_id: session.app_id,
                verifier: String::from_utf8(verifier.to_vec()).map_err(|_| ApiError::internal())?,
                nonce: &attempt.nonce,
                code: &code,
            };
            match exchange(ctx, req, config, sign_in, proof).await? {
                Ok((_, info)) if info["app_user_id"] == json!(session.app_user_id) => {
                    session.signed_in_browser = Some(attempt.browser_hash.clone());
                    "ok"
                }
                Ok(_) => "wrong_user",
                Err(_) => "failed",
            }
        }
        _ => "failed",
    };
    session.signin = None;
    let writes = vec![
        Write::Put {
            item: secret_connect::item(&session),
            condition: Some(
                Condition::new("#s = :pending AND signin.state_hash = :h")
                    .name("#s", "status")
                    .value(":pending", AttributeValue::S("pending".into()))
                    .value(":h", AttributeValue::S(attempt.state_hash.clone())),
            ),
        },
        Write::Put {
            item: crate::web::audit_row(
                req,
                session.app_id,
                "web_secret_connect_signin",
                if outcome == "ok" { 200 } else { 401 },
                (outcome != "ok").then_some(outcome),
                &session.ref_id,
                Some(json!({ "signin": outcome })),
            ),
            condition: None,
        },
    ];
    if ctx.store.transact(writes).await.is_err() {
        return Ok(failed(expired));
    }
    let page = format!(
        "{}/sdk/managed-secrets/connect#signin={outcome}",
        ctx.public_url(req)?
    );
    Ok(ApiResponse::empty(http::StatusCode::SEE_OTHER)
        .header("location", &page)
        .header("cache-control", "no-store"))
}

pub fn handle(
    ctx: &Ctx,
    req: ApiRequest,
) -> Pin<Box<dyn Future<Output = ApiResponse> + Send + '_>> {
    Box::pin(async move {
        start(ctx, &req)
            .await
            .unwrap_or_else(|e| crate::web::error(&e))
    })
}
