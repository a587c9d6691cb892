//! `POST /sdk/identity/resolve`: the identity a call acts as (spec §7.9 `IdentityContext`):
//! the app, the end user a `user_token` names (or an `app_user_id` the app's backend names),
//! the acting agent, and the trace labels of `X-Alter-Context`. Profile fields only with
//! `include_profile`.

use super::common::{end_user, record};
use portcullis::model::AppUser;
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::store::{Item, ItemKey, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    #[serde(default)]
    include_profile: bool,
    user_token: Option<String>,
    app_user_id: Option<String>,
}

fn user_not_found() -> ApiError {
    ApiError::not_found("app_user_not_found", "app user")
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_identity_resolve";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::AnyKey;
    type Body = Body;

    fn prefetch(ctx: &Ctx, _: &ApiRequest, body: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        let Some(app) = app else {
            return Vec::new();
        };
        match (&body.user_token, &body.app_user_id) {
            (Some(token), _) => portcullis::idp::prefetch(ctx, app, token).to_vec(),
            (None, Some(id)) => Uuid::try_parse(id)
                .map(|id| vec![keys::app_user(app, id)])
                .unwrap_or_default(),
            (None, None) => Vec::new(),
        }
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let mut writes = Vec::new();
        // (app_user_id, subject, idp_id, email, groups)
        let user = match (&body.user_token, &body.app_user_id) {
            (Some(_), Some(_)) => {
                return Err(ApiError::validation(
                    "give `user_token` or `app_user_id`, not both",
                ));
            }
            (Some(token), None) => {
                let u = end_user(ctx, call, token, &mut items, &mut writes).await?;
                Some((u.app_user_id, u.subject, u.idp_id, u.email, u.groups))
            }
            (None, Some(raw)) => {
                Uuid::try_parse(raw).map_err(|_| user_not_found())?;
                let u: AppUser =
                    record(items.first_mut().and_then(Option::take))?.ok_or_else(user_not_found)?;
                Some((
                    u.app_user_id,
                    u.external_subject_id,
                    u.idp_id,
                    u.email,
                    u.groups,
                ))
            }
            (None, None) => None,
        };
        let agent = call.caller.agent.as_ref().map(|a| a.agent_id);
        let context = &call.caller.identity.context;
        let label = |k: &str| context.get(k).and_then(Value::as_str).map(str::to_string);
        let trace = match (label("run_id"), label("thread_id")) {
            (None, None) => Value::Null,
            (run_id, thread_id) => json!({ "run_id": run_id, "thread_id": thread_id }),
        };
        let (app_user_id, subject, idp_id, email, groups) = match user {
            Some((id, s, idp, e, g)) => (Some(id), Some(s), Some(idp), e, g),
            None => (None, None, None, None, Vec::new()),
        };
        let answer = json!({
            "app_id": call.caller.app(),
            "app_user_id": app_user_id,
            "external_subject_id": subject,
            "idp_id": idp_id,
            "user_status": app_user_id.map(|_| "active"),
            "group_ids": groups,
            "agent_id": agent,
            "actor_id": agent,
            "trace": trace,
            "email": if body.include_profile { email } else { None },
            "display_name": Value::Null,
        });
        let mut outcome =
            Outcome::respond(ApiResponse::ok(&answer).header("cache-control", "no-store"));
        outcome.writes = writes;
        Ok(outcome)
    }
}

super::handler!(Op);
