//! `POST /sdk/oauth/grants/{grant_id}/revoke`: revoke a grant. Its OAuth tokens are erased
//! and revoked at the provider where it offers revocation; the outcome is audited. Later
//! calls answer `grant_revoked`; revoking again answers the first revocation.

use super::common::record;
use portcullis::model::{Grant, Principal, rfc3339};
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

    fn prefetch(ctx: &Ctx, req: &ApiRequest, body: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        let Some(app) = app else {
            return Vec::new();
        };
        let mut keys: Vec<ItemKey> = req
            .uuid_param("grant_id", grant_not_found())
            .map(|id| keys::grant(app, id))
            .into_iter()
            .collect();
        if let Some(token) = &body.user_token {
            keys.extend(portcullis::idp::prefetch(ctx, app, token));
        }
        keys
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let mut identity_writes = Vec::new();
        let user = match &body.user_token {
            Some(token) => {
                let own = usize::from(call.req.uuid_param("grant_id", grant_not_found()).is_ok());
                let identity = items.get_mut(own..).unwrap_or_default();
                Some(
                    super::common::end_user(ctx, call, token, identity, &mut identity_writes)
                        .await?,
                )
            }
            None => None,
        };
        call.audit.reason = body.reason.map(|r| r.chars().take(1024).collect());
        let grant_id = call.req.uuid_param("grant_id", grant_not_found())?;
        call.audit.resource_type = Some("grant".into());
        call.audit.resource_id = Some(grant_id.to_string());
        call.audit.grant_id = Some(grant_id.to_string());
        let grant: Grant =
            record(items.first_mut().and_then(Option::take))?.ok_or_else(grant_not_found)?;
        super::common::reachable(call, &grant)?;
        // With a user token, only that user's own grants (others' answer as missing).
        if let Some(user) = &user
            && grant.principal
                != (Principal::User {
                    app_user_id: user.app_user_id.to_string(),
                })
        {
            return Err(grant_not_found());
        }
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
        let (mut writes, provider) = grants::revoke(ctx, &grant, call.now).await?;
        writes.extend(identity_writes);
        call.audit.detail = provider.map(|p| json!({ "provider_revocation": p }));
        Ok(Outcome::with_writes(
            answer(call.now),
            writes,
            grant_not_found(),
        ))
    }
}

super::handler!(Op);
