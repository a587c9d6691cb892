//! `DELETE /v1/apps/{app_id}/providers/{provider_id}`: remove a provider configuration.
//! Its grants stay (revoke them separately); they cannot refresh until it is configured again.

use super::common::{app_in_path, app_of, record};
use super::op_provider_get::{prefetch_provider, provider_not_found};
use portcullis::model::ProviderConfig;
use portcullis::pipeline::{ADMINS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::store::{Condition, Item, ItemKey, Write, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::DeleteItem]);

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_provider_delete";
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
        _: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let config: ProviderConfig =
            record(items.first_mut().and_then(Option::take))?.ok_or_else(provider_not_found)?;
        call.audit.resource_type = Some("provider".into());
        call.audit.resource_id = Some(config.provider_id.clone());
        Ok(Outcome::with_writes(
            ApiResponse::empty(http::StatusCode::NO_CONTENT),
            vec![Write::Delete {
                key: keys::provider(app_of(call), &config.provider_id),
                condition: Some(Condition::present()),
            }],
            provider_not_found(),
        ))
    }
}

super::handler!(Op);
