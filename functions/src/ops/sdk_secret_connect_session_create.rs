//! `POST /sdk/managed-secrets/connect/session`: a managed-secret Connect session (spec §7.7).
//! The user the `user_token` names signs in on the hosted page and either enters their own
//! key for the secret (`key_entry`), approves access they already hold (`fast_path`) or
//! replaces their own key in place (`repair`); with `agent`, approval also delegates that
//! access to the agent. Nothing is stored but the session until the user confirms.

use super::common::{end_user, record};
use portcullis::model::secret_connect::{Path, SecretConnectSession, SessionStatus};
use portcullis::model::{Agent, GrantKind, IdpConfig, ManagedSecret, rfc3339};
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::service::secret_connect::{self, no_eligible_grants};
use portcullis::service::{agents, grants, secrets, validate};
use portcullis::store::{Condition, Item, ItemKey, Query, Write, from_item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Query]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    provider: Option<String>,
    template_slug: Option<String>,
    agent: Option<String>,
    delegated_agent_id: Option<String>,
    user_token: Option<String>,
    requested_ttl_seconds: Option<i64>,
    allowed_origin: Option<String>,
    return_url: Option<String>,
    allow_user_policy_rules: Option<bool>,
    delegable: Option<bool>,
    requested_grant: Option<RequestedGrant>,
    grant_policy: Option<GrantPolicy>,
    direct: Option<bool>,
    repair_grant_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestedGrant {
    label: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantPolicy {
    max_ttl_seconds: Option<i64>,
    default_ttl_seconds: Option<i64>,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_secret_connect_session_create";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scopes(&["connect:initiate", "secrets:write"]);
    type Body = Body;

    fn prefetch(ctx: &Ctx, _: &ApiRequest, body: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        let mut keys = portcullis::idp::prefetch_if(ctx, app, body.user_token.as_deref());
        if let (Some(app), Some(p)) = (app, &body.provider)
            && slug("provider", p).is_ok()
        {
            keys.push(keys::secret_slug(app, p));
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
        let token = body.user_token.as_deref().ok_or_else(|| {
            ApiError::validation("`user_token` is required: the session is bound to a user")
        })?;
        let terms = Terms::of(&body)?;
        let mut writes = Vec::new();
        let (identity, rest) = items.split_at_mut(portcullis::idp::PREFETCHED);
        let config: Option<IdpConfig> = match &identity[0] {
            Some(item) => Some(from_item(item.clone())?),
            None => None,
        };
        let user = end_user(ctx, call, token, identity, &mut writes).await?;
        // Only the user can approve, after signing in on the page: that needs the sign-in client.
        if config.is_none_or(|c| c.signin.is_none()) {
            return Err(super::sdk_auth_session_create::not_configured()
                .details(json!({ "reason": "signin_client_missing" })));
        }
        let agent = target_agent(ctx, call, &body).await?;
        let by_agent_key = call.caller.agent_key_owner().is_some();
        if by_agent_key && terms.repair.is_some() {
            // Whether the grant is the user's key would tell the agent what the user holds.
            return Err(ApiError::validation(
                "an agent's own key cannot repair a user's key: the application does",
            ));
        }
        let slug_item = rest.first_mut().and_then(Option::take);
        let (secret, user_grants) = match &body.provider {
            Some(slug) => {
                let secret = by_slug(ctx, app, slug_item).await?;
                if terms
                    .template
                    .as_deref()
                    .is_some_and(|t| t != secret.template.slug())
                {
                    return Err(ApiError::new(
                        http::StatusCode::UNPROCESSABLE_ENTITY,
                        "secret_template_mismatch",
                        format!(
                            "`{slug}` is not of template `{}`",
                            terms.template.as_deref().unwrap_or_default()
                        ),
                    ));
                }
                let (all, _) = grants::of_user(&ctx.store, app, &user, 10_000).await?;
                (secret, all)
            }
            None => {
                by_template(
                    ctx,
                    app,
                    &user,
                    &terms,
                    agent.is_some(),
                    by_agent_key,
                    call.now,
                )
                .await?
            }
        };
        call.audit.resource_type = Some("managed_secret".into());
        call.audit.resource_id = Some(secret.secret_id.to_string());

        let path = match terms.repair {
            Some(id) => {
                match secret_connect::own_key_of(&user_grants, user.app_user_id, secret.secret_id) {
                    Some(g) if g.grant_id == id => Path::Repair { grant_id: id },
                    _ => return Err(grants::grant_not_found()),
                }
            }
            None => secret_connect::choose_path(
                &user_grants,
                user.app_user_id,
                secret.secret_id,
                agent.is_some(),
                terms.label.as_deref(),
                call.now,
            ),
        };
        if let Some(agent) = &agent
            && !agent.allows_secret(&secret.slug, call.now)
            && !by_agent_key
        {
            // An agent's own key is not told what blocks it: the page tells the user.
            return Err(no_eligible_grants(
                "agent_not_allowlisted",
                "this agent's access set does not include this managed secret",
            ));
        }

        let (session_token, ref_id) = secret_connect::new_token(app);
        let expires_at = call.now + secret_connect::SESSION_LIFE;
        let delegable_requested = terms.delegable && agent.is_some();
        // A repair is always direct; an agent's own key is not told the path this way either.
        let direct = (matches!(path, Path::Repair { .. }) && !by_agent_key)
            || (terms.direct && !terms.delegable);
        let session = SecretConnectSession {
            app_id: app,
            ref_id,
            secret_id: secret.secret_id,
            secret_slug: secret.slug.clone(),
            app_user_id: user.app_user_id,
            agent_id: agent.as_ref().map(|a| a.agent_id),
            by_agent_key,
            path,
            label: terms.label.clone(),
            delegable_requested,
            direct,
            allow_user_policy_rules: terms.allow_user_policy_rules,
            default_ttl_seconds: terms.default_ttl,
            max_ttl_seconds: terms.max_ttl,
            return_url: terms.return_url.clone(),
            allowed_origin: terms.allowed_origin.clone(),
            status: SessionStatus::Pending,
            signin: None,
            signed_in_browser: None,
            result: None,
            error: None,
            created_by: call.caller.created_by(),
            created_at: call.now,
            expires_at,
            ttl: (expires_at + time::Duration::days(1)).unix_timestamp(),
        };
        // What the user holds is not told to an agent's own key.
        let (path_name, existing) = if by_agent_key {
            (Value::Null, Value::Null)
        } else {
            (json!(path.name()), json!(path.grant_id()))
        };
        let answer = json!({
            "session_token": session_token,
            "connect_url": format!("{}/sdk/managed-secrets/connect#session={session_token}", ctx.public_url(call.req)?),
            "expires_in": secret_connect::SESSION_LIFE.whole_seconds(),
            "expires_at": rfc3339(expires_at),
            "delegable_requested": terms.delegable,
            "path": path_name,
            "existing_grant_id": existing,
            "direct": direct,
            "secret_slug": secret.slug,
            "template_slug": secret.template.slug(),
            "agent_id": session.agent_id,
        });
        writes.push(Write::Put {
            item: secret_connect::item(&session),
            condition: Some(Condition::absent()),
        });
        Ok(Outcome::with_writes(
            ApiResponse::ok(&answer).header("cache-control", "no-store"),
            writes,
            ApiError::conflict("write_conflict", "retry"),
        ))
    }
}

/// The request's options, checked.
struct Terms {
    template: Option<String>,
    label: Option<String>,
    repair: Option<Uuid>,
    delegable: bool,
    direct: bool,
    allow_user_policy_rules: bool,
    default_ttl: Option<i64>,
    max_ttl: Option<i64>,
    return_url: Option<String>,
    allowed_origin: Option<String>,
}

impl Terms {
    fn of(body: &Body) -> Result<Terms, ApiError> {
        if body.provider.is_none() && body.template_slug.is_none() {
            return Err(ApiError::validation(
                "name the managed secret: `provider` (its slug)",
            ));
        }
        if let Some(p) = &body.provider {
            slug("provider", p)?;
        }
        let template = body
            .template_slug
            .as_deref()
            .map(|t| {
                let t = t.to_ascii_lowercase();
                slug("template_slug", &t).map(|_| t.clone())
            })
            .transpose()?;
        if body.agent.is_some() && body.delegated_agent_id.is_some() {
            return Err(ApiError::validation(
                "give `agent` or the deprecated `delegated_agent_id`, not both",
            ));
        }
        let label = body
            .requested_grant
            .as_ref()
            .map(|r| validate::label(Some(&r.label)))
            .transpose()?
            .flatten();
        let repair = body
            .repair_grant_id
            .as_deref()
            .map(|r| {
                Uuid::try_parse(r)
                    .map_err(|_| ApiError::validation("`repair_grant_id` must be a UUID"))
            })
            .transpose()?;
        if repair.is_some()
            && (body.agent.is_some() || body.delegated_agent_id.is_some() || label.is_some())
        {
            return Err(ApiError::validation(
                "`repair_grant_id` cannot be combined with `agent` or `requested_grant`",
            ));
        }
        if body.grant_policy.is_some() && body.requested_ttl_seconds.is_some() {
            return Err(ApiError::validation(
                "give `grant_policy` or `requested_ttl_seconds`, not both",
            ));
        }
        let ttl = |field: &str, v: Option<i64>| match v {
            Some(v) if !(60..=31_536_000).contains(&v) => Err(ApiError::validation(format!(
                "`{field}` must be 60–31536000 seconds"
            ))),
            v => Ok(v),
        };
        let (mut default_ttl, max_ttl) = match &body.grant_policy {
            Some(p) => (
                ttl("grant_policy.default_ttl_seconds", p.default_ttl_seconds)?,
                ttl("grant_policy.max_ttl_seconds", p.max_ttl_seconds)?,
            ),
            None => (None, None),
        };
        if let (Some(d), Some(m)) = (default_ttl, max_ttl)
            && d > m
        {
            return Err(ApiError::validation(
                "`grant_policy.default_ttl_seconds` exceeds `max_ttl_seconds`",
            ));
        }
        if let Some(r) = ttl("requested_ttl_seconds", body.requested_ttl_seconds)? {
            default_ttl = Some(r);
        }
        Ok(Terms {
            template,
            label,
            repair,
            delegable: body.delegable.unwrap_or(false),
            direct: body.direct.unwrap_or(false),
            allow_user_policy_rules: body.allow_user_policy_rules.unwrap_or(true),
            default_ttl,
            max_ttl,
            return_url: body
                .return_url
                .as_deref()
                .map(|u| validate::endpoint_url("return_url", u))
                .transpose()?,
            allowed_origin: body
                .allowed_origin
                .as_deref()
                .map(|o| validate::origin("allowed_origin", o))
                .transpose()?,
        })
    }
}

fn slug<'a>(field: &str, s: &'a str) -> Result<&'a str, ApiError> {
    let ok = (1..=50).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then_some(s).ok_or_else(|| {
        ApiError::validation(format!(
            "`{field}` is 1–50 lowercase letters, digits and hyphens"
        ))
    })
}

