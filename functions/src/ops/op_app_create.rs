//! `POST /v1/apps`: create an app in the caller's organisation.

use portcullis::model::App;
use portcullis::pipeline::{ADMINS, Access, Call, Operation, Outcome, Surface};
use portcullis::service::{orgs, validate};
use portcullis::store::Item;
use portcullis::{ApiError, ApiResponse, Ctx};
use serde::Deserialize;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    name: String,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_app_create";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Body;

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let org_id = call.caller.org_id.expect("operator calls have an org");
        let app = App {
            app_id: Uuid::new_v4(),
            org_id,
            name: validate::name("name", &body.name, 100)?,
            created_at: call.now,
            policy: None,
        };
        call.audit.resource_type = Some("app".into());
        call.audit.resource_id = Some(app.app_id.to_string());
        call.audit.app_id = Some(app.app_id.to_string());
        Ok(Outcome::with_writes(
            ApiResponse::json(http::StatusCode::CREATED, &portcullis::views::app(&app)),
            orgs::app_items(&app),
            ApiError::conflict("write_conflict", "retry"),
        ))
    }
}

super::handler!(Op);
