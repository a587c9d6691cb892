//! `PATCH /sdk/agents/{agent_id}/keys/{key_id}/undeprecate`: clears a deprecation; a revoked
//! key stays revoked.

use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::service::keys::{Change, change_agent_key, prefetch_agent_key};
use portcullis::store::{Item, ItemKey};
use portcullis::{ApiError, ApiRequest, Ctx};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_agent_key_undeprecate";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("agents:write");
    type Body = serde_json::Value;

    fn prefetch(
        _: &Ctx,
        req: &ApiRequest,
        _: &serde_json::Value,
        app: Option<Uuid>,
    ) -> Vec<ItemKey> {
        prefetch_agent_key(req, app)
    }

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        _: serde_json::Value,
        items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        change_agent_key(call, items, Change::Undeprecate)
    }
}

super::handler!(Op);
