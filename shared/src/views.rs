//! API shapes of stored records. Only what is listed here leaves the server: hashes and
//! sealed values have no path into a response.

use crate::model::{Grant, GrantKind, KeyRecord, ManagedSecret, Member, Template, rfc3339};
use crate::scopes::SCOPE_VERSION;
use serde_json::{Value, json};
use time::OffsetDateTime;

fn t(v: Option<OffsetDateTime>) -> Value {
    v.map(|t| json!(rfc3339(t))).unwrap_or(Value::Null)
}

/// `APIKeyInfo` (spec §7.9).
pub fn key(k: &KeyRecord) -> Value {
    json!({
        "id": k.key_id,
        "name": k.name,
        "key_prefix": k.key_prefix,
        // Per-agent `alter_key_…` keys are agent keys to the SDK's `APIKeyInfo`.
        "key_type": match k.key_type { crate::apikey::KeyType::Legacy => "ak", t => t.tag() },
        "scopes": k.scopes,
        "scope_version": SCOPE_VERSION,
        "cidr_allowlist": k.cidr_allowlist,
        "rate_limit_rpm": k.rate_limit_rpm,
        // Both or neither, as the SDK requires.
        "effective_rate_limit_rpm": k.rate_limit_rpm,
        "rate_limit_source": k.rate_limit_rpm.map(|_| "key"),
        "expires_at": t(k.expires_at),
        "deprecated_at": t(k.deprecated_at),
        "revoked_at": t(k.revoked_at),
        "parent_key_id": k.parent_key_id,
        "created_at": rfc3339(k.created_at),
        "last_used_at": t(k.last_used_at),
    })
}

/// `MintedKey`: the key info plus the plaintext, shown this once.
pub fn minted_key(k: &KeyRecord, plaintext: &str) -> Value {
    let mut v = key(k);
    v["api_key"] = json!(plaintext);
    v
}

pub fn app(a: &crate::model::App) -> Value {
    json!({
        "id": a.app_id,
        "org_id": a.org_id,
        "name": a.name,
        "created_at": rfc3339(a.created_at),
        "policy": a.policy,
    })
}

pub fn secret(s: &ManagedSecret) -> Value {
    let header = match &s.template {
        Template::ApiKey { header } => json!(header),
        _ => Value::Null,
    };
    json!({
        "id": s.secret_id,
        "name": s.name,
        "slug": s.slug,
        "template": s.template.name(),
        "header_name": header,
        "param_name": match &s.template { Template::QueryParam { param } => json!(param), _ => Value::Null },
        "aws_region": match &s.template { Template::AwsSigv4 { region, .. } => json!(region), _ => Value::Null },
        "aws_service": match &s.template { Template::AwsSigv4 { service, .. } => json!(service), _ => Value::Null },
        "allowed_hosts": s.allowed_hosts,
        "version": s.version,
        "created_at": rfc3339(s.created_at),
        "rotated_at": t(s.rotated_at),
    })
}

/// A `grants/list` item (spec §7.8), discriminated on `grant_kind`.
pub fn grant(g: &Grant, now: OffsetDateTime) -> Value {
    match &g.kind {
        GrantKind::ManagedSecret {
            secret_id,
            slug,
            name,
            end_user_key,
        } => json!({
            "grant_kind": "managed_secret",
            "grant_id": g.grant_id,
            "managed_secret_id": secret_id,
            "managed_secret_slug": slug,
            "managed_secret_name": name,
            "provider_id": slug,
            "agent_id": match &g.principal { crate::model::Principal::Agent { agent_id } => json!(agent_id), _ => Value::Null },
            "app_user_id": match &g.principal { crate::model::Principal::User { app_user_id } => json!(app_user_id), _ => Value::Null },
            "label": g.label,
            "status": g.status_at(now),
            "account_identifier": Value::Null,
            "grant_policy": g.grant_policy,
            "expires_at": Value::Null,
            "grant_expires_at": t(g.expires_at),
            "created_at": rfc3339(g.created_at),
            "last_used_at": t(g.last_used_at),
            "principal_type": g.principal.kind(),
            "access_via": if g.delegation.is_some() { "ms_delegation" } else { "ownership" },
            "delegated_at": t(g.delegation.as_ref().map(|d| d.delegated_at)),
            "parent_grant_id": g.delegation.as_ref().map(|d| d.parent_grant_id),
            "depth": g.depth(),
            "delegable": g.delegable,
            "scope_constraint": Value::Null,
            "credential_id": Value::Null,
            "policy": g.policy,
            "credential_kind": if *end_user_key { "end_user" } else { "developer" },
            "credential_label": if *end_user_key { json!(g.label) } else { Value::Null },
        }),
        GrantKind::OAuth {
            provider_id,
            scopes,
            account_identifier,
            account_display_name,
            api_base_url,
            ..
        } => json!({
            "grant_kind": "oauth",
            "grant_id": g.grant_id,
            "provider_id": provider_id,
            "scopes": scopes,
            "account_identifier": account_identifier,
            "account_display_name": account_display_name,
            "api_base_url": api_base_url,
            "status": g.status_at(now),
            "scope_mismatch": g.scope_mismatch,
            "needs_reconnect": g.needs_reconnect,
            "expires_at": Value::Null,
            "grant_expires_at": t(g.expires_at),
            "created_at": rfc3339(g.created_at),
            "last_used_at": t(g.last_used_at),
            "principal_type": g.principal.kind(),
            "app_user_id": match &g.principal { crate::model::Principal::User { app_user_id } => json!(app_user_id), _ => Value::Null },
            "access_via": if g.delegation.is_some() { "oauth_delegation" } else { "ownership" },
            "delegated_at": t(g.delegation.as_ref().map(|d| d.delegated_at)),
            "delegated_agent_ids": g.delegated_agent_ids,
            "label": g.label,
            "credential_id": Value::Null,
            "grant_policy": g.grant_policy,
            "parent_grant_id": g.delegation.as_ref().map(|d| d.parent_grant_id),
            "depth": g.depth(),
            "delegable": g.delegable,
            "scope_constraint": g.delegation.as_ref().and_then(|d| d.scope_constraint.clone()),
            "policy": g.policy,
        }),
    }
}

