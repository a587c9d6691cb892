//! The request pipeline every operation runs through, top to bottom:
//! authenticate (key, signature, replay) → resolve the caller → authorize (scope or role) →
//! operate → audit (in the same transaction as the operation's writes) → respond.
//!
//! An operation only supplies its name, its access rule, how to parse its body, which items
//! it wants read alongside the key record (one round trip), and its own logic.

use crate::apikey::PresentedKey;
use crate::audit::AuditEvent;
use crate::context::Ctx;
use crate::error::ApiError;
use crate::http::{ApiRequest, ApiResponse};
use crate::model::key::KeyState;
use crate::model::{
    Agent, AgentStatus, App, DirectoryEntry, KeyOwner, KeyRecord, Member, Role, rfc3339,
};
use crate::ratelimit;
use crate::scopes;
use crate::signing::{self, SignedParts};
use crate::store::{Condition, Item, ItemKey, TxError, Write, from_item, keys};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::future::Future;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;

/// Which API an operation belongs to, and so which keys may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `/sdk/...`: app keys (and later agent and derived keys).
    Sdk,
    /// `/v1/...`: operator keys of organisation members.
    Operator,
}

pub enum Access {
    /// Any valid key of the surface.
    AnyKey,
    /// An Alter scope the key must hold.
    Scope(&'static str),
    /// Alter scopes the key must all hold.
    Scopes(&'static [&'static str]),
    /// Member roles allowed (operator surface).
    Roles(&'static [Role]),
}

pub const ADMINS: &[Role] = &[Role::Owner, Role::Admin];
pub const OWNERS: &[Role] = &[Role::Owner];
pub const AUDIT_READERS: &[Role] = &[Role::Owner, Role::Admin, Role::Auditor];

/// The body of operations that take none (GET, DELETE): any JSON object is ignored.
#[derive(Debug, serde::Deserialize)]
pub struct Empty {}

/// Identity headers of a request (attribution, not authorization).
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub caller: Option<String>,
    pub caller_type: Option<String>,
    pub actor_id: Option<String>,
    pub context: Map<String, Value>,
}

pub struct Caller {
    pub key: KeyRecord,
    /// SDK calls: the key's app. Operator calls: the app named in the path, checked to be
    /// the member's organisation's.
    pub app_id: Option<Uuid>,
    pub org_id: Option<Uuid>,
    pub member: Option<Member>,
    /// Scopes in force: the key's, narrowed by `X-Alter-Scope-Constraints`.
    pub scopes: Vec<String>,
    pub identity: Identity,
    /// The managed agent acting: the owner of an agent key, or the agent an app key names
    /// in `X-Alter-Caller` (impersonation: attribution, not isolation).
    pub agent: Option<Agent>,
    /// The request's own deny rule, enforced by the runtime operations (token, proxy).
    pub request_rule: Option<crate::rule::RequestRule>,
}

impl Caller {
    /// The agent whose own key is calling: only its grants are reachable.
    pub fn agent_key_owner(&self) -> Option<&Agent> {
        self.agent
            .as_ref()
            .filter(|a| self.key.agent_id == Some(a.agent_id))
    }

    /// The app of an SDK call (always set on that surface).
    pub fn app(&self) -> Uuid {
        self.app_id.expect("SDK calls are bound to an app")
    }

    pub fn created_by(&self) -> String {
        match &self.member {
            Some(m) => format!("operator:{}", m.member_id),
            None => format!("key:{}", self.key.key_id),
        }
    }
}

pub struct Call<'a> {
    pub req: &'a ApiRequest,
    pub now: OffsetDateTime,
    pub caller: Caller,
    /// The row being written for this request; operations add the resource they touched.
    pub audit: AuditEvent,
}

/// What an operation produced: the answer, the writes that must commit with the audit row,
/// and the error to answer if one of those writes' conditions fails.
pub struct Outcome {
    pub response: ApiResponse,
    pub writes: Vec<Write>,
    pub on_conflict: Option<ApiError>,
    /// An item whose `last_used_at` is stale (see `needs_touch`), refreshed best-effort.
    pub touch: Option<ItemKey>,
}

impl Outcome {
    pub fn respond(response: ApiResponse) -> Self {
        Self {
            response,
            writes: Vec::new(),
            on_conflict: None,
            touch: None,
        }
    }

    pub fn with_writes(response: ApiResponse, writes: Vec<Write>, on_conflict: ApiError) -> Self {
        Self {
            response,
            writes,
            on_conflict: Some(on_conflict),
            touch: None,
        }
    }
}

/// `last_used_at` is kept to this precision: at most one refresh per item and interval per
/// instance, so busy keys and grants do not turn every read into a write.
const TOUCH_INTERVAL: time::Duration = time::Duration::minutes(5);

