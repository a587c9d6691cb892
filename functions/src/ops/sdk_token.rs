//! `POST /sdk/token`: retrieve mode. Resolves the grant, checks it may be used for this URL,
//! and answers the credential with its injection rule (spec §7.1).
//!
//! Round trips on a warm instance: one read of key, grant and its credential (the managed
//! secret, or the OAuth token item) together, then one transaction with the nonce and the
//! audit row. An OAuth token that would expire within a minute is refreshed first
//! (`oauth::refresh`).

use super::common::{end_user, record};
use portcullis::model::secret::host_allowed;
use portcullis::model::{Grant, GrantKind, Principal};
use portcullis::oauth::refresh;
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface, needs_touch};
use portcullis::service::{delegations, grants, secrets, token};
use portcullis::store::{Item, ItemKey, from_item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE.with(&[
    portcullis::iam::Action::Query,
    portcullis::iam::Action::GenerateDataKey,
    portcullis::iam::Action::Decrypt,
]);

#[derive(Deserialize)]
pub struct Body {
    grant_id: Option<String>,
    provider_id: Option<String>,
    reason: Option<String>,
    request: Option<Target>,
    user_token: Option<String>,
    app_user_id: Option<String>,
    account: Option<String>,
    label: Option<String>,
}

#[derive(Deserialize)]
struct Target {
    method: String,
    url: String,
}

fn grant_id(body: &Body) -> Option<Uuid> {
    body.grant_id
        .as_deref()
        .and_then(|g| Uuid::parse_str(g).ok())
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_token";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("tokens:retrieve");
    type Body = Body;

    fn prefetch(ctx: &Ctx, _: &ApiRequest, body: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        let Some(app) = app else {
            return Vec::new();
        };
        // The user's identity first: its length is fixed, the credential's is not.
        let mut keys = portcullis::idp::prefetch_if(ctx, Some(app), body.user_token.as_deref());
        if let Some(grant_id) = grant_id(body) {
            keys.extend(grants::prefetch_credential(ctx, app, grant_id));
        }
        keys
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let app = call.caller.app();
        call.audit.reason = body.reason.as_ref().map(|r| r.chars().take(1024).collect());
        let mut writes = Vec::new();
        let own = if body.user_token.is_some() {
            portcullis::idp::PREFETCHED
        } else {
            0
        };
        let mut rest = items.split_off(own.min(items.len()));
        let (identity, items) = (&mut items[..], rest.as_mut_slice());
        let user = match &body.user_token {
            Some(token) => Some(end_user(ctx, call, token, identity, &mut writes).await?),
            None => None,
        };
        let target = body
            .request
            .as_ref()
            .ok_or_else(|| ApiError::validation("`request` ({method, url}) is required"))?;
        let host = portcullis::destination::host_of(&target.url)?;
        call.audit.detail = Some(json!({
            "method": target.method.chars().take(16).collect::<String>(),
            "host": host,
        }));

        let grant: Grant = match (&body.grant_id, &body.provider_id) {
            (Some(raw), None) => {
                let id = Uuid::parse_str(raw)
                    .map_err(|_| ApiError::validation("`grant_id` must be a UUID"))?;
                call.audit.grant_id = Some(id.to_string());
                let grant: Grant = record(items.first_mut().and_then(Option::take))?
                    .ok_or_else(grants::grant_not_found)?;
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
                let on_behalf = match (&user, &body.app_user_id) {
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
                {
                    let principal = match (call.caller.agent_key_owner(), &user) {
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
                            label: body.label.as_deref(),
                            account: body.account.as_deref(),
                            delegated_by: on_behalf.as_deref().filter(|_| agent.is_some()),
                        },
                        call.now,
                    )
                    .await?
                }
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
                .hint(
                    "add it to the agent's scopes: {provider: [scopes]} or managed_secret_slugs",
                ));
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
        let mut root_tokens = None;
        if let Some(d) = &grant.delegation {
            if grant.depth() > 1 || d.scope_constraint.is_some() {
                return Err(ApiError::forbidden(
                    "delegated_grant_requires_proxy",
                    "an onward or scope-narrowed delegation is used in proxy mode only: its credential is not handed out",
                )
                .field("grant_id", json!(grant.grant_id)));
            }
            root_tokens = delegations::check_chain(ctx, &grant, call.now).await?;
        }
        if let Some(rule) = &call.caller.request_rule {
            let facts = portcullis::rule::Facts {
                method: None,
                provider_id: grant.kind.provider_id(),
                grant_id: &grant.grant_id.to_string(),
            };
            if rule.denies(&facts) {
                return Err(portcullis::rule::denied());
            }
        }
        let answer = match &grant.kind {
            GrantKind::ManagedSecret { .. } => {
                let own_key = root_tokens.or_else(|| items.get_mut(1).and_then(Option::take));
                let secret = items.get_mut(2).and_then(Option::take);
                managed_secret_answer(ctx, call, &grant, secret, own_key, &host).await?
            }
            GrantKind::OAuth { hosts, .. } => {
                if !host_allowed(hosts, &host) {
                    return Err(blocked(
                        &host,
                        call,
                        "this provider's token may only be sent to its API hosts",
                    ));
                }
                let prefetched = root_tokens.or_else(|| items.get_mut(1).and_then(Option::take));
                let set = match prefetched {
                    Some(item) => Some(from_item(item)?),
                    None => grants::tokens_of(ctx, &grant).await?,
                };
                let set = set.ok_or_else(|| grants::credential_erased(&grant))?;
                let fresh = refresh::fresh(ctx, &grant, set, call.now).await?;
                token::oauth_answer(&grant, &fresh, OffsetDateTime::now_utc())
            }
        };
        let mut outcome =
            Outcome::respond(ApiResponse::ok(&answer).header("cache-control", "no-store"));
        outcome.writes = writes;
        if needs_touch(grant.last_used_at, call.now) {
            outcome.touch = Some(keys::grant(app, grant.grant_id));
        }
        Ok(outcome)
    }
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

/// Provider mode: exactly one active grant of that secret slug held by the principal (the app
/// itself, or the calling agent).
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
    // An app acting for a user: the user's own grants and their groups'.
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
            record(ctx.store.get(&keys::grant(app, one.grant_id), true).await?)?.ok_or_else(grants::grant_not_found)
        }
        many => Err(ApiError::conflict("ambiguous_grant", "several grants match; name one by grant_id or label")
            .field("provider_id", json!(provider))
            .field("account_identifiers", json!(many.iter().filter_map(account_of).collect::<Vec<_>>()))
            .field("account_was_provided", json!(account.is_some()))
            .field("app_user_ids", json!(match principal {
                Principal::User { app_user_id } => vec![app_user_id.clone()],
                _ => Vec::new(),
            }))
            .field("grant_ids", json!(many.iter().map(|g| g.grant_id).collect::<Vec<_>>()))
            .field("candidates", json!(many.iter().take(20).map(|g| json!({
                "grant_id": g.grant_id, "label": g.label, "account_identifier": account_of(g), "account_display_name": null
            })).collect::<Vec<_>>()))
            .field("candidates_truncated", json!(many.len() > 20))),
    }
}