/// The agent the session delegates to: the one named (an app key), or the calling agent
/// itself (its own key, which may name no other).
async fn target_agent(ctx: &Ctx, call: &Call<'_>, body: &Body) -> Result<Option<Agent>, ApiError> {
    let named = body.agent.as_deref().or(body.delegated_agent_id.as_deref());
    match (call.caller.agent_key_owner(), named) {
        (Some(me), None) => Ok(Some(me.clone())),
        (Some(me), Some(n)) => {
            let same = Uuid::try_parse(n).is_ok_and(|id| id == me.agent_id) || n == me.name;
            if !same {
                return Err(ApiError::bad_request(
                    "agent_cannot_delegate_to_other_agent",
                    "an agent's own key asks for itself only: name no other agent",
                ));
            }
            Ok(Some(me.clone()))
        }
        (None, Some(n)) => Ok(Some(agents::active(ctx, call.caller.app(), n).await?)),
        (None, None) => Ok(None),
    }
}

/// The app's active secret with this slug (404 `secret_not_found` otherwise).
async fn by_slug(
    ctx: &Ctx,
    app: Uuid,
    reservation: Option<Item>,
) -> Result<ManagedSecret, ApiError> {
    let id = reservation
        .as_ref()
        .and_then(|r| portcullis::store::s(r, "secret_id"))
        .and_then(|s| Uuid::try_parse(s).ok())
        .ok_or_else(secrets::secret_not_found)?;
    record(ctx.store.get(&keys::secret(app, id), true).await?)?
        .ok_or_else(secrets::secret_not_found)
}

