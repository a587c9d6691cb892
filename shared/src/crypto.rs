//! Envelope encryption for secrets at rest.
//!
//! Each sealed value carries its own KMS-encrypted data key (`edk`). Data keys come from
//! `GenerateDataKey` with the app ID as KMS encryption context, and the plaintext value is
//! AES-256-GCM encrypted with `app ID | item ID` as associated data: a ciphertext copied to
//! another app or item fails to open. Plaintext data keys live only in this process's memory
//! (zeroized when evicted), so a warm instance decrypts without calling KMS.

use crate::error::ApiError;
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;
use zeroize::Zeroizing;

/// A sealed value as stored: version, encrypted data key, GCM nonce, ciphertext (base64).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sealed {
    pub v: u8,
    pub edk: String,
    pub iv: String,
    pub ct: String,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed(…)")
    }
}

const CACHE_LIMIT: usize = 4096;
/// How long one data key keeps encrypting new values before a fresh one is generated.
const WRITE_KEY_LIFE: Duration = Duration::from_secs(3600);
const WRITE_KEY_USES: u32 = 100_000;

struct WriteKey {
    edk: Vec<u8>,
    plaintext: Zeroizing<[u8; 32]>,
    born: Instant,
    uses: u32,
}

pub struct Sealer {
    kms: Client,
    key_id: String,
    /// sha256(edk) → plaintext data key.
    open_keys: Mutex<HashMap<[u8; 32], Zeroizing<[u8; 32]>>>,
    /// app ID → the data key currently used to seal that app's new values.
    write_keys: Mutex<HashMap<Uuid, WriteKey>>,
}

fn kms_unavailable<E: std::fmt::Debug>(e: E) -> ApiError {
    tracing::warn!(error = ?e, "kms call failed");
    ApiError::unavailable("the key management service is unavailable; nothing was written")
}

fn aad(app_id: Uuid, item: &str) -> Vec<u8> {
    format!("portcullis:v1|{app_id}|{item}").into_bytes()
}

impl Sealer {
    pub fn new(kms: Client, key_id: impl Into<String>) -> Self {
        Self {
            kms,
            key_id: key_id.into(),
            open_keys: Mutex::new(HashMap::new()),
            write_keys: Mutex::new(HashMap::new()),
        }
    }

    pub fn kms(&self) -> &Client {
        &self.kms
    }

    async fn write_key(&self, app_id: Uuid) -> Result<(Vec<u8>, Zeroizing<[u8; 32]>), ApiError> {
        {
            let mut keys = self.write_keys.lock().expect("write keys");
            if let Some(k) = keys.get_mut(&app_id)
                && k.born.elapsed() < WRITE_KEY_LIFE
                && k.uses < WRITE_KEY_USES
            {
                k.uses += 1;
                return Ok((k.edk.clone(), k.plaintext.clone()));
            }
        }
        let out = self
            .kms
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context("app_id", app_id.to_string())
            .send()
            .await
            .map_err(kms_unavailable)?;
        let (Some(plain), Some(edk)) = (out.plaintext, out.ciphertext_blob) else {
            return Err(kms_unavailable("GenerateDataKey answered without a key"));
        };
        let mut plaintext = Zeroizing::new([0u8; 32]);
        if plain.as_ref().len() != 32 {
            return Err(kms_unavailable("data key of unexpected length"));
        }
        plaintext.copy_from_slice(plain.as_ref());
        let edk = edk.into_inner();
        let mut keys = self.write_keys.lock().expect("write keys");
        if keys.len() >= CACHE_LIMIT {
            keys.clear();
        }
        keys.insert(
            app_id,
            WriteKey {
                edk: edk.clone(),
                plaintext: plaintext.clone(),
                born: Instant::now(),
                uses: 1,
            },
        );
        self.remember(&edk, plaintext.clone());
        Ok((edk, plaintext))
    }

    fn remember(&self, edk: &[u8], plaintext: Zeroizing<[u8; 32]>) {
        let mut keys = self.open_keys.lock().expect("open keys");
        if keys.len() >= CACHE_LIMIT {
            keys.clear();
        }
        keys.insert(Sha256::digest(edk).into(), plaintext);
    }

    async fn open_key(&self, app_id: Uuid, edk: &[u8]) -> Result<Zeroizing<[u8; 32]>, ApiError> {
        let id: [u8; 32] = Sha256::digest(edk).into();
        if let Some(k) = self.open_keys.lock().expect("open keys").get(&id) {
            return Ok(k.clone());
        }
        let out = self
            .kms
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(edk.to_vec()))
            .encryption_context("app_id", app_id.to_string())
            .send()
            .await
            .map_err(|e| {
                // A data key bound to another app is refused by KMS: treat as tampering.
                if e.as_service_error()
                    .is_some_and(|se| se.is_invalid_ciphertext_exception())
                {
                    sealed_mismatch()
                } else {
                    kms_unavailable(e)
                }
            })?;
        let plain = out
            .plaintext
            .ok_or_else(|| kms_unavailable("no plaintext"))?;
        if plain.as_ref().len() != 32 {
            return Err(sealed_mismatch());
        }
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(plain.as_ref());
        self.remember(edk, key.clone());
        Ok(key)
    }

    pub async fn seal(
        &self,
        app_id: Uuid,
        item: &str,
        plaintext: &[u8],
    ) -> Result<Sealed, ApiError> {
        crate::iam::require(crate::iam::Action::GenerateDataKey)?;
        let (edk, key) = self.write_key(app_id).await?;
        let mut iv = [0u8; 12];
        rand::fill(&mut iv);
        let cipher = Aes256Gcm::new_from_slice(key.as_ref()).expect("32-byte key");
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&iv),
                Payload {
                    msg: plaintext,
                    aad: &aad(app_id, item),
                },
            )
            .map_err(|_| ApiError::internal())?;
        Ok(Sealed {
            v: 1,
            edk: B64.encode(edk),
            iv: B64.encode(iv),
            ct: B64.encode(ct),
        })
    }

    pub async fn open(
        &self,
        app_id: Uuid,
        item: &str,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, ApiError> {
        crate::iam::require(crate::iam::Action::Decrypt)?;
        let decode = |s: &str| B64.decode(s).map_err(|_| sealed_mismatch());
        let (edk, iv, ct) = (
            decode(&sealed.edk)?,
            decode(&sealed.iv)?,
            decode(&sealed.ct)?,
        );
        if sealed.v != 1 || iv.len() != 12 {
            return Err(sealed_mismatch());
        }
        let key = self.open_key(app_id, &edk).await?;
        let cipher = Aes256Gcm::new_from_slice(key.as_ref()).expect("32-byte key");
        cipher
            .decrypt(
                Nonce::from_slice(&iv),
                Payload {
                    msg: &ct,
                    aad: &aad(app_id, item),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| sealed_mismatch())
    }
}

fn sealed_mismatch() -> ApiError {
    tracing::error!("a sealed value failed to open: wrong app, wrong item or tampered");
    ApiError::internal()
}