super::handler!(Op);

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

fn account_of(g: &Grant) -> Option<&str> {
    match &g.kind {
        GrantKind::OAuth {
            account_identifier, ..
        } => account_identifier.as_deref(),
        GrantKind::ManagedSecret { .. } => None,
    }
}

fn blocked(host: &str, call: &Call<'_>, why: &str) -> ApiError {
    ApiError::new(
        http::StatusCode::UNPROCESSABLE_ENTITY,
        "blocked_destination",
        format!("`{host}` is not an allowed destination: {why}"),
    )
    .details(json!({ "host": host, "request_id": call.req.request_id }))
}

async fn managed_secret_answer(
    ctx: &Ctx,
    call: &Call<'_>,
    grant: &Grant,
    secret: Option<Item>,
    own_key: Option<Item>,
    host: &str,
) -> Result<serde_json::Value, ApiError> {
    let injected = secrets::injected(ctx, grant, secret, own_key)
        .await?
        .ok_or_else(|| grants::credential_erased(grant))?;
    if !host_allowed(&injected.secret.allowed_hosts, host) {
        return Err(blocked(
            host,
            call,
            "this secret is limited to its allowed hosts",
        ));
    }
    let answer = token::answer(grant, &injected);
    if answer.is_null() {
        return Err(ApiError::internal());
    }
    Ok(answer)
}
