//! `POST /sdk/auth/poll`: how a sign-in session stands (`poll_auth_session`). `wait_ms` (at
//! most 20 000 here) holds the answer while it is pending. A completed session answers the
//! user's ID token exactly once; later polls answer `error` with `auth_session_used`.

use super::common::record;
use aws_sdk_dynamodb::types::AttributeValue;
use portcullis::idp::signin::{self, AuthSession};
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::store::{Item, ItemKey, Write, from_item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Decrypt]);

/// The longest a poll waits (the function's timeout leaves room for the rest).
const MAX_WAIT: Duration = Duration::from_secs(20);
const RECHECK: Duration = Duration::from_millis(500);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    session_token: String,
    wait_ms: Option<u64>,
}

/// The session's key when the token names the caller's own app.
fn session_key(body: &Body, app: Option<Uuid>) -> Option<ItemKey> {
    let (token_app, r) = signin::parse_token(&body.session_token)?;
    (Some(token_app) == app).then(|| keys::auth_session(token_app, &r))
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_auth_poll";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::AnyKey;
    type Body = Body;

    fn prefetch(_: &Ctx, _: &ApiRequest, body: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        session_key(body, app).into_iter().collect()
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        super::common::app_key_only(call, "sign-in sessions")?;
        let key =
            session_key(&body, Some(call.caller.app())).ok_or_else(signin::session_not_found)?;
        let mut session: AuthSession = record(items.first_mut().and_then(Option::take))?
            .ok_or_else(signin::session_not_found)?;
        call.audit.resource_type = Some("auth_session".into());
        call.audit.resource_id = Some(session.ref_id.clone());
        let wait = Duration::from_millis(body.wait_ms.unwrap_or(0)).min(MAX_WAIT);
        let deadline = std::time::Instant::now() + wait;
        while session.status_at(time::OffsetDateTime::now_utc()) == "pending"
            && std::time::Instant::now() + RECHECK <= deadline
        {
            tokio::time::sleep(RECHECK).await;
            if let Some(item) = ctx.store.get(&key, true).await? {
                session = from_item(item)?;
            }
        }
        let now = time::OffsetDateTime::now_utc();
        let answer = |v: Value| {
            Ok(Outcome::respond(
                ApiResponse::ok(&v).header("cache-control", "no-store"),
            ))
        };
        match session.status_at(now) {
            "pending" => answer(json!({"status": "pending"})),
            "expired" => answer(json!({"status": "expired"})),
            "error" => answer(json!({
                "status": "error",
                "error_code": session.error_code,
                "error_message": session.error_message,
            })),
            "delivered" => answer(json!({
                "status": "error",
                "error_code": "auth_session_used",
                "error_message": "this sign-in was already handed to the app; start a new one",
            })),
            _ => {
                let sealed = session.user_token.as_ref().ok_or_else(ApiError::internal)?;
                let token = ctx
                    .sealer
                    .open(session.app_id, &session.aad("user_token"), sealed)
                    .await?;
                let token = String::from_utf8(token.to_vec()).map_err(|_| ApiError::internal())?;
                // Handed out once: the commit fails if another poll got here first.
                let deliver = Write::Update {
                    key,
                    update: "SET #s = :delivered REMOVE user_token".into(),
                    condition: Some("#s = :completed".into()),
                    names: vec![("#s".into(), "status".into())],
                    values: vec![
                        (":delivered".into(), AttributeValue::S("delivered".into())),
                        (":completed".into(), AttributeValue::S("completed".into())),
                    ],
                };
                Ok(Outcome::with_writes(
                    ApiResponse::ok(&json!({
                        "status": "completed",
                        "user_token": token,
                        "user_info": session.user_info.unwrap_or(json!({})),
                    }))
                    .header("cache-control", "no-store"),
                    vec![deliver],
                    ApiError::conflict(
                        "auth_session_used",
                        "this sign-in was already handed to the app; start a new one",
                    ),
                ))
            }
        }
    }
}

super::handler!(Op);
