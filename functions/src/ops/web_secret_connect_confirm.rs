//! `POST /sdk/managed-secrets/connect/confirm`: the signed-in user confirms on the page. By
//! the session's path: their key becomes their own grant (`key_entry`), replaces the key of
//! their grant in place (`repair`), or nothing new is stored for the grant they hold
//! (`fast_path`); with an agent, the agent's delegation of that grant is made (or renewed in
//! place). One transaction: the grant, the sealed key, the delegation, the session's outcome
//! and the audit row.

use super::web_secret_connect_describe::{Facts, facts, lifetimes, load, signed_in, usable};
use aws_sdk_dynamodb::types::AttributeValue;
use portcullis::model::secret_connect::{Path, SecretConnectSession, SessionStatus};
use portcullis::model::{Agent, AgentStatus, Grant, GrantKind, ManagedSecret, Principal, rfc3339};
use portcullis::service::secret_connect::{self, no_eligible_grants};
use portcullis::service::{delegations, grants, secrets};
use portcullis::store::{Condition, TxError, Write};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use time::OffsetDateTime;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::Policy::of(&[
    portcullis::iam::Action::BatchGetItem,
    portcullis::iam::Action::Query,
    portcullis::iam::Action::PutItem,
    portcullis::iam::Action::UpdateItem,
    portcullis::iam::Action::ConditionCheckItem,
    portcullis::iam::Action::GenerateDataKey,
]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    session_token: String,
    key: Option<secrets::ValueInput>,
    delegable: Option<bool>,
    ttl_seconds: Option<i64>,
}

fn gone() -> ApiError {
    ApiError::conflict(
        "connect_session_stale",
        "what this request was about changed since it was made; start again from the app",
    )
}

