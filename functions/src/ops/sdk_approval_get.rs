//! `GET /sdk/approvals/{approval_id}[?wait=N]`: an approval's status (spec §7.5). With `wait`
//! (0–25 s) the answer is held until the status changes or the time is up. An agent's own
//! key reaches only the approvals its calls asked for.

use super::common::record;
use portcullis::model::approval::Approval;
use portcullis::pipeline::{Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::service::approvals;
use portcullis::store::{Item, ItemKey, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use std::time::Duration;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

/// The longest hold (the SDK asks for at most 25 s; the gateway allows 29).
const MAX_WAIT: u64 = 25;

pub struct Op;

/// The approval named in the path, read with the key.
pub fn prefetch_approval(req: &ApiRequest, app: Option<Uuid>) -> Vec<ItemKey> {
    match (app, req.uuid_param("approval_id", approvals::not_found())) {
        (Some(app), Ok(id)) => vec![keys::approval(app, id)],
        _ => Vec::new(),
    }
}

/// The approval named in the path, if the caller may see it.
pub fn reachable(call: &Call<'_>, a: Option<Approval>) -> Result<Approval, ApiError> {
    let a = a.ok_or_else(approvals::not_found)?;
    if let Some(agent) = call.caller.agent_key_owner() {
        let asked_by = a
            .requested_by
            .as_ref()
            .and_then(|r| r["agent_id"].as_str())
            .and_then(|id| Uuid::try_parse(id).ok());
        if asked_by != Some(agent.agent_id) {
            return Err(approvals::not_found());
        }
    }
    Ok(a)
}

impl Operation for Op {
    const NAME: &'static str = "sdk_approval_get";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("proxy:execute");
    type Body = Empty;

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Empty, app: Option<Uuid>) -> Vec<ItemKey> {
        prefetch_approval(req, app)
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let id = call.req.uuid_param("approval_id", approvals::not_found())?;
        let wait = match call.req.query("wait") {
            None => 0,
            Some(w) => w
                .parse::<u64>()
                .ok()
                .filter(|w| *w <= MAX_WAIT)
                .ok_or_else(|| ApiError::validation("`wait` is 0 to 25 seconds"))?,
        };
        call.audit.resource_type = Some("approval".into());
        call.audit.resource_id = Some(id.to_string());
        let mut a = reachable(call, record(items.first_mut().and_then(Option::take))?)?;
        let seen = a.status_at(time::OffsetDateTime::now_utc());
        let deadline = std::time::Instant::now() + Duration::from_secs(wait);
        // Held while nothing changes: a decision, an execution, or the expiry.
        while std::time::Instant::now() < deadline
            && a.status_at(time::OffsetDateTime::now_utc()) == seen
            && matches!(seen, "pending" | "executing")
        {
            tokio::time::sleep(Duration::from_millis(500)).await;
            a = record(ctx.store.get(&keys::approval(a.app_id, id), true).await?)?
                .ok_or_else(approvals::not_found)?;
        }
        let view = approvals::status_view(&a, time::OffsetDateTime::now_utc());
        Ok(Outcome::respond(
            ApiResponse::ok(&view).header("cache-control", "no-store"),
        ))
    }
}

super::handler!(Op);
