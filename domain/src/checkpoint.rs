//! Signed checkpoints of the log: at intervals the service signs
//! `{position, hash, signed_at}` of the log's head with its Ed25519 key and
//! records it as an event (`LogCheckpointSigned` on the stream
//! `log-checkpoints`), so checkpoints survive restarts, travel in every
//! export, and can be checked offline like the rest of the log.
//!
//! The signature is a compact JWS, `alg` EdDSA, `typ`
//! `proofline-checkpoint+jwt`, `kid` the service key's id, whose payload is
//! exactly `{"position", "hash", "signed_at"}`.

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::decider::EventSchema;
use crate::ids::{Category, StreamId};
use crate::jose::{CompactJws, PublicKey, b64url_decode, b64url_encode};
use crate::log::{EventHash, Timestamp};

pub const TYP: &str = "proofline-checkpoint+jwt";

pub fn stream() -> StreamId {
    StreamId::singleton(Category::Log, Some("checkpoints"))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum CheckpointEvent {
    LogCheckpointSigned {
        /// The log position signed (the head when signing).
        position: u64,
        /// The hash of the event at `position`.
        hash: EventHash,
        signed_at: Timestamp,
        /// The service key that signed.
        kid: String,
        /// The compact JWS over `{position, hash, signed_at}`.
        jws: String,
        /// The C2SP tlog-checkpoint signed note of the Merkle tree of the
        /// first `position` events (docs/log-format.md, "Checkpoints"):
        /// origin, tree size (= `position`), base64 root, and the service
        /// key's note signature. Absent from checkpoints signed before the
        /// tree existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
}

impl EventSchema for CheckpointEvent {}

/// The stream of witnesses' cosignatures (`log-witnesses`).
pub fn witness_stream() -> StreamId {
    StreamId::singleton(Category::Log, Some("witnesses"))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum WitnessEvent {
    /// A witness (C2SP `tlog-witness`) cosigned a checkpoint note: it
    /// checked the note's signature and that the tree grew consistently from
    /// the one it cosigned before. Recorded once the cosignature verified
    /// with the witness's key; served with the note from then on.
    LogCheckpointCosigned {
        /// The tree size of the checkpoint cosigned.
        tree_size: u64,
        /// Its root hash, base64 (as in the note).
        root_hash: String,
        /// The witness's verifier key (`<name>+<hex key id>+<base64 key>`).
        witness: String,
        /// The C2SP `cosignature/v1` note signature line, as the witness
        /// sent it (`— <name> <base64>` and a newline).
        cosignature: String,
    },
}

impl EventSchema for WitnessEvent {}

/// What a checkpoint signs.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub position: u64,
    pub hash: EventHash,
    pub signed_at: Timestamp,
}

impl Checkpoint {
    fn payload(&self) -> Value {
        json!({
            "position": self.position,
            "hash": self.hash,
            "signed_at": self.signed_at,
        })
    }

    /// The JWS signing input (`header.payload`, base64url) for `kid`.
    pub fn signing_input(&self, kid: &str) -> String {
        let header = json!({"alg": "EdDSA", "typ": TYP, "kid": kid});
        crate::jose::signing_input(&header, &self.payload())
    }

    /// The event recording this checkpoint, given the signature over
    /// [`Checkpoint::signing_input`].
    pub fn event(&self, kid: &str, signature: &[u8], note: Option<String>) -> CheckpointEvent {
        CheckpointEvent::LogCheckpointSigned {
            position: self.position,
            hash: self.hash,
            signed_at: self.signed_at,
            kid: kid.to_owned(),
            jws: format!("{}.{}", self.signing_input(kid), b64url_encode(signature)),
            note,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the signature does not verify with key {0}")]
    Signature(String),
    #[error("the signed payload differs from the recorded checkpoint")]
    Payload,
    #[error("not a checkpoint JWS: {0}")]
    Malformed(String),
}

/// The key id of an Ed25519 public key, as the service writes it in
/// checkpoints and receipts: the first 16 hex characters of its SHA-256.
pub fn kid_of(key: &VerifyingKey) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    hex::encode(&digest[..8])
}

/// Parses an Ed25519 public key given as base64url (raw 32 bytes).
pub fn public_key(text: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = b64url_decode(text.trim()).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// Checks a recorded checkpoint: its JWS is `typ` checkpoint, signed by
/// `key`, over exactly the recorded `{position, hash, signed_at}`.
pub fn check(event: &CheckpointEvent, key: &VerifyingKey) -> Result<(), CheckpointError> {
    let CheckpointEvent::LogCheckpointSigned {
        position,
        hash,
        signed_at,
        kid,
        jws,
        ..
    } = event;
    let parsed = CompactJws::parse(jws).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
    if parsed.typ() != Some(TYP) || parsed.alg() != Some("EdDSA") {
        return Err(CheckpointError::Malformed("wrong typ or alg".into()));
    }
    parsed
        .verify(&PublicKey::Ed25519(*key))
        .map_err(|_| CheckpointError::Signature(kid.clone()))?;
    let expected = Checkpoint {
        position: *position,
        hash: *hash,
        signed_at: *signed_at,
    }
    .payload();
    if Value::Object(parsed.payload) != expected || parsed.header.get("kid") != Some(&json!(kid)) {
        return Err(CheckpointError::Payload);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn a_signed_checkpoint_checks_and_a_changed_one_does_not() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let checkpoint = Checkpoint {
            position: 42,
            hash: EventHash::GENESIS,
            signed_at: Timestamp::parse("2026-11-23T09:15:02.123456Z").unwrap(),
        };
        let sign = |k: &SigningKey| {
            checkpoint.event(
                "k1",
                &k.sign(checkpoint.signing_input("k1").as_bytes()).to_bytes(),
                None,
            )
        };
        let event = sign(&key);
        assert_eq!(check(&event, &key.verifying_key()), Ok(()));
        assert!(matches!(
            check(&sign(&other), &key.verifying_key()),
            Err(CheckpointError::Signature(_))
        ));
        let CheckpointEvent::LogCheckpointSigned {
            jws,
            kid,
            signed_at,
            hash,
            ..
        } = event;
        let moved = CheckpointEvent::LogCheckpointSigned {
            position: 43,
            hash,
            signed_at,
            kid,
            jws,
            note: None,
        };
        assert_eq!(
            check(&moved, &key.verifying_key()),
            Err(CheckpointError::Payload)
        );
        let encoded = b64url_encode(key.verifying_key().as_bytes());
        assert_eq!(public_key(&encoded), Some(key.verifying_key()));
        assert_eq!(public_key("nope"), None);
    }
}
