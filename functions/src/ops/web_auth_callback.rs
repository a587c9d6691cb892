//! `GET /sdk/auth/callback`: the identity provider sends the signing-in person back here.
//! The `state` must be the session's (hash compared in constant time); the code is exchanged
//! with the PKCE verifier; the ID token must verify against the app's identity provider and
//! carry the session's nonce. The session then holds the token (sealed) for one poll. A
//! denied sign-in or a provider error ends the session in `error`; nothing else is stored.

use aws_sdk_dynamodb::types::AttributeValue;
use portcullis::idp::signin::{self, AuthSession, AuthStatus};
use portcullis::model::{IdpConfig, ProviderDef};
use portcullis::oauth::client::{self, ClientCredentials};
use portcullis::store::{Condition, Write, from_item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde_json::json;
use std::future::Future;
use std::pin::Pin;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::Policy::of(&[
    portcullis::iam::Action::BatchGetItem,
    portcullis::iam::Action::PutItem,
    portcullis::iam::Action::GenerateDataKey,
    portcullis::iam::Action::Decrypt,
]);

fn page(title: &str, message: &str) -> ApiResponse {
    crate::web::page(
        crate::web::SIGNIN_PAGE,
        &[("__TITLE__", title), ("__MESSAGE__", message)],
    )
}

pub(crate) fn failed(message: &str) -> ApiResponse {
    page("Sign-in failed", message)
}

pub fn handle(
    ctx: &Ctx,
    req: ApiRequest,
) -> Pin<Box<dyn Future<Output = ApiResponse> + Send + '_>> {
    Box::pin(async move {
        match run(ctx, &req).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(code = e.code, "sign-in callback failed");
                failed("Something went wrong on our side. Go back to the app and try again.")
            }
        }
    })
}

async fn run(ctx: &Ctx, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let expired =
        "This sign-in link has expired or was already used. Go back to the app and start again.";
    let Some((app_id, r)) = req.query("state").as_deref().and_then(signin::parse_state) else {
        return Ok(failed(expired));
    };
    // The state names a sign-in session or a managed-secret Connect session: both are read.
    let mut items = ctx
        .store
        .get_many(&[
            keys::auth_session(app_id, &r),
            keys::secret_connect_session(app_id, &r),
            keys::idp(app_id),
        ])
        .await?;
    let Some(config) = items[2].take().map(from_item::<IdpConfig>).transpose()? else {
        return Ok(failed(expired));
    };
    if let Some(item) = items[1].take() {
        return super::web_secret_connect_signin::finish(ctx, req, from_item(item)?, &config).await;
    }
    let session: Option<AuthSession> = items[0].take().map(from_item).transpose()?;
    let Some(mut session) = session else {
        return Ok(failed(expired));
    };
    let state = req.query("state").unwrap_or_default();
    if session.status_at(req.received_at) != "pending" || !signin::state_matches(&session, &state) {
        return Ok(failed(expired));
    }
    let end = |session: &mut AuthSession, code: &str, message: &str| {
        session.status = AuthStatus::Error;
        session.error_code = Some(code.into());
        session.error_message = Some(message.into());
    };
    let outcome = match (
        req.query("error"),
        req.query("code"),
        config.signin.as_ref(),
    ) {
        (Some(e), _, _) => {
            let message = if e == "access_denied" {
                "The sign-in was cancelled."
            } else {
                "The identity provider could not complete the sign-in."
            };
            end(
                &mut session,
                if e == "access_denied" {
                    "access_denied"
                } else {
                    "idp_error"
                },
                message,
            );
            Err(message)
        }
        (None, Some(code), Some(sign_in)) => {
            let verifier = ctx
                .sealer
                .open(app_id, &session.aad("verifier"), &session.code_verifier)
                .await?;
            let verifier =
                String::from_utf8(verifier.to_vec()).map_err(|_| ApiError::internal())?;
            let proof = Proof {
                app_id,
                verifier,
                nonce: &session.nonce,
                code: &code,
            };
            match exchange(ctx, req, &config, sign_in, proof).await? {
                Ok((token, info)) => {
                    session.status = AuthStatus::Completed;
                    session.user_token = Some(
                        ctx.sealer
                            .seal(app_id, &session.aad("user_token"), token.as_bytes())
                            .await?,
                    );
                    session.user_info = Some(info);
                    Ok(())
                }
                Err(message) => {
                    end(&mut session, "idp_error", message);
                    Err(message)
                }
            }
        }
        _ => {
            let message = "The identity provider's answer carried no sign-in.";
            end(&mut session, "idp_error", message);
            Err(message)
        }
    };
    // Over the pending session this request read: a replayed callback changes nothing.
    let write = Write::Put {
        item: signin::item(&session),
        condition: Some(
            Condition::new("#s = :pending AND state_hash = :h")
                .name("#s", "status")
                .value(":pending", AttributeValue::S("pending".into()))
                .value(":h", AttributeValue::S(session.state_hash.clone())),
        ),
    };
    if ctx.store.transact(vec![write]).await.is_err() {
        return Ok(failed(expired));
    }
    Ok(match outcome {
        Ok(()) => page(
            "You're signed in",
            "You can close this window and return to the app.",
        ),
        Err(message) => failed(message),
    })
}

