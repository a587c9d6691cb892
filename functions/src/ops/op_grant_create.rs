//! `POST /v1/apps/{app_id}/secrets/{secret_id}/grants`: bind a managed secret to the app
//! (`system`), a user (by app user ID) or an agent.

use super::common::{app_in_path, future_time, record};
use portcullis::model::{Agent, AgentStatus, ManagedSecret, Principal};
use portcullis::pipeline::{ADMINS, Access, Call, Operation, Outcome, Surface};
use portcullis::service::secrets::{prefetch_secret, secret_not_found};
use portcullis::service::{agents, grants, validate};
use portcullis::store::{Item, ItemKey, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::ConditionCheckItem]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    principal: PrincipalInput,
    label: Option<String>,
    expires_at: Option<String>,
    grant_policy: Option<Map<String, Value>>,
    /// What every use of the grant must satisfy (docs/policies.md).
    policy: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalInput {
    #[serde(rename = "type")]
    kind: String,
    app_user_id: Option<String>,
    agent_id: Option<String>,
    external_group_id: Option<String>,
}

fn principal(p: PrincipalInput) -> Result<Principal, ApiError> {
    if p.external_group_id.is_some() {
        return Err(ApiError::validation(
            "`principal.external_group_id` belongs to {\"type\":\"group\",…}",
        ));
    }
    match (p.kind.as_str(), p.app_user_id, p.agent_id) {
        ("system", None, None) => Ok(Principal::System),
        ("user", Some(id), None) => Ok(Principal::User {
            app_user_id: validate::name("principal.app_user_id", &id, 255)?,
        }),
        ("agent", None, Some(id)) => Ok(Principal::Agent {
            agent_id: Uuid::parse_str(&id)
                .map_err(|_| ApiError::validation("`principal.agent_id` must be a UUID"))?,
        }),
        _ => Err(ApiError::validation(
            "`principal` is {\"type\":\"system\"}, {\"type\":\"user\",\"app_user_id\":…}, {\"type\":\"group\",\"external_group_id\":…} or {\"type\":\"agent\",\"agent_id\":…}",
        )),
    }
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_grant_create";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Body;

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    fn prefetch(_: &Ctx, req: &ApiRequest, body: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        let mut reads = prefetch_secret(req, app);
        // A grant to an agent needs the agent: read it in the same round trip.
        let agent = body
            .principal
            .agent_id
            .as_deref()
            .and_then(|a| Uuid::parse_str(a).ok());
        if let (Some(app), Some(agent), false) = (app, agent, reads.is_empty()) {
            reads.push(keys::agent(app, agent));
        }
        // A grant to a group needs the app's identity provider.
        if let (Some(app), "group", false) = (app, body.principal.kind.as_str(), reads.is_empty()) {
            reads.push(keys::idp(app));
        }
        reads
    }

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        call.req.uuid_param("secret_id", secret_not_found())?;
        let secret: ManagedSecret =
            record(items.first_mut().and_then(Option::take))?.ok_or_else(secret_not_found)?;
        let principal = if body.principal.kind == "group" {
            let config: portcullis::model::IdpConfig =
                record(items.get_mut(1).and_then(Option::take))?.ok_or_else(|| {
                    ApiError::validation(
                        "a group principal needs the app's identity provider: configure it first",
                    )
                })?;
            grants::group_principal(&config, body.principal.external_group_id.as_deref(), None)?
        } else {
            principal(body.principal)?
        };
        if let Principal::Agent { .. } = principal {
            let agent: Option<Agent> = record(items.get_mut(1).and_then(Option::take))?;
            if !agent.is_some_and(|a| a.status != AgentStatus::Revoked) {
                return Err(agents::agent_not_found());
            }
        }
        let policy = body
            .policy
            .as_ref()
            .map(|p| portcullis::policy::Policy::parse("policy", p))
            .transpose()?
            .flatten();
        let mut grant = grants::new_managed_secret_grant(
            &secret,
            principal,
            validate::label(body.label.as_deref())?,
            body.grant_policy.map(Value::Object),
            future_time("expires_at", body.expires_at.as_deref(), call.now)?,
            call.caller.created_by(),
            call.now,
        );
        grant.policy = policy;
        call.audit.resource_type = Some("grant".into());
        call.audit.resource_id = Some(grant.grant_id.to_string());
        call.audit.grant_id = Some(grant.grant_id.to_string());
        let view = views::grant(&grant, call.now);
        Ok(Outcome::with_writes(
            ApiResponse::json(http::StatusCode::CREATED, &view),
            grants::create_writes(&grant, &secret),
            secret_not_found(),
        ))
    }
}

super::handler!(Op);
