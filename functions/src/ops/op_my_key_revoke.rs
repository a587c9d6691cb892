//! `DELETE /v1/me/keys/{key_id}`: revoke one of the calling member's operator keys.

use super::common::record;
use portcullis::model::{KeyOwner, KeyRecord};
use portcullis::pipeline::{AUDIT_READERS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::service::keys as key_service;
use portcullis::store::{Item, keys};
use portcullis::{ApiError, ApiResponse, Ctx, views};

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

fn key_not_found() -> ApiError {
    ApiError::not_found("key_not_found", "key")
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_my_key_revoke";
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
        let key_id = call.req.uuid_param("key_id", key_not_found())?;
        call.audit.resource_type = Some("key".into());
        call.audit.resource_id = Some(key_id.to_string());
        let mut key: KeyRecord =
            record(ctx.store.get(&keys::org_key(org_id, key_id), true).await?)?
                .filter(|k: &KeyRecord| k.owner == owner)
                .ok_or_else(key_not_found)?;
        if key.revoked_at.is_none() {
            key.revoked_at = Some(call.now);
        }
        let write =
            key_service::set_time(key_service::record_key(&key), "revoked_at", key.revoked_at);
        Ok(Outcome::with_writes(
            ApiResponse::ok(&views::key(&key)),
            vec![write],
            key_not_found(),
        ))
    }
}

super::handler!(Op);
