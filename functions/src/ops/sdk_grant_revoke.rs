//! `POST /sdk/oauth/grants/{grant_id}/revoke`: revoke a grant. Its OAuth tokens are erased
//! and revoked at the provider where it offers revocation; the outcome is audited. Later
//! calls answer `grant_revoked`; revoking again answers the first revocation.

use super::common::record;
use portcullis::model::{Grant, rfc3339};
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::service::grants::{self, grant_not_found};
use portcullis::store::{Item, ItemKey, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE.with(&[
    portcullis::iam::Action::DeleteItem,
    portcullis::iam::Action::Decrypt,
]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    reason: Option<String>,
    user_token: Option<String>,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_grant_revoke";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("grants:write");
    type Body = Body;

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        match (app, req.uuid_param("grant_id", grant_not_found())) {
            (Some(app), Ok(id)) => vec![keys::grant(app, id)],
            _ => Vec::new(),
        }
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        if body.user_token.is_some() {
            return Err(super::sdk_token::no_identity_provider());
        }
        call.audit.reason = body.reason.map(|r| r.chars().take(1024).collect());
        let grant_id = call.req.uuid_param("grant_id", grant_not_found())?;
        call.audit.resource_type = Some("grant".into());
        call.audit.resource_id = Some(grant_id.to_string());
        call.audit.grant_id = Some(grant_id.to_string());
        let grant: Grant =
            record(items.first_mut().and_then(Option::take))?.ok_or_else(grant_not_found)?;
        super::common::reachable(call, &grant)?;
        let answer = |at| {
            ApiResponse::ok(&json!({
                "success": true,
                "message": "grant revoked",
                "grant_id": grant.grant_id,
                "revoked_at": rfc3339(at),
            }))
        };
        if let Some(at) = grant.revoked_at {
            return Ok(Outcome::respond(answer(at)));
        }
        let (writes, provider) = grants::revoke(ctx, &grant, call.now).await?;
        call.audit.detail = provider.map(|p| json!({ "provider_revocation": p }));
        Ok(Outcome::with_writes(
            answer(call.now),
            writes,
            grant_not_found(),
        ))
    }
}

super::handler!(Op);
