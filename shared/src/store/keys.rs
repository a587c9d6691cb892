//! Every partition and sort key of the table is built here and nowhere else.
//!
//! App-owned items live under partition keys that begin with the app ID, so an IAM policy
//! with `dynamodb:LeadingKeys = "<app_id>*"` fences one app. The only items outside any app
//! are the organisation's own and the key directory (a hash → owner pointer that must be
//! found before the app is known).

use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemKey {
    pub pk: String,
    pub sk: String,
}

fn key(pk: String, sk: &str) -> ItemKey {
    ItemKey {
        pk,
        sk: sk.to_string(),
    }
}

pub fn key_directory(key_hash: &str) -> ItemKey {
    key(format!("KEYHASH#{key_hash}"), "KEYHASH")
}

pub fn org(org_id: Uuid) -> ItemKey {
    key(format!("ORG#{org_id}"), "ORG")
}

pub fn org_member(org_id: Uuid, member_id: Uuid) -> ItemKey {
    key(format!("ORG#{org_id}"), &format!("MEMBER#{member_id}"))
}

pub fn org_key(org_id: Uuid, key_id: Uuid) -> ItemKey {
    key(format!("ORG#{org_id}"), &format!("KEY#{key_id}"))
}

pub fn org_app(org_id: Uuid, app_id: Uuid) -> ItemKey {
    key(format!("ORG#{org_id}"), &format!("APP#{app_id}"))
}

/// Sort-key prefixes of the organisation partition's collections.
pub const ORG_MEMBERS: &str = "MEMBER#";
pub const ORG_KEYS: &str = "KEY#";
pub const ORG_APPS: &str = "APP#";

pub fn org_partition(org_id: Uuid) -> String {
    format!("ORG#{org_id}")
}

pub fn app(app_id: Uuid) -> ItemKey {
    key(app_id.to_string(), "APP")
}

pub fn app_key(app_id: Uuid, key_id: Uuid) -> ItemKey {
    key(format!("{app_id}#KEY#{key_id}"), "KEY")
}

pub fn secret(app_id: Uuid, secret_id: Uuid) -> ItemKey {
    key(format!("{app_id}#SECRET#{secret_id}"), "SECRET")
}

pub fn secret_slug(app_id: Uuid, slug: &str) -> ItemKey {
    key(format!("{app_id}#SLUG#{slug}"), "SLUG")
}

pub fn agent(app_id: Uuid, agent_id: Uuid) -> ItemKey {
    key(format!("{app_id}#AGENT#{agent_id}"), "AGENT")
}

pub fn agent_name(app_id: Uuid, name: &str) -> ItemKey {
    key(format!("{app_id}#AGENTNAME#{name}"), "AGENTNAME")
}

/// An `Idempotency-Key` of agent creation, remembered for a day.
pub fn idempotency(app_id: Uuid, idempotency_key: &str) -> ItemKey {
    key(
        format!("{app_id}#IDEMPOTENCY#{idempotency_key}"),
        "IDEMPOTENCY",
    )
}

pub fn grant(app_id: Uuid, grant_id: Uuid) -> ItemKey {
    key(format!("{app_id}#GRANT#{grant_id}"), "GRANT")
}

/// The provider tokens of an OAuth grant: in the grant's partition, read with it.
pub fn grant_tokens(app_id: Uuid, grant_id: Uuid) -> ItemKey {
    key(format!("{app_id}#GRANT#{grant_id}"), "TOKENS")
}

/// An app's configuration of one OAuth provider.
pub fn provider(app_id: Uuid, provider_id: &str) -> ItemKey {
    key(format!("{app_id}#PROVIDER#{provider_id}"), "PROVIDER")
}

/// An app's identity provider (one per app).
pub fn idp(app_id: Uuid) -> ItemKey {
    key(format!("{app_id}#IDP"), "IDP")
}

/// The app's identity-assertion signing key (public half in the clear, private sealed).
pub fn assertion_key(app_id: Uuid) -> ItemKey {
    key(format!("{app_id}#ASSERTKEY"), "ASSERTKEY")
}

/// An end user of an app (the ID is derived from the identity provider and the subject).
pub fn app_user(app_id: Uuid, app_user_id: Uuid) -> ItemKey {
    key(format!("{app_id}#USER#{app_user_id}"), "USER")
}

/// A sign-in session, by the reference derived from its token.
pub fn auth_session(app_id: Uuid, ref_id: &str) -> ItemKey {
    key(format!("{app_id}#AUTH#{ref_id}"), "AUTH")
}

