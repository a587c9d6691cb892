//! Sign-in sessions: Portcullis runs the app's IdP OIDC login for an end user who may be on
//! another machine (`create_auth_session` hands them a link), and hands the app the user's ID
//! token once (`poll_auth_session`).
//!
//! The session token reads `as_<app id>_<secret>` and the `state` is the shared round-trip
//! form (`oauth::bearer`), both stored as hashes; the PKCE verifier and the resulting ID
//! token are sealed at rest.

use crate::crypto::Sealed;
use crate::error::ApiError;
use crate::model::idp::Signin;
use crate::oauth::bearer::{self, random};
use crate::store::{Item, keys, to_item};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

pub const SESSION_LIFE: time::Duration = time::Duration::minutes(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthStatus {
    Pending,
    Completed,
    /// The ID token was handed out; the session cannot answer it again.
    Delivered,
    Error,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthSession {
    pub app_id: Uuid,
    pub ref_id: String,
    pub state_hash: String,
    pub code_verifier: Sealed,
    pub nonce: String,
    pub status: AuthStatus,
    #[serde(default)]
    pub user_token: Option<Sealed>,
    #[serde(default, with = "crate::model::json_text")]
    pub user_info: Option<Value>,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// DynamoDB TTL: gone a day after it expires.
    pub ttl: i64,
}

/// The sealing context of a session's secrets: bound to the session (and, by the sealer, to
/// its app).
pub fn aad(ref_id: &str, what: &str) -> String {
    format!("auth-session:{ref_id}:{what}")
}

impl AuthSession {
    pub fn aad(&self, what: &str) -> String {
        aad(&self.ref_id, what)
    }

    pub fn status_at(&self, now: OffsetDateTime) -> &'static str {
        match self.status {
            AuthStatus::Pending if now >= self.expires_at => "expired",
            AuthStatus::Pending => "pending",
            AuthStatus::Completed => "completed",
            AuthStatus::Delivered => "delivered",
            AuthStatus::Error => "error",
        }
    }
}

pub fn new_token(app_id: Uuid) -> (String, String) {
    bearer::new_token("as_", app_id)
}

pub fn parse_token(token: &str) -> Option<(Uuid, String)> {
    bearer::parse_token("as_", token)
}

pub use bearer::{new_state, parse_state};

pub fn state_matches(s: &AuthSession, state: &str) -> bool {
    bearer::hash_matches(&s.state_hash, state)
}

pub fn new_nonce() -> String {
    random(18)
}

pub fn item(s: &AuthSession) -> Item {
    to_item(s, &keys::auth_session(s.app_id, &s.ref_id), &[])
}

pub fn session_not_found() -> ApiError {
    ApiError::not_found("auth_session_not_found", "sign-in session")
}

/// Where the user signs in: the IdP's authorization endpoint with our client, PKCE S256 and
/// a nonce the ID token must carry back.
pub fn authorize_url(
    signin: &Signin,
    redirect_uri: &str,
    state: &str,
    nonce: &str,
    challenge: &str,
) -> String {
    let mut url = url::Url::parse(&signin.authorize_url).expect("validated when configured");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &signin.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &signin.scopes.join(" "))
        .append_pair("state", state)
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_states_round_trip_and_refuse_garbage() {
        let app = Uuid::new_v4();
        let (token, r) = new_token(app);
        assert_eq!(parse_token(&token), Some((app, r.clone())));
        let (state, _) = new_state(app, &r);
        assert_eq!(parse_state(&state), Some((app, r)));
        for bad in ["", "as_", "cs_x_y", &format!("as_{}_short", app.simple())] {
            assert_eq!(parse_token(bad), None, "{bad}");
        }
        for bad in [
            "",
            "a.b.c",
            &format!("{}.{}.x", app.simple(), "0".repeat(32)),
        ] {
            assert_eq!(parse_state(bad), None, "{bad}");
        }
    }
}
