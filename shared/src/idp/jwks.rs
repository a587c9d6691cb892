//! Identity providers' signing keys, cached per Lambda instance. A key is looked up by `kid`;
//! an unknown `kid` forces one refetch (the provider may have rotated), but at most once per
//! `FORCED_INTERVAL` per JWKS URL, so a flood of tokens with made-up `kid`s costs the
//! provider one request per interval, not one per token.

use super::jwt::{Alg, Jwk, Reason};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Keys are trusted this long without asking the provider again.
pub const TTL: Duration = Duration::from_secs(600);
/// The shortest gap between two fetches of one URL forced by an unknown `kid`.
pub const FORCED_INTERVAL: Duration = Duration::from_secs(30);
/// A failed fetch is remembered this long: tokens arriving meanwhile fail at once instead of
/// each making the identity provider (and the caller) wait again.
const FAILURE_TTL: Duration = Duration::from_secs(5);
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_DOCUMENT: usize = 64 * 1024;

#[derive(Deserialize)]
struct Document {
    keys: Vec<serde_json::Value>,
}

struct Entry {
    keys: Arc<Vec<Jwk>>,
    fetched: Instant,
}

#[derive(Default)]
pub struct Cache {
    entries: Mutex<HashMap<String, Entry>>,
    /// When each URL was last fetched for an unknown `kid`.
    forced: Mutex<HashMap<String, Instant>>,
    /// When each URL last failed to answer a usable key set.
    failed: Mutex<HashMap<String, Instant>>,
    /// Fetches made by this instance (the benchmark and tests read it).
    pub fetches: std::sync::atomic::AtomicU64,
}

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            // A redirect could lead off https or to an internal address: the URL is the URL.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("portcullis")
            .build()
            .expect("HTTP client")
    })
}

/// Keys of a document the provider published; keys we cannot use are skipped, not fatal.
fn parse(body: &[u8]) -> Option<Vec<Jwk>> {
    let doc: Document = serde_json::from_slice(body).ok()?;
    Some(
        doc.keys
            .into_iter()
            .filter_map(|k| serde_json::from_value(k).ok())
            .collect(),
    )
}

async fn fetch(url: &str) -> Result<Vec<Jwk>, Reason> {
    let response = http()
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|_| Reason::KeysUnavailable)?;
    if !response.status().is_success() {
        return Err(Reason::KeysUnavailable);
    }
    let body = read_capped(response, MAX_DOCUMENT)
        .await
        .ok_or(Reason::KeysUnavailable)?;
    parse(&body).ok_or(Reason::KeysUnavailable)
}

/// A response body of at most `cap` bytes, read no further than that.
pub async fn read_capped(mut response: reqwest::Response, cap: usize) -> Option<Vec<u8>> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return None;
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        if body.len() + chunk.len() > cap {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

impl Cache {
    fn cached(&self, url: &str) -> Option<Arc<Vec<Jwk>>> {
        let entries = self.entries.lock().expect("jwks cache");
        entries
            .get(url)
            .filter(|e| e.fetched.elapsed() < TTL)
            .map(|e| e.keys.clone())
    }

    async fn refetch(&self, url: &str) -> Result<Arc<Vec<Jwk>>, Reason> {
        let recently_failed = self
            .failed
            .lock()
            .expect("jwks cache")
            .get(url)
            .is_some_and(|at| at.elapsed() < FAILURE_TTL);
        if recently_failed {
            return Err(Reason::KeysUnavailable);
        }
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let keys = match fetch(url).await {
            Ok(keys) => Arc::new(keys),
            Err(e) => {
                let mut failed = self.failed.lock().expect("jwks cache");
                if failed.len() > 1000 {
                    failed.clear();
                }
                failed.insert(url.to_string(), Instant::now());
                return Err(e);
            }
        };
        self.entries.lock().expect("jwks cache").insert(
            url.to_string(),
            Entry {
                keys: keys.clone(),
                fetched: Instant::now(),
            },
        );
        Ok(keys)
    }

    /// May this instance refetch `url` for an unknown `kid` now? Claims the slot if so.
    fn may_force(&self, url: &str) -> bool {
        let mut forced = self.forced.lock().expect("jwks cache");
        match forced.get(url) {
            Some(at) if at.elapsed() < FORCED_INTERVAL => false,
            _ => {
                forced.insert(url.to_string(), Instant::now());
                true
            }
        }
    }

    /// The key that may check a token of `alg` with `kid` (a token without `kid` matches the
    /// only key that fits, if there is exactly one).
    pub async fn key(&self, url: &str, kid: Option<&str>, alg: Alg) -> Result<Jwk, Reason> {
        let pick = |keys: &[Jwk]| -> Option<Jwk> {
            let fitting: Vec<&Jwk> = keys.iter().filter(|k| k.fits(alg)).collect();
            match kid {
                Some(kid) => fitting
                    .into_iter()
                    .find(|k| k.kid.as_deref() == Some(kid))
                    .cloned(),
                None if fitting.len() == 1 => Some(fitting[0].clone()),
                None => None,
            }
        };
        let keys = match self.cached(url) {
            Some(keys) => keys,
            None => self.refetch(url).await?,
        };
        if let Some(k) = pick(&keys) {
            return Ok(k);
        }
        if self.may_force(url) {
            let keys = self.refetch(url).await?;
            if let Some(k) = pick(&keys) {
                return Ok(k);
            }
        }
        Err(Reason::UnknownKey)
    }

    /// Forget what was cached (an app's identity provider was reconfigured here).
    pub fn forget(&self, url: &str) {
        self.entries.lock().expect("jwks cache").remove(url);
        self.failed.lock().expect("jwks cache").remove(url);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_keys_are_skipped() {
        let keys = parse(
            br#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"a"},{"nonsense":1},{"kty":"EC","crv":"P-256","x":"","y":"","kid":"b"}]}"#,
        )
        .unwrap();
        assert_eq!(keys.len(), 2);
        assert!(parse(b"[]").is_none());
        assert!(parse(br#"{"keys":{}}"#).is_none());
    }

    #[test]
    fn forced_refetches_are_rate_limited() {
        let cache = Cache::default();
        assert!(cache.may_force("https://idp/jwks"));
        assert!(!cache.may_force("https://idp/jwks"));
        assert!(cache.may_force("https://other/jwks"));
    }
}
