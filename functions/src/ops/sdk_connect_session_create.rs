//! `POST /sdk/oauth/connect/session`: a Connect session for an end user to authorize one of
//! the app's providers on the hosted page (spec §7.6). Without a user token the grant it
//! makes belongs to the app itself.

use portcullis::model::connect::{ConnectSession, ConnectStatus};
use portcullis::model::{Grant, GrantKind, Principal, ProviderConfig};
use portcullis::oauth::connect;
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::service::{agents, grants, providers, validate};
use portcullis::store::{Condition, Item, ItemKey, Write, from_item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, model::rfc3339};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Query]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    allowed_providers: Option<Vec<String>>,
    return_url: Option<String>,
    allowed_origin: Option<String>,
    metadata: Option<Value>,
    #[serde(default)]
    direct: bool,
    #[serde(default)]
    switch_account: bool,
    allow_user_policy_rules: Option<bool>,
    grant_policy: Option<GrantPolicy>,
    required_scopes: Option<BTreeMap<String, Vec<String>>>,
    requested_grant: Option<RequestedGrant>,
    repair_grant_id: Option<String>,
    agent: Option<String>,
    delegable: Option<bool>,
    scope_constraint: Option<Vec<String>>,
    user_token: Option<String>,
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrantPolicy {
    max_ttl_seconds: Option<i64>,
    default_ttl_seconds: Option<i64>,
    expires_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestedGrant {
    label: String,
    restrictions: Option<Value>,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_connect_session_create";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("connect:initiate");
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
        super::common::app_key_only(call, "OAuth Connect sessions")?;
        let app = call.caller.app();
        let mut writes = Vec::new();
        let principal = match &body.user_token {
            Some(token) => {
                let user =
                    super::common::end_user(ctx, call, token, &mut items, &mut writes).await?;
                Principal::User {
                    app_user_id: user.app_user_id.to_string(),
                }
            }
            None => Principal::System,
        };
        let agent = match &body.agent {
            Some(_) if principal == Principal::System => {
                return Err(ApiError::bad_request(
                    "agent_requires_user_token",
                    "delegating to an agent needs a consenting user: send user_token",
                ));
            }
            Some(_) if body.repair_grant_id.is_some() => {
                return Err(ApiError::validation(
                    "`repair_grant_id` cannot be combined with `agent`",
                ));
            }
            Some(a) => Some(agents::active(ctx, app, a).await?.agent_id),
            None => None,
        };
        if body.scope_constraint.is_some() && agent.is_none() {
            return Err(ApiError::new(
                http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_scope_constraint",
                "`scope_constraint` narrows a delegation, and this session delegates to no agent",
            ));
        }
        let scope_constraint = body
            .scope_constraint
            .map(|atoms| {
                // Checked against the scopes actually granted when the grant is made.
                let mut atoms = atoms;
                atoms.sort();
                atoms.dedup();
                let ok = !atoms.is_empty()
                    && atoms.len() <= 100
                    && atoms.iter().all(|a| !a.is_empty() && a.len() <= 512 && a != "*");
                ok.then_some(atoms).ok_or_else(|| {
                    ApiError::new(
                        http::StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_scope_constraint",
                        "`scope_constraint` holds 1 to 100 scopes of at most 512 characters, not `*`",
                    )
                })
            })
            .transpose()?;
        let _ = body.allow_user_policy_rules;
        let providers = chosen_providers(ctx, app, body.allowed_providers.as_deref()).await?;
        if body.direct && providers.len() != 1 {
            return Err(ApiError::validation(
                "`direct` requires exactly one provider",
            ));
        }
        let required_scopes = required_scopes(&providers, body.required_scopes)?;
        let repair_grant_id = match &body.repair_grant_id {
            Some(raw) => Some(repair_target(ctx, app, raw, &providers, &principal).await?),
            None => None,
        };
        let (label, restrictions) = match body.requested_grant {
            Some(r) => (
                validate::label(Some(&r.label))?,
                r.restrictions
                    .as_ref()
                    .map(restrictions)
                    .transpose()?
                    .flatten(),
            ),
            None => (None, None),
        };
        let return_url = body
            .return_url
            .as_deref()
            .map(|u| validate::endpoint_url("return_url", u))
            .transpose()?;
        let allowed_origin = body
            .allowed_origin
            .as_deref()
            .map(|o| validate::origin("allowed_origin", o))
            .transpose()?;
        let grant_policy = body
            .grant_policy
            .map(|p| check_policy(p, call.now))
            .transpose()?;
        let metadata = body.metadata.filter(|m| !m.is_null());
        if metadata
            .as_ref()
            .is_some_and(|m| !m.is_object() || m.to_string().len() > 4096)
        {
            return Err(ApiError::validation(
                "`metadata` must be an object of at most 4 KiB",
            ));
        }

        let (token, ref_id) = connect::new_token(app);
        let expires_at = call.now + connect::SESSION_LIFE;
        let session = ConnectSession {
            app_id: app,
            ref_id,
            providers: providers.iter().map(|p| p.provider_id.clone()).collect(),
            required_scopes,
            return_url,
            allowed_origin,
            repair_grant_id,
            label,
            restrictions,
            principal: Some(principal),
            agent_id: agent,
            delegable: body.delegable.unwrap_or(false),
            scope_constraint,
            grant_policy,
            metadata,
            direct: body.direct,
            switch_account: body.switch_account,
            status: ConnectStatus::Pending,
            attempt: None,
            result: None,
            error: None,
            created_by: call.caller.created_by(),
            created_at: call.now,
            expires_at,
            ttl: (expires_at + time::Duration::days(1)).unix_timestamp(),
        };
        call.audit.resource_type = Some("connect_session".into());
        call.audit.resource_id = Some(session.ref_id.clone());
        let connect_url = format!(
            "{}/sdk/oauth/connect#session={}",
            ctx.public_url(call.req)?,
            token
        );
        let answer = json!({
            "session_token": token,
            "connect_url": connect_url,
            "expires_in": connect::SESSION_LIFE.whole_seconds(),
            "expires_at": rfc3339(expires_at),
            "single_provider": session.providers.len() == 1,
            "direct": session.direct,
        });
        writes.push(Write::Put {
            item: connect::item(&session),
            condition: Some(Condition::absent()),
        });
        Ok(Outcome::with_writes(
            ApiResponse::ok(&answer).header("cache-control", "no-store"),
            writes,
            ApiError::conflict("write_conflict", "retry"),
        ))
    }
}

