//! `GET /v1/apps/{app_id}`: one app of the caller's organisation.

use super::common::{app_in_path, app_of, record};
use portcullis::model::App;
use portcullis::pipeline::{ADMINS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::store::{Item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_app_get";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Empty;

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let app: App = record(ctx.store.get(&keys::app(app_of(call)), true).await?)?
            .ok_or_else(ApiError::internal)?;
        Ok(Outcome::respond(ApiResponse::ok(&views::app(&app))))
    }
}

super::handler!(Op);
