//! `DELETE /sdk/keys/{key_id}[?force=true]`: revoke a key of the app at once; keys derived
//! from it stop with it. The last active key of a managed agent needs `force=true`.

use super::common::record;
use portcullis::model::Agent;
use portcullis::pipeline::{Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::service::agents;
use portcullis::service::keys::{self as key_service, key_not_found};
use portcullis::store::{Item, ItemKey, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_key_revoke";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("keys:write");
    type Body = Empty;

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Empty, app: Option<Uuid>) -> Vec<ItemKey> {
        key_service::prefetch_app_key(req, app)
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let app = call.caller.app();
        let mut key = key_service::prefetched_app_key(call, app, &mut items)?;
        if key.revoked_at.is_some() {
            return Err(ApiError::conflict(
                "key_revoked",
                "this key is already revoked",
            ));
        }
        key.revoked_at = Some(call.now);
        let mut writes = vec![key_service::set_time(
            key_service::record_key(&key),
            "revoked_at",
            key.revoked_at,
        )];
        // A managed agent's own key: keep its count, and keep it from losing its last key by accident.
        if let Some(agent_id) = key
            .agent_id
            .filter(|_| key.key_type != portcullis::apikey::KeyType::Dk)
        {
            let agent: Option<Agent> =
                record(ctx.store.get(&keys::agent(app, agent_id), true).await?)?;
            if let Some(agent) = agent {
                if agent.active_keys <= 1 && call.req.query("force").as_deref() != Some("true") {
                    return Err(ApiError::conflict(
                        "last_active_key",
                        "this is the agent's last active key; pass force=true",
                    ));
                }
                writes.push(agents::count_revoked_key(app, agent_id));
            }
        }
        Ok(Outcome::with_writes(
            ApiResponse::ok(&views::key(&key)),
            writes,
            key_not_found(),
        ))
    }
}

super::handler!(Op);
