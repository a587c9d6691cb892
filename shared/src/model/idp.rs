use crate::crypto::Sealed;
use crate::idp::jwt::Alg;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Which kind of identity provider; presets only fill in the issuer and key URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdpPreset {
    Auth0,
    Clerk,
    Okta,
    Oidc,
}

/// Where the app user's attributes are read from in a token. Dotted paths reach nested claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimMappings {
    pub user_id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Option<String>,
    #[serde(default)]
    pub roles: Option<String>,
}

/// An app's identity provider: the one source of end-user identity for its calls.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdpConfig {
    pub idp_id: Uuid,
    pub app_id: Uuid,
    pub preset: IdpPreset,
    pub issuer: String,
    pub jwks_url: String,
    /// `aud` must hold one of these (when any are set).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// `azp` must be one of these (when any are set): Clerk's session tokens carry no `aud`.
    #[serde(default)]
    pub authorized_parties: Vec<String>,
    pub algorithms: Vec<Alg>,
    pub claims: ClaimMappings,
    /// Set by the first verified token: from then on the claim mappings cannot change, or
    /// the same person would turn into another app user.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub first_sign_in_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Optional: Portcullis runs the IdP's OIDC sign-in for the app (`/sdk/auth/session`).
    #[serde(default)]
    pub signin: Option<Signin>,
}

/// The app's OIDC client at its identity provider, for sign-in sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signin {
    pub client_id: String,
    /// Write-only; sealed with the app's data key.
    pub client_secret: Sealed,
    pub authorize_url: String,
    pub token_url: String,
    pub scopes: Vec<String>,
}

impl IdpConfig {
    /// The audiences a user token may carry: the configured ones, and the sign-in client's
    /// (the ID tokens sign-in sessions hand out are addressed to it).
    pub fn accepted_audiences(&self) -> Vec<String> {
        let mut a = self.audiences.clone();
        if let Some(s) = &self.signin {
            a.push(s.client_id.clone());
        }
        a
    }

    pub fn signin_secret_aad(app_id: Uuid) -> String {
        format!("idp-signin:{app_id}")
    }
}

/// An end user of an app, created the first time a valid token of theirs arrives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppUser {
    pub app_user_id: Uuid,
    pub app_id: Uuid,
    pub idp_id: Uuid,
    pub external_subject_id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
}