async fn confirm(ctx: &Ctx, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let body: Body = req.json()?;
    let (mut session, _) = load(ctx, &body.session_token).await?;
    usable(&session, req.received_at)?;
    if !signed_in(&session, req) {
        return Err(super::web_secret_connect_describe::signin_required());
    }
    let now = OffsetDateTime::now_utc();
    let Facts {
        secret,
        grant: held,
        agent,
        delegation: previous,
    } = facts(ctx, &session).await?;
    let secret = secret.ok_or_else(gone)?;
    let agent = match session.agent_id {
        Some(_) => Some(eligible_agent(agent, &secret, now)?),
        None => None,
    };
    let ttl = chosen_ttl(&session, body.ttl_seconds)?;
    let user = Principal::User {
        app_user_id: session.app_user_id.to_string(),
    };
    let mut writes = Vec::new();
    let (mut grant, operation) = match session.path {
        Path::KeyEntry => {
            let key = body.key.ok_or_else(|| {
                ApiError::validation("enter the key: `key` is required for a new key")
            })?;
            let value = secrets::value_for(&secret.template, key)?;
            let (mine, _) = grants::list(&ctx.store, session.app_id, Some(&user), 10_000).await?;
            if secret_connect::own_key_of(&mine, session.app_user_id, secret.secret_id).is_some() {
                return Err(gone());
            }
            if let Some(label) = &session.label
                && mine.iter().any(|g| {
                    g.kind.provider_id() == secret.slug
                        && g.label.as_deref() == Some(label)
                        && g.status_at(now) == "active"
                })
            {
                return Err(ApiError::conflict(
                    "sibling_label_conflict",
                    "you already hold a grant with this label",
                )
                .field("label", json!(label)));
            }
            let mut g = grants::new_managed_secret_grant(
                &secret,
                user.clone(),
                session.label.clone(),
                None,
                if agent.is_none() {
                    ttl.map(|t| now + time::Duration::seconds(t))
                } else {
                    None
                },
                session.created_by.clone(),
                now,
            );
            if let GrantKind::ManagedSecret { end_user_key, .. } = &mut g.kind {
                *end_user_key = true;
            }
            g.grant_id = secret_connect::own_key_id(secret.secret_id, session.app_user_id);
            writes.push(Write::Put {
                item: secrets::end_user_key_item(ctx, g.app_id, g.grant_id, &value, now).await?,
                condition: None,
            });
            (g, "creation")
        }
        Path::Repair { .. } => {
            let key = body.key.ok_or_else(|| {
                ApiError::validation("enter the new key: `key` is required to replace a key")
            })?;
            let value = secrets::value_for(&secret.template, key)?;
            let g = held
                .filter(|g| own_key(g, &user, &secret))
                .ok_or_else(gone)?;
            writes.push(Write::Put {
                item: secrets::end_user_key_item(ctx, g.app_id, g.grant_id, &value, now).await?,
                condition: None,
            });
            (g, "repair")
        }
        Path::FastPath { .. } => {
            let g = held
                .filter(|g| {
                    secret_connect::usable_for(g, secret.secret_id, agent.is_some(), now)
                        && matches!(
                            &g.principal,
                            Principal::User { .. } | Principal::Group { .. }
                        )
                        && (g.principal == user || agent.is_none())
                })
                .ok_or_else(gone)?;
            (g, "approval")
        }
    };

    let mut entry = json!({
        "grant_id": grant.grant_id,
        "provider": secret.slug,
        "provider_name": secret.name,
        "operation": operation,
        "status": "active",
        "timestamp": rfc3339(now),
        "credential_kind": if grant.kind.credential_in_grant() { "end_user" } else { "developer" },
    });
    match (&session.path, &agent) {
        (Path::KeyEntry, agent) => {
            // The new grant is written whole, already naming its one delegation; over nothing
            // but a revoked own key of this user (its ID is theirs for this secret).
            if let Some(agent) = agent {
                grant.delegated_agent_ids.push(agent.agent_id);
                let child = delegation(&session, &grant, agent, body.delegable, ttl, now);
                describe_delegation(&mut entry, &child, agent, false);
                writes.push(Write::Put {
                    item: grants::item(&child),
                    condition: None,
                });
            }
            writes.push(Write::Put {
                item: grants::item(&grant),
                condition: Some(
                    Condition::new("attribute_not_exists(pk) OR #s = :revoked")
                        .name("#s", "status")
                        .value(":revoked", AttributeValue::S("revoked".into())),
                ),
            });
            writes.push(Write::Check {
                key: portcullis::store::keys::secret(secret.app_id, secret.secret_id),
                condition: Condition::present(),
            });
        }
        (Path::Repair { .. }, agent) => {
            // An expired key lives again, for the lifetime picked (without an agent) or none.
            let expiry = match agent {
                None => ttl.map(|t| now + time::Duration::seconds(t)),
                Some(_) => None,
            };
            let joining = agent
                .as_ref()
                .filter(|a| !grant.delegated_agent_ids.contains(&a.agent_id));
            if joining.is_some()
                && grant.delegated_agent_ids.len() >= delegations::MAX_DELEGATIONS_PER_GRANT
            {
                return Err(too_many_delegations());
            }
            writes.push(repair_update(&grant, expiry, joining.map(|a| a.agent_id)));
            // The delegation is bounded by the grant as repaired, not as it was read.
            grant.expires_at = expiry;
            if let Some(agent) = agent {
                let child = delegation(&session, &grant, agent, body.delegable, ttl, now);
                let updated = previous
                    .as_ref()
                    .is_some_and(|p| p.status_at(now) == "active");
                describe_delegation(&mut entry, &child, agent, updated);
                writes.push(Write::Put {
                    item: grants::item(&child),
                    condition: None,
                });
                writes.extend(delegations::renewal_writes(previous.as_ref(), now));
            }
        }
        (Path::FastPath { .. }, None) => writes.push(Write::Check {
            key: portcullis::store::keys::grant(grant.app_id, grant.grant_id),
            condition: Condition::new("#s = :active")
                .name("#s", "status")
                .value(":active", AttributeValue::S("active".into())),
        }),
        (Path::FastPath { .. }, Some(agent)) => {
            let renewing = grant.delegated_agent_ids.contains(&agent.agent_id);
            if !renewing
                && grant.delegated_agent_ids.len() >= delegations::MAX_DELEGATIONS_PER_GRANT
            {
                return Err(too_many_delegations());
            }
            let child = delegation(&session, &grant, agent, body.delegable, ttl, now);
            let updated = previous
                .as_ref()
                .is_some_and(|p| p.status_at(now) == "active");
            describe_delegation(&mut entry, &child, agent, updated);
            writes.extend(delegations::create_writes(&grant, &child, agent.agent_id));
            writes.extend(delegations::renewal_writes(previous.as_ref(), now));
        }
    }

    session.status = SessionStatus::Completed;
    session.result = Some(json!([entry]));
    let browser = session.signed_in_browser.clone().unwrap_or_default();
    writes.push(Write::Put {
        item: secret_connect::item(&session),
        condition: Some(
            Condition::new("#s = :pending AND signed_in_browser = :b")
                .name("#s", "status")
                .value(":pending", AttributeValue::S("pending".into()))
                .value(":b", AttributeValue::S(browser)),
        ),
    });
    let detail = json!({
        "grant_id": grant.grant_id,
        "provider_id": secret.slug,
        "operation": operation,
        "delegation_id": entry.get("delegation_id"),
        "agent_id": session.agent_id,
    });
    writes.push(Write::Put {
        item: crate::web::audit_row(
            req,
            session.app_id,
            "web_secret_connect_confirm",
            200,
            None,
            &session.ref_id,
            Some(detail),
        ),
        condition: None,
    });
    match ctx.store.transact(writes).await {
        Ok(()) => {}
        Err(TxError::ConditionFailed(_)) => return Err(gone()),
        Err(TxError::Unavailable(e)) => return Err(e),
    }
    Ok(crate::web::json(&json!({
        "status": "completed",
        "grants": [entry],
        "allowed_origin": session.allowed_origin,
        "return_url": session.return_url,
    })))
}

