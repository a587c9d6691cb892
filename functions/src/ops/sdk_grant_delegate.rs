//! `POST /sdk/grants/{grant_id}/delegate`: an agent passes a grant it holds on to another
//! agent (`Agent.delegate`, the onward hop). Only a delegation made with a user's consent and
//! marked `delegable` can go on; the child may only narrow (scopes, lifetime) and the chain
//! is at most `MAX_DELEGATION_DEPTH` long. Delegating to the same agent again renews it.

use super::common::record;
use portcullis::model::grant::child_id;
use portcullis::model::{Grant, Principal, rfc3339};
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::service::delegations::{self, Terms};
use portcullis::service::{agents, grants::grant_not_found};
use portcullis::store::{Item, ItemKey, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    to_agent_id: String,
    delegable: Option<bool>,
    scope_constraint: Option<Vec<String>>,
    ttl_seconds: Option<i64>,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_grant_delegate";
    const SURFACE: Surface = Surface::Sdk;
    // Agent keys only (checked below): they reach nothing but the grants they hold.
    const ACCESS: Access = Access::AnyKey;
    type Body = Body;

    fn prefetch(_: &Ctx, req: &ApiRequest, body: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        let (Some(app), Ok(held)) = (app, req.uuid_param("grant_id", grant_not_found())) else {
            return Vec::new();
        };
        let mut keys = vec![keys::grant(app, held)];
        if let Ok(to) = Uuid::try_parse(&body.to_agent_id) {
            keys.push(keys::grant(app, child_id(held, to)));
        }
        keys
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let Some(me) = call.caller.agent_key_owner().map(|a| a.agent_id) else {
            return Err(ApiError::forbidden(
                "agent_key_required",
                "only an agent delegates a grant it holds: call with the agent's own key",
            ));
        };
        let held_id = call.req.uuid_param("grant_id", grant_not_found())?;
        call.audit.resource_type = Some("grant".into());
        call.audit.resource_id = Some(held_id.to_string());
        call.audit.grant_id = Some(held_id.to_string());
        let held: Grant =
            record(items.first_mut().and_then(Option::take))?.ok_or_else(grant_not_found)?;
        if held.principal != (Principal::Agent { agent_id: me }) {
            return Err(grant_not_found());
        }
        if held.status_at(call.now) != "active" {
            return Err(delegations::no_delegated_grant());
        }
        delegations::check_chain(ctx, &held, call.now).await?;
        let to = agents::active(ctx, call.caller.app(), &body.to_agent_id).await?;
        if to.agent_id == me {
            return Err(ApiError::validation("an agent cannot delegate to itself"));
        }
        let previous: Option<Grant> = record(items.get_mut(1).and_then(Option::take))?;
        let existing = previous
            .clone()
            .filter(|g| g.status_at(call.now) == "active");
        if !held.delegated_agent_ids.contains(&to.agent_id)
            && held.delegated_agent_ids.len() >= delegations::MAX_DELEGATIONS_PER_GRANT
        {
            return Err(ApiError::conflict(
                "delegation_limit_reached",
                "this grant is delegated to as many agents as it may be",
            ));
        }
        // Tri-state: omitted keeps a renewed delegation's setting; a new one is a leaf.
        let delegable = body
            .delegable
            .unwrap_or_else(|| existing.as_ref().is_some_and(|g| g.delegable));
        delegations::check_delegable(&held, delegable)?;
        // The holder passes on only what its own access set still allows.
        if let Some(agent) = call.caller.agent_key_owner()
            && !agent.allows_grant(&held.kind, call.now)
        {
            return Err(ApiError::forbidden(
                "agent_scope_not_allowed",
                "this agent's access set no longer includes that provider or managed secret",
            ));
        }
        let scope_constraint = delegations::scope_constraint(&held, body.scope_constraint)?;
        let expires_at = match body.ttl_seconds {
            None => None,
            Some(t) if (1..=90 * 24 * 3600).contains(&t) => {
                Some(call.now + time::Duration::seconds(t))
            }
            Some(_) => {
                return Err(ApiError::new(
                    http::StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_ttl",
                    "`ttl_seconds` is between 1 and 7776000 (90 days)",
                ));
            }
        };
        let consent = held
            .delegation
            .as_ref()
            .map(|d| d.delegated_by.clone())
            .unwrap_or_default();
        let child = delegations::child(
            &held,
            to.agent_id,
            &consent,
            Terms {
                delegable,
                scope_constraint,
                expires_at,
            },
            call.caller.created_by(),
            call.now,
        );
        call.audit.detail = Some(json!({
            "to_agent_id": to.agent_id, "child_grant_id": child.grant_id, "depth": child.depth(),
        }));
        let answer = json!({
            "grant_id": child.grant_id,
            "grant_kind": view_kind(&child),
            "parent_grant_id": held.grant_id,
            "depth": child.depth(),
            "delegable": child.delegable,
            "status": "active",
            "expires_at": child.expires_at.map(rfc3339),
        });
        let mut writes = delegations::create_writes(&held, &child, to.agent_id);
        writes.extend(delegations::renewal_writes(previous.as_ref(), call.now));
        Ok(Outcome::with_writes(
            ApiResponse::ok(&answer),
            writes,
            delegations::no_delegated_grant(),
        ))
    }
}

fn view_kind(g: &Grant) -> &'static str {
    match g.kind {
        portcullis::model::GrantKind::OAuth { .. } => "oauth",
        portcullis::model::GrantKind::ManagedSecret { .. } => "managed_secret",
    }
}

super::handler!(Op);
