//! What the runtime operations (`/sdk/token`, `/sdk/proxy`) share: they name a grant the same
//! way (spec §7.1, §7.4), so they resolve it here, with every check a use of a grant passes:
//! ownership by the user a token names, an agent's own reach, the delegation chain, status,
//! and the request's deny rule.

use crate::ops::common::{end_user, record};
use portcullis::model::{App, Grant, GrantKind, Principal};
use portcullis::pipeline::Call;
use portcullis::policy::{self, Policy};
use portcullis::service::{delegations, grants};
use portcullis::store::{Item, ItemKey, Write, keys};
use portcullis::{ApiError, Ctx};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

/// How a runtime call names its grant and, optionally, its user.
#[derive(Deserialize)]
pub struct Addressing {
    pub grant_id: Option<String>,
    pub provider_id: Option<String>,
    pub account: Option<String>,
    pub label: Option<String>,
    pub user_token: Option<String>,
    pub app_user_id: Option<String>,
}

impl Addressing {
    fn grant_id(&self) -> Option<Uuid> {
        self.grant_id
            .as_deref()
            .and_then(|g| Uuid::parse_str(g).ok())
    }

    /// Read with the key record in the first round trip: the app (its policy), the user's
    /// identity (their lengths are fixed), then the grant and its credential when named by ID.
    pub fn prefetch(&self, ctx: &Ctx, app: Option<Uuid>) -> Vec<ItemKey> {
        let Some(app) = app else {
            return Vec::new();
        };
        let mut keys = vec![keys::app(app)];
        keys.extend(portcullis::idp::prefetch_if(
            ctx,
            Some(app),
            self.user_token.as_deref(),
        ));
        if let Some(grant_id) = self.grant_id() {
            keys.extend(grants::prefetch_credential(ctx, app, grant_id));
        }
        keys
    }
}

/// A grant a call may use now, and its credential as far as it was read.
pub struct Resolved {
    pub grant: Grant,
    /// The credential item (OAuth tokens, an end user's key): the chain root's for a
    /// delegation, else the prefetched one; `None` when not read yet.
    pub credential: Option<Item>,
    /// The managed secret, when prefetched.
    pub secret: Option<Item>,
    /// The approvals this call waits for, when a policy in force asks for them: the most
    /// approvers any asks for, within the shortest wait.
    pub approval: Option<policy::ApprovalRule>,
}

/// The call a grant is used for: made by Portcullis (proxy mode) or by the caller with the
/// credential it retrieves (the SDK states which call).
pub struct Target<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub proxy: bool,
}

