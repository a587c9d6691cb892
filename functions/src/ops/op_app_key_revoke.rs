//! `DELETE /v1/apps/{app_id}/keys/{key_id}`: revoke at once; the next request with the key
//! is refused with `key_revoked` (key lookups are strongly consistent).

use super::common::{app_in_path, app_of};
use portcullis::pipeline::{ADMINS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::service::keys::{Change, change_app_key};
use portcullis::store::{Item, ItemKey};
use portcullis::{ApiError, ApiRequest, Ctx};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_app_key_revoke";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Empty;

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Empty, app: Option<Uuid>) -> Vec<ItemKey> {
        portcullis::service::keys::prefetch_app_key(req, app)
    }

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let app = app_of(call);
        change_app_key(call, app, items, Change::Revoke)
    }
}

super::handler!(Op);
