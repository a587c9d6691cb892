//! `POST /sdk/token`: retrieve mode. Resolves the grant, checks it may be used for this URL,
//! and answers the credential with its injection rule (spec §7.1).
//!
//! Round trips on a warm instance: one read of key, grant and its credential (the managed
//! secret, or the OAuth token item) together, then one transaction with the nonce and the
//! audit row. An OAuth token that would expire within a minute is refreshed first
//! (`oauth::refresh`).

use crate::runtime::{self, Addressing, Resolved};
use portcullis::model::secret::host_allowed;
use portcullis::model::{Grant, GrantKind};
use portcullis::oauth::refresh;
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface, needs_touch};
use portcullis::service::{grants, secrets, token};
use portcullis::store::{Item, ItemKey, from_item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
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
    reason: Option<String>,
    request: Option<Target>,
}

#[derive(Deserialize)]
struct Target {
    method: String,
    url: String,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_token";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("tokens:retrieve");
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
        let target = body
            .request
            .as_ref()
            .ok_or_else(|| ApiError::validation("`request` ({method, url}) is required"))?;
        let host = portcullis::destination::host_of(&target.url)?;
        call.audit.detail = Some(json!({
            "method": target.method.chars().take(16).collect::<String>(),
            "host": host,
        }));
        let mut writes = Vec::new();
        let Resolved {
            grant,
            credential,
            secret,
            ..
        } = runtime::resolve(
            ctx,
            call,
            &body.addressing,
            items,
            &mut writes,
            &runtime::Target {
                method: &target.method.to_ascii_uppercase(),
                url: &target.url,
                proxy: false,
            },
        )
        .await?;
        let answer = match &grant.kind {
            GrantKind::ManagedSecret { .. } => {
                managed_secret_answer(ctx, call, &grant, secret, credential, &host).await?
            }
            GrantKind::OAuth { hosts, .. } => {
                if !host_allowed(hosts, &host) {
                    return Err(blocked(
                        &host,
                        call,
                        "this provider's token may only be sent to its API hosts",
                    ));
                }
                let set = match credential {
                    Some(item) => Some(from_item(item)?),
                    None => grants::tokens_of(ctx, &grant).await?,
                };
                let set = set.ok_or_else(|| grants::credential_erased(&grant))?;
                let fresh = refresh::fresh(ctx, &grant, set, call.now).await?;
                token::oauth_answer(&grant, &fresh, OffsetDateTime::now_utc())
            }
        };
        let mut outcome =
            Outcome::respond(ApiResponse::ok(&answer).header("cache-control", "no-store"));
        outcome.writes = writes;
        if needs_touch(grant.last_used_at, call.now) {
            outcome.touch = Some(keys::grant(app, grant.grant_id));
        }
        Ok(outcome)
    }
}

fn blocked(host: &str, call: &Call<'_>, why: &str) -> ApiError {
    ApiError::new(
        http::StatusCode::UNPROCESSABLE_ENTITY,
        "blocked_destination",
        format!("`{host}` is not an allowed destination: {why}"),
    )
    .details(json!({ "host": host, "request_id": call.req.request_id }))
}

async fn managed_secret_answer(
    ctx: &Ctx,
    call: &Call<'_>,
    grant: &Grant,
    secret: Option<Item>,
    own_key: Option<Item>,
    host: &str,
) -> Result<serde_json::Value, ApiError> {
    let injected = secrets::injected(ctx, grant, secret, own_key)
        .await?
        .ok_or_else(|| grants::credential_erased(grant))?;
    if injected.secret.template.proxy_only() {
        return Err(ApiError::bad_request(
            "restricted_grant_requires_proxy",
            "this secret is attached to each request by Portcullis (a query parameter, or an AWS signature): use proxy mode (POST /sdk/proxy)",
        )
        .field("grant_id", json!(grant.grant_id)));
    }
    if !host_allowed(&injected.secret.allowed_hosts, host) {
        return Err(blocked(
            host,
            call,
            "this secret is limited to its allowed hosts",
        ));
    }
    let answer = token::answer(grant, &injected);
    if answer.is_null() {
        return Err(ApiError::internal());
    }
    Ok(answer)
}

super::handler!(Op);
