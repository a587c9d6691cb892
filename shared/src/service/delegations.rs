//! Delegation: a user lets an agent use one of their grants (Connect with `agent=`), and an
//! agent holding a delegable grant passes it on (`/sdk/grants/{id}/delegate`). Each delegation
//! is a child grant owned by the agent, pointing at its parent; the credential stays with the
//! chain's root. Every use re-reads the chain above the child, so revoking any link, or the
//! user's grant itself, ends everything below it at once.

use crate::error::ApiError;
use crate::model::grant::{Delegation, MAX_DELEGATION_DEPTH, child_id};
use crate::model::{Grant, GrantKind, GrantStatus, Principal};
use crate::service::grants;
use crate::store::{Write, from_item, keys};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

/// The parts of a new delegation the delegating party chooses.
pub struct Terms {
    pub delegable: bool,
    pub scope_constraint: Option<Vec<String>>,
    pub expires_at: Option<OffsetDateTime>,
}

/// The child grant delegating `parent` to `agent`. Its life never outlasts the parent's.
pub fn child(
    parent: &Grant,
    agent: Uuid,
    delegated_by: &str,
    terms: Terms,
    created_by: String,
    now: OffsetDateTime,
) -> Grant {
    let mut ancestors = parent
        .delegation
        .as_ref()
        .map(|d| d.ancestors.clone())
        .unwrap_or_default();
    ancestors.push(parent.grant_id);
    let expires_at = match (terms.expires_at, parent.expires_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Grant {
        grant_id: child_id(parent.grant_id, agent),
        app_id: parent.app_id,
        kind: parent.kind.clone(),
        principal: Principal::Agent { agent_id: agent },
        label: parent.label.clone(),
        status: GrantStatus::Active,
        grant_policy: None,
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
        created_by,
        scope_mismatch: parent.scope_mismatch,
        needs_reconnect: false,
        delegation: Some(Delegation {
            parent_grant_id: parent.grant_id,
            ancestors,
            delegated_by: delegated_by.to_string(),
            delegated_at: now,
            scope_constraint: terms.scope_constraint,
        }),
        delegable: terms.delegable,
        delegated_agent_ids: Vec::new(),
        policy: None,
    }
}

/// The child (a re-delegation renews it in place) and the parent's list of agents, written
/// only while the parent is active.
pub fn create_writes(parent: &Grant, child: &Grant, agent: Uuid) -> Vec<Write> {
    let mut values = vec![(":active".into(), AttributeValue::S("active".into()))];
    let update = if parent.delegated_agent_ids.contains(&agent) {
        "SET #s = #s"
    } else {
        values.push((":empty".into(), AttributeValue::L(Vec::new())));
        values.push((
            ":agent".into(),
            AttributeValue::L(vec![AttributeValue::S(agent.to_string())]),
        ));
        "SET delegated_agent_ids = list_append(if_not_exists(delegated_agent_ids, :empty), :agent)"
    };
    vec![
        Write::Put {
            item: grants::item(child),
            condition: None,
        },
        Write::Update {
            key: keys::grant(parent.app_id, parent.grant_id),
            update: update.into(),
            condition: Some("attribute_exists(pk) AND #s = :active".into()),
            names: vec![("#s".into(), "status".into())],
            values,
        },
    ]
}

/// Delegations one grant may make (each revocation reaches them in one transaction).
pub const MAX_DELEGATIONS_PER_GRANT: usize = 25;

/// A renewal replaces an agent's delegation with the new consent's terms, so what the agent
/// passed on under the old terms ends with them (those agents must be delegated to again).
pub fn renewal_writes(existing: Option<&Grant>, now: OffsetDateTime) -> Vec<Write> {
    existing
        .map(|e| revoke_children_writes(e, now))
        .unwrap_or_default()
}

/// Revocation of every delegation made from `g` (its direct children; deeper ones fail their
/// chain check from then on).
pub fn revoke_children_writes(g: &Grant, now: OffsetDateTime) -> Vec<Write> {
    g.delegated_agent_ids
        .iter()
        .map(|agent| revoke_write(g.app_id, child_id(g.grant_id, *agent), now))
        .collect()
}

/// Marks one (existing) delegation revoked.
pub fn revoke_write(app: Uuid, child: Uuid, now: OffsetDateTime) -> Write {
    Write::Update {
        key: keys::grant(app, child),
        update: "SET #s = :revoked, revoked_at = :now".into(),
        condition: Some("attribute_exists(pk)".into()),
        names: vec![("#s".into(), "status".into())],
        values: vec![
            (":revoked".into(), AttributeValue::S("revoked".into())),
            (":now".into(), AttributeValue::S(crate::model::rfc3339(now))),
        ],
    }
}

/// `404 no_delegated_grant`: the agent holds no usable delegation.
pub fn no_delegated_grant() -> ApiError {
    ApiError::not_found("no_delegated_grant", "delegated grant")
}

/// A delegation's chain as read: the grants above it (root first) and the root's credential
/// item (OAuth tokens or the user's own key, which a delegation uses).
#[derive(Default)]
pub struct Chain {
    pub ancestors: Vec<Grant>,
    pub credential: Option<crate::store::Item>,
}

/// Every grant above `child` must still be active and unexpired, and the chain's root must
/// still belong to the consenting user. One read of the whole chain, which also brings the
/// root's credential item.
pub async fn check_chain(
    ctx: &crate::Ctx,
    child: &Grant,
    now: OffsetDateTime,
) -> Result<Chain, ApiError> {
    let Some(d) = &child.delegation else {
        return Ok(Chain::default());
    };
    let mut keys: Vec<_> = d
        .ancestors
        .iter()
        .map(|id| keys::grant(child.app_id, *id))
        .collect();
    let in_grant = child.kind.credential_in_grant();
    if in_grant {
        keys.push(keys::grant_tokens(child.app_id, child.root_id()));
    }
    let mut items = ctx.store.get_many(&keys).await?;
    let tokens = if in_grant {
        items.pop().flatten()
    } else {
        None
    };
    let mut agents_above = Vec::new();
    let mut ancestors = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let Some(item) = item else {
            return Err(no_delegated_grant());
        };
        let g: Grant = from_item(item)?;
        let consent_holds = i > 0 || g.principal.key() == d.delegated_by;
        if g.status_at(now) != "active" || !consent_holds {
            return Err(no_delegated_grant().field("grant_id", json!(child.grant_id)));
        }
        if let Principal::Agent { agent_id } = g.principal {
            agents_above.push(agent_id);
        }
        ancestors.push(g);
    }
    // An agent that passed the grant on must still be active: deleting or suspending it ends
    // what it passed on (one more read, only for onward delegations).
    if !agents_above.is_empty() && !agents_active(ctx, child.app_id, &agents_above).await? {
        return Err(no_delegated_grant().field("grant_id", json!(child.grant_id)));
    }
    Ok(Chain {
        ancestors,
        credential: tokens,
    })
}