/// The user's own key for this secret, not revoked.
fn own_key(g: &Grant, user: &Principal, secret: &ManagedSecret) -> bool {
    g.principal == *user
        && g.delegation.is_none()
        && g.status == portcullis::model::GrantStatus::Active
        && matches!(&g.kind, GrantKind::ManagedSecret { secret_id, end_user_key: true, .. } if *secret_id == secret.secret_id)
}

/// A replaced key renews its grant (its delegations kept): the new expiry, or none; with the
/// agent it is now delegated to, in the same update (one write per item in a transaction).
fn repair_update(
    g: &Grant,
    expires_at: Option<OffsetDateTime>,
    joining: Option<uuid::Uuid>,
) -> Write {
    let mut values = vec![(":active".into(), AttributeValue::S("active".into()))];
    let mut set = Vec::new();
    if let Some(t) = expires_at {
        set.push("expires_at = :exp");
        values.push((":exp".into(), AttributeValue::S(rfc3339(t))));
    }
    if let Some(agent) = joining {
        set.push(
            "delegated_agent_ids = list_append(if_not_exists(delegated_agent_ids, :empty), :agent)",
        );
        values.push((":empty".into(), AttributeValue::L(Vec::new())));
        values.push((
            ":agent".into(),
            AttributeValue::L(vec![AttributeValue::S(agent.to_string())]),
        ));
    }
    let mut update = String::new();
    if !set.is_empty() {
        update = format!("SET {}", set.join(", "));
    }
    if expires_at.is_none() {
        update = format!("{update} REMOVE expires_at").trim().to_string();
    }
    Write::Update {
        key: portcullis::store::keys::grant(g.app_id, g.grant_id),
        update,
        condition: Some("#s = :active".into()),
        names: vec![("#s".into(), "status".into())],
        values,
    }
}

fn too_many_delegations() -> ApiError {
    ApiError::conflict(
        "delegation_limit_reached",
        "this grant is already shared with as many agents as it may be",
    )
}

fn describe_delegation(entry: &mut serde_json::Value, child: &Grant, agent: &Agent, updated: bool) {
    entry["delegation_id"] = json!(child.grant_id);
    entry["agent_id"] = json!(agent.agent_id);
    entry["updated"] = json!(updated);
    entry["delegable"] = json!(child.delegable);
}

/// The agent of the session, still active and allowed this secret.
fn eligible_agent(
    agent: Option<Agent>,
    secret: &ManagedSecret,
    now: OffsetDateTime,
) -> Result<Agent, ApiError> {
    let agent = agent
        .filter(|a| a.status == AgentStatus::Active)
        .ok_or_else(|| ApiError::not_found("agent_not_found", "agent"))?;
    if !agent.allows_secret(&secret.slug, now) {
        return Err(no_eligible_grants(
            "agent_not_allowlisted",
            "this agent is not allowed to use this service; ask the app's administrator",
        ));
    }
    Ok(agent)
}

/// The longest lifetime a user may give their own grant (as `grant_policy` allows).
const MAX_GRANT_TTL: i64 = 31_536_000;

/// The lifetime the user picked (within the session's bounds), or the default.
fn chosen_ttl(s: &SecretConnectSession, picked: Option<i64>) -> Result<Option<i64>, ApiError> {
    let (default, most) = lifetimes(s);
    match picked {
        None => Ok(default),
        Some(t) if (60..=most.unwrap_or(MAX_GRANT_TTL)).contains(&t) => Ok(Some(t)),
        Some(_) => Err(ApiError::validation(format!(
            "`ttl_seconds` must be 60–{}",
            most.unwrap_or(MAX_GRANT_TTL)
        ))),
    }
}

fn delegation(
    s: &SecretConnectSession,
    parent: &Grant,
    agent: &Agent,
    delegable: Option<bool>,
    ttl: Option<i64>,
    now: OffsetDateTime,
) -> Grant {
    // Onward sharing only when it was asked for; the user's tick decides.
    let delegable = s.delegable_requested && delegable.unwrap_or(!s.by_agent_key);
    delegations::child(
        parent,
        agent.agent_id,
        &Principal::User {
            app_user_id: s.app_user_id.to_string(),
        }
        .key(),
        delegations::Terms {
            delegable,
            scope_constraint: None,
            expires_at: ttl.map(|t| now + time::Duration::seconds(t)),
        },
        s.created_by.clone(),
        now,
    )
}

pub fn handle(
    ctx: &Ctx,
    req: ApiRequest,
) -> Pin<Box<dyn Future<Output = ApiResponse> + Send + '_>> {
    Box::pin(async move {
        match confirm(ctx, &req).await {
            Ok(r) => r,
            Err(e) => crate::web::error(&e),
        }
    })
}
