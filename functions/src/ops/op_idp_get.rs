//! `GET /v1/apps/{app_id}/idp`: the app's identity provider.

use super::common::{app_in_path, record};
use portcullis::model::IdpConfig;
use portcullis::pipeline::{ADMINS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::store::{Item, ItemKey, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

pub fn idp_not_found() -> ApiError {
    ApiError::not_found("idp_not_found", "identity provider")
        .hint("configure one with PUT /v1/apps/{app_id}/idp")
}

pub fn prefetch_idp(app: Option<Uuid>) -> Vec<ItemKey> {
    app.map(keys::idp).into_iter().collect()
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_idp_get";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Empty;

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    fn prefetch(_: &Ctx, _: &ApiRequest, _: &Empty, app: Option<Uuid>) -> Vec<ItemKey> {
        prefetch_idp(app)
    }

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let config: IdpConfig =
            record(items.first_mut().and_then(Option::take))?.ok_or_else(idp_not_found)?;
        call.audit.resource_type = Some("idp".into());
        call.audit.resource_id = Some(config.idp_id.to_string());
        Ok(Outcome::respond(ApiResponse::ok(&views::idp(&config))))
    }
}

super::handler!(Op);
