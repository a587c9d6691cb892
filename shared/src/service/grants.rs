//! Grants: who may use which credential.

use crate::error::ApiError;
use crate::model::{Grant, GrantKind, GrantStatus, ManagedSecret, Principal, micros};
use crate::store::{Condition, Item, Query, Store, Write, from_item, keys, to_item};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

pub fn grant_not_found() -> ApiError {
    ApiError::not_found("grant_not_found", "grant")
}

pub fn item(g: &Grant) -> Item {
    let sort = keys::created_sort(micros(g.created_at), g.grant_id);
    to_item(
        g,
        &keys::grant(g.app_id, g.grant_id),
        &[
            ("gsi1pk", keys::app_grants_index(g.app_id)),
            ("gsi1sk", sort.clone()),
            (
                "gsi2pk",
                keys::principal_grants_index(g.app_id, &g.principal.key()),
            ),
            ("gsi2sk", sort),
        ],
    )
}

pub fn new_managed_secret_grant(
    secret: &ManagedSecret,
    principal: Principal,
    label: Option<String>,
    grant_policy: Option<Value>,
    expires_at: Option<OffsetDateTime>,
    created_by: String,
    now: OffsetDateTime,
) -> Grant {
    Grant {
        grant_id: Uuid::new_v4(),
        app_id: secret.app_id,
        kind: GrantKind::ManagedSecret {
            secret_id: secret.secret_id,
            slug: secret.slug.clone(),
            name: secret.name.clone(),
        },
        principal,
        label,
        status: GrantStatus::Active,
        grant_policy,
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
        created_by,
    }
}

/// The grant, written only if its secret still exists at commit time.
pub fn create_writes(g: &Grant, secret: &ManagedSecret) -> Vec<Write> {
    vec![
        Write::Put {
            item: item(g),
            condition: Some(Condition::absent()),
        },
        Write::Check {
            key: keys::secret(secret.app_id, secret.secret_id),
            condition: Condition::present(),
        },
    ]
}

pub fn revoke_write(g: &Grant, now: OffsetDateTime) -> Write {
    let mut revoked = g.clone();
    revoked.status = GrantStatus::Revoked;
    revoked.revoked_at = Some(now);
    Write::Put {
        item: item(&revoked),
        condition: Some(Condition::present()),
    }
}

/// Every grant of an app (or of one principal), oldest first, up to `cap`.
pub async fn list(
    store: &Store,
    app_id: Uuid,
    principal: Option<&Principal>,
    cap: usize,
) -> Result<(Vec<Grant>, bool), ApiError> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let mut q = match principal {
            Some(p) => Query::index(keys::principal_grants_index(app_id, &p.key()), "gsi2"),
            None => Query::index(keys::app_grants_index(app_id), "gsi1"),
        };
        q.start = start.take();
        q.limit = Some(500);
        let page = store.query(q).await?;
        for item in page.items {
            if out.len() == cap {
                return Ok((out, true));
            }
            out.push(from_item::<Grant>(item)?);
        }
        match page.last_key {
            Some(k) => start = Some(k),
            None => return Ok((out, false)),
        }
    }
}

/// Grants of a managed secret (to revoke them with it).
pub async fn of_secret(
    store: &Store,
    app_id: Uuid,
    secret_id: Uuid,
) -> Result<Vec<Grant>, ApiError> {
    let (all, _) = list(store, app_id, None, 100_000).await?;
    Ok(all
        .into_iter()
        .filter(
            |g| matches!(&g.kind, GrantKind::ManagedSecret { secret_id: s, .. } if *s == secret_id),
        )
        .collect())
}

/// The grant and, when this instance already knows which secret it uses, the secret too:
/// read together with the key record in one round trip.
pub fn prefetch_with_secret(
    ctx: &crate::Ctx,
    app_id: Uuid,
    grant_id: Uuid,
) -> Vec<crate::store::ItemKey> {
    let mut reads = vec![keys::grant(app_id, grant_id)];
    if let Some(secret_id) = ctx.cached_grant_secret(app_id, grant_id) {
        reads.push(keys::secret(app_id, secret_id));
    }
    reads
}

/// The managed secret behind a grant: the prefetched item, or a read when it was not cached.
pub async fn secret_of(
    ctx: &crate::Ctx,
    grant: &Grant,
    prefetched: Option<Item>,
) -> Result<Option<ManagedSecret>, ApiError> {
    let GrantKind::ManagedSecret { secret_id, .. } = &grant.kind;
    ctx.remember_grant_secret(grant.app_id, grant.grant_id, *secret_id);
    let item = match prefetched {
        Some(item) => Some(item),
        None => {
            ctx.store
                .get(&keys::secret(grant.app_id, *secret_id), true)
                .await?
        }
    };
    item.map(from_item).transpose()
}
