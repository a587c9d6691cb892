//! `DELETE /sdk/grants/{grant_id}/delegations/{agent_id}`: the app withdraws an agent's
//! delegation of a grant (`App.revoke_delegation`). The grant itself stays; the delegation,
//! and every onward one made from it, end. Idempotent: 204 whether or not one was active.

use super::common::record;
use portcullis::model::Grant;
use portcullis::model::grant::child_id;
use portcullis::pipeline::{Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::service::delegations;
use portcullis::service::grants::grant_not_found;
use portcullis::store::{Item, ItemKey, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_delegation_revoke";
    const SURFACE: Surface = Surface::Sdk;
    // `grants:write` for app keys, checked below after refusing agent keys by name (the SDK
    // tells an agent to use its own path).
    const ACCESS: Access = Access::AnyKey;
    type Body = Empty;

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Empty, app: Option<Uuid>) -> Vec<ItemKey> {
        let grant = req.uuid_param("grant_id", grant_not_found());
        let agent = req.uuid_param("agent_id", grant_not_found());
        match (app, grant, agent) {
            (Some(app), Ok(g), Ok(a)) => {
                vec![keys::grant(app, g), keys::grant(app, child_id(g, a))]
            }
            _ => Vec::new(),
        }
    }

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        if call.caller.agent_key_owner().is_some() {
            return Err(ApiError::forbidden(
                "use_self_revoke_path",
                "an agent gives up its own delegation with DELETE /sdk/grants/{grant_id}/delegations/me",
            ));
        }
        portcullis::scopes::require(&call.caller.scopes, "grants:write")?;
        let grant_id = call.req.uuid_param("grant_id", grant_not_found())?;
        call.audit.resource_type = Some("grant".into());
        call.audit.resource_id = Some(grant_id.to_string());
        call.audit.grant_id = Some(grant_id.to_string());
        let _parent: Grant =
            record(items.first_mut().and_then(Option::take))?.ok_or_else(grant_not_found)?;
        let agent = call.req.uuid_param("agent_id", grant_not_found())?;
        let child: Option<Grant> = record(items.get_mut(1).and_then(Option::take))?;
        let done = ApiResponse::empty(http::StatusCode::NO_CONTENT);
        let Some(child) = child.filter(|c| c.status_at(call.now) == "active") else {
            return Ok(Outcome::respond(done));
        };
        call.audit.detail =
            Some(serde_json::json!({ "agent_id": agent, "child_grant_id": child.grant_id }));
        Ok(Outcome::with_writes(
            done,
            revoke_writes(&child, call.now),
            delegations::no_delegated_grant(),
        ))
    }
}

/// The delegation and those made from it.
pub fn revoke_writes(child: &Grant, now: time::OffsetDateTime) -> Vec<portcullis::store::Write> {
    let mut writes = vec![delegations::revoke_write(child.app_id, child.grant_id, now)];
    writes.extend(delegations::revoke_children_writes(child, now));
    writes
}

super::handler!(Op);
