//! `PATCH /v1/org`: organisation settings (owners only): `name`, `max_derived_key_ttl_hours`
//! (1–720, the longest life of a derived key in the organisation's apps).

use super::common::record;
use portcullis::model::Org;
use portcullis::pipeline::{Access, Call, OWNERS, Operation, Outcome, Surface};
use portcullis::service::{orgs, validate};
use portcullis::store::{Condition, Item, Write, keys};
use portcullis::{ApiError, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::json;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    name: Option<String>,
    max_derived_key_ttl_hours: Option<u32>,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_org_update";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(OWNERS);
    type Body = Body;

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let org_id = call.caller.org_id.expect("operator calls have an org");
        let mut org: Org = record(ctx.store.get(&keys::org(org_id), true).await?)?
            .ok_or_else(ApiError::internal)?;
        call.audit.resource_type = Some("org".into());
        call.audit.resource_id = Some(org_id.to_string());
        if let Some(name) = &body.name {
            org.name = validate::name("name", name, 100)?;
        }
        if let Some(hours) = body.max_derived_key_ttl_hours {
            if !(1..=720).contains(&hours) {
                return Err(ApiError::validation(
                    "`max_derived_key_ttl_hours` must be between 1 and 720",
                ));
            }
            org.max_derived_key_ttl_hours = Some(hours);
        }
        Ok(Outcome::with_writes(
            ApiResponse::ok(&json!({ "org": org.view() })),
            vec![Write::Put {
                item: orgs::org_item(&org),
                condition: Some(Condition::present()),
            }],
            ApiError::conflict("write_conflict", "retry"),
        ))
    }
}

super::handler!(Op);
