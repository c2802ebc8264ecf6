//! AES-256-GCM for the few secrets the service must read back (idempotent
//! answers, webhook signing secrets): a fresh 96-bit nonce per seal, the
//! record's id as associated data so a sealed value cannot be moved to
//! another record.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A sealed value: base64 nonce and ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sealed {
    pub nonce: String,
    pub ciphertext: String,
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
}
