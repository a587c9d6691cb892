//! `POST /sdk/auth/session`: a link for an end user to sign in at the app's identity provider
//! (`create_auth_session`, `authenticate`). Answers 201 `{session_token, auth_url,
//! expires_in, expires_at}`; the app polls `/sdk/auth/poll` for the user's ID token. Needs
//! the IdP's `signin` client (else 409 `idp_signin_not_configured`).

use super::common::record;
use portcullis::idp::signin::{self, AuthSession, AuthStatus};
use portcullis::model::{IdpConfig, rfc3339};
use portcullis::pipeline::{Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::store::{Condition, Item, ItemKey, Write, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde_json::json;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::GenerateDataKey]);

pub fn not_configured() -> ApiError {
    ApiError::conflict(
        "idp_signin_not_configured",
        "this app's identity provider has no sign-in client",
    )
    .hint("add `signin` ({client_id, client_secret}) to PUT /v1/apps/{app_id}/idp")
}

/// Where the IdP sends the user back.
pub fn redirect_uri(ctx: &Ctx, req: &ApiRequest) -> Result<String, ApiError> {
    Ok(format!("{}/sdk/auth/callback", ctx.public_url(req)?))
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_auth_session_create";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::AnyKey;
    type Body = Empty;

    fn prefetch(_: &Ctx, _: &ApiRequest, _: &Empty, app: Option<Uuid>) -> Vec<ItemKey> {
        app.map(keys::idp).into_iter().collect()
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        // Sign-in hands out the user's own ID token: the app's backend only, never an agent.
        super::common::app_key_only(call, "sign-in sessions")?;
        let app = call.caller.app();
        let config: IdpConfig =
            record(items.first_mut().and_then(Option::take))?.ok_or_else(not_configured)?;
        let sign_in = config.signin.as_ref().ok_or_else(not_configured)?;
        let (token, ref_id) = signin::new_token(app);
        let (state, state_hash) = signin::new_state(app, &ref_id);
        let (verifier, challenge) = portcullis::oauth::connect::pkce();
        let nonce = signin::new_nonce();
        let expires_at = call.now + signin::SESSION_LIFE;
        let code_verifier = ctx
            .sealer
            .seal(app, &signin::aad(&ref_id, "verifier"), verifier.as_bytes())
            .await?;
        let session = AuthSession {
            app_id: app,
            ref_id,
            state_hash,
            code_verifier,
            nonce: nonce.clone(),
            status: AuthStatus::Pending,
            user_token: None,
            user_info: None,
            error_code: None,
            error_message: None,
            created_by: call.caller.created_by(),
            created_at: call.now,
            expires_at,
            ttl: (expires_at + time::Duration::days(1)).unix_timestamp(),
        };
        let auth_url = signin::authorize_url(
            sign_in,
            &redirect_uri(ctx, call.req)?,
            &state,
            &nonce,
            &challenge,
        );
        call.audit.resource_type = Some("auth_session".into());
        call.audit.resource_id = Some(session.ref_id.clone());
        let answer = json!({
            "session_token": token,
            "auth_url": auth_url,
            "expires_in": signin::SESSION_LIFE.whole_seconds(),
            "expires_at": rfc3339(expires_at),
        });
        Ok(Outcome::with_writes(
            ApiResponse::json(http::StatusCode::CREATED, &answer)
                .header("cache-control", "no-store"),
            vec![Write::Put {
                item: signin::item(&session),
                condition: Some(Condition::absent()),
            }],
            ApiError::conflict("write_conflict", "retry"),
        ))
    }
}

super::handler!(Op);