/// A Connect session, by the reference derived from its token.
pub fn connect_session(app_id: Uuid, ref_id: &str) -> ItemKey {
    key(format!("{app_id}#CONNECT#{ref_id}"), "CONNECT")
}

/// A policy quota's counter: one per subject (`grant:<id>`, `agent:<id>`), window kind and
/// window start.
pub fn quota_counter(app_id: Uuid, subject: &str, per: &str, window_start: i64) -> ItemKey {
    key(
        format!("{app_id}#QUOTA#{subject}#{per}#{window_start}"),
        "QUOTA",
    )
}

/// A span an agent sent (`/sdk/spans`), under its trace.
pub fn span(app_id: Uuid, trace_id: &str, span_id: &str) -> ItemKey {
    key(
        format!("{app_id}#TRACE#{trace_id}"),
        &format!("SPAN#{span_id}"),
    )
}

/// A proxy call waiting for approval, by its (first gate's) approval ID.
pub fn approval(app_id: Uuid, approval_id: Uuid) -> ItemKey {
    key(format!("{app_id}#APPROVAL#{approval_id}"), "APPROVAL")
}

pub fn app_approvals_index(app_id: Uuid) -> String {
    format!("{app_id}#APPROVALS")
}

/// A managed-secret Connect session, by the reference derived from its token.
pub fn secret_connect_session(app_id: Uuid, ref_id: &str) -> ItemKey {
    key(format!("{app_id}#MSCONNECT#{ref_id}"), "MSCONNECT")
}

/// The scope a nonce is remembered in: the key that signed it, under its app or org.
pub fn nonce(owner_partition: &str, key_id: Uuid, nonce: &str) -> ItemKey {
    key(format!("{owner_partition}#NONCE#{key_id}#{nonce}"), "NONCE")
}

/// A requests-per-minute counter of one subject (`key:<id>`, `agent:<id>`) and window.
pub fn rate_counter(owner_partition: &str, subject: &str, window_start: i64) -> ItemKey {
    key(
        format!("{owner_partition}#RATE#{subject}#{window_start}"),
        "RATE",
    )
}

/// Audit rows: one partition per owner, UTC day and shard; sorted by time within it.
/// Shards spread a busy app's writes over partitions (see docs/table-design.md).
pub const AUDIT_SHARDS: u32 = 16;

pub fn audit_partition(owner_partition: &str, day: &str, shard: u32) -> String {
    format!("{owner_partition}#AUDIT#{day}#{shard:02}")
}

pub fn audit_sort(micros: i64, request_id: &str) -> String {
    format!("{micros:017}#{request_id}")
}

/// The partition an app's (or org's) audit rows and nonces are filed under.
pub fn app_partition(app_id: Uuid) -> String {
    app_id.to_string()
}

// Index keys (gsi1: collection listings, gsi2: per-principal listings).
pub fn app_keys_index(app_id: Uuid) -> String {
    format!("{app_id}#KEYS")
}

pub fn agents_index(app_id: Uuid) -> String {
    format!("{app_id}#AGENTS")
}

pub fn agent_keys_index(app_id: Uuid, agent_id: Uuid) -> String {
    format!("{app_id}#AGENT#{agent_id}#KEYS")
}

pub fn app_secrets_index(app_id: Uuid) -> String {
    format!("{app_id}#SECRETS")
}

pub fn app_providers_index(app_id: Uuid) -> String {
    format!("{app_id}#PROVIDERS")
}

pub fn app_grants_index(app_id: Uuid) -> String {
    format!("{app_id}#GRANTS")
}

pub fn principal_grants_index(app_id: Uuid, principal_key: &str) -> String {
    format!("{app_id}#GRANTS#{principal_key}")
}

/// Index sort key: creation time then ID, so listings come out in creation order.
pub fn created_sort(created_micros: i64, id: Uuid) -> String {
    format!("{created_micros:017}#{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_owned_keys_begin_with_the_app_id() {
        let app_id = Uuid::new_v4();
        let id = Uuid::new_v4();
        for k in [
            app(app_id),
            app_key(app_id, id),
            secret(app_id, id),
            secret_slug(app_id, "x"),
            grant(app_id, id),
            grant_tokens(app_id, id),
            provider(app_id, "google"),
            connect_session(app_id, "ref"),
            nonce(&app_partition(app_id), id, "n"),
        ] {
            assert!(k.pk.starts_with(&app_id.to_string()), "{k:?}");
        }
        assert!(
            audit_partition(&app_partition(app_id), "2026-01-01", 3)
                .starts_with(&app_id.to_string())
        );
    }
}
