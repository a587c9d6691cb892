//! `POST /sdk/keys/derive`: a short-lived `alter_dk_…` key from the caller's key. Its scopes
//! are a subset of the caller's (`keys:derive` is never passed on), its life is capped by the
//! caller's and by the organisation's maximum (default 24 hours), its CIDR allowlist lies inside the caller's (inherited if none is
//! given). It stops the moment its parent is revoked, expires or is rotated away.

use super::common::record;
use portcullis::apikey::KeyType;
use portcullis::cidr::{self, Cidr};
use portcullis::model::{App, Org};
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::service::{keys as key_service, validate};
use portcullis::store::{Item, keys};
use portcullis::{ApiError, ApiResponse, Ctx, scopes, views};
use serde::Deserialize;
use serde_json::json;
use time::Duration;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

#[derive(Deserialize)]
pub struct Body {
    scopes: Vec<String>,
    expires_in: i64,
    cidr_allowlist: Option<Vec<String>>,
    name: Option<String>,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_key_derive";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("keys:derive");
    type Body = Body;

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let parent = &call.caller.key;
        if body.scopes.is_empty()
            || body
                .scopes
                .iter()
                .any(|s| s == "keys:derive" || !scopes::is_known(s))
        {
            return Err(ApiError::bad_request(
                "invalid_scope_for_derived_key",
                "`scopes` must be known scopes other than keys:derive",
            ));
        }
        let broader: Vec<&String> = body
            .scopes
            .iter()
            .filter(|s| !scopes::satisfies(&call.caller.scopes, s))
            .collect();
        if !broader.is_empty() {
            return Err(ApiError::bad_request(
                "constraint_not_narrowing",
                "a derived key's scopes must be within its parent's",
            )
            .details(json!({ "not_held": broader })));
        }
        if body.expires_in <= 0 {
            return Err(ApiError::validation(
                "`expires_in` must be a positive number of seconds",
            ));
        }
        // The organisation's cap (default 24 h): read only here, off the runtime path.
        let app: App = record(ctx.store.get(&keys::app(call.caller.app()), true).await?)?
            .ok_or_else(ApiError::internal)?;
        let org: Org = record(ctx.store.get(&keys::org(app.org_id), true).await?)?
            .ok_or_else(ApiError::internal)?;
        let max_ttl = Duration::hours(i64::from(org.max_derived_key_ttl_hours()));
        let mut expires_at = call.now + Duration::seconds(body.expires_in).min(max_ttl);
        if let Some(parent_end) = parent.expires_at {
            expires_at = expires_at.min(parent_end);
        }
        let cidrs = match body.cidr_allowlist {
            None => parent.cidr_allowlist.clone(),
            Some(list) => {
                let list = cidr::parse_list(&list)?;
                let parents: Vec<Cidr> = parent
                    .cidr_allowlist
                    .iter()
                    .filter_map(|c| Cidr::parse(c).ok())
                    .collect();
                let inside =
                    |c: &String| Cidr::parse(c).is_ok_and(|c| parents.iter().any(|p| p.covers(&c)));
                if !parents.is_empty() && !list.iter().all(inside) {
                    return Err(ApiError::bad_request(
                        "constraint_not_narrowing",
                        "a derived key's CIDR allowlist must lie inside its parent's",
                    ));
                }
                if list.is_empty() {
                    parent.cidr_allowlist.clone()
                } else {
                    list
                }
            }
        };
        let name = match &body.name {
            Some(n) => validate::name("name", n, 100)?,
            None => {
                let d = call.now;
                format!(
                    "derived-{:04}{:02}{:02}-{:02}{:02}{:02}",
                    d.year(),
                    u8::from(d.month()),
                    d.day(),
                    d.hour(),
                    d.minute(),
                    d.second()
                )
            }
        };
        let mut scopes = body.scopes;
        scopes.sort();
        scopes.dedup();
        let mut key = key_service::mint(
            parent.owner,
            KeyType::Dk,
            name,
            scopes,
            Some(expires_at),
            call.now,
        );
        key.record.parent_key_id = Some(parent.key_id);
        key.record.agent_id = parent.agent_id;
        key.record.cidr_allowlist = cidrs;
        call.audit.resource_type = Some("key".into());
        call.audit.resource_id = Some(key.record.key_id.to_string());
        Ok(Outcome::with_writes(
            ApiResponse::json(
                http::StatusCode::CREATED,
                &views::minted_key(&key.record, &key.plaintext),
            ),
            key_service::create_writes(&key.record),
            ApiError::conflict("write_conflict", "retry"),
        ))
    }
}

super::handler!(Op);
