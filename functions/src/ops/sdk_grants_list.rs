//! `POST /sdk/grants/list`: the grants this caller can use (spec §6 row 7, §7.8).

use super::common::{end_user, page};
use portcullis::model::Principal;
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::service::{delegations, grants};
use portcullis::store::{Item, ItemKey};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

/// Listing reads at most this many grants; deeper offsets are refused.
/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Query]);

const MAX_SCAN: usize = 10_000;

#[derive(Deserialize)]
pub struct Body {
    limit: Option<i64>,
    offset: Option<i64>,
    provider_id: Option<String>,
    status: Option<String>,
    account: Option<String>,
    label: Option<String>,
    user_token: Option<String>,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_grants_list";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("grants:read");
    type Body = Body;

    fn prefetch(ctx: &Ctx, _: &ApiRequest, body: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        portcullis::idp::prefetch_if(ctx, app, body.user_token.as_deref())
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let limit = body.limit.unwrap_or(100);
        let offset = body.offset.unwrap_or(0);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::validation("`limit` must be between 1 and 1000"));
        }
        if !(0..=MAX_SCAN as i64).contains(&offset) {
            return Err(ApiError::validation(format!(
                "`offset` must be between 0 and {MAX_SCAN}"
            )));
        }
        let mut writes = Vec::new();
        let user = match &body.user_token {
            Some(token) => Some(end_user(ctx, call, token, &mut items, &mut writes).await?),
            None => None,
        };
        if let Some(s) = &body.status
            && !matches!(s.as_str(), "active" | "expired" | "revoked")
        {
            return Err(ApiError::validation(
                "`status` must be active, expired or revoked",
            ));
        }
        // An agent's own key lists the grants bound to it; a user token, that user's; an app
        // key alone, all of the app's.
        let principal = match (call.caller.agent_key_owner(), &user) {
            (Some(a), _) => Some(Principal::Agent {
                agent_id: a.agent_id,
            }),
            (None, Some(u)) => Some(Principal::User {
                app_user_id: u.app_user_id.to_string(),
            }),
            (None, None) => None,
        };
        let (all, truncated) = match (&principal, &user) {
            (Some(Principal::User { .. }), Some(u)) => {
                grants::of_user(&ctx.store, call.caller.app(), u, MAX_SCAN).await?
            }
            _ => grants::list(&ctx.store, call.caller.app(), principal.as_ref(), MAX_SCAN).await?,
        };
        let now = call.now;
        // An agent acting for a user sees only that user's delegations to it.
        let on_behalf = match (call.caller.agent_key_owner(), &user) {
            (Some(_), Some(u)) => Some(format!("user:{}", u.app_user_id)),
            _ => None,
        };
        // A delegation under a revoked or expired link reads as revoked.
        let broken = delegations::broken_chains(ctx, &all, now).await?;
        let all: Vec<_> = all
            .into_iter()
            .map(|mut g| {
                if broken.contains(&g.grant_id) {
                    g.status = portcullis::model::GrantStatus::Revoked;
                }
                g
            })
            .collect();
        let matching: Vec<_> = all
            .iter()
            .filter(|g| {
                on_behalf
                    .as_ref()
                    .is_none_or(|u| g.delegation.as_ref().is_some_and(|d| d.delegated_by == *u))
            })
            .map(|g| views::grant(g, now))
            .filter(|v| {
                body.provider_id
                    .as_ref()
                    .is_none_or(|p| v["provider_id"] == *p)
            })
            .filter(|v| body.status.as_ref().is_none_or(|s| v["status"] == *s))
            .filter(|v| body.label.as_ref().is_none_or(|l| v["label"] == *l))
            .filter(|v| {
                body.account
                    .as_ref()
                    .is_none_or(|a| v["account_identifier"] == *a)
            })
            .collect();
        let (items, has_more) = page(&matching, offset as usize, limit as usize);
        let mut outcome = Outcome::respond(ApiResponse::ok(&json!({
            "grants": items,
            "total": matching.len(),
            "limit": limit,
            "offset": offset,
            "has_more": has_more,
            "is_truncated": truncated,
        })));
        outcome.writes = writes;
        Ok(outcome)
    }
}

super::handler!(Op);
