//! The service's Ed25519 signing key.
//!
//! It signs verification receipts and log checkpoints. It lives in a PKCS#8
//! PEM file (`PROOFLINE_SIGNING_KEY_FILE`, mode 0600), created on first start,
//! so an operator can inspect it with standard tools
//! (`openssl pkey -in signing.key -pubout`).

use std::fmt;
use std::path::Path;

use ed25519_dalek::ed25519::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::ed25519::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::Sha256;

use crate::keys::KeyError;
use crate::secret_file;

pub struct ServiceKey {
    key: SigningKey,
}

impl fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceKey")
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

impl ServiceKey {
    /// A fresh key from the OS random source.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
        })
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// A short id of the public key: the first 16 hex characters of its SHA-256.
    pub fn kid(&self) -> String {
        proofline_domain::checkpoint::kid_of(&self.verifying_key())
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign(message)
    }

    /// The C2SP signed note of a tlog checkpoint, signed with this key
    /// under the checkpoint's origin as the key name.
    pub fn sign_note(
        &self,
        checkpoint: &proofline_domain::note::Checkpoint,
    ) -> Result<String, proofline_domain::note::NoteError> {
        checkpoint.sign(&self.key)
    }

    /// A compact JWS of `header` and `payload` signed with this key (the
    /// header says `EdDSA`).
    pub fn sign_jws(&self, header: &serde_json::Value, payload: &serde_json::Value) -> String {
        proofline_domain::jose::sign_compact(header, payload, |input| {
            self.sign(input).to_bytes().to_vec()
        })
    }

    /// A 256-bit key for another purpose, derived from this key's secret
    /// with HKDF-SHA256 and `purpose` as the info string. Derived keys are
    /// independent of each other and of the signing key.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        let hkdf =
            hkdf::Hkdf::<Sha256>::new(Some(b"proofline key derivation v1"), self.key.as_bytes());
        let mut out = [0u8; 32];
        hkdf.expand(purpose.as_bytes(), &mut out)
            .expect("32 bytes is a valid HKDF length");
        out
    }

    pub fn to_pem(&self) -> Result<String, KeyError> {
        let pem = self
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encoding(e.to_string()))?;
        Ok(pem.as_str().to_owned())
    }

    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let key =
            SigningKey::from_pkcs8_pem(text).map_err(|e| KeyError::Encoding(e.to_string()))?;
        Ok(Self { key })
    }
}

/// Loads the key at `path`; `None` when there is no file.
pub fn load(path: &Path) -> Result<Option<ServiceKey>, KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    secret_file::read(path)
        .map_err(io)?
        .map(|text| {
            ServiceKey::from_pem(&text).map_err(|_| KeyError::Malformed {
                path: path.display().to_string(),
                what: "an Ed25519 PKCS#8 PEM private key",
            })
        })
        .transpose()
}

/// Loads the key at `path`, creating it first if there is none. True in the
/// second element when this call created it.
pub fn load_or_create(path: &Path) -> Result<(ServiceKey, bool), KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(text) = secret_file::read(path).map_err(io)? {
        return Ok((
            ServiceKey::from_pem(&text).map_err(|_| KeyError::Malformed {
                path: path.display().to_string(),
                what: "an Ed25519 PKCS#8 PEM private key",
            })?,
            false,
        ));
    }
    let key = ServiceKey::generate()?;
    let created = secret_file::create_new(path, key.to_pem()?.as_bytes()).map_err(io)?;
    if created {
        Ok((key, true))
    } else {
        // Another process created it between our read and our write.
        load_or_create(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier;

    #[test]
    fn created_once_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        let (first, created) = load_or_create(&path).unwrap();
        assert!(created);
        let (again, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(first.verifying_key(), again.verifying_key());
        let signature = again.sign(b"message");
        assert!(first.verifying_key().verify(b"message", &signature).is_ok());
        assert!(!format!("{first:?}").contains("PRIVATE"));
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_are_stable() {
        let key = ServiceKey::generate().unwrap();
        assert_eq!(key.derive_key("a"), key.derive_key("a"));
        assert_ne!(key.derive_key("a"), key.derive_key("b"));
        assert_ne!(
            key.derive_key("a"),
            ServiceKey::generate().unwrap().derive_key("a")
        );
    }

    #[test]
    fn a_garbled_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(KeyError::Malformed { .. })
        ));
    }
}
