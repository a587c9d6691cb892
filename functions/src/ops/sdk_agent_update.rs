//! `PATCH /sdk/agents/{agent_id}[?grace_seconds&expected_version]`: display name, metadata,
//! policy, status (suspend/resume) and scopes. Scope changes need `expected_version`; a
//! broadening applies at once, a narrowing after `grace_seconds` (default 24 h). Every change
//! is conditional on the version read, so concurrent updates never overwrite each other.

use super::common::{query_body, record};
use portcullis::model::{Agent, AgentStatus};
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::service::{agents, validate};
use portcullis::store::{Item, ItemKey};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

#[derive(Deserialize)]
pub struct Body {
    display_name: Option<String>,
    metadata: Option<Value>,
    policy: Option<Value>,
    scopes: Option<Value>,
    status: Option<String>,
    /// An extension of the SDK's shape: requests per minute for all of the agent's keys.
    rate_limit_per_minute: Option<u32>,
}

#[derive(Deserialize)]
struct Params {
    grace_seconds: Option<i64>,
    expected_version: Option<u64>,
}

fn concurrent() -> ApiError {
    ApiError::conflict(
        "agent_concurrent_update",
        "the agent changed since it was read; read it again and retry",
    )
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_agent_update";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("agents:write");
    type Body = Body;

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        agents::prefetch(req, app)
    }

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        call.req.uuid_param("agent_id", agents::agent_not_found())?;
        let params: Params = query_body(call.req, &["grace_seconds", "expected_version"])?;
        let mut agent: Agent = record(items.first_mut().and_then(Option::take))?
            .ok_or_else(agents::agent_not_found)?;
        call.audit.resource_type = Some("agent".into());
        call.audit.resource_id = Some(agent.agent_id.to_string());
        if agent.status == AgentStatus::Revoked {
            return Err(ApiError::conflict(
                "agent_revoked",
                "a deleted agent cannot be changed",
            ));
        }
        let read_version = agent.version;
        let now = call.now;
        if let Some(d) = &body.display_name {
            agent.display_name = Some(validate::name("display_name", d, 255)?);
        }
        if let Some(v) = body.metadata {
            if !v.is_object() || v.to_string().len() > 16 * 1024 {
                return Err(ApiError::validation(
                    "`metadata` must be an object of at most 16 KiB",
                ));
            }
            agent.metadata = Some(v);
        }
        if body.policy.is_some() {
            agent.policy = super::common::policy_document("policy", body.policy)?;
        }
        if body.rate_limit_per_minute.is_some() {
            agent.rate_limit_per_minute =
                super::sdk_agent_create::rate_limit(body.rate_limit_per_minute)?;
        }
        match body.status.as_deref() {
            None => {}
            Some("active") => agent.status = AgentStatus::Active,
            Some("inactive") => agent.status = AgentStatus::Inactive,
            Some(_) => {
                return Err(ApiError::validation(
                    "`status` is active or inactive (DELETE the agent to revoke it)",
                ));
            }
        }
        match (body.scopes, params.expected_version) {
            (None, None) => {
                if params.grace_seconds.is_some() {
                    return Err(ApiError::validation("`grace_seconds` goes with `scopes`"));
                }
            }
            (None, Some(v)) | (Some(_), Some(v)) if v != read_version => return Err(concurrent()),
            (None, Some(_)) => {}
            (Some(_), None) => {
                return Err(ApiError::validation(
                    "changing `scopes` needs `expected_version` (the version you read)",
                ));
            }
            (Some(new), Some(_)) => {
                let new = agents::scopes(&new)?;
                let grace = params
                    .grace_seconds
                    .unwrap_or(agents::DEFAULT_GRACE_SECONDS);
                if !(0..=agents::MAX_GRACE_SECONDS).contains(&grace) {
                    return Err(ApiError::validation(
                        "`grace_seconds` must be between 0 and 604800",
                    ));
                }
                let current = agent.scopes_at(now);
                if agents::broadens(&current, &new) || grace == 0 {
                    agent.scopes = Some(new);
                    agent.scopes_pending = None;
                    agent.scopes_applies_at = None;
                } else {
                    agent.scopes = Some(current);
                    agent.scopes_pending = Some(new);
                    agent.scopes_applies_at = Some(now + time::Duration::seconds(grace));
                }
            }
        }
        agent.version = read_version + 1;
        Ok(Outcome::with_writes(
            ApiResponse::ok(&views::agent(&agent, now)),
            vec![agents::put_if_unchanged(&agent, read_version)],
            concurrent(),
        ))
    }
}

super::handler!(Op);
