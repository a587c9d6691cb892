//! `POST /sdk/grants/{grant_id}/report-scope-mismatch`: the SDK saw the provider refuse a
//! call for a missing scope (spec §7.3). The grant is flagged `scope_mismatch` until the
//! user reconnects with the wider scope.

use super::common::record;
use aws_sdk_dynamodb::types::AttributeValue;
use portcullis::model::Grant;
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::service::grants::grant_not_found;
use portcullis::store::{Item, ItemKey, Write, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

#[derive(Deserialize)]
pub struct Body {
    provider_status_code: Option<u16>,
    provider_error_code: Option<String>,
    missing_scopes: Option<Vec<String>>,
    api_endpoint: Option<String>,
    detection_source: Option<String>,
    sdk_correlation_id: Option<String>,
    #[serde(flatten)]
    _rest: serde_json::Map<String, Value>,
}

fn cut(s: Option<String>, n: usize) -> Option<String> {
    s.map(|s| s.chars().filter(|c| !c.is_control()).take(n).collect())
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_grant_report_scope_mismatch";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("tokens:retrieve");
    type Body = Body;

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        match (app, req.uuid_param("grant_id", grant_not_found())) {
            (Some(app), Ok(id)) => vec![keys::grant(app, id)],
            _ => Vec::new(),
        }
    }

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let grant: Grant =
            record(items.first_mut().and_then(Option::take))?.ok_or_else(grant_not_found)?;
        super::common::reachable(call, &grant)?;
        let missing: Vec<String> = body
            .missing_scopes
            .unwrap_or_default()
            .into_iter()
            .take(50)
            .filter_map(|s| cut(Some(s), 256))
            .collect();
        // The endpoint without its query string: queries can carry secrets.
        let endpoint =
            cut(body.api_endpoint, 2048).map(|e| e.split('?').next().unwrap_or("").to_string());
        call.audit.grant_id = Some(grant.grant_id.to_string());
        call.audit.resource_type = Some("grant".into());
        call.audit.resource_id = Some(grant.grant_id.to_string());
        call.audit.detail = Some(json!({
            "provider_status_code": body.provider_status_code,
            "provider_error_code": cut(body.provider_error_code, 64),
            "missing_scopes": missing,
            "api_endpoint": endpoint,
            "detection_source": cut(body.detection_source, 64),
            "sdk_correlation_id": cut(body.sdk_correlation_id, 128),
        }));
        let write = Write::Update {
            key: keys::grant(grant.app_id, grant.grant_id),
            update: "SET scope_mismatch = :t".into(),
            condition: Some("attribute_exists(pk)".into()),
            names: Vec::new(),
            values: vec![(":t".into(), AttributeValue::Bool(true))],
        };
        Ok(Outcome::with_writes(
            ApiResponse::empty(http::StatusCode::NO_CONTENT),
            vec![write],
            grant_not_found(),
        ))
    }
}

super::handler!(Op);