pub fn needs_touch(last_used_at: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    last_used_at.is_none_or(|t| now - t >= TOUCH_INTERVAL)
}

/// Refreshes `last_used_at`; runs beside the commit (no extra round trip in sequence) and
/// never fails the request.
async fn touch(ctx: &Ctx, key: Option<ItemKey>, now: OffsetDateTime) {
    let Some(key) = key else { return };
    let write = Write::Update {
        key,
        update: "SET last_used_at = :now".into(),
        condition: Some("attribute_exists(pk)".into()),
        names: Vec::new(),
        values: vec![(":now".into(), AttributeValue::S(rfc3339(now)))],
    };
    if ctx.store.transact(vec![write]).await.is_err() {
        tracing::debug!("last_used_at refresh skipped");
    }
}

pub trait Operation: Sync {
    /// The operation's name: its route, handler file, Lambda function and audit action.
    const NAME: &'static str;
    const SURFACE: Surface;
    const ACCESS: Access;
    type Body: DeserializeOwned + Send;

    fn parse(req: &ApiRequest) -> Result<Self::Body, ApiError> {
        req.json()
    }

    /// The operation acts outside the table (proxy mode's upstream call): the request's nonce
    /// and rate counters are claimed before it runs, so neither a replay nor a request over
    /// its limit ever repeats the act.
    const ACTS_OUTSIDE: bool = false;

    /// Operator operations on one app return its ID from the path.
    fn target_app(_req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        None
    }

    /// Items to read in the same round trip as the key record.
    fn prefetch(
        _ctx: &Ctx,
        _req: &ApiRequest,
        _body: &Self::Body,
        _app_id: Option<Uuid>,
    ) -> Vec<ItemKey> {
        Vec::new()
    }

    fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Self::Body,
        items: Vec<Option<Item>>,
    ) -> impl Future<Output = Result<Outcome, ApiError>> + Send;
}

fn header<'r>(req: &'r ApiRequest, name: &str) -> &'r str {
    req.header(name).unwrap_or("")
}

fn app_not_found() -> ApiError {
    ApiError::not_found("app_not_found", "app")
}

/// Runs one request through the pipeline; never fails: every error is an enveloped answer.
pub async fn serve<O: Operation>(ctx: &Ctx, req: ApiRequest) -> ApiResponse {
    let response = match authenticate_and_run::<O>(ctx, &req).await {
        Ok(r) | Err(r) => r,
    };
    with_request_id(response, &req)
}

fn with_request_id(r: ApiResponse, req: &ApiRequest) -> ApiResponse {
    r.header("x-request-id", &req.request_id)
}

/// Before the app is known nothing can be audited: answer and log only.
fn unaudited<O: Operation>(req: &ApiRequest, e: ApiError) -> ApiResponse {
    tracing::info!(
        operation = O::NAME,
        request_id = %req.request_id,
        status = e.status.as_u16(),
        error = e.code,
        "request refused before a caller was known"
    );
    ApiResponse::error(&e)
}

async fn locate(ctx: &Ctx, key: &PresentedKey) -> Result<DirectoryEntry, ApiError> {
    let hash = key.hash();
    if let Some(entry) = ctx.cached_directory(&hash) {
        return Ok(entry);
    }
    let item = ctx
        .store
        .get(&keys::key_directory(&hash), true)
        .await?
        .ok_or_else(ApiError::invalid_key)?;
    let entry: DirectoryEntry = from_item(item)?;
    ctx.remember_directory(entry.clone());
    Ok(entry)
}

/// State of a request once its caller's owner is known: everything after this is audited.
struct Audited<'a> {
    req: &'a ApiRequest,
    owner_partition: String,
    event: AuditEvent,
    deprecated: bool,
    nonce: Option<ItemKey>,
    /// Answered as `X-Alter-Actor-ID` (the SDK then signs it on later requests).
    actor: Option<Uuid>,
    /// Rate limits this request counts against (raised in its transaction).
    limits: Vec<ratelimit::Limit>,
    /// Whether the request was counted (for the `X-RateLimit-Remaining` answer).
    counted: bool,
    /// Nonce and counters were written before the operation ran (`ACTS_OUTSIDE`).
    claimed: bool,
}

