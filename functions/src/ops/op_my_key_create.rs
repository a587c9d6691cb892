//! `POST /v1/me/keys`: mint another operator key for the calling member (shown once).

use portcullis::pipeline::{AUDIT_READERS, Access, Call, Operation, Outcome, Surface};
use portcullis::service::{keys as key_service, orgs, validate};
use portcullis::store::Item;
use portcullis::{ApiError, ApiResponse, Ctx, views};
use serde::Deserialize;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    name: Option<String>,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_my_key_create";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(AUDIT_READERS);
    type Body = Body;

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let member = call
            .caller
            .member
            .as_ref()
            .expect("operator calls have a member");
        let name = validate::name("name", body.name.as_deref().unwrap_or("operator"), 100)?;
        let key = orgs::operator_key(member, name, call.now);
        call.audit.resource_type = Some("key".into());
        call.audit.resource_id = Some(key.record.key_id.to_string());
        Ok(Outcome::with_writes(
            ApiResponse::json(
                http::StatusCode::CREATED,
                &views::minted_key(&key.record, &key.plaintext),
            ),
            key_service::create_writes(&key.record),
            ApiError::conflict("write_conflict", "retry"),
        ))
    }
}

super::handler!(Op);
