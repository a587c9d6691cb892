//! `DELETE /v1/apps/{app_id}/grants/{grant_id}`: revoke a grant; the next token call on it
//! answers `grant_revoked`. OAuth tokens are erased and revoked at the provider.

use super::common::{app_in_path, record};
use portcullis::model::Grant;
use portcullis::pipeline::{ADMINS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::service::grants::{self, grant_not_found};
use portcullis::store::{Item, ItemKey, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE.with(&[
    portcullis::iam::Action::DeleteItem,
    portcullis::iam::Action::Decrypt,
]);

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_grant_revoke";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Empty;

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Empty, app: Option<Uuid>) -> Vec<ItemKey> {
        match (app, req.uuid_param("grant_id", grant_not_found())) {
            (Some(app), Ok(id)) => vec![keys::grant(app, id)],
            _ => Vec::new(),
        }
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let grant_id = call.req.uuid_param("grant_id", grant_not_found())?;
        call.audit.resource_type = Some("grant".into());
        call.audit.resource_id = Some(grant_id.to_string());
        call.audit.grant_id = Some(grant_id.to_string());
        let mut grant: Grant =
            record(items.first_mut().and_then(Option::take))?.ok_or_else(grant_not_found)?;
        if grant.revoked_at.is_some() {
            return Ok(Outcome::respond(ApiResponse::ok(&views::grant(
                &grant, call.now,
            ))));
        }
        let (writes, provider) = grants::revoke(ctx, &grant, call.now).await?;
        call.audit.detail = provider.map(|p| serde_json::json!({ "provider_revocation": p }));
        grant.status = portcullis::model::GrantStatus::Revoked;
        grant.revoked_at = Some(call.now);
        Ok(Outcome::with_writes(
            ApiResponse::ok(&views::grant(&grant, call.now)),
            writes,
            grant_not_found(),
        ))
    }
}

super::handler!(Op);