/// An app's provider configuration; the client secret never leaves the store.
pub fn provider_config(c: &crate::model::ProviderConfig, redirect_uri: &str) -> Value {
    let name = c
        .custom
        .as_ref()
        .map(|d| d.name.clone())
        .or_else(|| crate::providers::find(&c.provider_id).map(|d| d.name.clone()));
    json!({
        "provider_id": c.provider_id,
        "name": name,
        "client_id": c.client_id,
        "client_secret_set": true,
        "scopes": c.scopes,
        "allowed_scopes": c.allowed_scopes,
        "redirect_uri": redirect_uri,
        "url_params": c.url_params,
        "custom": c.custom,
        "created_at": rfc3339(c.created_at),
        "updated_at": rfc3339(c.updated_at),
    })
}

pub fn member(m: &Member) -> Value {
    json!({
        "id": m.member_id,
        "org_id": m.org_id,
        "email": m.email,
        "role": m.role.as_str(),
        "created_at": rfc3339(m.created_at),
        "removed_at": t(m.removed_at),
    })
}

/// `AgentInfo` (spec §7.9); objects the SDK refuses as null are answered as `{}`.
pub fn agent(a: &crate::model::Agent, now: OffsetDateTime) -> Value {
    let pending_live = a.scopes_applies_at.is_some_and(|t| t > now);
    json!({
        "id": a.agent_id,
        "name": a.name,
        "display_name": a.display_name,
        "type": a.agent_type,
        "status": a.status,
        "scopes": a.scopes_at(now),
        "scopes_pending": if pending_live { a.scopes_pending.clone().unwrap_or(Value::Null) } else { Value::Null },
        "scopes_applies_at": if pending_live { t(a.scopes_applies_at) } else { Value::Null },
        "policy": a.policy.clone().unwrap_or_else(|| json!({})),
        "metadata": a.metadata.clone().unwrap_or_else(|| json!({})),
        "rate_limit_per_minute": a.rate_limit_per_minute,
        "version": a.version,
        "created_at": rfc3339(a.created_at),
        "last_used_at": t(a.last_used_at),
        "parent_agent_id": Value::Null,
        "stored_legacy_managed_secret_names": [],
    })
}

/// `AgentKey` (spec §7.9).
pub fn agent_key(k: &KeyRecord) -> Value {
    json!({
        "key_id": k.key_id,
        "key_prefix": k.key_prefix,
        "name": k.name,
        "created_at": rfc3339(k.created_at),
        "deprecated_at": t(k.deprecated_at),
        "revoked_at": t(k.revoked_at),
        "last_used_at": t(k.last_used_at),
    })
}

/// An app's identity provider as operators see it.
pub fn idp(c: &crate::model::IdpConfig) -> Value {
    json!({
        "idp_id": c.idp_id,
        "app_id": c.app_id,
        "preset": c.preset,
        "issuer": c.issuer,
        "jwks_url": c.jwks_url,
        "audience": c.audiences,
        "authorized_parties": c.authorized_parties,
        "algorithms": c.algorithms.iter().map(|a| a.name()).collect::<Vec<_>>(),
        "claims": c.claims,
        "claims_locked": c.first_sign_in_at.is_some(),
        "first_sign_in_at": c.first_sign_in_at.map(rfc3339),
        "created_at": rfc3339(c.created_at),
        "updated_at": rfc3339(c.updated_at),
        // The client secret never leaves the store.
        "signin": c.signin.as_ref().map(|s| json!({
            "client_id": s.client_id,
            "scopes": s.scopes,
            "authorize_url": s.authorize_url,
            "token_url": s.token_url,
        })),
    })
}
