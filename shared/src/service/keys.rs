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
            rotated_to: None,
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
    let sort = keys::created_sort(micros(record.created_at), record.key_id);
    // Derived keys of an agent are not part of its key set (they die with their parent).
    let agent = record
        .agent_id
        .filter(|_| record.key_type != crate::apikey::KeyType::Dk);
    let index = match (record.owner, agent) {
        // Agent keys are listed per agent, app keys per app.
        (KeyOwner::App { app_id }, Some(agent_id)) => {
            vec![
                ("gsi1pk", keys::agent_keys_index(app_id, agent_id)),
                ("gsi1sk", sort),
            ]
        }
        (KeyOwner::App { app_id }, None) => {
            vec![("gsi1pk", keys::app_keys_index(app_id)), ("gsi1sk", sort)]
        }
        (KeyOwner::Member { .. }, _) => Vec::new(),
    };
    to_item(record, &record_key(record), &index)
}

/// The record and its directory entry, both new.
pub fn create_writes(record: &KeyRecord) -> Vec<Write> {
    let entry = DirectoryEntry {
        key_hash: record.key_hash.clone(),
        key_id: record.key_id,
        owner: record.owner,
        agent_id: record.agent_id,
        parent_key_id: record.parent_key_id,
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

/// The key named by `{key_id}`, prefetched by `prefetch_app_key`: any key of the app (app,
/// agent or derived), or `key_not_found`. Records the key as the audited resource.
pub fn prefetched_app_key(
    call: &mut crate::pipeline::Call<'_>,
    app: Uuid,
    items: &mut [Option<Item>],
) -> Result<KeyRecord, ApiError> {
    let key_id = call.req.uuid_param("key_id", key_not_found())?;
    call.audit.resource_type = Some("key".into());
    call.audit.resource_id = Some(key_id.to_string());
    items
        .first_mut()
        .and_then(Option::take)
        .map(crate::store::from_item)
        .transpose()?
        .filter(|k: &KeyRecord| k.owner == KeyOwner::App { app_id: app })
        .ok_or_else(key_not_found)
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
        .filter(|k: &KeyRecord| k.owner == KeyOwner::App { app_id: app } && k.agent_id.is_none())
        .ok_or_else(key_not_found)?;
    let write = apply(&mut key, change, call.now)?;
    Ok(crate::pipeline::Outcome::with_writes(
        crate::ApiResponse::ok(&crate::views::key(&key)),
        vec![write],
        key_not_found(),
    ))
}

/// Applies a lifecycle change to a key record and returns the write that stores it.
fn apply(
    key: &mut KeyRecord,
    change: Change,
    now: time::OffsetDateTime,
) -> Result<Write, ApiError> {
    if key.revoked_at.is_some() {
        return Err(ApiError::conflict(
            "key_revoked",
            "this key is revoked; revocation is final",
        ));
    }
    let (attribute, value) = match change {
        Change::Deprecate => ("deprecated_at", Some(key.deprecated_at.unwrap_or(now))),
        Change::Undeprecate => ("deprecated_at", None),
        Change::Revoke => ("revoked_at", Some(now)),
    };
    match change {
        Change::Revoke => key.revoked_at = value,
        _ => key.deprecated_at = value,
    }
    Ok(set_time(record_key(key), attribute, value))
}

/// The agent and the key named by `{agent_id}` and `{key_id}`, read with the caller's key.
pub fn prefetch_agent_key(req: &crate::ApiRequest, app: Option<Uuid>) -> Vec<ItemKey> {
    let agent = req.uuid_param("agent_id", key_not_found());
    let key = req.uuid_param("key_id", key_not_found());
    match (app, agent, key) {
        (Some(app), Ok(agent), Ok(key)) => vec![keys::agent(app, agent), keys::app_key(app, key)],
        _ => Vec::new(),
    }
}

/// Applies a lifecycle change to one of an agent's keys. Revoking the agent's last active
/// key needs `?force=true`; the agent's active-key count follows in the same transaction.
pub fn change_agent_key(
    call: &mut crate::pipeline::Call<'_>,
    mut items: Vec<Option<Item>>,
    change: Change,
) -> Result<crate::pipeline::Outcome, ApiError> {
    use crate::model::Agent;
    let not_found = super::agents::agent_not_found;
    call.req.uuid_param("agent_id", not_found())?;
    let key_id = call.req.uuid_param("key_id", key_not_found())?;
    call.audit.resource_type = Some("key".into());
    call.audit.resource_id = Some(key_id.to_string());
    let mut taken = items.iter_mut().map(Option::take);
    let agent: Agent = taken
        .next()
        .flatten()
        .map(crate::store::from_item)
        .transpose()?
        .ok_or_else(not_found)?;
    let mut key: KeyRecord = taken
        .next()
        .flatten()
        .map(crate::store::from_item)
        .transpose()?
        .filter(|k: &KeyRecord| {
            k.agent_id == Some(agent.agent_id) && k.key_type != crate::apikey::KeyType::Dk
        })
        .ok_or_else(key_not_found)?;
    if matches!(change, Change::Revoke)
        && key.revoked_at.is_none()
        && agent.active_keys <= 1
        && call.req.query("force").as_deref() != Some("true")
    {
        return Err(ApiError::conflict(
            "last_active_key",
            "this is the agent's last active key; pass force=true to revoke it anyway",
        ));
    }
    let mut writes = vec![apply(&mut key, change, call.now)?];
    if matches!(change, Change::Revoke) {
        writes.push(super::agents::count_revoked_key(
            agent.app_id,
            agent.agent_id,
        ));
    }
    Ok(crate::pipeline::Outcome::with_writes(
        crate::ApiResponse::ok(&crate::views::agent_key(&key)),
        writes,
        key_not_found(),
    ))
}
