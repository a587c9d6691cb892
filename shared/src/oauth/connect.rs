//! Connect sessions: their bearer token (`cs_…`, see `bearer`), the `state` and PKCE of the
//! provider round trip, and the records the callback writes.

use super::bearer;
use crate::error::ApiError;
use crate::model::connect::{ConnectError, ConnectSession, ConnectStatus};
use crate::store::{Item, keys, to_item};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

/// Connect sessions live ten minutes (the widget's documented life).
pub const SESSION_LIFE: time::Duration = time::Duration::minutes(10);

/// A new session token and the reference its session is stored under.
pub fn new_token(app_id: Uuid) -> (String, String) {
    bearer::new_token("cs_", app_id)
}

/// The app and session reference a presented token names (nothing is read yet).
pub fn parse_token(token: &str) -> Option<(Uuid, String)> {
    bearer::parse_token("cs_", token)
}

pub fn session_not_found() -> ApiError {
    ApiError::not_found("connect_session_not_found", "Connect session")
}

pub fn item(s: &ConnectSession) -> Item {
    to_item(s, &keys::connect_session(s.app_id, &s.ref_id), &[])
}

/// A fresh `state` for a provider round trip and the hash stored to check it.
pub fn new_state(session: &ConnectSession) -> (String, String) {
    bearer::new_state(session.app_id, &session.ref_id)
}

pub use bearer::parse_state;

pub fn state_matches(session: &ConnectSession, state: &str) -> bool {
    session
        .attempt
        .as_ref()
        .is_some_and(|a| bearer::hash_matches(&a.state_hash, state))
}

/// PKCE (RFC 7636, S256): the verifier and its challenge.
pub fn pkce() -> (String, String) {
    let verifier = bearer::random(32);
    let challenge = B64URL.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// What the poll and the pages answer for a session at `now`.
pub fn status_at(s: &ConnectSession, now: OffsetDateTime) -> &'static str {
    match s.status {
        ConnectStatus::Completed => "completed",
        ConnectStatus::Error => "error",
        ConnectStatus::Pending if s.expires_at <= now => "expired",
        ConnectStatus::Pending => "pending",
    }
}

pub fn error(code: &str, message: &str) -> ConnectError {
    ConnectError {
        error_code: code.into(),
        error_message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_states_name_their_app_and_session() {
        let app = Uuid::new_v4();
        let (token, r) = new_token(app);
        assert_eq!(parse_token(&token), Some((app, r.clone())));
        assert_eq!(parse_token("cs_nope"), None);
        assert_eq!(parse_token(&token.replace("cs_", "xs_")), None);
        let mut other = token.clone();
        other.push('x');
        assert_ne!(
            parse_token(&other).unwrap().1,
            r,
            "the reference is of the whole token"
        );
    }

    #[test]
    fn pkce_challenge_is_s256_of_the_verifier() {
        let (v, c) = pkce();
        assert!(v.len() >= 43);
        assert_eq!(c, B64URL.encode(Sha256::digest(v.as_bytes())));
    }
}
