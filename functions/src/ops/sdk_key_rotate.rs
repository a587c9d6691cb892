//! `POST /sdk/keys/{key_id}/rotate`: a new key with the same scopes, allowlist and name; the
//! old one keeps working for `overlap_days` (default 7, at most 30), then answers
//! `key_rotated_grace_expired`. Derived keys and per-agent keys are not rotated: derive or
//! mint a new one instead.

use portcullis::apikey::KeyType;
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::service::keys as key_service;
use portcullis::store::{Condition, Item, ItemKey, Write};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use serde::Deserialize;
use time::Duration;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

#[derive(Deserialize)]
pub struct Body {
    overlap_days: Option<i64>,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_key_rotate";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("keys:write");
    type Body = Body;

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        key_service::prefetch_app_key(req, app)
    }

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let app = call.caller.app();
        let mut old = key_service::prefetched_app_key(call, app, &mut items)?;
        let overlap = body.overlap_days.unwrap_or(7);
        if !(0..=30).contains(&overlap) {
            return Err(ApiError::validation(
                "`overlap_days` must be between 0 and 30",
            ));
        }
        if old.revoked_at.is_some() {
            return Err(ApiError::conflict(
                "key_revoked",
                "a revoked key cannot be rotated",
            ));
        }
        if old.rotated_to.is_some() {
            return Err(ApiError::conflict(
                "key_already_rotated",
                "this key was already rotated; rotate its successor",
            ));
        }
        if matches!(old.key_type, KeyType::Dk | KeyType::Legacy) {
            return Err(ApiError::bad_request(
                "key_not_rotatable",
                "derived and per-agent keys are not rotated: derive or mint a new key and revoke the old one",
            ));
        }
        let mut new = key_service::mint(
            old.owner,
            old.key_type,
            old.name.clone(),
            old.scopes.clone(),
            old.expires_at,
            call.now,
        );
        new.record.cidr_allowlist = old.cidr_allowlist.clone();
        new.record.agent_id = old.agent_id;
        let overlap_end = call.now + Duration::days(overlap);
        old.expires_at = Some(old.expires_at.map_or(overlap_end, |e| e.min(overlap_end)));
        old.rotated_to = Some(new.record.key_id);
        let mut writes = vec![Write::Put {
            item: key_service::record_item(&old),
            // Not rotated meanwhile (an unset field is stored as NULL).
            condition: Some(
                Condition::new("attribute_exists(pk) AND (attribute_not_exists(rotated_to) OR attribute_type(rotated_to, :null))")
                    .value(":null", aws_sdk_dynamodb::types::AttributeValue::S("NULL".into())),
            ),
        }];
        writes.extend(key_service::create_writes(&new.record));
        Ok(Outcome::with_writes(
            ApiResponse::json(
                http::StatusCode::CREATED,
                &views::minted_key(&new.record, &new.plaintext),
            ),
            writes,
            ApiError::conflict(
                "key_already_rotated",
                "this key was rotated at the same moment; rotate its successor",
            ),
        ))
    }
}

super::handler!(Op);