/// Resolves the grant the call names (by ID or provider mode), checks it may be used now for
/// `target`, against every policy in force, and counts the call against their quotas.
pub async fn resolve(
    ctx: &Ctx,
    call: &mut Call<'_>,
    a: &Addressing,
    items: Vec<Option<Item>>,
    writes: &mut Vec<Write>,
    target: &Target<'_>,
) -> Result<Resolved, ApiError> {
    let app = call.caller.app();
    // Read in `Addressing::prefetch`'s order: app, identity, grant, credential, secret.
    let mut items = items.into_iter();
    let app_record: Option<App> = record(items.next().flatten())?;
    let user = match &a.user_token {
        Some(token) => {
            let mut identity: Vec<_> = items.by_ref().take(portcullis::idp::PREFETCHED).collect();
            Some(end_user(ctx, call, token, &mut identity, writes).await?)
        }
        None => None,
    };
    let grant: Grant = match (&a.grant_id, &a.provider_id) {
        (Some(raw), None) => {
            let id = Uuid::parse_str(raw)
                .map_err(|_| ApiError::validation("`grant_id` must be a UUID"))?;
            call.audit.grant_id = Some(id.to_string());
            let grant: Grant =
                record(items.next().flatten())?.ok_or_else(grants::grant_not_found)?;
            match (call.caller.agent_key_owner(), &user) {
                (None, Some(user)) => owned_by_user(&grant, user)?,
                // An agent acting for a user: only that user's delegations to it.
                (Some(_), Some(user)) if delegated_by(&grant) != Some(&user_key(user)) => {
                    return Err(delegations::no_delegated_grant());
                }
                _ => {}
            }
            grant
        }
        (None, Some(provider)) => {
            let agent = call.caller.agent_key_owner();
            // Whose consent the agent's delegation must carry: the token's user, or (for
            // agents) a user named by ID. App keys name users by token only.
            let on_behalf = match (&user, &a.app_user_id) {
                (Some(u), _) => Some(user_key(u)),
                (None, Some(id)) if agent.is_some() => Some(format!("user:{id}")),
                (None, Some(_)) => {
                    return Err(ApiError::not_found(
                        "grant_not_found",
                        "grant for that user",
                    ));
                }
                (None, None) => None,
            };
            let principal = match (agent, &user) {
                (Some(agent), _) => Principal::Agent {
                    agent_id: agent.agent_id,
                },
                (None, Some(user)) => Principal::User {
                    app_user_id: user.app_user_id.to_string(),
                },
                (None, None) => Principal::System,
            };
            resolve_by_provider(
                ctx,
                app,
                &principal,
                user.as_ref(),
                provider,
                Narrowing {
                    label: a.label.as_deref(),
                    account: a.account.as_deref(),
                    delegated_by: on_behalf.as_deref().filter(|_| agent.is_some()),
                },
                call.now,
            )
            .await?
        }
        _ => {
            return Err(ApiError::validation(
                "give exactly one of `grant_id` and `provider_id`",
            ));
        }
    };
    call.audit.grant_id = Some(grant.grant_id.to_string());
    call.audit.resource_type = Some("grant".into());
    call.audit.resource_id = Some(grant.grant_id.to_string());
    // An agent's own key reaches only grants bound to that agent, within its access set.
    if let Some(agent) = call.caller.agent_key_owner() {
        if grant.principal
            != (Principal::Agent {
                agent_id: agent.agent_id,
            })
        {
            return Err(grants::grant_not_found());
        }
        if !agent.allows_grant(&grant.kind, call.now) {
            return Err(ApiError::forbidden(
                "agent_scope_not_allowed",
                "this agent's access set does not include that provider or managed secret",
            )
            .hint("add it to the agent's scopes: {provider: [scopes]} or managed_secret_slugs"));
        }
    }
    // A delegation that ended is no delegation (the SDK's NoDelegatedGrantError).
    if grant.delegation.is_some() && grant.status_at(call.now) != "active" {
        return Err(delegations::no_delegated_grant().field("grant_id", json!(grant.grant_id)));
    }
    match grant.status_at(call.now) {
        "revoked" => {
            return Err(
                ApiError::forbidden("grant_revoked", "this grant has been revoked")
                    .field("grant_id", json!(grant.grant_id)),
            );
        }
        "expired" => {
            return Err(
                ApiError::forbidden("grant_expired", "this grant has expired")
                    .field("provider_id", json!(grant.kind.provider_id()))
                    .field("grant_id", json!(grant.grant_id)),
            );
        }
        _ => {}
    }
    // A delegation is only as good as the chain above it; the credential is the root's.
    let (mut credential, secret) = (items.next().flatten(), items.next().flatten());
    let mut chain = Vec::new();
    if grant.delegation.is_some() {
        let c = delegations::check_chain(ctx, &grant, call.now).await?;
        credential = c.credential;
        chain = c.ancestors;
    }
    if let Some(rule) = &call.caller.request_rule {
        // A retrieved credential may be used for any method: there a method condition counts
        // as met (fail closed); in proxy mode the method is the one Portcullis sends.
        let facts = portcullis::rule::Facts {
            method: target.proxy.then_some(target.method),
            provider_id: grant.kind.provider_id(),
            grant_id: &grant.grant_id.to_string(),
        };
        if rule.denies(&facts) {
            return Err(portcullis::rule::denied());
        }
    }
    let (counters, approval) = enforce(call, app_record.as_ref(), &grant, &chain, target)?;
    policy::count(ctx, &counters, call.now).await?;
    Ok(Resolved {
        grant,
        credential,
        secret,
        approval,
    })
}

