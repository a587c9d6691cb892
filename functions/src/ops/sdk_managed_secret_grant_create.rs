//! `POST /sdk/managed-secrets/{managed_secret_id}/grants`: bind a managed secret to a
//! principal from the app's backend (spec §6 row 13).

use super::common::{end_user, future_time, record};
use portcullis::model::{ManagedSecret, Principal, rfc3339};
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::service::{grants, validate};
use portcullis::store::{Item, ItemKey, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::ConditionCheckItem]);

#[derive(Deserialize)]
pub struct Body {
    principal: PrincipalInput,
    grant_policy: Option<Map<String, Value>>,
    credential_id: Option<String>,
}

#[derive(Deserialize)]
struct PrincipalInput {
    #[serde(rename = "type")]
    kind: String,
    label: Option<String>,
    user_token: Option<String>,
    external_group_id: Option<String>,
    idp_id: Option<String>,
}

fn secret_not_found() -> ApiError {
    ApiError::not_found("secret_not_found", "managed secret")
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_managed_secret_grant_create";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("grants:write");
    type Body = Body;

    fn prefetch(ctx: &Ctx, req: &ApiRequest, body: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        let Some(app) = app else {
            return Vec::new();
        };
        let mut keys: Vec<ItemKey> = req
            .uuid_param("managed_secret_id", secret_not_found())
            .map(|id| keys::secret(app, id))
            .into_iter()
            .collect();
        if let Some(token) = &body.principal.user_token {
            keys.extend(portcullis::idp::prefetch(ctx, app, token));
        } else if body.principal.kind == "group" {
            keys.push(keys::idp(app));
        }
        keys
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let secret_id = call
            .req
            .uuid_param("managed_secret_id", secret_not_found())?;
        call.audit.resource_type = Some("managed_secret".into());
        call.audit.resource_id = Some(secret_id.to_string());
        let secret: ManagedSecret =
            record(items.first_mut().and_then(Option::take))?.ok_or_else(secret_not_found)?;
        let mut writes = Vec::new();
        if body.credential_id.is_some() {
            return Err(ApiError::validation(
                "`credential_id` is not supported: a managed secret has one credential",
            ));
        }
        let principal = match body.principal.kind.as_str() {
            "system" => Principal::System,
            // The user is whoever the app's identity provider says the token names.
            "user" => {
                let token = body.principal.user_token.as_deref().ok_or_else(|| {
                    ApiError::validation("a user principal needs `principal.user_token`")
                })?;
                let identity = items.get_mut(1..).unwrap_or_default();
                let user = end_user(ctx, call, token, identity, &mut writes).await?;
                Principal::User {
                    app_user_id: user.app_user_id.to_string(),
                }
            }
            // Everyone in a group at the app's identity provider (by the group ID its tokens
            // carry in the mapped groups claim).
            "group" => {
                let config: portcullis::model::IdpConfig = record(
                    items.get_mut(1).and_then(Option::take),
                )?
                .ok_or_else(|| {
                    ApiError::validation(
                        "a group principal needs the app's identity provider: configure it first",
                    )
                })?;
                grants::group_principal(
                    &config,
                    body.principal.external_group_id.as_deref(),
                    body.principal.idp_id.as_deref(),
                )?
            }
            "agent" => {
                return Err(ApiError::validation(
                    "agent principals are granted through the operator API",
                ));
            }
            _ => {
                return Err(ApiError::validation(
                    "`principal.type` must be system, user, group or agent",
                ));
            }
        };
        let label = validate::label(body.principal.label.as_deref())?;
        let expires_at = future_time(
            "grant_policy.expires_at",
            body.grant_policy
                .as_ref()
                .and_then(|p| p.get("expires_at"))
                .and_then(Value::as_str),
            call.now,
        )?;
        let grant = grants::new_managed_secret_grant(
            &secret,
            principal,
            label,
            body.grant_policy.map(Value::Object),
            expires_at,
            call.caller.created_by(),
            call.now,
        );
        call.audit.grant_id = Some(grant.grant_id.to_string());
        let answer = json!({
            "grant_id": grant.grant_id,
            "principal_type": grant.principal.kind(),
            "label": grant.label,
            "created_at": rfc3339(grant.created_at),
            "credential_id": Value::Null,
        });
        writes.extend(grants::create_writes(&grant, &secret));
        Ok(Outcome::with_writes(
            ApiResponse::ok(&answer),
            writes,
            secret_not_found(),
        ))
    }
}

super::handler!(Op);