/// What a sign-in attempt kept to finish the round trip.
pub(crate) struct Proof<'a> {
    pub app_id: uuid::Uuid,
    pub verifier: String,
    pub nonce: &'a str,
    pub code: &'a str,
}

/// The code for an ID token, verified against the app's identity provider with the attempt's
/// nonce: the token and what the app may know of the user.
pub(crate) async fn exchange(
    ctx: &Ctx,
    req: &ApiRequest,
    config: &IdpConfig,
    sign_in: &portcullis::model::idp::Signin,
    proof: Proof<'_>,
) -> Result<Result<(String, serde_json::Value), &'static str>, ApiError> {
    let Proof {
        app_id,
        verifier,
        nonce,
        code,
    } = proof;
    let secret = ctx
        .sealer
        .open(
            app_id,
            &IdpConfig::signin_secret_aad(app_id),
            &sign_in.client_secret,
        )
        .await?;
    let secret = String::from_utf8(secret.to_vec()).map_err(|_| ApiError::internal())?;
    let def: ProviderDef = serde_json::from_value(json!({
        "name": "identity provider",
        "authorize_url": sign_in.authorize_url,
        "token_url": sign_in.token_url,
        "hosts": [],
        "scope_separator": " ",
        "pkce": true,
        "token_auth": "client_secret_basic",
        "refresh": {"refresh_tokens": false, "rotates": false, "default_ttl_seconds": null},
    }))
    .map_err(|_| ApiError::internal())?;
    let redirect = super::sdk_auth_session_create::redirect_uri(ctx, req)?;
    let creds = ClientCredentials {
        client_id: &sign_in.client_id,
        client_secret: &secret,
    };
    let Ok(answer) = client::exchange_code(&def, &creds, code, &redirect, Some(&verifier)).await
    else {
        return Ok(Err("The identity provider refused the sign-in."));
    };
    let Some(id_token) = answer.id_token else {
        return Ok(Err("The identity provider answered no ID token."));
    };
    let now = req.received_at.unix_timestamp();
    let Ok(user) = portcullis::idp::verify(ctx, config, &id_token, now).await else {
        return Ok(Err("The identity provider's ID token did not verify."));
    };
    let carried = portcullis::idp::jwt::parse(&id_token).ok().and_then(|u| {
        u.claims
            .get("nonce")
            .and_then(|n| n.as_str())
            .map(str::to_string)
    });
    if carried.as_deref() != Some(nonce) {
        return Ok(Err("The ID token was not issued for this sign-in."));
    }
    Ok(Ok((
        id_token,
        json!({ "sub": user.subject, "email": user.email, "app_user_id": user.app_user_id }),
    )))
}
