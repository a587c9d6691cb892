//! Request signing exactly as `alter-sdk` 0.29.0 does it (spec §3): canonical path and query,
//! the legacy and v2 strings-to-sign, and constant-time verification.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The signed parts of a request, as received.
pub struct SignedParts<'a> {
    pub method: &'a str,
    /// The request target as sent: percent-encoded path plus optional `?query`.
    pub target: &'a str,
    pub timestamp: &'a str,
    pub nonce: &'a str,
    pub content_sha256: &'a str,
    pub scope_constraints: &'a str,
    pub request_rule: &'a str,
    pub caller: &'a str,
    pub caller_type: &'a str,
    pub actor_id: &'a str,
    pub actor_context: &'a str,
}

impl SignedParts<'_> {
    pub fn has_identity(&self) -> bool {
        !(self.caller.is_empty()
            && self.caller_type.is_empty()
            && self.actor_id.is_empty()
            && self.actor_context.is_empty())
    }

    /// The v2 string when identity headers are present, else the legacy string: stripping the
    /// identity headers therefore changes what must verify (anti-downgrade).
    pub fn string_to_sign(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.method.to_ascii_uppercase(),
            canonical_path(self.target),
            self.timestamp,
            self.nonce,
            self.content_sha256,
            self.scope_constraints
        );
        if !self.request_rule.is_empty() {
            s.push_str("\nrequest-rule:");
            s.push_str(self.request_rule);
        }
        for (label, value) in [
            ("caller", self.caller),
            ("caller-type", self.caller_type),
            ("actor-id", self.actor_id),
            ("actor-context", self.actor_context),
        ] {
            if !value.is_empty() {
                s.push('\n');
                s.push_str(label);
                s.push(':');
                s.push_str(value);
            }
        }
        s
    }
}

pub fn sign(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_key).expect("32-byte key");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time check of a hex signature against the expected string-to-sign.
pub fn verify(signing_key: &[u8; 32], string_to_sign: &str, presented_hex: &str) -> bool {
    let Ok(presented) = hex::decode(presented_hex) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_key).expect("32-byte key");
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(&presented).is_ok()
}

/// `unquote(path)` + `?` + `urlencode(sorted(parse_qsl(query, keep_blank_values=True)))`.
pub fn canonical_path(target: &str) -> String {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut out = unquote(path);
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        let mut pairs: Vec<(String, String)> = query
            .split('&')
            .filter(|seg| !seg.is_empty())
            .map(|seg| {
                let (name, value) = seg.split_once('=').unwrap_or((seg, ""));
                (
                    unquote(&name.replace('+', " ")),
                    unquote(&value.replace('+', " ")),
                )
            })
            .collect();
        pairs.sort();
        out.push('?');
        let encoded: Vec<String> = pairs
            .iter()
            .map(|(n, v)| format!("{}={}", quote_plus(n), quote_plus(v)))
            .collect();
        out.push_str(&encoded.join("&"));
    }
    out
}

