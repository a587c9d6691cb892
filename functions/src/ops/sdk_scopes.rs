//! `GET /sdk/scopes`: the Alter scope catalogue.

use portcullis::pipeline::{Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::store::Item;
use portcullis::{ApiError, ApiResponse, Ctx, scopes};

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_scopes";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::AnyKey;
    type Body = Empty;

    async fn run(
        _: &Ctx,
        _: &mut Call<'_>,
        _: Empty,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        Ok(Outcome::respond(ApiResponse::ok(&scopes::catalogue())))
    }
}

super::handler!(Op);