/// The providers offered: those named (lower-cased, de-duplicated), or every configured one.
async fn chosen_providers(
    ctx: &Ctx,
    app: Uuid,
    named: Option<&[String]>,
) -> Result<Vec<ProviderConfig>, ApiError> {
    let Some(named) = named else {
        let all = providers::list(ctx, app).await?;
        if all.is_empty() {
            return Err(ApiError::bad_request(
                "provider_not_configured",
                "this app has no OAuth provider configured",
            )
            .hint("an operator adds one with PUT /v1/apps/{app_id}/providers/{provider_id}"));
        }
        return Ok(all);
    };
    if named.is_empty() || named.len() > 50 {
        return Err(ApiError::validation(
            "`allowed_providers` must list 1–50 providers",
        ));
    }
    let mut ids: Vec<String> = Vec::new();
    for p in named {
        let id = p.trim().to_ascii_lowercase();
        validate::provider_id(&id)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let items = ctx
        .store
        .get_many(
            &ids.iter()
                .map(|id| keys::provider(app, id))
                .collect::<Vec<_>>(),
        )
        .await?;
    ids.iter()
        .zip(items)
        .map(|(id, item)| match item {
            Some(item) => from_item(item),
            None => Err(portcullis::providers::provider_not_configured(id)),
        })
        .collect()
}

fn required_scopes(
    providers: &[ProviderConfig],
    asked: Option<BTreeMap<String, Vec<String>>>,
) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let mut out = BTreeMap::new();
    for (provider, scopes) in asked.unwrap_or_default() {
        let id = provider.trim().to_ascii_lowercase();
        let config = providers
            .iter()
            .find(|p| p.provider_id == id)
            .ok_or_else(|| {
                ApiError::validation(format!(
                    "`required_scopes` names `{id}`, which this session does not offer"
                ))
            })?;
        let scopes = validate::scopes("required_scopes", &scopes)?;
        let outside: Vec<&String> = scopes
            .iter()
            .filter(|s| !config.allowed_scopes.contains(s))
            .collect();
        if !outside.is_empty() {
            return Err(ApiError::bad_request(
                "scope_not_allowed",
                format!("{id} scopes outside the app's allowlist were asked for"),
            )
            .field("provider_id", json!(id))
            .field("scopes", json!(outside))
            .hint("an operator widens allowed_scopes with PUT /v1/apps/{app_id}/providers/{provider_id}"));
        }
        out.insert(id, scopes);
    }
    Ok(out)
}