async fn authenticate_and_run<O: Operation>(
    ctx: &Ctx,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiResponse> {
    let now = req.received_at;
    let raw_key = req.header("x-api-key").unwrap_or("");
    if raw_key.is_empty() {
        return Err(unaudited::<O>(
            req,
            ApiError::unauthorized("invalid_key", "the x-api-key header is missing"),
        ));
    }
    let presented = PresentedKey::parse(raw_key).map_err(|e| unaudited::<O>(req, e))?;
    let entry = locate(ctx, &presented)
        .await
        .map_err(|e| unaudited::<O>(req, e))?;

    let target_app = O::target_app(req);
    let (app_id, org_id, owner_partition) = match entry.owner {
        KeyOwner::App { app_id } => (Some(app_id), None, keys::app_partition(app_id)),
        KeyOwner::Member { org_id, .. } => (None, Some(org_id), keys::org_partition(org_id)),
    };
    let mut a = Audited {
        req,
        owner_partition,
        event: AuditEvent {
            request_id: req.request_id.clone(),
            time: rfc3339(now),
            app_id: app_id.map(|a| a.to_string()),
            org_id: org_id.map(|o| o.to_string()),
            action: O::NAME.to_string(),
            key_id: Some(entry.key_id.to_string()),
            key_prefix: Some(presented.prefix()),
            client_ip: req.source_ip.map(|ip| ip.to_string()),
            user_agent: req.user_agent(),
            ..Default::default()
        },
        deprecated: false,
        nonce: None,
        actor: None,
        limits: Vec::new(),
        counted: false,
        claimed: false,
    };

    match (O::SURFACE, entry.owner) {
        (Surface::Sdk, KeyOwner::App { .. }) | (Surface::Operator, KeyOwner::Member { .. }) => {}
        (Surface::Sdk, _) => {
            return Err(a
                .fail(
                    ctx,
                    ApiError::unauthorized(
                        "invalid_key",
                        "operator keys cannot call the SDK API; use an app key",
                    ),
                )
                .await);
        }
        (Surface::Operator, _) => {
            return Err(a
                .fail(
                    ctx,
                    ApiError::unauthorized(
                        "invalid_key",
                        "app keys cannot call the operator API; use an operator key",
                    ),
                )
                .await);
        }
    }

    // Parse now (to know what to prefetch) but answer a bad body only once the caller is
    // authenticated: an unauthenticated caller learns nothing from our validation.
    let body = O::parse(req);
    let target = match &target_app {
        Some(Ok(id)) => Some(*id),
        _ => None,
    };
    let effective_app = app_id.or(target);

    let mut reads = vec![match entry.owner {
        KeyOwner::App { app_id } => keys::app_key(app_id, entry.key_id),
        KeyOwner::Member { org_id, .. } => keys::org_key(org_id, entry.key_id),
    }];
    // The acting agent: an agent key's own, or one an app key names as its caller.
    let impersonated = match entry.agent_id {
        None => impersonated_agent(req),
        Some(_) => None,
    };
    let acting_agent = entry.agent_id.or(impersonated);
    let (mut member_slot, mut app_slot, mut agent_slot, mut parent_slot) = (None, None, None, None);
    let (mut key_counter_slot, mut agent_counter_slot) = (None, None);
    match entry.owner {
        KeyOwner::Member { org_id, member_id } => {
            member_slot = Some(reads.len());
            reads.push(keys::org_member(org_id, member_id));
            if let Some(app) = target {
                app_slot = Some(reads.len());
                reads.push(keys::app(app));
            }
        }
        KeyOwner::App { app_id } => {
            if let Some(agent_id) = acting_agent {
                agent_slot = Some(reads.len());
                reads.push(keys::agent(app_id, agent_id));
            }
            if let Some(parent) = entry.parent_key_id {
                parent_slot = Some(reads.len());
                reads.push(keys::app_key(app_id, parent));
            }
            // Rate counters, read now so a limit costs no extra round trip.
            let owner = keys::app_partition(app_id);
            key_counter_slot = Some(reads.len());
            reads.push(ratelimit::counter(
                &owner,
                &format!("key:{}", entry.key_id),
                now,
            ));
            if let Some(agent_id) = acting_agent {
                agent_counter_slot = Some(reads.len());
                reads.push(ratelimit::counter(
                    &owner,
                    &format!("agent:{agent_id}"),
                    now,
                ));
            }
        }
    }
    let fixed = reads.len();
    if let Ok(b) = &body {
        reads.extend(O::prefetch(ctx, req, b, effective_app));
    }
    let mut items = ctx
        .store
        .get_many(&reads)
        .await
        .map_err(|e| ApiResponse::error(&e))?;
    let extra = items.split_off(fixed);

    // The key record: exists, matches the presented hash, not revoked or expired.
    let record: KeyRecord = match items[0].take() {
        Some(item) => from_item(item).map_err(|e| ApiResponse::error(&e))?,
        None => return Err(a.fail(ctx, ApiError::invalid_key()).await),
    };
    let hash_ok: bool = record
        .key_hash
        .as_bytes()
        .ct_eq(presented.hash().as_bytes())
        .into();
    if !hash_ok {
        return Err(a.fail(ctx, ApiError::invalid_key()).await);
    }
    // A derived key dies with its parent: revoked, expired or rotated away.
    let parent_dead = match parent_slot {
        None => false,
        Some(i) => match items[i].take().map(from_item::<KeyRecord>).transpose() {
            Ok(Some(parent)) => {
                !matches!(parent.state(now), KeyState::Active | KeyState::Deprecated)
            }
            _ => true,
        },
    };
    let state = if parent_dead {
        KeyState::Revoked
    } else {
        record.state(now)
    };
    match state {
        KeyState::RotatedAway => {
            return Err(a
                .fail(
                    ctx,
                    ApiError::unauthorized(
                        "key_rotated_grace_expired",
                        "this key was rotated and its overlap has ended",
                    )
                    .hint("use the key that replaced it"),
                )
                .await);
        }
        KeyState::Revoked => {
            return Err(a
                .fail(
                    ctx,
                    ApiError::unauthorized("key_revoked", "this API key has been revoked")
                        .hint("mint a new key"),
                )
                .await);
        }
        KeyState::Expired => {
            return Err(a
                .fail(
                    ctx,
                    ApiError::unauthorized("key_expired", "this API key has expired")
                        .hint("mint a new key"),
                )
                .await);
        }
        KeyState::Deprecated => a.deprecated = true,
        KeyState::Active => {}
    }
    if !crate::cidr::allows(&record.cidr_allowlist, req.source_ip) {
        return Err(a
            .fail(
                ctx,
                ApiError::forbidden(
                    "ip_not_allowed",
                    "this key may not be used from this address",
                )
                .hint("the key has a CIDR allowlist"),
            )
            .await);
    }

    // Signature, freshness, body integrity.
    let identity = match verify_signature(ctx, req, &presented, now) {
        Ok(identity) => identity,
        Err(e) => return Err(a.fail(ctx, e).await),
    };
    a.event.caller = identity.caller.clone();
    a.event.caller_type = identity.caller_type.clone();
    a.event.actor_id = identity.actor_id.clone();
    a.event.context = identity.context.clone();
    // From here the nonce is spent, whatever the outcome.
    a.nonce = Some(keys::nonce(
        &a.owner_partition,
        record.key_id,
        header(req, "x-alter-nonce"),
    ));

    let member = match entry.owner {
        KeyOwner::Member { .. } => {
            let m: Option<Member> = member_slot
                .and_then(|i| items[i].take())
                .map(from_item)
                .transpose()
                .map_err(|e| ApiResponse::error(&e))?;
            match m {
                Some(m) if m.removed_at.is_none() => Some(m),
                _ => return Err(a.fail(ctx, ApiError::invalid_key()).await),
            }
        }
        KeyOwner::App { .. } => None,
    };
    // The acting agent must exist in this app and be active.
    let agent: Option<Agent> = match acting_agent {
        None => None,
        Some(_) => {
            let found: Option<Agent> = agent_slot
                .and_then(|i| items[i].take())
                .map(from_item)
                .transpose()
                .map_err(|e| ApiResponse::error(&e))?;
            match found {
                None if impersonated.is_some() => {
                    return Err(a
                        .fail(
                            ctx,
                            ApiError::not_found(
                                "caller_agent_unresolved",
                                "agent named by X-Alter-Caller",
                            )
                            .hint("X-Alter-Caller must be the ID of an agent of this app"),
                        )
                        .await);
                }
                None => return Err(a.fail(ctx, ApiError::invalid_key()).await),
                Some(agent) => match agent.status {
                    AgentStatus::Active => Some(agent),
                    AgentStatus::Inactive => {
                        return Err(a.fail(ctx, ApiError::unauthorized("agent_inactive", "this agent is suspended")
                            .hint("resume it with PATCH /sdk/agents/{id} {\"status\":\"active\"}")).await);
                    }
                    AgentStatus::Revoked => {
                        return Err(a
                            .fail(
                                ctx,
                                ApiError::unauthorized(
                                    "agent_revoked",
                                    "this agent has been deleted",
                                ),
                            )
                            .await);
                    }
                },
            }
        }
    };
    (a.event.principal_type, a.event.principal_id) = match (&member, &agent) {
        (Some(m), _) => (Some("member".into()), Some(m.member_id.to_string())),
        (None, Some(agent)) => (Some("agent".into()), Some(agent.agent_id.to_string())),
        (None, None) => (Some("app".into()), app_id.map(|a| a.to_string())),
    };
    a.actor = actor_id(
        app_id,
        &identity,
        agent.as_ref().filter(|_| impersonated.is_some()),
    );

    // Requests-per-minute limits of the key and the acting agent.
    let mut take_used = |slot: Option<usize>| ratelimit::used(slot.and_then(|i| items[i].take()));
    let (key_used, agent_used) = (take_used(key_counter_slot), take_used(agent_counter_slot));
    if let (Some(limit), Some(app)) = (record.rate_limit_rpm, app_id) {
        let counter = ratelimit::counter(
            &keys::app_partition(app),
            &format!("key:{}", record.key_id),
            now,
        );
        a.limits.push(ratelimit::Limit::new(
            "api_key", counter, limit, key_used, now,
        ));
    }
    if let (Some(agent), Some(app)) = (&agent, app_id)
        && let Some(limit) = agent.rate_limit_per_minute
    {
        let counter = ratelimit::counter(
            &keys::app_partition(app),
            &format!("agent:{}", agent.agent_id),
            now,
        );
        a.limits.push(ratelimit::Limit::new(
            "agent", counter, limit, agent_used, now,
        ));
    }
    if let Some(full) = a.limits.iter().find(|l| l.used >= l.limit).cloned() {
        return Err(a.refuse_over_limit(ctx, &full).await);
    }

    // Scopes in force, narrowed by constraints; the request's own deny rule, if any.
    let scopes = match narrow_scopes(req, &record.scopes) {
        Ok(s) => s,
        Err(e) => return Err(a.fail(ctx, e).await),
    };
    let request_rule = match header(req, "x-alter-request-rule") {
        "" => None,
        raw => match crate::rule::RequestRule::parse(raw) {
            Ok(rule) => Some(rule),
            Err(e) => return Err(a.fail(ctx, e).await),
        },
    };
    match O::ACCESS {
        Access::AnyKey => {}
        Access::Scope(scope) => {
            if let Err(e) = scopes::require(&scopes, scope) {
                return Err(a.fail(ctx, e).await);
            }
        }
        Access::Scopes(required) => {
            if let Some(e) = required
                .iter()
                .find_map(|scope| scopes::require(&scopes, scope).err())
            {
                return Err(a.fail(ctx, e).await);
            }
        }
        Access::Roles(roles) => {
            let role = member.as_ref().map(|m| m.role);
            if !role.is_some_and(|r| roles.contains(&r)) {
                let e = ApiError::forbidden(
                    "insufficient_role",
                    format!(
                        "this operation needs the role {}",
                        roles
                            .iter()
                            .map(|r| r.as_str())
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                );
                return Err(a.fail(ctx, e).await);
            }
        }
    }

    // Operator calls on an app: the app must be this organisation's, else it does not exist.
    if let Some(target) = target_app {
        let app_id = match target {
            Ok(id) => id,
            Err(e) => return Err(a.fail(ctx, e).await),
        };
        let app: Option<App> = app_slot
            .and_then(|i| items[i].take())
            .map(from_item)
            .transpose()
            .map_err(|e| ApiResponse::error(&e))?;
        match app {
            Some(app) if Some(app.org_id) == org_id => {
                a.owner_partition = keys::app_partition(app_id);
                a.event.app_id = Some(app_id.to_string());
            }
            _ => return Err(a.fail(ctx, app_not_found()).await),
        }
    }

    let body = match body {
        Ok(b) => b,
        Err(e) => return Err(a.fail(ctx, e).await),
    };

    let mut call = Call {
        req,
        now,
        caller: Caller {
            key: record,
            app_id: app_id.or(target),
            org_id,
            member,
            scopes,
            identity,
            agent,
            request_rule,
        },
        audit: std::mem::take(&mut a.event),
    };
    if O::ACTS_OUTSIDE {
        a.event = std::mem::take(&mut call.audit);
        a.claim(ctx).await?;
        call.audit = std::mem::take(&mut a.event);
    }
    let result = O::run(ctx, &mut call, body, extra).await;
    a.event = call.audit;
    match result {
        Ok(mut outcome) => {
            let key_touch = needs_touch(call.caller.key.last_used_at, now)
                .then(|| crate::service::keys::record_key(&call.caller.key));
            let op_touch = outcome.touch.take();
            let (response, (), ()) = tokio::join!(
                a.commit(ctx, outcome),
                touch(ctx, key_touch, now),
                touch(ctx, op_touch, now)
            );
            Ok(response)
        }
        Err(e) => Err(a.fail(ctx, e).await),
    }
}

impl Audited<'_> {
    fn stamp(&mut self, status: u16, error: Option<&ApiError>) {
        self.event.status = status;
        self.event.outcome = AuditEvent::outcome_for(status).to_string();
        self.event.error_code = error.map(|e| e.code.to_string());
        self.event.latency_ms = self.req.received.elapsed().as_millis() as u64;
    }

    fn nonce_write(&self) -> Option<Write> {
        let key = self.nonce.clone()?;
        let expires = self.req.received_at.unix_timestamp() + 2 * 3600;
        let item = crate::store::to_item(&serde_json::json!({ "ttl": expires }), &key, &[]);
        Some(Write::Put {
            item,
            condition: Some(Condition {
                expression: "attribute_not_exists(pk) OR #ttl < :now".into(),
                names: vec![("#ttl".into(), "ttl".into())],
                values: vec![(
                    ":now".into(),
                    AttributeValue::N(self.req.received_at.unix_timestamp().to_string()),
                )],
            }),
        })
    }

    fn finish(&self, mut r: ApiResponse) -> ApiResponse {
        // One structured line per answered request: identifiers and outcome, never values.
        let e = &self.event;
        tracing::info!(
            operation = %e.action,
            request_id = %e.request_id,
            app_id = e.app_id.as_deref().unwrap_or(""),
            org_id = e.org_id.as_deref().unwrap_or(""),
            key_prefix = e.key_prefix.as_deref().unwrap_or(""),
            status = e.status,
            error = e.error_code.as_deref().unwrap_or(""),
            latency_ms = e.latency_ms,
            "request"
        );
        if self.deprecated {
            r = r.header("x-alter-key-deprecated", "true");
        }
        if let Some(actor) = self.actor {
            r = r.header("x-alter-actor-id", &actor.to_string());
        }
        ratelimit::headers(r, &self.limits, self.counted)
    }

    /// Answers 429 for a full window: the audit row and nonce are written, no counter moves.
    async fn refuse_over_limit(&mut self, ctx: &Ctx, full: &ratelimit::Limit) -> ApiResponse {
        let e = full.exceeded(self.req.received_at);
        let mut limits = std::mem::take(&mut self.limits);
        for l in &mut limits {
            if l.counter == full.counter {
                l.used = l.used.max(l.limit);
            }
        }
        let r = Box::pin(self.fail(ctx, e)).await;
        ratelimit::headers(r, &limits, false)
    }

    fn rate_writes(&self) -> Vec<Write> {
        if self.claimed {
            return Vec::new();
        }
        self.limits
            .iter()
            .map(ratelimit::Limit::increment)
            .collect()
    }

    /// Spends the nonce and counts the request now (see `Operation::ACTS_OUTSIDE`); a replay
    /// or a full window is answered as `fail` answers it.
    async fn claim(&mut self, ctx: &Ctx) -> Result<(), ApiResponse> {
        let mut writes: Vec<Write> = self.nonce_write().into_iter().collect();
        writes.extend(self.rate_writes());
        if writes.is_empty() {
            return Ok(());
        }
        match ctx.store.transact(writes).await {
            Ok(()) => {
                self.nonce = None;
                self.claimed = true;
                self.counted = !self.limits.is_empty();
                Ok(())
            }
            // Written again by `fail`, which finds the same conflict and answers it.
            Err(TxError::ConditionFailed(_)) => Err(self
                .fail(
                    ctx,
                    ApiError::conflict("write_conflict", "the request could not be counted"),
                )
                .await),
            Err(TxError::Unavailable(u)) => Err(ApiResponse::error(&u)),
        }
    }

    /// The limit whose counter refused a transaction, if one did.
    fn over_limit(
        &self,
        failed: &[usize],
        nonce_slots: usize,
        rate_slots: usize,
    ) -> Option<ratelimit::Limit> {
        failed
            .iter()
            .find(|i| (nonce_slots..rate_slots).contains(*i))
            .and_then(|i| self.limits.get(i - nonce_slots))
            .cloned()
    }

    /// Answers an error, with its audit row (and the spent nonce) written first.
    async fn fail(&mut self, ctx: &Ctx, e: ApiError) -> ApiResponse {
        self.stamp(e.status.as_u16(), Some(&e));
        let mut writes: Vec<Write> = self.nonce_write().into_iter().collect();
        let nonce_slots = writes.len();
        writes.extend(self.rate_writes());
        let rate_slots = writes.len();
        writes.push(Write::Put {
            item: self
                .event
                .to_item(&self.owner_partition, self.req.received_at),
            condition: None,
        });
        match ctx.store.transact(writes).await {
            Ok(()) => {
                self.counted = !self.limits.is_empty();
                self.finish(ApiResponse::error(&e))
            }
            Err(TxError::ConditionFailed(failed)) => {
                match self.over_limit(&failed, nonce_slots, rate_slots) {
                    Some(full) if !failed.iter().any(|i| *i < nonce_slots) => {
                        self.refuse_over_limit(ctx, &full).await
                    }
                    _ => self.replayed(ctx).await,
                }
            }
            Err(TxError::Unavailable(u)) => ApiResponse::error(&u),
        }
    }

    async fn replayed(&mut self, ctx: &Ctx) -> ApiResponse {
        let e = ApiError::unauthorized(
            "nonce_replayed",
            "this request's nonce was already used: the request is a replay",
        )
        .hint("sign every request with a fresh X-Alter-Nonce");
        self.stamp(401, Some(&e));
        self.nonce = None;
        let item = self
            .event
            .to_item(&self.owner_partition, self.req.received_at);
        match ctx.store.put(item, None).await {
            Ok(()) => self.finish(ApiResponse::error(&e)),
            Err(err) => ApiResponse::error(&ApiError::from(err)),
        }
    }

    /// Commits the operation's writes, the audit row and the nonce in one transaction.
    async fn commit(&mut self, ctx: &Ctx, outcome: Outcome) -> ApiResponse {
        self.stamp(outcome.response.status.as_u16(), None);
        let mut writes: Vec<Write> = self.nonce_write().into_iter().collect();
        let nonce_slots = writes.len();
        writes.extend(self.rate_writes());
        let rate_slots = writes.len();
        writes.push(Write::Put {
            item: self
                .event
                .to_item(&self.owner_partition, self.req.received_at),
            condition: None,
        });
        writes.extend(outcome.writes);
        match ctx.store.transact(writes).await {
            Ok(()) => {
                self.counted = !self.limits.is_empty();
                self.finish(outcome.response)
            }
            Err(TxError::ConditionFailed(failed)) if failed.iter().any(|i| *i < nonce_slots) => {
                self.replayed(ctx).await
            }
            Err(TxError::ConditionFailed(failed))
                if self.over_limit(&failed, nonce_slots, rate_slots).is_some() =>
            {
                let full = self
                    .over_limit(&failed, nonce_slots, rate_slots)
                    .expect("checked");
                self.refuse_over_limit(ctx, &full).await
            }
            Err(TxError::ConditionFailed(_)) => {
                let e = outcome.on_conflict.unwrap_or_else(|| {
                    ApiError::conflict(
                        "write_conflict",
                        "the write conflicted with another change; retry",
                    )
                });
                self.fail(ctx, e).await
            }
            Err(TxError::Unavailable(e)) => ApiResponse::error(&e),
        }
    }
}

/// Verifies timestamp, body hash and HMAC signature; returns the (signed) identity headers.
fn verify_signature(
    ctx: &Ctx,
    req: &ApiRequest,
    key: &PresentedKey,
    now: OffsetDateTime,
) -> Result<Identity, ApiError> {
    let ts = header(req, "x-alter-timestamp");
    let nonce = header(req, "x-alter-nonce");
    let content_sha = header(req, "x-alter-content-sha256");
    let signature = header(req, "x-alter-signature");
    if ts.is_empty() || nonce.is_empty() || content_sha.is_empty() || signature.is_empty() {
        return Err(ApiError::unauthorized(
            "signature_required",
            "requests must be signed: X-Alter-Timestamp, X-Alter-Nonce, X-Alter-Content-SHA256 and X-Alter-Signature are required",
        ));
    }
    let ts_value: i64 = ts
        .parse()
        .ok()
        .filter(|_| ts.bytes().all(|b| b.is_ascii_digit()) && ts.len() <= 12)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "invalid_timestamp",
                "X-Alter-Timestamp must be Unix seconds",
            )
        })?;
    let skew = (now.unix_timestamp() - ts_value).unsigned_abs();
    if skew > ctx.config.signature_window.as_secs() {
        return Err(ApiError::unauthorized(
            "timestamp_out_of_window",
            format!(
                "the request timestamp is {skew} s away from server time; at most {} s is accepted",
                ctx.config.signature_window.as_secs()
            ),
        )
        .hint("check the client's clock"));
    }
    let nonce_ok = (16..=128).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !nonce_ok {
        return Err(ApiError::unauthorized(
            "invalid_nonce",
            "X-Alter-Nonce must be 16 to 128 characters of [A-Za-z0-9_-]",
        ));
    }
    let body_sha = hex::encode(Sha256::digest(&req.body));
    if !bool::from(
        body_sha
            .as_bytes()
            .ct_eq(content_sha.to_ascii_lowercase().as_bytes()),
    ) {
        return Err(ApiError::unauthorized(
            "content_hash_mismatch",
            "X-Alter-Content-SHA256 does not match the body received",
        ));
    }
    let parts = SignedParts {
        method: req.method.as_str(),
        target: &req.target,
        timestamp: ts,
        nonce,
        content_sha256: content_sha,
        scope_constraints: header(req, "x-alter-scope-constraints"),
        request_rule: header(req, "x-alter-request-rule"),
        caller: header(req, "x-alter-caller"),
        caller_type: header(req, "x-alter-caller-type"),
        actor_id: header(req, "x-alter-actor-id"),
        actor_context: header(req, "x-alter-context"),
    };
    let v2 = header(req, "x-alter-signature-v2");
    let v2_consistent = v2.is_empty() || bool::from(v2.as_bytes().ct_eq(signature.as_bytes()));
    if !v2_consistent
        || !signing::verify(
            &key.signing_key(),
            &parts.string_to_sign(),
            &signature.to_ascii_lowercase(),
        )
    {
        return Err(ApiError::unauthorized(
            "invalid_signature",
            "the request signature does not verify",
        )
        .hint("sign with HMAC-SHA256 of the canonical request, keyed by HMAC-SHA256(api_key, \"alter-signing-v1\")"));
    }
    identity(&parts)
}