async fn agents_active(ctx: &crate::Ctx, app: Uuid, agents: &[Uuid]) -> Result<bool, ApiError> {
    let keys: Vec<_> = agents.iter().map(|a| keys::agent(app, *a)).collect();
    for item in ctx.store.get_many(&keys).await? {
        let Some(item) = item else {
            return Ok(false);
        };
        let agent: crate::model::Agent = from_item(item)?;
        if agent.status != crate::model::AgentStatus::Active {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `scope_constraint` of a delegation: valid RFC 6749 scope tokens, at most 100, each within
/// what the parent itself may use. Managed secrets have no provider scopes to narrow.
pub fn scope_constraint(
    parent: &Grant,
    atoms: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(atoms) = atoms else {
        return Ok(None);
    };
    let invalid = |why: &str| {
        ApiError::new(
            http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_scope_constraint",
            format!("`scope_constraint` {why}"),
        )
    };
    let GrantKind::OAuth { scopes, .. } = &parent.kind else {
        return Err(invalid(
            "narrows OAuth scopes; a managed-secret grant has none",
        ));
    };
    if atoms.is_empty() || atoms.len() > 100 {
        return Err(invalid("holds 1 to 100 scopes"));
    }
    let effective = parent
        .delegation
        .as_ref()
        .and_then(|d| d.scope_constraint.clone())
        .unwrap_or_else(|| scopes.clone());
    for a in &atoms {
        let token_ok = !a.is_empty()
            && a.len() <= 512
            && a != "*"
            && a.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !token_ok {
            return Err(invalid("holds a scope that is not an RFC 6749 scope token"));
        }
        if !effective.contains(a) {
            return Err(invalid(
                "may only narrow: every scope must be one the delegating grant has",
            )
            .details(json!({ "not_held": a })));
        }
    }
    let mut atoms = atoms;
    atoms.sort();
    atoms.dedup();
    Ok(Some(atoms))
}

/// Whether a delegation may be made from `holder` at all, and with `delegable` onward.
pub fn check_delegable(holder: &Grant, delegable: bool) -> Result<(), ApiError> {
    let refuse = |reason: &str, message: &str| {
        ApiError::forbidden("grant_not_delegable", message.to_string())
            .field("detail_reason", json!(reason))
    };
    if holder.delegation.is_none() {
        return Err(refuse(
            "no_consenting_user",
            "this grant was given to the agent directly, with no consenting user: it cannot be delegated",
        ));
    }
    if !holder.delegable {
        return Err(refuse(
            "holder_not_delegable",
            "this delegation was made without permission to delegate it onward",
        ));
    }
    let child_depth = holder.depth() + 1;
    if child_depth > MAX_DELEGATION_DEPTH || (delegable && child_depth >= MAX_DELEGATION_DEPTH) {
        return Err(refuse(
            "no_onward_hop",
            "the delegation chain is as long as it may be",
        ));
    }
    Ok(())
}

/// Of `listed`, the delegations whose chain is broken (a link above them revoked, expired or
/// gone): listings show them `revoked`. One read of every distinct link, whatever the count.
pub async fn broken_chains(
    ctx: &crate::Ctx,
    listed: &[Grant],
    now: OffsetDateTime,
) -> Result<std::collections::HashSet<Uuid>, ApiError> {
    let mut links: Vec<Uuid> = listed
        .iter()
        .filter_map(|g| g.delegation.as_ref())
        .flat_map(|d| d.ancestors.iter().copied())
        .collect();
    links.sort();
    links.dedup();
    let mut broken = std::collections::HashSet::new();
    let Some(app) = listed.first().map(|g| g.app_id) else {
        return Ok(broken);
    };
    if links.is_empty() {
        return Ok(broken);
    }
    let keys: Vec<_> = links.iter().map(|id| keys::grant(app, *id)).collect();
    let mut alive = std::collections::HashSet::new();
    let mut held_by: Vec<(Uuid, Uuid)> = Vec::new();
    for item in ctx.store.get_many(&keys).await?.into_iter().flatten() {
        let g: Grant = from_item(item)?;
        if g.status_at(now) == "active" {
            alive.insert(g.grant_id);
            if let Principal::Agent { agent_id } = g.principal {
                held_by.push((g.grant_id, agent_id));
            }
        }
    }
    // A link held by an agent that is no longer active is broken too.
    if !held_by.is_empty() {
        let agent_keys: Vec<_> = held_by.iter().map(|(_, a)| keys::agent(app, *a)).collect();
        let agents = ctx.store.get_many(&agent_keys).await?;
        for ((link, _), item) in held_by.iter().zip(agents) {
            let active = match item {
                Some(item) => {
                    from_item::<crate::model::Agent>(item)?.status
                        == crate::model::AgentStatus::Active
                }
                None => false,
            };
            if !active {
                alive.remove(link);
            }
        }
    }
    for g in listed {
        if let Some(d) = &g.delegation
            && d.ancestors.iter().any(|a| !alive.contains(a))
        {
            broken.insert(g.grant_id);
        }
    }
    Ok(broken)
}