/// The deprecated `template_slug`-only form: the app's one secret of that template, else a
/// grant of any secret of that template the user already holds.
async fn by_template(
    ctx: &Ctx,
    app: Uuid,
    user: &portcullis::idp::EndUser,
    terms: &Terms,
    with_agent: bool,
    by_agent_key: bool,
    now: time::OffsetDateTime,
) -> Result<(ManagedSecret, Vec<portcullis::model::Grant>), ApiError> {
    let template = terms.template.as_deref().unwrap_or_default();
    let all: Vec<ManagedSecret> = ctx
        .store
        .query_all(Query::index(keys::app_secrets_index(app), "gsi1"))
        .await?;
    let mut of_template: Vec<ManagedSecret> = all
        .into_iter()
        .filter(|s| s.template.slug() == template)
        .collect();
    let (held, _) = grants::of_user(&ctx.store, app, user, 10_000).await?;
    if of_template.len() == 1 {
        return Ok((of_template.remove(0), held));
    }
    if by_agent_key {
        // Looking among the user's grants would tell the agent what the user holds.
        return Err(no_eligible_grants(
            "no_grant",
            "no single managed secret has this template: name it with `provider`",
        ));
    }
    let mut usable: Vec<_> = held
        .iter()
        .filter(|g| {
            of_template
                .iter()
                .any(|s| secret_connect::usable_for(g, s.secret_id, with_agent, now))
        })
        .collect();
    usable.sort_by_key(|g| std::cmp::Reverse(g.created_at));
    let Some(GrantKind::ManagedSecret { secret_id, .. }) = usable.first().map(|g| &g.kind) else {
        return Err(no_eligible_grants(
            "no_grant",
            "no single managed secret has this template and the user holds no grant of one",
        ));
    };
    let secret = of_template
        .into_iter()
        .find(|s| s.secret_id == *secret_id)
        .ok_or_else(secrets::secret_not_found)?;
    Ok((secret, held))
}

super::handler!(Op);
