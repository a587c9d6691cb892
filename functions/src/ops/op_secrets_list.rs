//! `GET /v1/apps/{app_id}/secrets`: the app's managed secrets (metadata only).

use super::common::{app_in_path, app_of};
use portcullis::model::ManagedSecret;
use portcullis::pipeline::{ADMINS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::store::{Item, Query, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use serde_json::json;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Query]);

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_secrets_list";
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
        let records: Vec<ManagedSecret> = ctx
            .store
            .query_all(Query::index(keys::app_secrets_index(app_of(call)), "gsi1"))
            .await?;
        let items: Vec<_> = records.iter().map(views::secret).collect();
        Ok(Outcome::respond(ApiResponse::ok(
            &json!({ "items": items }),
        )))
    }
}

super::handler!(Op);
