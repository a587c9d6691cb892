//! Managed agents: validation of what the SDK sends, scope changes, and the writes of
//! agent keys (whose count per agent is bounded atomically).

use crate::error::ApiError;
use crate::model::{Agent, micros};
use crate::store::{Condition, Item, ItemKey, Write, keys, to_item};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// What an agent key may do: run (retrieve, proxy, report, trace), list its own grants, and
/// ask a user for access to a managed secret (managed-secret Connect, for itself only).
pub const AGENT_KEY_SCOPES: &[&str] = &[
    "tokens:retrieve",
    "proxy:execute",
    "grants:read",
    "audit:emit",
    "spans:emit",
    "connect:initiate",
    "secrets:write",
];

/// Staged narrowing waits this long unless `grace_seconds` says otherwise.
pub const DEFAULT_GRACE_SECONDS: i64 = 24 * 3600;
pub const MAX_GRACE_SECONDS: i64 = 7 * 24 * 3600;

pub fn agent_not_found() -> ApiError {
    ApiError::not_found("agent_not_found", "agent")
}

/// Agent names: 1–64 of `a-z 0-9 _ -`, starting with a letter or digit.
pub fn name(raw: &str) -> Result<String, ApiError> {
    let ok = (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !ok {
        return Err(ApiError::validation(
            "`name` must be 1 to 64 characters of a-z, 0-9, `_` and `-`, starting with a letter or digit",
        ));
    }
    Ok(raw.to_string())
}

/// `{provider: [scope, …], managed_secret_slugs: [slug, …]}`: non-empty lists of non-empty
/// strings, at most 12 KiB. `{}` is valid and allows nothing.
pub fn scopes(v: &Value) -> Result<Value, ApiError> {
    let bad = || {
        ApiError::validation(
            "`scopes` must be an object of non-empty lists of non-empty strings (at most 12 KiB), e.g. {\"managed_secret_slugs\": [\"stripe\"]}",
        )
    };
    let map = v.as_object().ok_or_else(bad)?;
    if v.to_string().len() > 12 * 1024 {
        return Err(bad());
    }
    for (provider, list) in map {
        let list = list.as_array().ok_or_else(bad)?;
        let fine = |s: &str| !s.is_empty() && s.trim() == s && !s.chars().any(char::is_control);
        if !fine(provider) || list.is_empty() || !list.iter().all(|s| s.as_str().is_some_and(fine))
        {
            return Err(bad());
        }
    }
    Ok(v.clone())
}

/// Whether `new` only adds to `old` (every provider scope of `old` is still in `new`).
pub fn broadens(old: &Value, new: &Value) -> bool {
    let empty = Map::new();
    old.as_object()
        .unwrap_or(&empty)
        .iter()
        .all(|(provider, scopes)| {
            let kept = new.get(provider).and_then(Value::as_array);
            scopes
                .as_array()
                .into_iter()
                .flatten()
                .all(|s| kept.is_some_and(|k| k.contains(s)))
        })
}

pub fn item(a: &Agent) -> Item {
    to_item(
        a,
        &keys::agent(a.app_id, a.agent_id),
        &[
            ("gsi1pk", keys::agents_index(a.app_id)),
            (
                "gsi1sk",
                keys::created_sort(micros(a.created_at), a.agent_id),
            ),
        ],
    )
}

/// Replaces the agent if nobody changed it since it was read (`version`).
pub fn put_if_unchanged(a: &Agent, read_version: u64) -> Write {
    Write::Put {
        item: item(a),
        condition: Some(
            Condition::new("#version = :read")
                .name("#version", "version")
                .value(":read", AttributeValue::N(read_version.to_string())),
        ),
    }
}

/// Counts a newly minted key on the agent, refusing past the per-agent limit or on an
/// agent that is not active: concurrent mints can never exceed the limit.
pub fn count_new_key(app_id: Uuid, agent_id: Uuid) -> Write {
    Write::Update {
        key: keys::agent(app_id, agent_id),
        update: "SET active_keys = active_keys + :one, keys_minted = keys_minted + :one".into(),
        condition: Some("active_keys < :max AND #status = :active".into()),
        names: vec![("#status".into(), "status".into())],
        values: vec![
            (":one".into(), AttributeValue::N("1".into())),
            (
                ":max".into(),
                AttributeValue::N(crate::model::agent::MAX_AGENT_KEYS.to_string()),
            ),
            (":active".into(), AttributeValue::S("active".into())),
        ],
    }
}

pub fn count_revoked_key(app_id: Uuid, agent_id: Uuid) -> Write {
    Write::Update {
        key: keys::agent(app_id, agent_id),
        update: "SET active_keys = active_keys - :one".into(),
        condition: Some("active_keys > :zero".into()),
        names: Vec::new(),
        values: vec![
            (":one".into(), AttributeValue::N("1".into())),
            (":zero".into(), AttributeValue::N("0".into())),
        ],
    }
}

pub fn name_reservation(a: &Agent) -> Write {
    Write::Put {
        item: to_item(
            &serde_json::json!({ "agent_id": a.agent_id }),
            &keys::agent_name(a.app_id, &a.name),
            &[],
        ),
        condition: Some(Condition::absent()),
    }
}

pub fn release_name(a: &Agent) -> Write {
    Write::Delete {
        key: keys::agent_name(a.app_id, &a.name),
        condition: None,
    }
}

/// The agent named by a path parameter, under the caller's app.
pub fn prefetch(req: &crate::ApiRequest, app: Option<Uuid>) -> Vec<ItemKey> {
    match (app, req.uuid_param("agent_id", agent_not_found())) {
        (Some(app), Ok(id)) => vec![keys::agent(app, id)],
        _ => Vec::new(),
    }
}

pub fn new_agent(
    app_id: Uuid,
    name: String,
    agent_type: crate::model::AgentType,
    scopes: Value,
    now: OffsetDateTime,
) -> Agent {
    Agent {
        agent_id: Uuid::new_v4(),
        app_id,
        name,
        display_name: None,
        agent_type,
        status: crate::model::AgentStatus::Active,
        scopes: Some(scopes),
        scopes_pending: None,
        scopes_applies_at: None,
        metadata: None,
        policy: None,
        rate_limit_per_minute: None,
        version: 1,
        active_keys: 0,
        keys_minted: 0,
        created_at: now,
        last_used_at: None,
    }
}

/// An agent key (`alter_key_…`, as the hosted product mints them), named `{agent}-{N}`.
pub fn mint_key(agent: &Agent, n: u32, now: OffsetDateTime) -> super::keys::NewKey {
    let mut key = super::keys::mint(
        crate::model::KeyOwner::App {
            app_id: agent.app_id,
        },
        crate::apikey::KeyType::Legacy,
        format!("{}-{n}", agent.name),
        AGENT_KEY_SCOPES.iter().map(|s| s.to_string()).collect(),
        None,
        now,
    );
    key.record.agent_id = Some(agent.agent_id);
    key
}

/// An active agent of the app, by UUID or by name (`agent=` of a Connect session, a
/// delegation's `to_agent_id`). Anything else answers `agent_not_found`.
pub async fn active(ctx: &crate::Ctx, app: Uuid, id_or_name: &str) -> Result<Agent, ApiError> {
    let id = match Uuid::try_parse(id_or_name) {
        Ok(id) => id,
        Err(_) => {
            let Ok(name) = name(id_or_name) else {
                return Err(agent_not_found());
            };
            let reservation = ctx.store.get(&keys::agent_name(app, &name), true).await?;
            let id = reservation
                .as_ref()
                .and_then(|r| crate::store::s(r, "agent_id"))
                .and_then(|s| Uuid::try_parse(s).ok());
            id.ok_or_else(agent_not_found)?
        }
    };
    let agent: Agent = ctx
        .store
        .get(&keys::agent(app, id), true)
        .await?
        .map(crate::store::from_item)
        .transpose()?
        .ok_or_else(agent_not_found)?;
    if agent.status != crate::model::AgentStatus::Active {
        return Err(agent_not_found());
    }
    Ok(agent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn broadening_and_narrowing() {
        let old = json!({"google": ["a", "b"], "managed_secret_slugs": ["x"]});
        assert!(broadens(
            &old,
            &json!({"google": ["a", "b", "c"], "managed_secret_slugs": ["x", "y"]})
        ));
        assert!(broadens(&old, &old));
        assert!(!broadens(
            &old,
            &json!({"google": ["a"], "managed_secret_slugs": ["x"]})
        ));
        assert!(!broadens(&old, &json!({"google": ["a", "b"]})));
    }

    #[test]
    fn names_and_scopes_are_validated() {
        assert!(name("billing-bot_2").is_ok());
        for bad in ["", "Billing", "-x", "a b", &"a".repeat(65)] {
            assert!(name(bad).is_err(), "{bad}");
        }
        assert!(scopes(&json!({})).is_ok());
        for bad in [
            json!([]),
            json!({"g": []}),
            json!({"g": [""]}),
            json!({" g": ["a"]}),
            json!({"g": [1]}),
        ] {
            assert!(scopes(&bad).is_err(), "{bad}");
        }
    }
}
