//! `POST /sdk/managed-secrets/{managed_secret_id}/grants`: bind a managed secret to a
//! principal from the app's backend (spec §6 row 13).

use super::common::{future_time, record};
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

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        match (app, req.uuid_param("managed_secret_id", secret_not_found())) {
            (Some(app), Ok(id)) => vec![keys::secret(app, id)],
            _ => Vec::new(),
        }
    }

    async fn run(
        _: &Ctx,
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
        if body.credential_id.is_some() {
            return Err(ApiError::validation(
                "`credential_id` is not supported: a managed secret has one credential",
            ));
        }
        let principal = match body.principal.kind.as_str() {
            "system" => Principal::System,
            // Both are resolved from the end user's token, which needs the app's identity provider.
            "user" | "group" => {
                return Err(ApiError::unauthorized(
                    "jwt_validation_error",
                    "this app has no identity provider configured, so user and group principals cannot be verified",
                ));
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
        Ok(Outcome::with_writes(
            ApiResponse::ok(&answer),
            grants::create_writes(&grant, &secret),
            secret_not_found(),
        ))
    }
}

super::handler!(Op);
