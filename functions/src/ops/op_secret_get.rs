//! `GET /v1/apps/{app_id}/secrets/{secret_id}`: one managed secret (metadata only).

use super::common::{app_in_path, record};
use portcullis::model::ManagedSecret;
use portcullis::pipeline::{ADMINS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::service::secrets::{prefetch_secret, secret_not_found};
use portcullis::store::{Item, ItemKey};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_secret_get";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Empty;

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Empty, app: Option<Uuid>) -> Vec<ItemKey> {
        prefetch_secret(req, app)
    }

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        call.req.uuid_param("secret_id", secret_not_found())?;
        let secret: ManagedSecret =
            record(items.first_mut().and_then(Option::take))?.ok_or_else(secret_not_found)?;
        call.audit.resource_type = Some("managed_secret".into());
        call.audit.resource_id = Some(secret.secret_id.to_string());
        Ok(Outcome::respond(ApiResponse::ok(&views::secret(&secret))))
    }
}

super::handler!(Op);
