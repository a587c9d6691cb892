//! `POST /sdk/agents`: create a managed agent and its first key (shown once). With an
//! `Idempotency-Key`, a replay answers the same agent with `api_key: null`, and a different
//! body under the same key is refused.

use super::common::record;
use portcullis::model::{Agent, AgentStatus, AgentType};
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::service::{agents, keys as key_service, validate};
use portcullis::store::{Condition, Item, ItemKey, Write, keys, to_item};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

#[derive(Deserialize)]
pub struct Body {
    name: String,
    #[serde(rename = "type")]
    agent_type: Option<String>,
    scopes: Value,
    metadata: Option<Value>,
    display_name: Option<String>,
    policy: Option<Value>,
    /// An extension of the SDK's shape: requests per minute for all of the agent's keys.
    rate_limit_per_minute: Option<u32>,
}

/// What an idempotency key remembers.
#[derive(serde::Serialize, Deserialize)]
struct Remembered {
    body_sha256: String,
    agent_id: Uuid,
    key_id: Uuid,
    ttl: i64,
}

fn idempotency_key(req: &ApiRequest) -> Result<Option<String>, ApiError> {
    match req.header("idempotency-key") {
        None => Ok(None),
        Some(k) if (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(k.to_string()))
        }
        Some(_) => Err(ApiError::validation(
            "Idempotency-Key must be 1 to 255 printable characters",
        )),
    }
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_agent_create";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("agents:write");
    type Body = Body;

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        match (app, idempotency_key(req)) {
            (Some(app), Ok(Some(k))) => vec![keys::idempotency(app, &k)],
            _ => Vec::new(),
        }
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        if call.caller.agent_key_owner().is_some() {
            return Err(ApiError::forbidden(
                "agent_cannot_mint_subagents",
                "agent keys cannot create agents",
            ));
        }
        let app = call.caller.app();
        let body_sha256 = hex_sha(&call.req.body);
        let idem = idempotency_key(call.req)?;
        if idem.is_some()
            && let Some(seen) = record::<Remembered>(items.first_mut().and_then(Option::take))?
            && seen.ttl > call.now.unix_timestamp()
        {
            return replay(ctx, call, app, seen, &body_sha256).await;
        }
        let agent_type = match body.agent_type.as_deref() {
            None | Some("agent") => AgentType::Agent,
            Some("service") => AgentType::Service,
            Some(_) => return Err(ApiError::validation("`type` must be agent or service")),
        };
        let mut agent = agents::new_agent(
            app,
            agents::name(&body.name)?,
            agent_type,
            agents::scopes(&body.scopes)?,
            call.now,
        );
        agent.display_name = body
            .display_name
            .as_deref()
            .map(|d| validate::name("display_name", d, 255))
            .transpose()?;
        agent.metadata = object("metadata", body.metadata)?;
        agent.policy = super::common::policy_document("policy", body.policy)?;
        agent.rate_limit_per_minute = rate_limit(body.rate_limit_per_minute)?;
        agent.active_keys = 1;
        agent.keys_minted = 1;
        let key = agents::mint_key(&agent, 1, call.now);
        call.audit.resource_type = Some("agent".into());
        call.audit.resource_id = Some(agent.agent_id.to_string());

        let mut writes = vec![
            Write::Put {
                item: agents::item(&agent),
                condition: Some(Condition::absent()),
            },
            agents::name_reservation(&agent),
        ];
        writes.extend(key_service::create_writes(&key.record));
        if let Some(k) = &idem {
            let remembered = Remembered {
                body_sha256,
                agent_id: agent.agent_id,
                key_id: key.record.key_id,
                ttl: call.now.unix_timestamp() + 24 * 3600,
            };
            // Absent, or expired (DynamoDB deletes expired items late).
            writes.push(Write::Put {
                item: to_item(&remembered, &keys::idempotency(app, k), &[]),
                condition: Some(
                    Condition::new("attribute_not_exists(pk) OR #ttl < :now")
                        .name("#ttl", "ttl")
                        .value(
                            ":now",
                            aws_sdk_dynamodb::types::AttributeValue::N(
                                call.now.unix_timestamp().to_string(),
                            ),
                        ),
                ),
            });
        }
        let mut answer = views::agent(&agent, call.now);
        answer["api_key"] = json!(key.plaintext.as_str());
        answer["key_id"] = json!(key.record.key_id);
        Ok(Outcome::with_writes(
            ApiResponse::json(http::StatusCode::CREATED, &answer),
            writes,
            ApiError::conflict(
                "agent_name_exists",
                format!("an agent named `{}` already exists in this app", agent.name),
            ),
        ))
    }
}

async fn replay(
    ctx: &Ctx,
    call: &mut Call<'_>,
    app: Uuid,
    seen: Remembered,
    body_sha256: &str,
) -> Result<Outcome, ApiError> {
    if seen.body_sha256 != body_sha256 {
        return Err(ApiError::conflict(
            "idempotency_key_body_mismatch",
            "this Idempotency-Key was used with a different request body",
        ));
    }
    let agent: Agent = record(
        ctx.store
            .get(&keys::agent(app, seen.agent_id), true)
            .await?,
    )?
    .ok_or_else(agents::agent_not_found)?;
    call.audit.resource_type = Some("agent".into());
    call.audit.resource_id = Some(agent.agent_id.to_string());
    match agent.status {
        AgentStatus::Revoked => Err(ApiError::conflict(
            "idempotency_key_agent_revoked",
            "the agent this Idempotency-Key created has been deleted",
        )),
        AgentStatus::Inactive => Err(ApiError::conflict(
            "idempotency_key_agent_inactive",
            "the agent this Idempotency-Key created is suspended",
        )),
        AgentStatus::Active => {
            let mut answer = views::agent(&agent, call.now);
            answer["api_key"] = Value::Null;
            answer["key_id"] = json!(seen.key_id);
            Ok(Outcome::respond(ApiResponse::ok(&answer)))
        }
    }
}

fn object(field: &str, v: Option<Value>) -> Result<Option<Value>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) if v.to_string().len() <= 16 * 1024 => Ok(Some(v)),
        Some(_) => Err(ApiError::validation(format!(
            "`{field}` must be an object of at most 16 KiB"
        ))),
    }
}

/// A per-agent requests-per-minute limit, 1 to 100000.
pub fn rate_limit(v: Option<u32>) -> Result<Option<u32>, ApiError> {
    match v {
        Some(r) if !(1..=100_000).contains(&r) => Err(ApiError::validation(
            "`rate_limit_per_minute` must be between 1 and 100000",
        )),
        other => Ok(other),
    }
}

fn hex_sha(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

super::handler!(Op);
