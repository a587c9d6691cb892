//! `GET /v1/apps/{app_id}/providers/{provider_id}`: one provider configuration (no secret).

use super::common::{app_in_path, record};
use portcullis::model::ProviderConfig;
use portcullis::pipeline::{ADMINS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::service::providers;
use portcullis::store::{Item, ItemKey, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

pub fn provider_not_found() -> ApiError {
    ApiError::not_found("provider_not_found", "provider configuration")
}

pub fn prefetch_provider(req: &ApiRequest, app: Option<Uuid>) -> Vec<ItemKey> {
    match (app, req.param("provider_id")) {
        (Some(app), Ok(id)) => vec![keys::provider(app, id)],
        _ => Vec::new(),
    }
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_provider_get";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Empty;

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Empty, app: Option<Uuid>) -> Vec<ItemKey> {
        prefetch_provider(req, app)
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let config: ProviderConfig =
            record(items.first_mut().and_then(Option::take))?.ok_or_else(provider_not_found)?;
        call.audit.resource_type = Some("provider".into());
        call.audit.resource_id = Some(config.provider_id.clone());
        let redirect = providers::redirect_uri(ctx, call.req, &config).unwrap_or_default();
        Ok(Outcome::respond(ApiResponse::ok(&views::provider_config(
            &config, &redirect,
        ))))
    }
}

super::handler!(Op);
