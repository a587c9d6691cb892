//! `POST /sdk/auth/verify-token`: is this end-user token valid for the app? Answers only the
//! verified subject (`{sub}`, per the app's user-ID claim mapping), never the claims; 401 for
//! an invalid token, 400 when the app has no identity provider (the SDK reads both as "no").

use super::common::end_user;
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::store::{Item, ItemKey};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    token: String,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_auth_verify_token";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::AnyKey;
    type Body = Body;

    fn prefetch(ctx: &Ctx, _: &ApiRequest, body: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        app.map(|app| portcullis::idp::prefetch(ctx, app, &body.token).to_vec())
            .unwrap_or_default()
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        if items.first().is_none_or(Option::is_none) {
            return Err(ApiError::bad_request(
                "idp_not_configured",
                "this app has no identity provider configured",
            )
            .hint("configure one with PUT /v1/apps/{app_id}/idp"));
        }
        let mut writes = Vec::new();
        let user = end_user(ctx, call, &body.token, &mut items, &mut writes).await?;
        let mut outcome = Outcome::respond(
            ApiResponse::ok(&json!({ "sub": user.subject })).header("cache-control", "no-store"),
        );
        outcome.writes = writes;
        Ok(outcome)
    }
}

super::handler!(Op);
