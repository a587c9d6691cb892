//! `POST /sdk/managed-secrets/connect/describe`: what the managed-secret Connect page shows.
//! Before the user has signed in on this browser: the app's name and the session's state
//! only. After: the secret, what the user is asked for (`path`), the agent, and the choices.

use portcullis::model::secret_connect::{Path, SecretConnectSession};
use portcullis::model::{Agent, App, Grant, ManagedSecret, Template, rfc3339};
use portcullis::service::secret_connect::{self, MAX_DELEGATION_TTL};
use portcullis::store::{ItemKey, from_item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::Policy::of(&[portcullis::iam::Action::BatchGetItem]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    session_token: String,
}

/// The session a browser request names, with its app read in the same round trip.
pub async fn load(ctx: &Ctx, token: &str) -> Result<(SecretConnectSession, App), ApiError> {
    let (app_id, r) =
        secret_connect::parse_token(token).ok_or_else(secret_connect::session_not_found)?;
    let mut items = ctx
        .store
        .get_many(&[keys::secret_connect_session(app_id, &r), keys::app(app_id)])
        .await?;
    let app: Option<App> = items[1].take().map(from_item).transpose()?;
    let session: Option<SecretConnectSession> = items[0].take().map(from_item).transpose()?;
    match (session, app) {
        (Some(s), Some(a)) => Ok((s, a)),
        _ => Err(secret_connect::session_not_found()),
    }
}

/// A session the page may still act on: pending and unexpired.
pub fn usable(s: &SecretConnectSession, now: time::OffsetDateTime) -> Result<(), ApiError> {
    match s.status_at(now) {
        "pending" => Ok(()),
        "expired" => Err(ApiError::new(
            http::StatusCode::GONE,
            "connect_session_expired",
            "this Connect session has expired; start again from the app",
        )),
        _ => Err(ApiError::conflict(
            "connect_session_used",
            "this Connect session has already finished; start again from the app",
        )),
    }
}

/// Whether this browser is the one whose sign-in proved the session's user.
pub fn signed_in(s: &SecretConnectSession, req: &ApiRequest) -> bool {
    s.signed_in_browser.as_deref().is_some_and(|hash| {
        secret_connect::browser_matches(hash, req.cookie(&secret_connect::cookie_name(s)))
    })
}

pub fn signin_required() -> ApiError {
    ApiError::forbidden(
        "signin_required",
        "sign in as the user this request is for, on this browser, first",
    )
}

/// What the page and the confirmation need, read in one round trip: the secret, the grant
/// the path names, the agent and the agent's delegation of that grant.
pub struct Facts {
    pub secret: Option<ManagedSecret>,
    pub grant: Option<Grant>,
    pub agent: Option<Agent>,
    pub delegation: Option<Grant>,
}

pub async fn facts(ctx: &Ctx, s: &SecretConnectSession) -> Result<Facts, ApiError> {
    let app = s.app_id;
    let grant_id = s.path.grant_id();
    let mut wanted: Vec<Option<ItemKey>> = vec![
        Some(keys::secret(app, s.secret_id)),
        grant_id.map(|g| keys::grant(app, g)),
        s.agent_id.map(|a| keys::agent(app, a)),
        grant_id
            .zip(s.agent_id)
            .map(|(g, a)| keys::grant(app, portcullis::model::grant::child_id(g, a))),
    ];
    let present: Vec<ItemKey> = wanted.iter().flatten().cloned().collect();
    let mut read = ctx.store.get_many(&present).await?.into_iter();
    let mut next = |slot: &mut Option<ItemKey>| slot.take().and_then(|_| read.next().flatten());
    let secret = next(&mut wanted[0]).map(from_item).transpose()?;
    let grant = next(&mut wanted[1]).map(from_item).transpose()?;
    let agent = next(&mut wanted[2]).map(from_item).transpose()?;
    let delegation = next(&mut wanted[3]).map(from_item).transpose()?;
    Ok(Facts {
        secret,
        grant,
        agent,
        delegation,
    })
}

/// The fields the user fills in for a template (the key never comes back).
fn fields(t: &Template) -> Value {
    match t {
        Template::Bearer => json!([{"name": "token", "label": "API token", "secret": true}]),
        Template::ApiKey { .. } | Template::QueryParam { .. } => {
            json!([{"name": "api_key", "label": "API key", "secret": true}])
        }
        Template::AwsSigv4 { .. } => json!([
            {"name": "access_key_id", "label": "Access key ID", "secret": false},
            {"name": "secret_access_key", "label": "Secret access key", "secret": true},
        ]),
        Template::Basic => json!([
            {"name": "username", "label": "Username", "secret": false},
            {"name": "password", "label": "Password", "secret": true},
        ]),
    }
}

/// The lifetimes the user picks within: `(default, most)` seconds; `None` is no expiry.
pub fn lifetimes(s: &SecretConnectSession) -> (Option<i64>, Option<i64>) {
    let cap = if s.agent_id.is_some() {
        Some(MAX_DELEGATION_TTL)
    } else {
        None
    };
    let most = match (s.max_ttl_seconds, cap) {
        (Some(m), Some(c)) => Some(m.min(c)),
        (m, c) => m.or(c),
    };
    let default = match (s.default_ttl_seconds, most) {
        (Some(d), Some(m)) => Some(d.min(m)),
        (d, m) => d.or(m),
    };
    (default, most)
}

async fn describe(ctx: &Ctx, req: &ApiRequest) -> Result<Value, ApiError> {
    let body: Body = req.json()?;
    let (s, app) = load(ctx, &body.session_token).await?;
    let mut out = json!({
        "app": { "name": app.name },
        "status": s.status_at(req.received_at),
        "expires_at": rfc3339(s.expires_at),
        "allowed_origin": s.allowed_origin,
        "return_url": s.return_url,
        "error": s.error,
        "signed_in": false,
    });
    if !signed_in(&s, req) || s.status_at(req.received_at) != "pending" {
        return Ok(out);
    }
    let f = facts(ctx, &s).await?;
    let secret = f
        .secret
        .ok_or_else(portcullis::service::secrets::secret_not_found)?;
    let (default_ttl, max_ttl) = lifetimes(&s);
    let existing = match (&s.path, &f.grant) {
        (Path::FastPath { .. } | Path::Repair { .. }, Some(g)) => json!({
            "grant_id": g.grant_id,
            "label": g.label,
            "created_at": rfc3339(g.created_at),
            "own_key": g.kind.credential_in_grant(),
            "shared": !matches!(g.principal, portcullis::model::Principal::User { .. }),
        }),
        _ => Value::Null,
    };
    let agent = f.agent.as_ref().map(|a| {
        json!({
            "agent_id": a.agent_id,
            "name": a.display_name.clone().unwrap_or_else(|| a.name.clone()),
        })
    });
    let blocked = f.agent.as_ref().and_then(|a| {
        (!a.allows_secret(&secret.slug, req.received_at)
            || a.status != portcullis::model::AgentStatus::Active)
            .then_some(
                "This agent is not allowed to use this service. Ask the app's administrator.",
            )
    });
    // Onward sharing starts from the existing delegation, else on for an app's request and
    // off for an agent's own (the user opts the agent in).
    let delegable_default = match &f.delegation {
        Some(d) if d.status_at(req.received_at) == "active" => d.delegable,
        _ => !s.by_agent_key,
    };
    out["signed_in"] = json!(true);
    out["secret"] = json!({
        "name": secret.name,
        "slug": secret.slug,
        "fields": fields(&secret.template),
        "hosts": secret.allowed_hosts,
    });
    out["path"] = json!(s.path.name());
    out["existing_grant"] = existing;
    out["label"] = json!(s.label);
    out["agent"] = json!(agent);
    out["requested_by"] = json!(if s.by_agent_key { "agent" } else { "app" });
    out["delegable"] = json!({
        "offered": s.delegable_requested,
        "default": s.delegable_requested && delegable_default,
    });
    out["lifetime"] = json!({ "default_seconds": default_ttl, "max_seconds": max_ttl });
    out["blocked"] = json!(blocked);
    Ok(out)
}

pub fn handle(
    ctx: &Ctx,
    req: ApiRequest,
) -> Pin<Box<dyn Future<Output = ApiResponse> + Send + '_>> {
    Box::pin(async move {
        match describe(ctx, &req).await {
            Ok(v) => crate::web::json(&v),
            Err(e) => crate::web::error(&e),
        }
    })
}
