use crate::crypto::Sealed;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// How client credentials reach a token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuth {
    ClientSecretPost,
    ClientSecretBasic,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshBehaviour {
    /// The provider issues refresh tokens (given the authorize parameters of its entry).
    pub refresh_tokens: bool,
    /// Each refresh answers a new refresh token and invalidates the old one.
    pub rotates: bool,
    /// Life assumed for an access token answered without `expires_in`; `None`: no expiry.
    pub default_ttl_seconds: Option<i64>,
}

/// One OAuth 2.0 provider: a catalogue entry (`shared/providers/catalogue.json`) or a custom
/// provider an operator defines for one app. URLs may hold `{name}` placeholders filled from
/// the app's `url_params` (a Zendesk subdomain, a Shopify shop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderDef {
    /// Custom providers take theirs from the configuration path.
    #[serde(default)]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub logo_url: Option<String>,
    pub authorize_url: String,
    pub token_url: String,
    #[serde(default)]
    pub revocation_url: Option<String>,
    #[serde(default)]
    pub userinfo_url: Option<String>,
    /// Dotted path into the userinfo answer naming the account (`email`, `login`).
    #[serde(default)]
    pub account_field: Option<String>,
    #[serde(default)]
    pub api_base_url: Option<String>,
    /// API hosts its tokens may be sent to: exact names or `*.suffix`.
    pub hosts: Vec<String>,
    #[serde(default)]
    pub url_params: Vec<String>,
    pub scope_separator: String,
    pub pkce: bool,
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
    pub token_auth: TokenAuth,
    pub refresh: RefreshBehaviour,
    #[serde(default)]
    pub default_scopes: Vec<String>,
    #[serde(default)]
    pub available_scopes: Map<String, Value>,
    #[serde(default)]
    pub docs_url: Option<String>,
    #[serde(default)]
    pub operations: Vec<Value>,
}

/// An app's configuration of one provider (`/v1/apps/{app_id}/providers/{provider_id}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderConfig {
    pub app_id: Uuid,
    pub provider_id: String,
    pub client_id: String,
    /// Write-only; sealed with the app's data key.
    pub client_secret: Sealed,
    /// Requested by default, and required: a grant without one of them is `scope_mismatch`.
    pub scopes: Vec<String>,
    /// What a Connect session's `required_scopes` may ask for (always includes `scopes`).
    pub allowed_scopes: Vec<String>,
    /// Overrides `{public_url}/sdk/oauth/callback` (must then route to that callback).
    #[serde(default)]
    pub redirect_uri: Option<String>,
    #[serde(default)]
    pub url_params: BTreeMap<String, String>,
    /// Set for providers outside the catalogue.
    #[serde(default)]
    pub custom: Option<ProviderDef>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl ProviderConfig {
    pub fn aad_item(app_id: Uuid, provider_id: &str) -> String {
        format!("provider:{app_id}:{provider_id}")
    }
}
