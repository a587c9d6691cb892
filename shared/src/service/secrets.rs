//! Managed secrets: operator-provisioned credentials, sealed at rest, injected per template.

use super::validate;
use crate::context::Ctx;
use crate::error::ApiError;
use crate::model::secret::EndUserKey;
use crate::model::secret::slugify;
use crate::model::{Grant, ManagedSecret, SecretValue, Template, micros};
use crate::store::{Condition, Item, ItemKey, Write, from_item, keys, to_item};
use serde::Deserialize;
use uuid::Uuid;
use zeroize::Zeroizing;

/// The value as an operator sends it, checked against the template.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueInput {
    pub token: Option<String>,
    pub api_key: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for ValueInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ValueInput(…)")
    }
}

pub fn value_for(template: &Template, v: ValueInput) -> Result<SecretValue, ApiError> {
    let wrong = |want: &str| {
        ApiError::validation(format!(
            "the `value` of a `{}` secret is {want}",
            template.name()
        ))
    };
    match (template, v) {
        (
            Template::Bearer,
            ValueInput {
                token: Some(token),
                api_key: None,
                username: None,
                password: None,
            },
        ) => {
            validate::header_safe("value.token", &token)?;
            Ok(SecretValue::Token { token })
        }
        (Template::Bearer, _) => Err(wrong("{\"token\": \"…\"}")),
        (
            Template::ApiKey { .. },
            ValueInput {
                api_key: Some(api_key),
                token: None,
                username: None,
                password: None,
            },
        ) => {
            validate::header_safe("value.api_key", &api_key)?;
            Ok(SecretValue::ApiKey { api_key })
        }
        (Template::ApiKey { .. }, _) => Err(wrong("{\"api_key\": \"…\"}")),
        (
            Template::Basic,
            ValueInput {
                username: Some(username),
                password: Some(password),
                token: None,
                api_key: None,
            },
        ) => {
            if username.is_empty() || username.contains(':') {
                return Err(ApiError::validation(
                    "`value.username` must be non-empty and contain no `:`",
                ));
            }
            validate::header_safe("value.username", &username)?;
            validate::header_safe("value.password", &password)?;
            Ok(SecretValue::Basic { username, password })
        }
        (Template::Basic, _) => Err(wrong("{\"username\": \"…\", \"password\": \"…\"}")),
    }
}

pub fn template_for(name: &str, header_name: Option<&str>) -> Result<Template, ApiError> {
    match (name, header_name) {
        ("bearer", None) => Ok(Template::Bearer),
        ("basic", None) => Ok(Template::Basic),
        ("api_key", Some(h)) => Ok(Template::ApiKey {
            header: validate::header_name(h)?,
        }),
        ("api_key", None) => Err(ApiError::validation(
            "an `api_key` secret needs `header_name`",
        )),
        ("bearer" | "basic", Some(_)) => Err(ApiError::validation(
            "`header_name` is only for `api_key` secrets",
        )),
        _ => Err(ApiError::validation(
            "`template` must be one of bearer, api_key, basic",
        )),
    }
}

pub async fn seal(
    ctx: &Ctx,
    app_id: Uuid,
    secret_id: Uuid,
    value: &SecretValue,
) -> Result<crate::crypto::Sealed, ApiError> {
    let plain = Zeroizing::new(serde_json::to_vec(value).expect("secret values serialise"));
    ctx.sealer
        .seal(app_id, &ManagedSecret::aad_item(secret_id), &plain)
        .await
}

pub async fn open(ctx: &Ctx, secret: &ManagedSecret) -> Result<SecretValue, ApiError> {
    let plain = ctx
        .sealer
        .open(
            secret.app_id,
            &ManagedSecret::aad_item(secret.secret_id),
            &secret.value,
        )
        .await?;
    serde_json::from_slice(&plain).map_err(|_| ApiError::internal())
}

/// What a managed-secret grant injects: its secret (template, hosts) and the value, which is
/// the end user's own key for grants made by managed-secret Connect, else the secret's own.
pub struct Injected {
    pub secret: ManagedSecret,
    pub value: SecretValue,
    /// Changes when the value does (`token_generation`).
    pub generation: Uuid,
}

