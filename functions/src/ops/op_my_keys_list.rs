//! `GET /v1/me/keys`: the calling member's operator keys.

use portcullis::model::{KeyOwner, KeyRecord};
use portcullis::pipeline::{AUDIT_READERS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::service::orgs;
use portcullis::store::{Item, keys};
use portcullis::{ApiError, ApiResponse, Ctx, views};
use serde_json::json;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Query]);

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_my_keys_list";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(AUDIT_READERS);
    type Body = Empty;

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let owner = call.caller.key.owner;
        let KeyOwner::Member { org_id, .. } = owner else {
            return Err(ApiError::internal());
        };
        let records: Vec<KeyRecord> = orgs::collection(&ctx.store, org_id, keys::ORG_KEYS).await?;
        let items: Vec<_> = records
            .iter()
            .filter(|k| k.owner == owner)
            .map(views::key)
            .collect();
        Ok(Outcome::respond(ApiResponse::ok(
            &json!({ "items": items }),
        )))
    }
}

super::handler!(Op);
