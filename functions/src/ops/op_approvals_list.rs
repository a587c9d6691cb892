//! `GET /v1/apps/{app_id}/approvals[?status=pending]`: the app's approval requests, newest
//! first, with who asked and for what call, and — while pending — each undecided gate's
//! approver link for the operator to hand out.

use super::common::{app_in_path, app_of, query_body};
use portcullis::model::approval::Approval;
use portcullis::pipeline::{ADMINS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::store::{Item, Query, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE.with(&[
    portcullis::iam::Action::Query,
    portcullis::iam::Action::Decrypt,
]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Filter {
    status: Option<String>,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_approvals_list";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Empty;

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let filter: Filter = query_body(call.req, &[])?;
        let mut q = Query::index(keys::app_approvals_index(app_of(call)), "gsi1");
        q.forward = false;
        q.limit = Some(200);
        let page = ctx.store.query(q).await?;
        let mut items = Vec::new();
        for item in page.items {
            let a: Approval = portcullis::store::from_item(item)?;
            let status = a.status_at(call.now);
            if filter.status.as_deref().is_some_and(|s| s != status) {
                continue;
            }
            let mut v = crate::approvals::describe(&a, "", 0, call.now);
            v["approval_id"] = json!(a.approval_id);
            v["grant_id"] = json!(a.grant_id);
            v["gates"] = portcullis::service::approvals::status_view(&a, call.now)["gates"].clone();
            // The approvers' links, for the operator to hand out (the caller never gets them).
            v["approver_links"] = json!(if status == "pending" {
                crate::approvals::pending_links(ctx, &a, ctx.public_url(call.req)?).await?
            } else {
                Vec::new()
            });
            if let Some(o) = v.as_object_mut() {
                o.remove("app");
                o.remove("gate");
            }
            items.push(v);
        }
        Ok(Outcome::respond(ApiResponse::ok(
            &json!({ "items": items }),
        )))
    }
}

super::handler!(Op);
