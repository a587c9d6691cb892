//! `DELETE /sdk/grants/{grant_id}/delegations/me`: an agent gives up a delegation it holds
//! (`Agent.revoke_delegation`). `{grant_id}` is the delegation itself or the grant it was made
//! from. Idempotent: 204 whether or not one was active.

use super::common::record;
use super::sdk_delegation_revoke::revoke_writes;
use portcullis::model::grant::child_id;
use portcullis::model::{Grant, Principal};
use portcullis::pipeline::{Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::service::delegations;
use portcullis::service::grants::grant_not_found;
use portcullis::store::{Item, ItemKey, from_item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_delegation_revoke_self";
    const SURFACE: Surface = Surface::Sdk;
    // Agent keys only (checked below).
    const ACCESS: Access = Access::AnyKey;
    type Body = Empty;

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Empty, app: Option<Uuid>) -> Vec<ItemKey> {
        match (app, req.uuid_param("grant_id", grant_not_found())) {
            (Some(app), Ok(g)) => vec![keys::grant(app, g)],
            _ => Vec::new(),
        }
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let Some(me) = call.caller.agent_key_owner().map(|a| a.agent_id) else {
            return Err(ApiError::forbidden(
                "agent_key_required",
                "only an agent gives up its own delegation; the app uses /delegations/{agent_id}",
            ));
        };
        let grant_id = call.req.uuid_param("grant_id", grant_not_found())?;
        call.audit.resource_type = Some("grant".into());
        call.audit.resource_id = Some(grant_id.to_string());
        call.audit.grant_id = Some(grant_id.to_string());
        let named: Grant =
            record(items.first_mut().and_then(Option::take))?.ok_or_else(grant_not_found)?;
        let mine = Principal::Agent { agent_id: me };
        let child = if named.principal == mine && named.delegation.is_some() {
            Some(named)
        } else {
            let key = keys::grant(call.caller.app(), child_id(named.grant_id, me));
            ctx.store
                .get(&key, true)
                .await?
                .map(from_item)
                .transpose()?
        };
        let done = ApiResponse::empty(http::StatusCode::NO_CONTENT);
        let Some(child) = child.filter(|c| c.status_at(call.now) == "active") else {
            return Ok(Outcome::respond(done));
        };
        Ok(Outcome::with_writes(
            done,
            revoke_writes(&child, call.now),
            delegations::no_delegated_grant(),
        ))
    }
}

super::handler!(Op);
