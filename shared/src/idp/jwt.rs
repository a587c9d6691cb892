//! JWS compact tokens from an app's identity provider: parsing, signature checks against a
//! JWK, and the registered claims. Only asymmetric algorithms exist here (RS256, ES256,
//! EdDSA): `none` and every HMAC algorithm are refused before any key is looked at, so a
//! token "signed" with a public key as an HMAC secret has nothing to match.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Longest token accepted (the SDK's own limit on `user_token`).
pub const MAX_TOKEN: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
pub enum Alg {
    RS256,
    ES256,
    EdDSA,
}

impl Alg {
    pub const ALL: [Alg; 3] = [Alg::RS256, Alg::ES256, Alg::EdDSA];

    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
        }
    }

    pub fn parse(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// Why a token was refused. The message helps the integrator without echoing the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Malformed(&'static str),
    AlgorithmNotAllowed(String),
    UnknownKey,
    KeysUnavailable,
    BadSignature,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    MissingClaim(String),
}

impl Reason {
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Malformed(_) => "malformed",
            Reason::AlgorithmNotAllowed(_) => "algorithm_not_allowed",
            Reason::UnknownKey => "unknown_key",
            Reason::KeysUnavailable => "keys_unavailable",
            Reason::BadSignature => "bad_signature",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::WrongIssuer => "wrong_issuer",
            Reason::WrongAudience => "wrong_audience",
            Reason::MissingClaim(_) => "missing_claim",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Reason::Malformed(what) => format!("the user token is not a valid JWT: {what}"),
            Reason::AlgorithmNotAllowed(alg) => {
                format!(
                    "the user token's algorithm `{alg}` is not allowed for this app's identity provider"
                )
            }
            Reason::UnknownKey => {
                "the user token was signed with a key the identity provider does not publish".into()
            }
            Reason::KeysUnavailable => {
                "the identity provider's signing keys could not be fetched".into()
            }
            Reason::BadSignature => "the user token's signature does not verify".into(),
            Reason::Expired => "the user token has expired".into(),
            Reason::NotYetValid => "the user token is not valid yet (`nbf`/`iat`)".into(),
            Reason::WrongIssuer => {
                "the user token was issued by another issuer than this app's identity provider"
                    .into()
            }
            Reason::WrongAudience => "the user token is not meant for this app's audience".into(),
            Reason::MissingClaim(c) => format!("the user token has no usable `{c}` claim"),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
}

/// A parsed, not yet verified token.
#[derive(Debug)]
pub struct Unverified<'t> {
    pub header: Header,
    pub claims: Map<String, Value>,
    signing_input: &'t str,
    signature: Vec<u8>,
}

fn b64(part: &str, what: &'static str) -> Result<Vec<u8>, Reason> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Reason::Malformed(what))
}

pub fn parse(token: &str) -> Result<Unverified<'_>, Reason> {
    if token.len() > MAX_TOKEN {
        return Err(Reason::Malformed("longer than 8192 characters"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reason::Malformed("expected three dot-separated parts"));
    };
    let header: Map<String, Value> = serde_json::from_slice(&b64(h, "header is not base64url")?)
        .map_err(|_| Reason::Malformed("header is not a JSON object"))?;
    if header.contains_key("crit") {
        // RFC 7515 4.1.11: unknown critical extensions must be refused (`null` included).
        return Err(Reason::Malformed(
            "critical header extensions are not supported",
        ));
    }
    let header: Header = serde_json::from_value(Value::Object(header))
        .map_err(|_| Reason::Malformed("header is not a JSON object with `alg`"))?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&b64(c, "payload is not base64url")?)
            .map_err(|_| Reason::Malformed("payload is not a JSON object"))?;
    Ok(Unverified {
        header,
        claims,
        signing_input: &token[..h.len() + 1 + c.len()],
        signature: b64(s, "signature is not base64url")?,
    })
}

/// The token's algorithm, if the app allows it. Checked before any key is used.
pub fn allowed_alg(u: &Unverified<'_>, allowed: &[Alg]) -> Result<Alg, Reason> {
    Alg::parse(&u.header.alg)
        .filter(|a| allowed.contains(a))
        .ok_or_else(|| Reason::AlgorithmNotAllowed(u.header.alg.chars().take(16).collect()))
}

/// One key of a JWKS document, as published.
#[derive(Debug, Clone, Deserialize)]
pub struct Jwk {
    #[serde(default)]
    pub kid: Option<String>,
    pub kty: String,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
}

impl Jwk {
    /// Whether this key may check a token of `alg`: its type and curve must fit the algorithm,
    /// and its own `alg` and `use`, when published, must agree.
    pub fn fits(&self, alg: Alg) -> bool {
        let family = match alg {
            Alg::RS256 => self.kty == "RSA",
            Alg::ES256 => self.kty == "EC" && self.crv.as_deref() == Some("P-256"),
            Alg::EdDSA => self.kty == "OKP" && self.crv.as_deref() == Some("Ed25519"),
        };
        family
            && self.alg.as_deref().is_none_or(|a| a == alg.name())
            && self.use_.as_deref().is_none_or(|u| u == "sig")
    }
}

