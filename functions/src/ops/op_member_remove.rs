//! `DELETE /v1/org/members/{member_id}`: remove a member; their operator keys stop working.

use super::common::record;
use portcullis::model::{Member, Role};
use portcullis::pipeline::{Access, Call, Empty, OWNERS, Operation, Outcome, Surface};
use portcullis::service::orgs;
use portcullis::store::{Condition, Item, Query, Write, from_item, keys};
use portcullis::{ApiError, ApiResponse, Ctx, views};

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
        if member.role == Role::Owner {
            let mut q = Query::partition(keys::org_partition(org_id));
            q.sort_prefix = Some(keys::ORG_MEMBERS.into());
            q.consistent = true;
            let owners = ctx
                .store
                .query(q)
                .await?
                .items
                .into_iter()
                .map(from_item::<Member>)
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .filter(|m| m.role == Role::Owner && m.removed_at.is_none())
                .count();
            if owners <= 1 {
                return Err(ApiError::conflict(
                    "last_owner",
                    "an organisation keeps at least one owner",
                ));
            }
        }
        member.removed_at = Some(call.now);
        Ok(Outcome::with_writes(
            ApiResponse::ok(&views::member(&member)),
            vec![Write::Put {
                item: orgs::member_item(&member),
                condition: Some(Condition::present()),
            }],
            member_not_found(),
        ))
    }
}

super::handler!(Op);
