//! `GET /sdk/provider-specs/{kind}/{provider_id}/operation?operation_id=…`: one operation
//! with its parameter and body schemas.

use super::common::query_body;
use super::sdk_provider_spec_get::spec_in_path;
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::store::Item;
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    operation_id: String,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_provider_spec_operation";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("providers:read");
    type Body = Query;

    fn parse(req: &ApiRequest) -> Result<Query, ApiError> {
        query_body(req, &[])
    }

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        q: Query,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        if q.operation_id.is_empty() || q.operation_id.len() > 512 {
            return Err(ApiError::validation(
                "`operation_id` must be 1–512 characters",
            ));
        }
        let spec = spec_in_path(call.req)?;
        let op = spec
            .operations
            .iter()
            .find(|op| op["operation_id"] == q.operation_id.as_str())
            .ok_or_else(|| ApiError::not_found("operation_not_found", "operation"))?;
        Ok(Outcome::respond(ApiResponse::ok(&spec.detail(op))))
    }
}

super::handler!(Op);