async fn repair_target(
    ctx: &Ctx,
    app: Uuid,
    raw: &str,
    providers: &[ProviderConfig],
    principal: &Principal,
) -> Result<Uuid, ApiError> {
    let id = Uuid::try_parse(raw)
        .map_err(|_| ApiError::validation("`repair_grant_id` must be a UUID"))?;
    let grant: Grant = ctx
        .store
        .get(&keys::grant(app, id), true)
        .await?
        .map(from_item)
        .transpose()?
        .ok_or_else(grants::grant_not_found)?;
    // Only the session's own principal's grants can be repaired (another user's is missing).
    if grant.principal != *principal {
        return Err(grants::grant_not_found());
    }
    match (&grant.kind, providers) {
        (GrantKind::OAuth { provider_id, .. }, [one]) if *provider_id == one.provider_id => Ok(id),
        (GrantKind::OAuth { .. }, [_]) => Err(ApiError::validation(
            "`repair_grant_id` names a grant of another provider",
        )),
        (GrantKind::OAuth { .. }, _) => Err(ApiError::validation(
            "`repair_grant_id` requires exactly one provider",
        )),
        _ => Err(grants::grant_not_found()),
    }
}

/// `requested_grant.restrictions`: the methods and endpoints the new grant may be used for
/// (then in proxy mode only), in the policy document's terms.
fn restrictions(v: &Value) -> Result<Option<portcullis::policy::Policy>, ApiError> {
    let p = portcullis::policy::Policy::parse("requested_grant.restrictions", v)?;
    if let Some(p) = &p
        && (p.ip_allowlist.is_some() || p.schedule.is_some() || p.quotas.is_some())
    {
        return Err(ApiError::validation(
            "`requested_grant.restrictions` holds `allowed_methods` and `allowed_endpoints` only",
        ));
    }
    Ok(p)
}

fn check_policy(p: GrantPolicy, now: time::OffsetDateTime) -> Result<Value, ApiError> {
    for (field, v) in [
        ("max_ttl_seconds", p.max_ttl_seconds),
        ("default_ttl_seconds", p.default_ttl_seconds),
    ] {
        if v.is_some_and(|v| !(60..=31_536_000).contains(&v)) {
            return Err(ApiError::validation(format!(
                "`grant_policy.{field}` must be 60–31536000 seconds"
            )));
        }
    }
    if let (Some(d), Some(m)) = (p.default_ttl_seconds, p.max_ttl_seconds)
        && d > m
    {
        return Err(ApiError::validation(
            "`grant_policy.default_ttl_seconds` exceeds `max_ttl_seconds`",
        ));
    }
    super::common::future_time("grant_policy.expires_at", p.expires_at.as_deref(), now)?;
    Ok(serde_json::to_value(&p).expect("JSON"))
}

super::handler!(Op);
