//! `GET /sdk/provider-specs/{kind}/{provider_id}`: one provider's API-spec metadata.

use portcullis::pipeline::{Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::providers::{Spec, spec};
use portcullis::store::Item;
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

pub fn spec_not_found() -> ApiError {
    ApiError::not_found("provider_spec_not_found", "provider spec")
}

/// The spec named by the path.
pub fn spec_in_path(req: &ApiRequest) -> Result<Spec, ApiError> {
    let kind = req.param("kind")?;
    super::sdk_provider_specs_list::kind_of(Some(kind))?;
    spec(kind, req.param("provider_id")?).ok_or_else(spec_not_found)
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_provider_spec_get";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("providers:read");
    type Body = Empty;

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        Ok(Outcome::respond(ApiResponse::ok(
            &spec_in_path(call.req)?.meta(),
        )))
    }
}

super::handler!(Op);
