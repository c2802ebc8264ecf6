//! AES-256-GCM for the few secrets the service must read back (idempotent
//! answers, webhook signing secrets): a fresh 96-bit nonce per seal, the
//! record's id as associated data so a sealed value cannot be moved to
//! another record.
//!
//! Webhook secrets are sealed with a [`SealingKey`] of their own, in a file
//! of its own (`PROOFLINE_SEALING_KEY_FILE`), so that the webhooks role,
//! the process that talks to lenders' endpoints, holds that key and not the
//! service signing key (with which it could forge receipts and
//! checkpoints). Each sealed value names the key that sealed it.

use std::path::Path;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::keys::KeyError;
use crate::secret_file;

/// A sealed value: base64 nonce and ciphertext, and the id of the
/// [`SealingKey`] that sealed it (absent for values sealed with a key
/// derived from the service key, before sealing keys had files).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sealed {
    pub nonce: String,
    pub ciphertext: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// What the first line of a sealing key file says.
const FILE_HEADER: &str = "proofline sealing key v1";

/// A 256-bit AES key with an id, for the secrets the webhooks role opens.
pub struct SealingKey {
    key: [u8; 32],
    /// `None` for the key derived from the service key, which sealed
    /// values without naming it.
    kid: Option<String>,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SealingKey {
    fn with_bytes(key: [u8; 32]) -> Self {
        let digest = Sha256::digest([b"proofline sealing key id".as_slice(), &key].concat());
        Self {
            key,
            kid: Some(hex::encode(&digest[..8])),
        }
    }

    /// A new key from the OS random source.
    pub fn generate() -> Result<Self, KeyError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self::with_bytes(key))
    }

    /// The key that sealed webhook secrets before sealing keys had a file
    /// of their own (derived from the service key): used only to open
    /// those and seal them again ([`crate::webhooks::reseal`]).
    pub fn legacy(derived: [u8; 32]) -> Self {
        Self {
            key: derived,
            kid: None,
        }
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    fn parse(path: &Path, text: &str) -> Result<Self, KeyError> {
        let malformed = || KeyError::Malformed {
            path: path.display().to_string(),
            what: "a Proofline sealing key",
        };
        let mut lines = text.lines();
        if lines.next() != Some(FILE_HEADER) {
            return Err(malformed());
        }
        let key: [u8; 32] = lines
            .next()
            .and_then(|line| STANDARD.decode(line.trim()).ok())
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(malformed)?;
        Ok(Self::with_bytes(key))
    }

    /// The key at `path`; `None` when there is no file.
    pub fn load(path: &Path) -> Result<Option<Self>, KeyError> {
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        secret_file::read(path)
            .map_err(io)?
            .map(|text| Self::parse(path, &text))
            .transpose()
    }

    /// The key at `path`, created first (0600, atomically) if there is
    /// none; true in the second element when this call created it.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        if let Some(key) = Self::load(path)? {
            return Ok((key, false));
        }
        let key = Self::generate()?;
        let text = format!("{FILE_HEADER}\n{}\n", STANDARD.encode(key.key));
        let created =
            secret_file::create_new(path, text.as_bytes()).map_err(|source| KeyError::Io {
                path: path.display().to_string(),
                source,
            })?;
        if created {
            Ok((key, true))
        } else {
            // Another process created it between our read and our write.
            Self::load_or_create(path)
        }
    }

    /// Seals `plain` bound to `aad`, naming this key.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Option<Sealed> {
        let mut sealed = seal(&self.key, aad, plain)?;
        sealed.key = self.kid.clone();
        Some(sealed)
    }

    /// Opens what this key sealed; `None` for anything else (another key's
    /// value, another record, tampering).
    pub fn open(&self, aad: &[u8], sealed: &Sealed) -> Option<Vec<u8>> {
        if sealed.key != self.kid {
            return None;
        }
        open(&self.key, aad, sealed)
    }
}

/// Seals `plain` under `key`, bound to `aad`.
pub fn seal(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Option<Sealed> {
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).ok()?;
    let ciphertext = cipher
        .encrypt(&nonce.into(), Payload { msg: plain, aad })
        .ok()?;
    Some(Sealed {
        nonce: STANDARD.encode(nonce),
        ciphertext: STANDARD.encode(ciphertext),
        key: None,
    })
}

/// Opens what [`seal`] sealed with the same key and `aad`; `None` for
/// anything else.
pub fn open(key: &[u8; 32], aad: &[u8], sealed: &Sealed) -> Option<Vec<u8>> {
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    let nonce: [u8; 12] = STANDARD.decode(&sealed.nonce).ok()?.try_into().ok()?;
    let ciphertext = STANDARD.decode(&sealed.ciphertext).ok()?;
    cipher
        .decrypt(
            &nonce.into(),
            Payload {
                msg: &ciphertext,
                aad,
            },
        )
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_with_the_same_key_and_record() {
        let key = [7u8; 32];
        let sealed = seal(&key, b"record-1", b"secret").unwrap();
        assert_eq!(open(&key, b"record-1", &sealed).unwrap(), b"secret");
        assert!(open(&key, b"record-2", &sealed).is_none());
        assert!(open(&[8u8; 32], b"record-1", &sealed).is_none());
        let again = seal(&key, b"record-1", b"secret").unwrap();
        assert_ne!(again.nonce, sealed.nonce, "a fresh nonce each time");
    }

    #[test]
    fn a_sealing_key_names_what_it_sealed_and_opens_only_that() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sealing.key");
        let (key, created) = SealingKey::load_or_create(&path).unwrap();
        assert!(created);
        let (again, created) = SealingKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(key.kid(), again.kid());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let sealed = key.seal(b"webhook:1", b"whsec_x").unwrap();
        assert_eq!(sealed.key.as_deref(), key.kid());
        assert_eq!(again.open(b"webhook:1", &sealed).unwrap(), b"whsec_x");
        let other = SealingKey::generate().unwrap();
        assert!(other.open(b"webhook:1", &sealed).is_none());
        // A value sealed by the derived key of old opens with it alone.
        let legacy = SealingKey::legacy([3; 32]);
        let old = seal(&[3; 32], b"webhook:1", b"whsec_y").unwrap();
        assert_eq!(legacy.open(b"webhook:1", &old).unwrap(), b"whsec_y");
        assert!(key.open(b"webhook:1", &old).is_none());
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(
            SealingKey::load(&path),
            Err(KeyError::Malformed { .. })
        ));
    }
}
