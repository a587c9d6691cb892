//! API key formats (spec §2), generation, hashing and the signing-key derivation (§3.1).
//!
//! The plaintext is shown once at mint time. The table keeps only `SHA-256(key)`: keys carry
//! 110 bits of randomness, so an unsalted fast hash is not brute-forceable, and the signing key
//! is re-derived from the presented key on each request rather than stored.

use crate::error::ApiError;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const RANDOM_LEN: usize = 22;
const LEGACY_LEN: usize = 40;
/// Characters of a key kept for display (`key_prefix`): the type tag plus five random characters.
const SCOPED_PREFIX_LEN: usize = 14;
const LEGACY_PREFIX_LEN: usize = 14;

/// The key type tag. `Rk` app (runtime) keys, `Ak` agent-typed keys, `Dk` derived keys,
/// `Pk` personal operator keys of organization members, `Legacy` per-agent `alter_key_` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    Rk,
    Ak,
    Dk,
    Pk,
    Legacy,
}

impl KeyType {
    pub fn tag(self) -> &'static str {
        match self {
            KeyType::Rk => "rk",
            KeyType::Ak => "ak",
            KeyType::Dk => "dk",
            KeyType::Pk => "pk",
            KeyType::Legacy => "key",
        }
    }
}

/// A presented key: its plaintext never leaves this struct except through `hash`/`signing_key`,
/// `Debug` never prints it, and it is zeroized on drop.
pub struct PresentedKey {
    plaintext: Zeroizing<String>,
    pub key_type: KeyType,
}

impl std::fmt::Debug for PresentedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PresentedKey({}…)", self.prefix())
    }
}

impl PresentedKey {
    /// Checks the format (and checksum for scoped keys) before any I/O.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let key_type = classify(raw).ok_or_else(ApiError::invalid_key)?;
        Ok(Self {
            plaintext: Zeroizing::new(raw.to_string()),
            key_type,
        })
    }

    pub fn hash(&self) -> String {
        hash_key(&self.plaintext)
    }

    pub fn prefix(&self) -> String {
        key_prefix(&self.plaintext)
    }

    pub fn signing_key(&self) -> Zeroizing<[u8; 32]> {
        signing_key(&self.plaintext)
    }
}

/// A freshly minted key: the plaintext goes to the caller once, the hash to the table.
pub struct MintedSecret {
    pub plaintext: Zeroizing<String>,
    pub hash: String,
    pub prefix: String,
}

pub fn mint(key_type: KeyType) -> MintedSecret {
    let plaintext = match key_type {
        KeyType::Legacy => {
            const URLSAFE: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let body: String = random_bytes::<LEGACY_LEN>()
                .iter()
                .map(|b| URLSAFE[(*b & 63) as usize] as char)
                .collect();
            format!("alter_key_{body}")
        }
        _ => {
            let random: String = random_bytes::<RANDOM_LEN>()
                .iter()
                .map(|b| BASE32[(*b & 31) as usize] as char)
                .collect();
            let tag = key_type.tag();
            format!("alter_{tag}_{random}_{}", checksum(tag, &random))
        }
    };
    MintedSecret {
        hash: hash_key(&plaintext),
        prefix: key_prefix(&plaintext),
        plaintext: Zeroizing::new(plaintext),
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    rand::fill(&mut buf);
    buf
}

/// `crc32("{type}:{random}")`, five bits at a time, least significant group first.
pub fn checksum(tag: &str, random: &str) -> String {
    let crc = crc32fast::hash(format!("{tag}:{random}").as_bytes());
    (0..6)
        .map(|i| BASE32[((crc >> (5 * i)) & 31) as usize] as char)
        .collect()
}

fn classify(raw: &str) -> Option<KeyType> {
    if let Some(body) = raw.strip_prefix("alter_key_") {
        let ok = body.len() == LEGACY_LEN
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        return ok.then_some(KeyType::Legacy);
    }
    let parts: Vec<&str> = raw.split('_').collect();
    let [alter, tag, random, check] = parts.as_slice() else {
        return None;
    };
    let key_type = match *tag {
        "rk" => KeyType::Rk,
        "ak" => KeyType::Ak,
        "dk" => KeyType::Dk,
        "pk" => KeyType::Pk,
        _ => return None,
    };
    let in_alphabet = |s: &str| s.bytes().all(|b| BASE32.contains(&b));
    let ok = *alter == "alter"
        && random.len() == RANDOM_LEN
        && check.len() == 6
        && in_alphabet(random)
        && in_alphabet(check)
        && checksum(tag, random) == *check;
    ok.then_some(key_type)
}

pub fn hash_key(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

fn key_prefix(plaintext: &str) -> String {
    let n = if plaintext.starts_with("alter_key_") {
        LEGACY_PREFIX_LEN
    } else {
        SCOPED_PREFIX_LEN
    };
    plaintext.chars().take(n).collect()
}

/// `HMAC-SHA256(key = api_key, message = "alter-signing-v1")` (spec §3.1).
pub fn signing_key(plaintext: &str) -> Zeroizing<[u8; 32]> {
    let mut mac = Hmac::<Sha256>::new_from_slice(plaintext.as_bytes()).expect("any key length");
    mac.update(b"alter-signing-v1");
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vector_key_is_valid_and_derives_the_documented_signing_key() {
        let key = PresentedKey::parse("alter_rk_abcdefghijklmnopqrstuv_iwpykn").unwrap();
        assert_eq!(key.key_type, KeyType::Rk);
        assert_eq!(
            hex::encode(*key.signing_key()),
            "d686d74251939c285fe8fa5ad18c0e2003f1ca17a5346e7838389386c1ac079f"
        );
        assert_eq!(key.prefix(), "alter_rk_abcde");
    }

    #[test]
    fn minted_keys_parse_and_have_the_right_shape() {
        for t in [
            KeyType::Rk,
            KeyType::Ak,
            KeyType::Dk,
            KeyType::Pk,
            KeyType::Legacy,
        ] {
            let m = mint(t);
            let parsed = PresentedKey::parse(&m.plaintext).unwrap();
            assert_eq!(parsed.key_type, t);
            assert_eq!(parsed.hash(), m.hash);
            assert!(m.plaintext.starts_with(&m.prefix));
        }
    }

    #[test]
    fn malformed_keys_are_rejected_before_any_lookup() {
        let good = "alter_rk_abcdefghijklmnopqrstuv_iwpykn";
        let bad = [
            "",
            "alter_rk_abcdefghijklmnopqrstuv_iwpyko", // checksum typo
            "alter_rk_abcdefghijklmnopqrstuw_iwpykn", // random typo
            "alter_xx_abcdefghijklmnopqrstuv_iwpykn",
            "alter_rk_ABCDEFGHIJKLMNOPQRSTUV_iwpykn",
            "alter_rk_abcdefghijklmnopqrstu_iwpykn",
            "alter_rk_abcdefghijklmnopqrstuv_iwpykn_",
            "alter_key_short",
            "alter_key_0123456789012345678901234567890123456789x",
            "alter_key_012345678901234567890123456789012345678!",
            "bearer alter_rk_abcdefghijklmnopqrstuv_iwpykn",
        ];
        assert!(PresentedKey::parse(good).is_ok());
        for b in bad {
            assert!(PresentedKey::parse(b).is_err(), "{b} accepted");
        }
    }

    #[test]
    fn debug_never_prints_the_key() {
        let key = PresentedKey::parse("alter_rk_abcdefghijklmnopqrstuv_iwpykn").unwrap();
        assert!(!format!("{key:?}").contains("iwpykn"));
    }
}
