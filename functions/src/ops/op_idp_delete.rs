//! `DELETE /v1/apps/{app_id}/idp`: remove the app's identity provider. User tokens are refused
//! from then on; app users and their grants stay, but a new identity provider has a new ID and
//! so new app user IDs (its users start afresh).

use super::common::{app_in_path, app_of, record};
use super::op_idp_get::{idp_not_found, prefetch_idp};
use portcullis::model::IdpConfig;
use portcullis::pipeline::{ADMINS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::store::{Condition, Item, ItemKey, Write, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::DeleteItem]);

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_idp_delete";
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
        Ok(Outcome::with_writes(
            ApiResponse::empty(http::StatusCode::NO_CONTENT),
            vec![Write::Delete {
                key: keys::idp(app_of(call)),
                condition: Some(Condition::present()),
            }],
            idp_not_found(),
        ))
    }
}

super::handler!(Op);
