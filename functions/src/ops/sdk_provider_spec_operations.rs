//! `GET /sdk/provider-specs/{kind}/{provider_id}/operations?limit&offset&search`.

use super::common::{page, query_body};
use super::sdk_provider_spec_get::spec_in_path;
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::providers::Spec;
use portcullis::store::Item;
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::json;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    limit: Option<u64>,
    offset: Option<u64>,
    search: Option<String>,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_provider_spec_operations";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("providers:read");
    type Body = Query;

    fn parse(req: &ApiRequest) -> Result<Query, ApiError> {
        query_body(req, &["limit", "offset"])
    }

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        q: Query,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let limit = q.limit.unwrap_or(100);
        if !(1..=500).contains(&limit) {
            return Err(ApiError::validation("`limit` must be 1–500"));
        }
        let search = q.search.unwrap_or_default().to_lowercase();
        if search.chars().count() > 200 {
            return Err(ApiError::new(
                http::StatusCode::UNPROCESSABLE_ENTITY,
                "query_too_long",
                "`search` is at most 200 characters",
            ));
        }
        let spec = spec_in_path(call.req)?;
        let matching: Vec<_> = spec
            .operations
            .iter()
            .filter(|op| search.is_empty() || op.to_string().to_lowercase().contains(&search))
            .map(Spec::summary)
            .collect();
        let offset = q.offset.unwrap_or(0) as usize;
        let (items, has_more) = page(&matching, offset, limit as usize);
        Ok(Outcome::respond(ApiResponse::ok(&json!({
            "items": items,
            "total": matching.len(),
            "limit": limit,
            "offset": offset,
            "has_more": has_more,
            "spec": spec.meta(),
        }))))
    }
}

super::handler!(Op);
