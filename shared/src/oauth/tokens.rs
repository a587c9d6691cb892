//! Sealing and storing the provider tokens of an OAuth grant.

use crate::Ctx;
use crate::error::ApiError;
use crate::model::{ProviderDef, TokenSecret, TokenSet};
use crate::oauth::client::TokenAnswer;
use crate::store::{Item, keys, to_item};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use zeroize::Zeroizing;

pub fn item(t: &TokenSet) -> Item {
    to_item(t, &keys::grant_tokens(t.app_id, t.grant_id), &[])
}

pub async fn open(ctx: &Ctx, t: &TokenSet) -> Result<TokenSecret, ApiError> {
    let plain = ctx
        .sealer
        .open(t.app_id, &TokenSet::aad_item(t.grant_id), &t.sealed)
        .await?;
    serde_json::from_slice(&plain).map_err(|_| ApiError::internal())
}

/// A new token set from a provider's answer; `previous_refresh` is kept when the answer
/// carries no refresh token (providers that do not rotate omit it).
pub async fn from_answer(
    ctx: &Ctx,
    app_id: Uuid,
    grant_id: Uuid,
    def: &ProviderDef,
    answer: &TokenAnswer,
    previous_refresh: Option<&str>,
    now: OffsetDateTime,
) -> Result<(TokenSet, TokenSecret), ApiError> {
    let secret = TokenSecret {
        access_token: answer.access_token.to_string(),
        refresh_token: answer
            .refresh_token
            .as_ref()
            .map(|r| r.to_string())
            .or_else(|| previous_refresh.map(String::from)),
    };
    let plain = Zeroizing::new(serde_json::to_vec(&secret).expect("tokens serialise"));
    let sealed = ctx
        .sealer
        .seal(app_id, &TokenSet::aad_item(grant_id), &plain)
        .await?;
    let expires_at = answer
        .expires_in
        .or(def.refresh.default_ttl_seconds)
        .map(|s| now + Duration::seconds(s));
    let set = TokenSet {
        app_id,
        grant_id,
        sealed,
        expires_at,
        has_refresh_token: secret.refresh_token.is_some(),
        generation: Uuid::new_v4(),
        refreshed_at: Some(now),
        lease_id: None,
        lease_until_ms: None,
        needs_reconnect: false,
        failed_at_ms: None,
        failure: None,
    };
    Ok((set, secret))
}
