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
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
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
    let ValueInput {
        token,
        api_key,
        username,
        password,
        access_key_id,
        secret_access_key,
        session_token,
    } = v;
    let aws = access_key_id.is_some() || secret_access_key.is_some() || session_token.is_some();
    match template {
        Template::Bearer => match (token, api_key, username, password, aws) {
            (Some(token), None, None, None, false) => {
                validate::header_safe("value.token", &token)?;
                Ok(SecretValue::Token { token })
            }
            _ => Err(wrong("{\"token\": \"…\"}")),
        },
        Template::ApiKey { .. } | Template::QueryParam { .. } => {
            match (token, api_key, username, password, aws) {
                (None, Some(api_key), None, None, false) => {
                    validate::header_safe("value.api_key", &api_key)?;
                    Ok(SecretValue::ApiKey { api_key })
                }
                _ => Err(wrong("{\"api_key\": \"…\"}")),
            }
        }
        Template::Basic => match (token, api_key, username, password, aws) {
            (None, None, Some(username), Some(password), false) => {
                if username.is_empty() || username.contains(':') {
                    return Err(ApiError::validation(
                        "`value.username` must be non-empty and contain no `:`",
                    ));
                }
                validate::header_safe("value.username", &username)?;
                validate::header_safe("value.password", &password)?;
                Ok(SecretValue::Basic { username, password })
            }
            _ => Err(wrong("{\"username\": \"…\", \"password\": \"…\"}")),
        },
        Template::AwsSigv4 { .. } => match (token, api_key, username, password) {
            (None, None, None, None) => {
                let (Some(access_key_id), Some(secret_access_key)) =
                    (access_key_id, secret_access_key)
                else {
                    return Err(wrong(
                        "{\"access_key_id\": \"…\", \"secret_access_key\": \"…\", \"session_token\"?: \"…\"}",
                    ));
                };
                validate::header_safe("value.access_key_id", &access_key_id)?;
                validate::header_safe("value.secret_access_key", &secret_access_key)?;
                if let Some(t) = &session_token {
                    validate::header_safe("value.session_token", t)?;
                }
                Ok(SecretValue::Aws {
                    access_key_id,
                    secret_access_key,
                    session_token,
                })
            }
            _ => Err(wrong("AWS keys")),
        },
    }
}

/// The template named at creation; an `aws_sigv4` secret also names its region and service.
pub fn template_for(
    name: &str,
    header_name: Option<&str>,
    param_name: Option<&str>,
    aws: Option<(&str, &str)>,
) -> Result<Template, ApiError> {
    match (name, param_name) {
        ("query_param", Some(p)) if header_name.is_none() && aws.is_none() => {
            let ok = (1..=64).contains(&p.len())
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            return if ok {
                Ok(Template::QueryParam {
                    param: p.to_string(),
                })
            } else {
                Err(ApiError::validation(
                    "`param_name` is 1 to 64 letters, digits, `-`, `_` or `.`",
                ))
            };
        }
        ("query_param", _) => {
            return Err(ApiError::validation(
                "a `query_param` secret needs `param_name` (and no `header_name`)",
            ));
        }
        (_, Some(_)) => {
            return Err(ApiError::validation(
                "`param_name` is only for `query_param` secrets",
            ));
        }
        _ => {}
    }
    let label = |field: &str, v: &str| {
        let ok = (1..=64).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        ok.then(|| v.to_string()).ok_or_else(|| {
            ApiError::validation(format!(
                "`{field}` is lowercase letters, digits and hyphens"
            ))
        })
    };
    match (name, aws) {
        ("aws_sigv4", Some((region, service))) if header_name.is_none() => {
            return Ok(Template::AwsSigv4 {
                region: label("aws_region", region)?,
                service: label("aws_service", service)?,
            });
        }
        ("aws_sigv4", _) => {
            return Err(ApiError::validation(
                "an `aws_sigv4` secret needs `aws_region` and `aws_service`, and no `header_name`",
            ));
        }
        (_, Some(_)) => {
            return Err(ApiError::validation(
                "`aws_region` and `aws_service` are only for `aws_sigv4` secrets",
            ));
        }
        _ => {}
    }
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
            "`template` must be one of bearer, api_key, basic, query_param, aws_sigv4",
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
