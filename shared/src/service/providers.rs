//! App provider configurations: stored, sealed, loaded with their effective definition.

use crate::error::ApiError;
use crate::model::{ProviderConfig, ProviderDef};
use crate::oauth::client::ClientCredentials;
use crate::providers;
use crate::store::{Item, Query, from_item, keys, to_item};
use crate::{Ctx, crypto::Sealed};
use uuid::Uuid;
use zeroize::Zeroizing;

pub fn item(c: &ProviderConfig) -> Item {
    to_item(
        c,
        &keys::provider(c.app_id, &c.provider_id),
        &[
            ("gsi1pk", keys::app_providers_index(c.app_id)),
            ("gsi1sk", c.provider_id.clone()),
        ],
    )
}

pub async fn seal_secret(
    ctx: &Ctx,
    app_id: Uuid,
    provider_id: &str,
    secret: &str,
) -> Result<Sealed, ApiError> {
    ctx.sealer
        .seal(
            app_id,
            &ProviderConfig::aad_item(app_id, provider_id),
            secret.as_bytes(),
        )
        .await
}

pub async fn open_secret(ctx: &Ctx, c: &ProviderConfig) -> Result<Zeroizing<String>, ApiError> {
    let plain = ctx
        .sealer
        .open(
            c.app_id,
            &ProviderConfig::aad_item(c.app_id, &c.provider_id),
            &c.client_secret,
        )
        .await?;
    String::from_utf8(plain.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| ApiError::internal())
}

/// A configured provider, ready to talk to.
pub struct Configured {
    pub config: ProviderConfig,
    pub def: ProviderDef,
    pub client_secret: Zeroizing<String>,
}

impl Configured {
    pub fn credentials(&self) -> ClientCredentials<'_> {
        ClientCredentials {
            client_id: &self.config.client_id,
            client_secret: &self.client_secret,
        }
    }
}

pub async fn get(
    ctx: &Ctx,
    app_id: Uuid,
    provider_id: &str,
) -> Result<Option<ProviderConfig>, ApiError> {
    ctx.store
        .get(&keys::provider(app_id, provider_id), true)
        .await?
        .map(from_item)
        .transpose()
}

pub async fn configured(
    ctx: &Ctx,
    app_id: Uuid,
    provider_id: &str,
) -> Result<Configured, ApiError> {
    let config = get(ctx, app_id, provider_id)
        .await?
        .ok_or_else(|| providers::provider_not_configured(provider_id))?;
    let def = providers::effective(&config)?;
    let client_secret = open_secret(ctx, &config).await?;
    Ok(Configured {
        config,
        def,
        client_secret,
    })
}

pub async fn list(ctx: &Ctx, app_id: Uuid) -> Result<Vec<ProviderConfig>, ApiError> {
    ctx.store
        .query_all(Query::index(keys::app_providers_index(app_id), "gsi1"))
        .await
}

/// The callback every provider redirects to, unless the app's configuration overrides it.
pub fn redirect_uri(
    ctx: &Ctx,
    req: &crate::ApiRequest,
    c: &ProviderConfig,
) -> Result<String, ApiError> {
    match &c.redirect_uri {
        Some(uri) => Ok(uri.clone()),
        None => Ok(format!("{}/sdk/oauth/callback", ctx.public_url(req)?)),
    }
}