fn field(v: &Option<String>) -> Result<Vec<u8>, Reason> {
    let v = v.as_deref().ok_or(Reason::UnknownKey)?;
    URL_SAFE_NO_PAD.decode(v).map_err(|_| Reason::UnknownKey)
}

pub fn verify_signature(u: &Unverified<'_>, alg: Alg, key: &Jwk) -> Result<(), Reason> {
    if !key.fits(alg) {
        return Err(Reason::UnknownKey);
    }
    let msg = u.signing_input.as_bytes();
    let ok = match alg {
        Alg::RS256 => {
            let (n, e) = (field(&key.n)?, field(&key.e)?);
            RsaPublicKeyComponents { n: &n, e: &e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg, &u.signature)
                .is_ok()
        }
        Alg::ES256 => {
            let (x, y) = (field(&key.x)?, field(&key.y)?);
            if x.len() != 32 || y.len() != 32 {
                return Err(Reason::UnknownKey);
            }
            let point = [&[4u8][..], &x, &y].concat();
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(msg, &u.signature)
                .is_ok()
        }
        Alg::EdDSA => {
            let x = field(&key.x)?;
            UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(msg, &u.signature)
                .is_ok()
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Reason::BadSignature)
    }
}

/// Clock difference tolerated between the identity provider and us.
pub const LEEWAY_SECONDS: i64 = 60;

/// `iss` exactly, `aud` (string or list) containing one of `audiences` (when the app names
/// any), `exp` required and in the future, `nbf` and `iat` not in the future, all within the
/// leeway.
pub fn check_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    audiences: &[String],
    now: i64,
) -> Result<(), Reason> {
    // NumericDate: seconds, within what a double holds exactly (no overflow further on).
    let number = |name: &str| -> Result<Option<i64>, Reason> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|f| f.is_finite() && (0.0..=9_007_199_254_740_991.0).contains(f))
                .map(|f| Some(f as i64))
                .ok_or_else(|| Reason::MissingClaim(name.into())),
        }
    };
    let exp = number("exp")?.ok_or_else(|| Reason::MissingClaim("exp".into()))?;
    if now > exp.saturating_add(LEEWAY_SECONDS) {
        return Err(Reason::Expired);
    }
    for name in ["nbf", "iat"] {
        if number(name)?.is_some_and(|t| t > now + LEEWAY_SECONDS) {
            return Err(Reason::NotYetValid);
        }
    }
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(Reason::WrongIssuer);
    }
    if !audiences.is_empty() {
        let matches = |a: &str| audiences.iter().any(|want| want == a);
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => matches(a),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(matches),
            _ => false,
        };
        if !ok {
            return Err(Reason::WrongAudience);
        }
    }
    Ok(())
}

/// A claim by a mapping name: a top-level name (`sub`), a namespaced claim taken whole
/// (`https://example.com/groups`: anything with `://`), or else a dotted path into nested
/// objects (`org.roles`). One reading per name, so no claim can shadow another.
pub fn claim<'c>(claims: &'c Map<String, Value>, path: &str) -> Option<&'c Value> {
    if path.contains("://") || !path.contains('.') {
        return claims.get(path);
    }
    let mut parts = path.split('.');
    let mut v = claims.get(parts.next()?)?;
    for p in parts {
        v = v.as_object()?.get(p)?;
    }
    Some(v)
}