/// Every policy in force for this use of `grant` — the app's, the acting agent's, the grant's
/// and those of the grants above a delegation — checked against the call; answers the quota
/// counters to raise. A policy that restricts calls makes the grant proxy-only.
fn enforce(
    call: &Call<'_>,
    app: Option<&App>,
    grant: &Grant,
    chain: &[Grant],
    target: &Target<'_>,
) -> Result<(Vec<policy::Counter>, Option<policy::ApprovalRule>), ApiError> {
    let app_id = call.caller.app();
    // A delegation lets an agent act with the user's credential, never hold it (refused before
    // anything is counted).
    if !target.proxy && grant.delegation.is_some() {
        return Err(ApiError::bad_request(
            "delegated_grant_requires_proxy",
            "a delegation is used in proxy mode only (POST /sdk/proxy): its credential is not handed out",
        )
        .field("grant_id", json!(grant.grant_id)));
    }
    let mut policies: Vec<(&str, String, Policy)> = Vec::new();
    if let Some(p) = app.and_then(|a| a.policy.clone()) {
        policies.push(("app", "app".into(), p));
    }
    if let Some(agent) = &call.caller.agent
        && let Some(v) = &agent.policy
    {
        // Checked when set; one that no longer parses refuses rather than passes.
        let p = Policy::parse("agent.policy", v).map_err(|_| {
            ApiError::forbidden("invalid_policy", "the agent's policy cannot be evaluated")
        })?;
        if let Some(p) = p {
            policies.push(("agent", format!("agent:{}", agent.agent_id), p));
        }
    }
    for g in chain.iter().chain(std::iter::once(grant)) {
        if let Some(p) = &g.policy {
            policies.push(("grant", format!("grant:{}", g.grant_id), p.clone()));
        }
    }
    if !target.proxy && policies.iter().any(|(_, _, p)| p.approval.is_some()) {
        return Err(ApiError::bad_request(
            "hitl_grant_requires_proxy",
            "calls with this grant may need a person's approval, which happens in proxy mode (POST /sdk/proxy)",
        )
        .field("grant_id", json!(grant.grant_id)));
    }
    if !target.proxy && policies.iter().any(|(_, _, p)| p.restricts_calls()) {
        return Err(ApiError::bad_request(
            "restricted_grant_requires_proxy",
            "a policy in force allows only some methods or endpoints, which Portcullis checks in proxy mode (POST /sdk/proxy)",
        )
        .field("grant_id", json!(grant.grant_id)));
    }
    let path = url::Url::parse(target.url)
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    let facts = policy::CallFacts {
        method: target.method,
        path: &path,
        ip: call.req.source_ip,
        now: call.now,
    };
    let mut counters = Vec::new();
    let mut approval: Option<policy::ApprovalRule> = None;
    for (whose, subject, p) in &policies {
        policy::check(p, whose, &facts)?;
        counters.extend(policy::counters(p, whose, app_id, subject, call.now));
        if let Some(rule) = p
            .approval
            .as_ref()
            .filter(|r| r.matches(target.method, &path))
        {
            approval = Some(match approval {
                None => rule.clone(),
                Some(a) => policy::ApprovalRule {
                    approvers: a.approvers.max(rule.approvers),
                    expires_in_seconds: a.expires_in_seconds.min(rule.expires_in_seconds),
                    ..a
                },
            });
        }
    }
    Ok((counters, approval))
}