/// An app key naming a managed agent as its caller: `X-Alter-Caller-Type: agent` and a
/// canonical UUID in `X-Alter-Caller` (any other caller is a free-form audit label).
fn impersonated_agent(req: &ApiRequest) -> Option<Uuid> {
    if header(req, "x-alter-caller-type") != "agent" {
        return None;
    }
    let caller = header(req, "x-alter-caller");
    Uuid::parse_str(caller)
        .ok()
        .filter(|u| u.hyphenated().to_string() == caller)
}

/// The actor a caller is known as: the agent itself, or a stable ID derived from the app and
/// the caller label (the same label always gets the same ID; nothing is stored).
fn actor_id(app_id: Option<Uuid>, identity: &Identity, agent: Option<&Agent>) -> Option<Uuid> {
    if let Some(agent) = agent {
        return Some(agent.agent_id);
    }
    let (app, caller) = (app_id?, identity.caller.as_deref()?);
    let kind = identity.caller_type.as_deref().unwrap_or("");
    Some(Uuid::new_v5(&app, format!("{kind}:{caller}").as_bytes()))
}

fn identity(parts: &SignedParts<'_>) -> Result<Identity, ApiError> {
    let opt = |s: &str, max: usize, what: &str| -> Result<Option<String>, ApiError> {
        if s.is_empty() {
            return Ok(None);
        }
        if s.chars().count() > max {
            return Err(ApiError::bad_request(
                "invalid_identity_header",
                format!("{what} is longer than {max} characters"),
            ));
        }
        Ok(Some(s.to_string()))
    };
    let mut context = Map::new();
    if !parts.actor_context.is_empty() {
        let err = || {
            ApiError::bad_request(
                "invalid_context",
                "X-Alter-Context must be a JSON object of at most 20 string values (keys 1–64 characters, values ≤ 512, no control characters, total ≤ 4096)",
            )
        };
        if parts.actor_context.len() > 4096 {
            return Err(err());
        }
        let v: Value = serde_json::from_str(parts.actor_context).map_err(|_| err())?;
        let obj = v.as_object().ok_or_else(err)?;
        if obj.len() > 20 {
            return Err(err());
        }
        for (k, v) in obj {
            let s = v.as_str().ok_or_else(err)?;
            if !crate::audit::context_entry_ok(k, s) {
                return Err(err());
            }
            context.insert(k.clone(), Value::String(s.to_string()));
        }
    }
    Ok(Identity {
        caller: opt(parts.caller, 256, "X-Alter-Caller")?,
        caller_type: opt(parts.caller_type, 32, "X-Alter-Caller-Type")?,
        actor_id: opt(parts.actor_id, 64, "X-Alter-Actor-ID")?,
        context,
    })
}

/// `X-Alter-Scope-Constraints` may only narrow the key's scopes.
fn narrow_scopes(req: &ApiRequest, held: &[String]) -> Result<Vec<String>, ApiError> {
    let raw = header(req, "x-alter-scope-constraints");
    if raw.is_empty() {
        return Ok(held.to_vec());
    }
    let wanted: Vec<String> = raw
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if wanted.is_empty() || wanted.len() > 100 {
        return Err(ApiError::new(
            http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_scope_constraint",
            "X-Alter-Scope-Constraints must list 1 to 100 scopes",
        ));
    }
    let broader: Vec<&String> = wanted
        .iter()
        .filter(|s| !scopes::satisfies(held, s))
        .collect();
    if !broader.is_empty() {
        return Err(ApiError::bad_request(
            "constraint_not_narrowing",
            "scope constraints may only narrow the key's scopes",
        )
        .details(serde_json::json!({ "not_held": broader })));
    }
    Ok(wanted)
}
