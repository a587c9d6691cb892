//! Minting and changing API keys (app keys and operator keys).

use crate::apikey::{self, KeyType};
use crate::error::ApiError;
use crate::model::{DirectoryEntry, KeyOwner, KeyRecord, micros};
use crate::scopes;
use crate::store::{Condition, Item, ItemKey, Write, keys, to_item};
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

pub struct NewKey {
    pub record: KeyRecord,
    pub plaintext: Zeroizing<String>,
}

/// Builds a key record and its plaintext; nothing is written yet.
pub fn mint(
    owner: KeyOwner,
    key_type: KeyType,
    name: String,
    scopes: Vec<String>,
    expires_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> NewKey {
    let secret = apikey::mint(key_type);
    NewKey {
        record: KeyRecord {
            key_id: Uuid::new_v4(),
            owner,
            name,
            key_type,
            key_prefix: secret.prefix,
            key_hash: secret.hash,
            scopes,
            created_at: now,
            expires_at,
            deprecated_at: None,
            revoked_at: None,
            last_used_at: None,
            agent_id: None,
            parent_key_id: None,
            cidr_allowlist: Vec::new(),
            rate_limit_rpm: None,
        },
        plaintext: secret.plaintext,
    }
}

pub fn record_key(record: &KeyRecord) -> ItemKey {
    match record.owner {
        KeyOwner::App { app_id } => keys::app_key(app_id, record.key_id),
        KeyOwner::Member { org_id, .. } => keys::org_key(org_id, record.key_id),
    }
}

pub fn record_item(record: &KeyRecord) -> Item {
    let index = match record.owner {
        KeyOwner::App { app_id } => vec![
            ("gsi1pk", keys::app_keys_index(app_id)),
            (
                "gsi1sk",
                keys::created_sort(micros(record.created_at), record.key_id),
            ),
        ],
        KeyOwner::Member { .. } => Vec::new(),
    };
    to_item(record, &record_key(record), &index)
}

/// The record and its directory entry, both new.
pub fn create_writes(record: &KeyRecord) -> Vec<Write> {
    let entry = DirectoryEntry {
        key_hash: record.key_hash.clone(),
        key_id: record.key_id,
        owner: record.owner,
    };
    vec![
        Write::Put {
            item: record_item(record),
            condition: Some(Condition::absent()),
        },
        Write::Put {
            item: to_item(&entry, &keys::key_directory(&record.key_hash), &[]),
            condition: Some(Condition::absent()),
        },
    ]
}

/// Validates requested scopes; none requested means every scope.
pub fn scopes_or_all(requested: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let Some(requested) = requested else {
        return Ok(scopes::all());
    };
    let unknown: Vec<&String> = requested.iter().filter(|s| !scopes::is_known(s)).collect();
    if requested.is_empty() || !unknown.is_empty() {
        return Err(ApiError::validation(format!(
            "`scopes` must be a non-empty list of known scopes (see GET /sdk/scopes); unknown: {unknown:?}"
        )));
    }
    let mut s = requested;
    s.sort();
    s.dedup();
    Ok(s)
}

/// Sets (or clears) one timestamp attribute of an existing key record.
pub fn set_time(key: ItemKey, attribute: &str, at: Option<OffsetDateTime>) -> Write {
    let (update, values) = match at {
        Some(t) => (
            "SET #a = :t".to_string(),
            vec![(
                ":t".to_string(),
                AttributeValue::S(crate::model::rfc3339(t)),
            )],
        ),
        None => ("REMOVE #a".to_string(), Vec::new()),
    };
    Write::Update {
        key,
        update,
        condition: Some("attribute_exists(pk)".into()),
        names: vec![("#a".into(), attribute.into())],
        values,
    }
}

/// Lifecycle changes an operator makes to an app key.
#[derive(Debug, Clone, Copy)]
pub enum Change {
    Deprecate,
    Undeprecate,
    Revoke,
}

pub fn key_not_found() -> ApiError {
    ApiError::not_found("key_not_found", "key")
}

/// The key named by `{key_id}` under the app, read with the caller's key.
pub fn prefetch_app_key(req: &crate::ApiRequest, app: Option<Uuid>) -> Vec<ItemKey> {
    match (app, req.uuid_param("key_id", key_not_found())) {
        (Some(app), Ok(id)) => vec![keys::app_key(app, id)],
        _ => Vec::new(),
    }
}

/// Applies a lifecycle change to the prefetched key record and answers its new state.
pub fn change_app_key(
    call: &mut crate::pipeline::Call<'_>,
    app: Uuid,
    mut items: Vec<Option<Item>>,
    change: Change,
) -> Result<crate::pipeline::Outcome, ApiError> {
    let key_id = call.req.uuid_param("key_id", key_not_found())?;
    call.audit.resource_type = Some("key".into());
    call.audit.resource_id = Some(key_id.to_string());
    let mut key: KeyRecord = items
        .first_mut()
        .and_then(Option::take)
        .map(crate::store::from_item)
        .transpose()?
        .filter(|k: &KeyRecord| k.owner == KeyOwner::App { app_id: app })
        .ok_or_else(key_not_found)?;
    let now = call.now;
    if key.revoked_at.is_some() && !matches!(change, Change::Revoke) {
        return Err(ApiError::conflict(
            "key_revoked",
            "this key is revoked; revocation is final",
        ));
    }
    let (attribute, value) = match change {
        Change::Deprecate => ("deprecated_at", Some(key.deprecated_at.unwrap_or(now))),
        Change::Undeprecate => ("deprecated_at", None),
        Change::Revoke => ("revoked_at", Some(key.revoked_at.unwrap_or(now))),
    };
    match change {
        Change::Revoke => key.revoked_at = value,
        _ => key.deprecated_at = value,
    }
    Ok(crate::pipeline::Outcome::with_writes(
        crate::ApiResponse::ok(&crate::views::key(&key)),
        vec![set_time(record_key(&key), attribute, value)],
        key_not_found(),
    ))
}
