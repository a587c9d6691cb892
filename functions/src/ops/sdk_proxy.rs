//! `POST /sdk/proxy`: proxy mode (spec §7.4). The grant is resolved exactly as `/sdk/token`
//! resolves it, then Portcullis itself makes the call with the credential attached, so the
//! credential never reaches the caller. Only to the grant's hosts, only to public addresses
//! (checked after DNS, and again by the client on connect), no redirects followed, bounded
//! in time and size. The audit row keeps the exchange (sensitive headers dropped, bodies
//! capped, the credential redacted). The nonce is spent before the call: a replay never
//! repeats it.

use crate::approvals;
use crate::proxy::{self, Outgoing};
use crate::runtime::{self, Addressing, Resolved, Target};
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface, needs_touch};
use portcullis::service;
use portcullis::store::{Condition, Item, ItemKey, Write, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE.with(&[
    portcullis::iam::Action::Query,
    portcullis::iam::Action::GenerateDataKey,
    portcullis::iam::Action::Decrypt,
]);

#[derive(Deserialize)]
pub struct Body {
    #[serde(flatten)]
    addressing: Addressing,
    method: String,
    url: String,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    query_params: Option<Map<String, Value>>,
    reason: Option<String>,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_proxy";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("proxy:execute");
    const ACTS_OUTSIDE: bool = true;
    type Body = Body;

    fn prefetch(ctx: &Ctx, _: &ApiRequest, body: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        body.addressing.prefetch(ctx, app)
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let app = call.caller.app();
        call.audit.reason = body.reason.as_ref().map(|r| r.chars().take(1024).collect());
        let out = Outgoing::new(
            &body.method,
            &body.url,
            body.query_params.as_ref(),
            body.headers.unwrap_or_default(),
            body.body,
        )?;
        let mut writes = Vec::new();
        let Resolved {
            grant,
            credential,
            secret,
            approval,
        } = runtime::resolve(
            ctx,
            call,
            &body.addressing,
            items,
            &mut writes,
            &Target {
                method: &out.method,
                url: &out.url,
                proxy: true,
            },
        )
        .await?;
        // A call that needs approval waits (202); the decision that completes it makes it.
        if let Some(rule) = approval {
            let a = approvals::create(ctx, call, &grant, &out, &rule).await?;
            call.audit.resource_type = Some("approval".into());
            call.audit.resource_id = Some(a.approval_id.to_string());
            call.audit.detail = Some(json!({
                "kind": "proxy", "approval": "pending", "method": out.method,
                "url": out.url.chars().take(2048).collect::<String>(), "gates": a.gates.len(),
            }));
            let answer = service::approvals::pending_view(&a, ctx.public_url(call.req)?, call.now);
            writes.push(Write::Put {
                item: service::approvals::item(&a),
                condition: Some(Condition::absent()),
            });
            return Ok(Outcome::with_writes(
                ApiResponse::json(http::StatusCode::ACCEPTED, &answer)
                    .header("cache-control", "no-store"),
                writes,
                ApiError::conflict("write_conflict", "retry"),
            ));
        }
        let (result, exchange) = proxy::execute(
            ctx,
            &grant,
            credential,
            secret,
            &out,
            call.req.request_id.as_str(),
        )
        .await;
        call.audit.detail = exchange;
        let answer = result?;
        let mut outcome =
            Outcome::respond(ApiResponse::ok(&answer).header("cache-control", "no-store"));
        outcome.writes = writes;
        if needs_touch(grant.last_used_at, call.now) {
            outcome.touch = Some(keys::grant(app, grant.grant_id));
        }
        Ok(outcome)
    }
}

super::handler!(Op);