/// With a user token, a grant named by ID must be that user's or one of their groups':
/// another user's answers as a missing grant; the app's own (system) grant is refused by
/// name, as the SDK documents.
fn owned_by_user(grant: &Grant, user: &portcullis::idp::EndUser) -> Result<(), ApiError> {
    match &grant.principal {
        _ if grants::reaches(grant, user) => Ok(()),
        Principal::System => Err(ApiError::forbidden(
            "system_grant_user_token_mismatch",
            "this grant belongs to the app, not to a user: call it without user_token",
        )),
        _ => Err(grants::grant_not_found()),
    }
}

/// How provider mode narrows the candidates.
struct Narrowing<'a> {
    label: Option<&'a str>,
    account: Option<&'a str>,
    /// Only delegations made with this user's consent (`user:<id>`).
    delegated_by: Option<&'a str>,
}

fn user_key(user: &portcullis::idp::EndUser) -> String {
    format!("user:{}", user.app_user_id)
}

fn delegated_by(g: &Grant) -> Option<&str> {
    g.delegation.as_ref().map(|d| d.delegated_by.as_str())
}

pub fn account_of(g: &Grant) -> Option<&str> {
    match &g.kind {
        GrantKind::OAuth {
            account_identifier, ..
        } => account_identifier.as_deref(),
        GrantKind::ManagedSecret { .. } => None,
    }
}

/// Provider mode: exactly one active grant of that provider or secret slug held by the
/// principal (the app itself, the user with their groups, or the calling agent).
async fn resolve_by_provider(
    ctx: &Ctx,
    app: Uuid,
    principal: &Principal,
    user: Option<&portcullis::idp::EndUser>,
    provider: &str,
    narrowing: Narrowing<'_>,
    now: time::OffsetDateTime,
) -> Result<Grant, ApiError> {
    let Narrowing {
        label,
        account,
        delegated_by: by,
    } = narrowing;
    let (all, _) = match (principal, user) {
        (Principal::User { .. }, Some(user)) => {
            grants::of_user(&ctx.store, app, user, 10_000).await?
        }
        _ => grants::list(&ctx.store, app, Some(principal), 10_000).await?,
    };
    let candidates: Vec<Grant> = all
        .into_iter()
        .filter(|g| g.kind.provider_id() == provider && g.status_at(now) == "active")
        .filter(|g| label.is_none_or(|l| g.label.as_deref() == Some(l)))
        .filter(|g| account.is_none_or(|a| account_of(g) == Some(a)))
        .filter(|g| by.is_none_or(|u| delegated_by(g) == Some(u)))
        .collect();
    match candidates.as_slice() {
        [] if matches!(principal, Principal::Agent { .. }) => Err(delegations::no_delegated_grant()
            .field("provider_id", json!(provider))
            .field("agent_id", json!(principal.id()))),
        [] => Err(grants::grant_not_found().field("provider_id", json!(provider))),
        [one] => {
            // The index is eventually consistent: re-read the grant itself.
            record(ctx.store.get(&keys::grant(app, one.grant_id), true).await?)?
                .ok_or_else(grants::grant_not_found)
        }
        many => Err(ApiError::conflict(
            "ambiguous_grant",
            "several grants match; name one by grant_id or label",
        )
        .field("provider_id", json!(provider))
        .field(
            "account_identifiers",
            json!(many.iter().filter_map(account_of).collect::<Vec<_>>()),
        )
        .field("account_was_provided", json!(account.is_some()))
        .field(
            "app_user_ids",
            json!(match principal {
                Principal::User { app_user_id } => vec![app_user_id.clone()],
                _ => Vec::new(),
            }),
        )
        .field(
            "grant_ids",
            json!(many.iter().map(|g| g.grant_id).collect::<Vec<_>>()),
        )
        .field(
            "candidates",
            json!(many.iter().take(20).map(|g| json!({
                "grant_id": g.grant_id, "label": g.label, "account_identifier": account_of(g), "account_display_name": null
            })).collect::<Vec<_>>()),
        )
        .field("candidates_truncated", json!(many.len() > 20))),
    }
}
