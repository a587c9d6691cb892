//! `GET /v1/apps/{app_id}/providers`: the app's provider configurations.

use super::common::{app_in_path, app_of};
use portcullis::pipeline::{ADMINS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::service::providers;
use portcullis::store::Item;
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use serde_json::json;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Query]);

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_providers_list";
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
        let all = providers::list(ctx, app_of(call)).await?;
        let items: Vec<_> = all
            .iter()
            .map(|c| {
                views::provider_config(
                    c,
                    &providers::redirect_uri(ctx, call.req, c).unwrap_or_default(),
                )
            })
            .collect();
        Ok(Outcome::respond(ApiResponse::ok(
            &json!({ "items": items, "total": items.len() }),
        )))
    }
}

super::handler!(Op);
