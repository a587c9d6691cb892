//! `GET /sdk/provider-specs[?kind=oauth|managed]`: API-spec metadata of every provider.

use super::common::query_body;
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::providers::specs;
use portcullis::store::Item;
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::json;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    kind: Option<String>,
}

pub fn kind_of(kind: Option<&str>) -> Result<Option<&str>, ApiError> {
    match kind {
        None | Some("oauth" | "managed") => Ok(kind),
        Some(_) => Err(ApiError::validation("`kind` must be `oauth` or `managed`")),
    }
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_provider_specs_list";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("providers:read");
    type Body = Query;

    fn parse(req: &ApiRequest) -> Result<Query, ApiError> {
        query_body(req, &[])
    }

    async fn run(
        _: &Ctx,
        _: &mut Call<'_>,
        q: Query,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let items: Vec<_> = specs(kind_of(q.kind.as_deref())?)
            .iter()
            .map(|s| s.meta())
            .collect();
        Ok(Outcome::respond(ApiResponse::ok(
            &json!({ "items": items, "total": items.len() }),
        )))
    }
}

super::handler!(Op);
