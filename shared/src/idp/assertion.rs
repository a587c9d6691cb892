//! Identity assertions: short-lived ES256 JWS that say "this call acts for app user U (through
//! agent A)" to a downstream system, which verifies them against the app's published JWKS.
//! Each app has its own P-256 key, made on first use; the private half is stored sealed
//! (KMS envelope) and opened only to sign.

use crate::Ctx;
use crate::crypto::Sealed;
use crate::error::ApiError;
use crate::store::{Condition, Item, TxError, Write, from_item, keys, to_item};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

/// The header's `typ`, which verifiers require.
pub const TYP: &str = "alter-identity+jwt";
pub const MIN_TTL: i64 = 10;
pub const MAX_TTL: i64 = 300;

/// What the table holds: the public key in the clear, the private key sealed.
#[derive(Serialize, Deserialize)]
pub struct AssertionKey {
    pub app_id: Uuid,
    pub kid: String,
    pub x: String,
    pub y: String,
    pub private_key: Sealed,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl AssertionKey {
    /// The public JWK, as the app's JWKS publishes it.
    pub fn jwk(&self) -> Value {
        json!({"kty": "EC", "crv": "P-256", "x": self.x, "y": self.y, "kid": self.kid, "alg": "ES256", "use": "sig"})
    }
}

/// The sealing context of the private key: bound to its app and key ID.
fn sealed_as(kid: &str) -> String {
    format!("assertion-key:{kid}")
}

/// The app's key: the one read (prefetched) or, on first use, a new one. Two first uses at
/// once keep whichever was written first.
pub async fn key(
    ctx: &Ctx,
    app_id: Uuid,
    prefetched: Option<Item>,
    now: OffsetDateTime,
) -> Result<AssertionKey, ApiError> {
    if let Some(item) = prefetched {
        return from_item(item);
    }
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| ApiError::internal())?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| ApiError::internal())?;
    let public = pair.public_key().as_ref();
    let kid = Uuid::new_v4().simple().to_string();
    let key = AssertionKey {
        app_id,
        x: URL_SAFE_NO_PAD.encode(&public[1..33]),
        y: URL_SAFE_NO_PAD.encode(&public[33..65]),
        private_key: ctx
            .sealer
            .seal(app_id, &sealed_as(&kid), pkcs8.as_ref())
            .await?,
        kid,
        created_at: now,
    };
    let put = Write::Put {
        item: to_item(&key, &keys::assertion_key(app_id), &[]),
        condition: Some(Condition::absent()),
    };
    match ctx.store.transact(vec![put]).await {
        Ok(()) => Ok(key),
        Err(TxError::ConditionFailed(_)) => ctx
            .store
            .get(&keys::assertion_key(app_id), true)
            .await?
            .map(from_item)
            .transpose()?
            .ok_or_else(ApiError::internal),
        Err(TxError::Unavailable(e)) => Err(e),
    }
}

/// Signs `claims` with the app's key: a compact JWS with `alg` ES256, `typ`, `kid`.
pub async fn sign(ctx: &Ctx, key: &AssertionKey, claims: &Value) -> Result<String, ApiError> {
    let pkcs8 = ctx
        .sealer
        .open(key.app_id, &sealed_as(&key.kid), &key.private_key)
        .await?;
    let rng = SystemRandom::new();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| ApiError::internal())?;
    let header = json!({"alg": "ES256", "typ": TYP, "kid": key.kid});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = pair
        .sign(&rng, input.as_bytes())
        .map_err(|_| ApiError::internal())?;
    Ok(format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    ))
}
