use crate::crypto::Sealed;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The provider tokens behind an OAuth grant, kept beside the grant (same partition, its own
/// item) so listings never carry ciphertext and a refresh rewrites only this item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenSet {
    pub app_id: Uuid,
    pub grant_id: Uuid,
    /// `TokenSecret`, sealed.
    pub sealed: Sealed,
    /// When the access token stops working; `None`: the provider gave it no end.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub has_refresh_token: bool,
    /// Changes whenever the access token does; answered as `token_generation`.
    pub generation: Uuid,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub refreshed_at: Option<OffsetDateTime>,
    /// The refresh lease: who is refreshing, and until when (Unix milliseconds). Absent, not
    /// null, when nobody holds it: the lease condition tests for the attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until_ms: Option<i64>,
    /// The provider refused the refresh token: nobody may try it again.
    #[serde(default)]
    pub needs_reconnect: bool,
    /// The last refresh that failed for a passing reason, and its `retry_info`: callers
    /// that waited on it answer the same instead of calling the provider again at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at_ms: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::json_text"
    )]
    pub failure: Option<serde_json::Value>,
}

impl TokenSet {
    pub fn aad_item(grant_id: Uuid) -> String {
        format!("tokens:{grant_id}")
    }
}

/// The plaintext of a `TokenSet`, only ever held in memory.
#[derive(Clone, Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct TokenSecret {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret(…)")
    }
}
