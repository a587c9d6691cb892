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
            end_user_key: false,
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
        scope_mismatch: false,
        needs_reconnect: false,
        delegation: None,
        delegable: false,
        delegated_agent_ids: Vec::new(),
        policy: None,
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

/// Only the status changes: a Put of the copy read earlier could drop what changed since (a
/// delegation added to `delegated_agent_ids` meanwhile).
pub fn revoke_write(g: &Grant, now: OffsetDateTime) -> Write {
    crate::service::delegations::revoke_write(g.app_id, g.grant_id, now)
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

/// The grant and its credential, read together with the key record in one round trip: the
/// grant's credential item (OAuth tokens, an end user's own key; absent otherwise) and, when
/// this instance already knows which one the grant uses, its managed secret (else read
/// after). Answered in this order: grant, credential item, secret.
pub fn prefetch_credential(
    ctx: &crate::Ctx,
    app_id: Uuid,
    grant_id: Uuid,
) -> Vec<crate::store::ItemKey> {
    let mut keys = vec![
        keys::grant(app_id, grant_id),
        keys::grant_tokens(app_id, grant_id),
    ];
    if let Some(secret_id) = ctx.cached_grant_secret(app_id, grant_id) {
        keys.push(keys::secret(app_id, secret_id));
    }
    keys
}

/// The OAuth tokens of a grant, read on their own (provider-mode resolution).
pub async fn tokens_of(
    ctx: &crate::Ctx,
    g: &Grant,
) -> Result<Option<crate::model::TokenSet>, ApiError> {
    ctx.store
        .get(&keys::grant_tokens(g.app_id, g.root_id()), true)
        .await?
        .map(from_item)
        .transpose()
}

/// The grant is active but its credential is gone (deleted secret, erased tokens).
pub fn credential_erased(g: &Grant) -> ApiError {
    ApiError::forbidden(
        "credential_revoked",
        "the credential behind this grant was deleted",
    )
    .field("grant_id", serde_json::json!(g.grant_id))
    .field("provider_id", serde_json::json!(g.kind.provider_id()))
}

/// The managed secret behind a grant: the prefetched item, or a read when it was not cached.
pub async fn secret_of(
    ctx: &crate::Ctx,
    grant: &Grant,
    prefetched: Option<Item>,
) -> Result<Option<ManagedSecret>, ApiError> {
    let GrantKind::ManagedSecret { secret_id, .. } = &grant.kind else {
        return Ok(None);
    };
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

/// Revokes a grant: the writes that mark it revoked and erase its OAuth tokens, after asking
/// the provider to revoke them too (best effort: its answer, e.g. `revoked`,
/// `not_supported`, `failed:http_503`, is returned for the audit row; the grant is revoked
/// here whatever the provider says).
pub async fn revoke(
    ctx: &crate::Ctx,
    g: &Grant,
    now: OffsetDateTime,
) -> Result<(Vec<Write>, Option<String>), ApiError> {
    let mut writes = vec![revoke_write(g, now)];
    // Delegations made from it end with it.
    writes.extend(crate::service::delegations::revoke_children_writes(g, now));
    // A delegation holds no credential of its own: the user's grant keeps it.
    if g.delegation.is_some() {
        return Ok((writes, None));
    }
    let key = keys::grant_tokens(g.app_id, g.grant_id);
    let GrantKind::OAuth { provider_id, .. } = &g.kind else {
        // An end user's own key is erased with its grant.
        if g.kind.credential_in_grant() {
            writes.push(Write::Delete {
                key,
                condition: None,
            });
        }
        return Ok((writes, None));
    };
    let Some(item) = ctx.store.get(&key, true).await? else {
        return Ok((writes, Some("no_tokens".into())));
    };
    writes.push(Write::Delete {
        key,
        condition: None,
    });
    let set: crate::model::TokenSet = from_item(item)?;
    let outcome = match crate::service::providers::configured(ctx, g.app_id, provider_id).await {
        Err(_) => "failed:provider_not_configured".to_string(),
        Ok(p) => {
            let secret = crate::oauth::tokens::open(ctx, &set).await?;
            // Revoking the refresh token ends the whole authorization at most providers.
            let (token, hint) = match &secret.refresh_token {
                Some(r) => (r.as_str(), "refresh_token"),
                None => (secret.access_token.as_str(), "access_token"),
            };
            match crate::oauth::client::revoke(&p.def, &p.credentials(), token, hint).await {
                Ok(()) => "revoked".to_string(),
                Err(e) if e == "not_supported" => e,
                Err(e) => format!("failed:{e}"),
            }
        }
    };
    Ok((writes, Some(outcome)))
}

/// Groups of a user a listing follows (IdPs put far fewer in a token).
pub const MAX_USER_GROUPS: usize = 25;

/// The grants an end user holds: their own, and those of their groups at the app's identity
/// provider (one index query each, all at once).
pub async fn of_user(
    store: &Store,
    app_id: Uuid,
    user: &crate::idp::EndUser,
    cap: usize,
) -> Result<(Vec<Grant>, bool), ApiError> {
    let mut principals = vec![Principal::User {
        app_user_id: user.app_user_id.to_string(),
    }];
    principals.extend(
        user.groups
            .iter()
            .take(MAX_USER_GROUPS)
            .map(|g| Principal::Group {
                external_group_id: g.clone(),
                idp_id: Some(user.idp_id.to_string()),
            }),
    );
    let lists = futures_util::future::join_all(
        principals.iter().map(|p| list(store, app_id, Some(p), cap)),
    )
    .await;
    let mut out = Vec::new();
    let mut truncated = false;
    for l in lists {
        let (grants, t) = l?;
        truncated |= t;
        // A group's grant counts only for the identity provider it was made for.
        out.extend(grants.into_iter().filter(|g| reaches(g, user)));
    }
    Ok((out, truncated))
}

/// Whether a grant is the user's own or one of their groups' (at the same IdP).
pub fn reaches(g: &Grant, user: &crate::idp::EndUser) -> bool {
    match &g.principal {
        Principal::User { app_user_id } => *app_user_id == user.app_user_id.to_string(),
        Principal::Group {
            external_group_id,
            idp_id,
        } => {
            idp_id.as_deref() == Some(user.idp_id.to_string().as_str())
                && user.groups.iter().any(|ug| ug == external_group_id)
        }
        _ => false,
    }
}

/// A grant's group principal: a group ID the app's identity provider puts in its mapped
/// groups claim (`idp_id`, when given, must be that provider's).
pub fn group_principal(
    config: &crate::model::IdpConfig,
    external_group_id: Option<&str>,
    idp_id: Option<&str>,
) -> Result<Principal, ApiError> {
    let id = external_group_id.ok_or_else(|| {
        ApiError::validation("a group principal needs `principal.external_group_id`")
    })?;
    let id = crate::service::validate::name("principal.external_group_id", id, 255)?;
    if idp_id.is_some_and(|i| i != config.idp_id.to_string()) {
        return Err(ApiError::validation(
            "`principal.idp_id` is not this app's identity provider",
        ));
    }
    if config.claims.groups.is_none() {
        return Err(ApiError::validation(
            "the app's identity provider maps no groups claim: set `claims.groups` first",
        ));
    }
    Ok(Principal::Group {
        external_group_id: id,
        idp_id: Some(config.idp_id.to_string()),
    })
}
