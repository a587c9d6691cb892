//! Alter scopes on keys: `{resource}:{verb}` with read < write < admin, plus action verbs that
//! no resource verb implies (retrieving a token is not "reading grants").

use crate::error::ApiError;
use serde_json::{Value, json};

pub const SCOPE_VERSION: u32 = 1;

pub const RESOURCES: &[&str] = &[
    "agents",
    "grants",
    "keys",
    "secrets",
    "idp_users",
    "audit_logs",
    "usage",
    "approvals",
    "providers",
];
const VERBS: &[&str] = &["read", "write", "admin"];
pub const ACTIONS: &[&str] = &[
    "tokens:retrieve",
    "proxy:execute",
    "connect:initiate",
    "keys:derive",
    "audit:emit",
    "spans:emit",
];

fn rank(verb: &str) -> Option<usize> {
    VERBS.iter().position(|v| *v == verb)
}

/// Whether `scope` is a scope this server knows.
pub fn is_known(scope: &str) -> bool {
    if ACTIONS.contains(&scope) {
        return true;
    }
    matches!(scope.split_once(':'), Some((r, v)) if RESOURCES.contains(&r) && rank(v).is_some())
}

/// Every scope at its highest level: what the demo key and "all scopes" keys hold.
pub fn all() -> Vec<String> {
    RESOURCES
        .iter()
        .map(|r| format!("{r}:admin"))
        .chain(ACTIONS.iter().map(|a| a.to_string()))
        .collect()
}

/// Whether the held scopes cover `required`.
pub fn satisfies(held: &[String], required: &str) -> bool {
    held.iter().any(|h| {
        if h == required {
            return true;
        }
        match (h.split_once(':'), required.split_once(':')) {
            (Some((hr, hv)), Some((rr, rv))) if hr == rr => {
                matches!((rank(hv), rank(rv)), (Some(a), Some(b)) if a >= b)
            }
            _ => false,
        }
    })
}

pub fn require(held: &[String], required: &str) -> Result<(), ApiError> {
    if satisfies(held, required) {
        return Ok(());
    }
    Err(ApiError::forbidden(
        "insufficient_scope",
        format!("this key lacks the scope `{required}`"),
    )
    .hint("use a key that holds this scope: an operator mints one with POST /v1/apps/{app_id}/keys")
    .field("required", json!([required]))
    .field("granted", json!(held))
    .field("missing", json!([required]))
    .field("scope_version", json!(SCOPE_VERSION))
    .field("current_scope_version", json!(SCOPE_VERSION))
    .field("scope_version_mismatch", json!(false))
    .field("required_any_of", json!([[required]])))
}

/// The `GET /sdk/scopes` catalogue.
pub fn catalogue() -> Value {
    let resources: serde_json::Map<String, Value> = RESOURCES
        .iter()
        .map(|r| (r.to_string(), json!({ "verbs": VERBS })))
        .collect();
    json!({
        "scope_version": SCOPE_VERSION,
        "resources": resources,
        "action_verbs": ACTIONS,
        "deprecated": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_and_actions() {
        let held = vec!["grants:write".to_string(), "audit:emit".to_string()];
        assert!(satisfies(&held, "grants:read"));
        assert!(satisfies(&held, "grants:write"));
        assert!(!satisfies(&held, "grants:admin"));
        assert!(!satisfies(&held, "tokens:retrieve"));
        assert!(satisfies(&held, "audit:emit"));
        assert!(!satisfies(&all(), "*"));
        assert!(satisfies(&all(), "tokens:retrieve"));
        assert!(!is_known("*"));
        assert!(!is_known("grants:delete"));
        assert!(is_known("secrets:write"));
    }
}
