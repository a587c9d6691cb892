//! `POST /sdk/identity/resolve`: the identity a call acts as (spec §7.9 `IdentityContext`):
//! the app, the end user a `user_token` names (or an `app_user_id` the app's backend names;
//! an agent may name only a user who delegated to it), the acting agent, and the trace labels
//! of `X-Alter-Context`. Profile fields only with `include_profile`.

use super::common::{end_user, record};
use portcullis::model::{AppUser, Principal};
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::service::{delegations, grants};
use portcullis::store::{Item, ItemKey, Write, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Query]);

/// Whom to resolve: the body here, and part of `/sdk/identity/assert`'s.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    #[serde(default)]
    pub include_profile: bool,
    pub user_token: Option<String>,
    pub app_user_id: Option<String>,
}

fn user_not_found() -> ApiError {
    ApiError::not_found("app_user_not_found", "app user")
}

/// Items the subject needs, read with the key.
pub fn prefetch_subject(ctx: &Ctx, subject: &Subject, app: Option<Uuid>) -> Vec<ItemKey> {
    let Some(app) = app else {
        return Vec::new();
    };
    match (&subject.user_token, &subject.app_user_id) {
        (Some(token), _) => portcullis::idp::prefetch(ctx, app, token).to_vec(),
        (None, Some(id)) => Uuid::try_parse(id)
            .map(|id| vec![keys::app_user(app, id)])
            .unwrap_or_default(),
        (None, None) => Vec::new(),
    }
}

/// The identity context, and the app user it names (if any).
pub async fn resolve(
    ctx: &Ctx,
    call: &mut Call<'_>,
    subject: &Subject,
    items: &mut [Option<Item>],
    writes: &mut Vec<Write>,
) -> Result<(Value, Option<Uuid>), ApiError> {
    // (app_user_id, subject, idp_id, email, groups)
    let user = match (&subject.user_token, &subject.app_user_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "give `user_token` or `app_user_id`, not both",
            ));
        }
        (Some(token), None) => {
            let u = end_user(ctx, call, token, items, writes).await?;
            Some((u.app_user_id, u.subject, u.idp_id, u.email, u.groups))
        }
        (None, Some(raw)) => {
            Uuid::try_parse(raw).map_err(|_| user_not_found())?;
            let u: AppUser =
                record(items.first_mut().and_then(Option::take))?.ok_or_else(user_not_found)?;
            // An agent names only a user whose consent it holds.
            if let Some(agent) = call.caller.agent_key_owner() {
                let mine = Principal::Agent {
                    agent_id: agent.agent_id,
                };
                let (held, _) = grants::list(&ctx.store, u.app_id, Some(&mine), 10_000).await?;
                let by = format!("user:{}", u.app_user_id);
                let theirs: Vec<_> = held
                    .into_iter()
                    .filter(|g| {
                        g.status_at(call.now) == "active"
                            && g.delegation.as_ref().is_some_and(|d| d.delegated_by == by)
                    })
                    .collect();
                // Consent holds only along an intact chain (every link and agent above active).
                let broken = delegations::broken_chains(ctx, &theirs, call.now).await?;
                let consented = theirs.iter().any(|g| !broken.contains(&g.grant_id));
                if !consented {
                    return Err(user_not_found());
                }
            }
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
    let (app_user_id, external, idp_id, email, groups) = match user {
        Some((id, s, idp, e, g)) => (Some(id), Some(s), Some(idp), e, g),
        None => (None, None, None, None, Vec::new()),
    };
    let identity = json!({
        "app_id": call.caller.app(),
        "app_user_id": app_user_id,
        "external_subject_id": external,
        "idp_id": idp_id,
        "user_status": app_user_id.map(|_| "active"),
        "group_ids": groups,
        "agent_id": agent,
        "actor_id": agent,
        "trace": trace,
        "email": if subject.include_profile { email } else { None },
        "display_name": Value::Null,
    });
    Ok((identity, app_user_id))
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_identity_resolve";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::AnyKey;
    type Body = Subject;

    fn prefetch(ctx: &Ctx, _: &ApiRequest, body: &Subject, app: Option<Uuid>) -> Vec<ItemKey> {
        prefetch_subject(ctx, body, app)
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Subject,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let mut writes = Vec::new();
        let (identity, _) = resolve(ctx, call, &body, &mut items, &mut writes).await?;
        let mut outcome =
            Outcome::respond(ApiResponse::ok(&identity).header("cache-control", "no-store"));
        outcome.writes = writes;
        Ok(outcome)
    }
}

super::handler!(Op);