/// A claim as a list of strings: a JSON list, or one string (space-separated lists are one
/// value: providers that mean several put them in an array).
pub fn claim_list(claims: &Map<String, Value>, path: &str) -> Vec<String> {
    match claim(claims, path) {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .take(100)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};
    use serde_json::json;

    fn encode(header: Value, claims: Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        let c = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{h}.{c}");
        let s = URL_SAFE_NO_PAD.encode(sign(input.as_bytes()));
        format!("{input}.{s}")
    }

    fn es256() -> (EcdsaKeyPair, Jwk) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .unwrap();
        let public = pair.public_key().as_ref();
        let jwk = Jwk {
            kid: Some("k1".into()),
            kty: "EC".into(),
            alg: None,
            use_: Some("sig".into()),
            crv: Some("P-256".into()),
            n: None,
            e: None,
            x: Some(URL_SAFE_NO_PAD.encode(&public[1..33])),
            y: Some(URL_SAFE_NO_PAD.encode(&public[33..65])),
        };
        (pair, jwk)
    }

    #[test]
    fn es256_and_eddsa_signatures_verify_and_tampering_fails() {
        let (pair, jwk) = es256();
        let rng = SystemRandom::new();
        let token = encode(
            json!({"alg": "ES256", "kid": "k1"}),
            json!({"sub": "u"}),
            |m| pair.sign(&rng, m).unwrap().as_ref().to_vec(),
        );
        let u = parse(&token).unwrap();
        assert_eq!(allowed_alg(&u, &Alg::ALL), Ok(Alg::ES256));
        assert_eq!(verify_signature(&u, Alg::ES256, &jwk), Ok(()));
        let tampered = token.replacen(".", ".e30", 1);
        let t = parse(&tampered);
        assert!(t.is_err() || verify_signature(&t.unwrap(), Alg::ES256, &jwk).is_err());

        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let ed = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let ed_jwk = Jwk {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            x: Some(URL_SAFE_NO_PAD.encode(ed.public_key().as_ref())),
            ..jwk.clone()
        };
        let token = encode(json!({"alg": "EdDSA"}), json!({"sub": "u"}), |m| {
            ed.sign(m).as_ref().to_vec()
        });
        let u = parse(&token).unwrap();
        assert_eq!(verify_signature(&u, Alg::EdDSA, &ed_jwk), Ok(()));
        // A key of another family never checks a token, whatever the token claims.
        assert_eq!(
            verify_signature(&u, Alg::ES256, &ed_jwk),
            Err(Reason::UnknownKey)
        );
    }

    #[test]
    fn none_and_hmac_are_refused_before_any_key() {
        for alg in ["none", "HS256", "HS512", "RS384", "", "NONE"] {
            let token = encode(json!({"alg": alg}), json!({"sub": "u"}), |_| Vec::new());
            let u = parse(&token).unwrap();
            assert!(
                matches!(
                    allowed_alg(&u, &Alg::ALL),
                    Err(Reason::AlgorithmNotAllowed(_))
                ),
                "{alg}"
            );
        }
        let token = encode(json!({"alg": "ES256"}), json!({}), |_| vec![0; 64]);
        let u = parse(&token).unwrap();
        assert!(
            allowed_alg(&u, &[Alg::RS256]).is_err(),
            "not in the app's list"
        );
    }

    #[test]
    fn malformed_tokens_are_told_apart_without_panicking() {
        for t in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            "!!.e30.",
            "e30.!!.",
            "e30.e30.!!",
            "bnVsbA.e30.",
            "e30.e30.",
        ] {
            assert!(matches!(parse(t), Err(Reason::Malformed(_))), "{t:?}");
        }
        let crit = encode(
            json!({"alg": "ES256", "crit": ["b64"]}),
            json!({}),
            |_| vec![],
        );
        assert!(matches!(parse(&crit), Err(Reason::Malformed(_))));
        let null_crit = encode(json!({"alg": "ES256", "crit": null}), json!({}), |_| vec![]);
        assert!(matches!(parse(&null_crit), Err(Reason::Malformed(_))));
        assert!(matches!(
            parse(&"a".repeat(MAX_TOKEN + 1)),
            Err(Reason::Malformed(_))
        ));
    }

    #[test]
    fn registered_claims_with_leeway() {
        let now = 1_000_000;
        let ok =
            |c: Value| check_claims(c.as_object().unwrap(), "https://idp", &["api".into()], now);
        let base = json!({"iss": "https://idp", "aud": "api", "exp": now + 10});
        assert_eq!(ok(base.clone()), Ok(()));
        let with = |k: &str, v: Value| {
            let mut c = base.clone();
            c[k] = v;
            c
        };
        assert_eq!(ok(with("exp", json!(now - LEEWAY_SECONDS + 1))), Ok(()));
        assert_eq!(
            ok(with("exp", json!(now - LEEWAY_SECONDS - 1))),
            Err(Reason::Expired)
        );
        assert_eq!(
            ok(with("exp", json!("soon"))),
            Err(Reason::MissingClaim("exp".into()))
        );
        assert_eq!(ok(with("nbf", json!(now + 3600))), Err(Reason::NotYetValid));
        assert_eq!(
            ok(with("iss", json!("https://idp/"))),
            Err(Reason::WrongIssuer)
        );
        assert_eq!(ok(with("aud", json!(["x", "api"]))), Ok(()));
        assert_eq!(ok(with("aud", json!("other"))), Err(Reason::WrongAudience));
        let mut no_exp = base.clone();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(ok(no_exp), Err(Reason::MissingClaim("exp".into())));
    }

    #[test]
    fn claims_by_path() {
        let c = json!({"sub": "u", "https://x.io/groups": ["a"], "org": {"roles": ["admin", 7]}, "org.roles": ["shadow"]});
        let c = c.as_object().unwrap();
        assert_eq!(claim_list(c, "https://x.io/groups"), vec!["a"]);
        assert_eq!(claim_list(c, "org.roles"), vec!["admin", "7"]);
        assert_eq!(claim_list(c, "missing"), Vec::<String>::new());
    }
}
