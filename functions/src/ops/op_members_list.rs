//! `GET /v1/org/members`: the organisation's members.

use portcullis::model::Member;
use portcullis::pipeline::{AUDIT_READERS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::store::{Item, Query, from_item, keys};
use portcullis::{ApiError, ApiResponse, Ctx, views};
use serde_json::json;

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_members_list";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(AUDIT_READERS);
    type Body = Empty;

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let org_id = call.caller.org_id.expect("operator calls have an org");
        let mut q = Query::partition(keys::org_partition(org_id));
        q.sort_prefix = Some(keys::ORG_MEMBERS.into());
        q.consistent = true;
        let page = ctx.store.query(q).await?;
        let members: Vec<Member> = page
            .items
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        let items: Vec<_> = members.iter().map(views::member).collect();
        Ok(Outcome::respond(ApiResponse::ok(
            &json!({ "items": items }),
        )))
    }
}

super::handler!(Op);