/// Python's `urllib.parse.unquote`: decode valid `%XX` runs as UTF-8 (invalid bytes become
/// U+FFFD), leave malformed escapes as they are.
pub fn unquote(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Python's `quote_plus(s, safe='')`.
fn quote_plus(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The headers that sign a request as `alter-sdk` does (legacy form, no identity headers):
/// for our own clients (the CLI, tests, the benchmark).
pub fn request_headers(
    api_key: &str,
    method: &str,
    target: &str,
    body: &[u8],
    timestamp: i64,
) -> Vec<(&'static str, String)> {
    use sha2::Digest;
    let mut nonce = [0u8; 16];
    rand::fill(&mut nonce);
    let nonce = hex::encode(nonce);
    let content_sha256 = hex::encode(Sha256::digest(body));
    let ts = timestamp.to_string();
    let parts = SignedParts {
        method,
        target,
        timestamp: &ts,
        nonce: &nonce,
        content_sha256: &content_sha256,
        scope_constraints: "",
        request_rule: "",
        caller: "",
        caller_type: "",
        actor_id: "",
        actor_context: "",
    };
    let signature = sign(
        &crate::apikey::signing_key(api_key),
        &parts.string_to_sign(),
    );
    vec![
        ("x-api-key", api_key.to_string()),
        ("x-alter-timestamp", ts),
        ("x-alter-nonce", nonce),
        ("x-alter-content-sha256", content_sha256),
        ("x-alter-signature", signature),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apikey::signing_key;

    const KEY: &str = "alter_rk_abcdefghijklmnopqrstuv_iwpykn";
    const BODY_SHA: &str = "6816bb46dc012d7aaa15dbc066cf047603a9c6a6427e52e78d8c4b942edb2b11";
    const NONCE: &str = "00112233445566778899aabbccddeeff";

    fn parts<'a>(method: &'a str, target: &'a str, sha: &'a str) -> SignedParts<'a> {
        SignedParts {
            method,
            target,
            timestamp: "1700000000",
            nonce: NONCE,
            content_sha256: sha,
            scope_constraints: "",
            request_rule: "",
            caller: "",
            caller_type: "",
            actor_id: "",
            actor_context: "",
        }
    }

    #[test]
    fn spec_vector_legacy() {
        let p = parts("POST", "/sdk/token", BODY_SHA);
        let s = p.string_to_sign();
        assert!(
            s.ends_with('\n'),
            "unconstrained string ends with a newline"
        );
        assert_eq!(
            sign(&signing_key(KEY), &s),
            "7b7b77d3d4f5ab10b31aaa87e84ad3f0963853208018c450c2ca72c967293fc8"
        );
    }

    #[test]
    fn spec_vector_v2_with_caller() {
        let mut p = parts("POST", "/sdk/token", BODY_SHA);
        p.caller = "billing-service";
        p.caller_type = "service";
        let s = p.string_to_sign();
        let sig = "5499cb6e3f9bc07f35c3b04abfa64319b7b02fc8eac64c9d7f63e842704ac4c4";
        assert_eq!(sign(&signing_key(KEY), &s), sig);
        assert!(verify(&signing_key(KEY), &s, sig));
        // Stripping the identity headers must not verify (downgrade).
        let stripped = parts("POST", "/sdk/token", BODY_SHA).string_to_sign();
        assert!(!verify(&signing_key(KEY), &stripped, sig));
    }

    #[test]
    fn spec_vector_query_is_sorted() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let p = parts(
            "GET",
            "/sdk/agents?offset=0&limit=5&include_revoked=false",
            empty,
        );
        assert_eq!(
            canonical_path(p.target),
            "/sdk/agents?include_revoked=false&limit=5&offset=0"
        );
        assert_eq!(
            sign(&signing_key(KEY), &p.string_to_sign()),
            "69d5f1c20162bb0ca30a321c38af8bc096cf42a763a49202175e7696961bc5cd"
        );
    }

    #[test]
    fn canonicalisation_matches_python_urllib() {
        // Expected values computed with CPython 3.11's urllib.parse.
        let cases = [
            ("/a%20b/c", "/a b/c"),
            ("/x?", "/x"),
            ("/x?&", "/x?"),
            ("/x?b=2&a=1&a=0", "/x?a=0&a=1&b=2"),
            ("/x?flag", "/x?flag="),
            ("/x?q=a+b%2Fc:d", "/x?q=a+b%2Fc%3Ad"),
            ("/x?k=%zz", "/x?k=%25zz"),
            ("/%E2%9C%93?u=%E2%9C%93", "/\u{2713}?u=%E2%9C%93"),
            ("/bad%ff", "/bad\u{fffd}"),
            ("/p%2", "/p%2"),
            ("/x?a=1=2", "/x?a=1%3D2"),
            ("/x?B=1&a=1", "/x?B=1&a=1"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical_path(input), want, "input {input}");
        }
    }

    #[test]
    fn verify_rejects_non_hex_and_wrong_length() {
        let k = signing_key(KEY);
        assert!(!verify(&k, "x", "zz"));
        assert!(!verify(&k, "x", ""));
        assert!(!verify(&k, "x", &"0".repeat(64)));
    }
}
