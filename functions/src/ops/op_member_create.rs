//! `POST /v1/org/members`: add a member with a role; answers their first operator key once.

use portcullis::model::Role;
use portcullis::pipeline::{Access, Call, OWNERS, Operation, Outcome, Surface};
use portcullis::service::{orgs, validate};
use portcullis::store::Item;
use portcullis::{ApiError, ApiResponse, Ctx, views};
use serde::Deserialize;
use serde_json::json;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    email: String,
    role: String,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_member_create";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(OWNERS);
    type Body = Body;

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let org_id = call.caller.org_id.expect("operator calls have an org");
        let role = Role::parse(&body.role)
            .ok_or_else(|| ApiError::validation("`role` must be owner, admin or auditor"))?;
        let (member, key, writes) =
            orgs::new_member(org_id, validate::email(&body.email)?, role, call.now);
        call.audit.resource_type = Some("member".into());
        call.audit.resource_id = Some(member.member_id.to_string());
        Ok(Outcome::with_writes(
            ApiResponse::json(
                http::StatusCode::CREATED,
                &json!({
                    "member": views::member(&member),
                    "operator_key": views::minted_key(&key.record, &key.plaintext),
                }),
            ),
            writes,
            ApiError::conflict("write_conflict", "retry"),
        ))
    }
}

super::handler!(Op);
