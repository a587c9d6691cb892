//! `POST /sdk/oauth/connect/session/poll`: where a Connect session stands (spec §7.6). A
//! token that is unknown, expired or of another app reads `expired`, alike.

use portcullis::model::connect::ConnectSession;
use portcullis::oauth::connect;
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::store::{Item, ItemKey, from_item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    session_token: String,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_connect_session_poll";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("connect:initiate");
    type Body = Body;

    /// The session is read with the key record, in the same round trip.
    fn prefetch(_: &Ctx, _: &ApiRequest, body: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        match (app, connect::parse_token(&body.session_token)) {
            (Some(app), Some((owner, r))) if owner == app => vec![keys::connect_session(app, &r)],
            _ => Vec::new(),
        }
    }

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        _: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        super::common::app_key_only(call, "OAuth Connect sessions")?;
        let session: Option<ConnectSession> = items
            .first_mut()
            .and_then(Option::take)
            .map(from_item)
            .transpose()?;
        let answer = match &session {
            None => json!({ "status": "expired" }),
            Some(s) => {
                call.audit.resource_type = Some("connect_session".into());
                call.audit.resource_id = Some(s.ref_id.clone());
                match connect::status_at(s, call.now) {
                    "completed" => json!({
                        "status": "completed",
                        "grants": s.result.clone().unwrap_or(Value::Array(Vec::new())),
                    }),
                    "error" => json!({ "status": "error", "error": s.error }),
                    other => json!({ "status": other }),
                }
            }
        };
        Ok(Outcome::respond(
            ApiResponse::ok(&answer).header("cache-control", "no-store"),
        ))
    }
}

super::handler!(Op);
