//! `DELETE /v1/org/members/{member_id}`: remove a member; their operator keys stop working.

use super::common::record;
use aws_sdk_dynamodb::types::AttributeValue;
use portcullis::model::{Member, Role};
use portcullis::pipeline::{Access, Call, Empty, OWNERS, Operation, Outcome, Surface};
use portcullis::service::orgs;
use portcullis::store::{Condition, Item, Write, keys};
use portcullis::{ApiError, ApiResponse, Ctx, views};

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE.with(&[
    portcullis::iam::Action::Query,
    portcullis::iam::Action::ConditionCheckItem,
]);

fn last_owner() -> ApiError {
    ApiError::conflict("last_owner", "an organisation keeps at least one owner")
}

fn member_not_found() -> ApiError {
    ApiError::not_found("member_not_found", "member")
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_member_remove";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(OWNERS);
    type Body = Empty;

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let org_id = call.caller.org_id.expect("operator calls have an org");
        let member_id = call.req.uuid_param("member_id", member_not_found())?;
        call.audit.resource_type = Some("member".into());
        call.audit.resource_id = Some(member_id.to_string());
        let mut member: Member = record(
            ctx.store
                .get(&keys::org_member(org_id, member_id), true)
                .await?,
        )?
        .filter(|m: &Member| m.removed_at.is_none())
        .ok_or_else(member_not_found)?;
        let mut writes = vec![Write::Put {
            item: {
                let mut removed = member.clone();
                removed.removed_at = Some(call.now);
                orgs::member_item(&removed)
            },
            condition: Some(Condition::present()),
        }];
        if member.role == Role::Owner {
            // Another owner must still be there when this commits: two owners removing each
            // other at once must not both succeed, so the check is part of the transaction.
            let remaining = orgs::collection::<Member>(&ctx.store, org_id, keys::ORG_MEMBERS)
                .await?
                .into_iter()
                .filter(|m| {
                    m.role == Role::Owner && m.removed_at.is_none() && m.member_id != member_id
                })
                .min_by_key(|m| {
                    Some(m.member_id) != call.caller.member.as_ref().map(|c| c.member_id)
                })
                .ok_or_else(last_owner)?;
            writes.push(Write::Check {
                key: keys::org_member(org_id, remaining.member_id),
                condition: Condition::new(
                    "#role = :owner AND (attribute_not_exists(removed_at) OR attribute_type(removed_at, :null))",
                )
                .name("#role", "role")
                .value(":owner", AttributeValue::S("owner".into()))
                .value(":null", AttributeValue::S("NULL".into())),
            });
        }
        member.removed_at = Some(call.now);
        Ok(Outcome::with_writes(
            ApiResponse::ok(&views::member(&member)),
            writes,
            last_owner(),
        ))
    }
}

super::handler!(Op);
