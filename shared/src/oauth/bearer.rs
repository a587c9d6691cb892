//! Session tokens and round-trip `state`s shared by the browser flows (Connect, sign-in).
//!
//! A session token reads `<prefix><app id>_<secret>`: the app ID lets unsigned browser routes
//! find the session under its app's keys; only a hash of the token is stored (its first 32
//! hex digits are the session's reference). A `state` reads `<app id>.<session ref>.<secret>`,
//! likewise stored as a hash and compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

pub(crate) fn random(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::fill(&mut b[..]);
    B64URL.encode(b)
}

pub(crate) fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn ref_of(token: &str) -> String {
    sha256_hex(token)[..32].to_string()
}

/// A new session token and the reference its session is stored under.
pub fn new_token(prefix: &str, app_id: Uuid) -> (String, String) {
    let token = format!("{prefix}{}_{}", app_id.simple(), random(32));
    let r = ref_of(&token);
    (token, r)
}

/// The app and session reference a presented token names (nothing is read yet).
pub fn parse_token(prefix: &str, token: &str) -> Option<(Uuid, String)> {
    let rest = token.strip_prefix(prefix)?;
    let (app, secret) = rest.split_once('_')?;
    if secret.len() < 40 || token.len() > 128 {
        return None;
    }
    Some((Uuid::try_parse(app).ok()?, ref_of(token)))
}

/// A fresh `state` for one round trip and the hash stored to check it.
pub fn new_state(app_id: Uuid, ref_id: &str) -> (String, String) {
    let state = format!("{}.{ref_id}.{}", app_id.simple(), random(24));
    let hash = sha256_hex(&state);
    (state, hash)
}

/// The app and session a returned `state` claims; checked against the stored hash later.
pub fn parse_state(state: &str) -> Option<(Uuid, String)> {
    let mut parts = state.splitn(3, '.');
    let app = Uuid::try_parse(parts.next()?).ok()?;
    let r = parts.next()?;
    let secret = parts.next()?;
    let ok = r.len() == 32
        && r.bytes().all(|b| b.is_ascii_hexdigit())
        && secret.len() >= 20
        && state.len() <= 256;
    ok.then(|| (app, r.to_string()))
}

/// Whether `value` hashes to the stored `hash` (constant time).
pub fn hash_matches(hash: &str, value: &str) -> bool {
    bool::from(hash.as_bytes().ct_eq(sha256_hex(value).as_bytes()))
}