/// The credential of a managed-secret grant (of the chain's root for a delegation). `secret`
/// and `own_key` are what was prefetched (read here when `None`); `None` when the secret or
/// the user's key is gone.
pub async fn injected(
    ctx: &Ctx,
    grant: &Grant,
    secret: Option<Item>,
    own_key: Option<Item>,
) -> Result<Option<Injected>, ApiError> {
    let Some(secret) = crate::service::grants::secret_of(ctx, grant, secret).await? else {
        return Ok(None);
    };
    if !grant.kind.credential_in_grant() {
        let value = open(ctx, &secret).await?;
        let generation = secret.version;
        return Ok(Some(Injected {
            secret,
            value,
            generation,
        }));
    }
    let own_key = match own_key {
        Some(item) => Some(item),
        None => {
            ctx.store
                .get(&keys::grant_tokens(grant.app_id, grant.root_id()), true)
                .await?
        }
    };
    let Some(key) = own_key.map(from_item::<EndUserKey>).transpose()? else {
        return Ok(None);
    };
    let plain = ctx
        .sealer
        .open(key.app_id, &EndUserKey::aad_item(key.grant_id), &key.value)
        .await?;
    let value = serde_json::from_slice(&plain).map_err(|_| ApiError::internal())?;
    Ok(Some(Injected {
        secret,
        value,
        generation: key.version,
    }))
}

/// A user's own key, sealed under its grant, as the item that holds it.
pub async fn end_user_key_item(
    ctx: &Ctx,
    app_id: Uuid,
    grant_id: Uuid,
    value: &SecretValue,
    now: time::OffsetDateTime,
) -> Result<Item, ApiError> {
    let plain = Zeroizing::new(serde_json::to_vec(value).expect("secret values serialise"));
    let sealed = ctx
        .sealer
        .seal(app_id, &EndUserKey::aad_item(grant_id), &plain)
        .await?;
    let key = EndUserKey {
        app_id,
        grant_id,
        value: sealed,
        version: Uuid::new_v4(),
        updated_at: now,
    };
    Ok(to_item(&key, &keys::grant_tokens(app_id, grant_id), &[]))
}

pub fn item(s: &ManagedSecret) -> Item {
    to_item(
        s,
        &keys::secret(s.app_id, s.secret_id),
        &[
            ("gsi1pk", keys::app_secrets_index(s.app_id)),
            (
                "gsi1sk",
                keys::created_sort(micros(s.created_at), s.secret_id),
            ),
        ],
    )
}

/// Slug candidates for a name: `stripe-production`, then `-2`, `-3`, …
pub fn slug_candidates(app_id: Uuid, name: &str) -> Result<Vec<(String, ItemKey)>, ApiError> {
    let base = slugify(name);
    if base.is_empty() {
        return Err(ApiError::validation(
            "`name` must contain letters or digits (it becomes the slug)",
        ));
    }
    Ok((1..=10)
        .map(|n| {
            let slug = if n == 1 {
                base.clone()
            } else {
                format!("{}-{n}", base.chars().take(46).collect::<String>())
            };
            let key = keys::secret_slug(app_id, &slug);
            (slug, key)
        })
        .collect())
}

/// The secret and its slug reservation, both new.
pub fn create_writes(s: &ManagedSecret) -> Vec<Write> {
    vec![
        Write::Put {
            item: item(s),
            condition: Some(Condition::absent()),
        },
        Write::Put {
            item: to_item(
                &serde_json::json!({ "secret_id": s.secret_id }),
                &keys::secret_slug(s.app_id, &s.slug),
                &[],
            ),
            condition: Some(Condition::absent()),
        },
    ]
}

pub fn secret_not_found() -> ApiError {
    ApiError::not_found("secret_not_found", "managed secret")
}

/// The secret named by `{secret_id}` under the app, read with the caller's key.
pub fn prefetch_secret(req: &crate::ApiRequest, app: Option<Uuid>) -> Vec<ItemKey> {
    match (app, req.uuid_param("secret_id", secret_not_found())) {
        (Some(app), Ok(id)) => vec![keys::secret(app, id)],
        _ => Vec::new(),
    }
}
