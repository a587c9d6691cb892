//! `PUT /v1/apps/{app_id}/policy`: the app's policy document (docs/policies.md), which every
//! runtime call of the app must satisfy: IP allowlist, schedule, quotas, methods and
//! endpoints. `{}` removes it.

use super::common::{app_in_path, app_of, record};
use portcullis::model::App;
use portcullis::pipeline::{ADMINS, Access, Call, Operation, Outcome, Surface};
use portcullis::policy::Policy;
use portcullis::store::{Condition, Item, Write, keys, to_item};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use serde_json::Value;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_app_policy_put";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Value;

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Value,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        if !body.is_object() {
            return Err(ApiError::validation(
                "the body is a policy document (an object; `{}` removes the policy)",
            ));
        }
        let mut app: App = record(ctx.store.get(&keys::app(app_of(call)), true).await?)?
            .ok_or_else(ApiError::internal)?;
        app.policy = Policy::parse("policy", &body)?;
        call.audit.resource_type = Some("app_policy".into());
        call.audit.resource_id = Some(app.app_id.to_string());
        let item = to_item(&app, &keys::app(app.app_id), &[]);
        Ok(Outcome::with_writes(
            ApiResponse::ok(&views::app(&app)),
            vec![Write::Put {
                item,
                condition: Some(Condition::present()),
            }],
            ApiError::conflict("write_conflict", "the app changed meanwhile; retry"),
        ))
    }
}

super::handler!(Op);
