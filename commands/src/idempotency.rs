//! Idempotent command answers.
//!
//! A POST with an `Idempotency-Key` stores its first answer in the secrets
//! table, in the same transaction as the command's events, so the answer
//! exists exactly when the command happened. A retry with the same key and
//! the same request gets that answer again (for a registration: the same
//! lender id and the same API key, not a new one); the same key with another
//! request is refused.
//!
//! Answers can hold a secret (an API key shown once), so they are stored
//! encrypted: AES-256-GCM under a key derived from the service's key and the
//! idempotency key itself, with the record id as associated data. Neither a
//! copy of the database nor the service key alone opens a record.

use chrono::Duration;
use proofline_domain::log::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::store::{EventStore, SecretRecord, SecretWrite, StoreError};

/// The secrets table's `kind` for idempotency records.
pub const IDEMPOTENCY_SECRET: &str = "idempotency";
/// How long an answer is kept for retries.
pub const RETENTION_HOURS: i64 = 24;
/// Longest accepted `Idempotency-Key`.
pub const MAX_KEY_LEN: usize = 255;

#[derive(Debug, Clone, thiserror::Error)]
pub enum IdempotencyError {
    #[error("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters")]
    BadKey,
    #[error("this Idempotency-Key was used with a different request")]
    Mismatch,
    #[error("the stored answer for this Idempotency-Key cannot be read")]
    Unreadable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The answer replayed to a retry.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: Value,
    /// The position of the command's last event.
    pub position: u64,
}

/// One request's idempotency: who asked, with which key, for what.
pub struct Idempotency {
    record_id: String,
    request_sha256: String,
    encryption: [u8; 32],
}

#[derive(Serialize, Deserialize)]
struct Record {
    v: u32,
    request_sha256: String,
    status: u16,
    created_at: Timestamp,
    nonce: String,
    ciphertext: String,
}

impl Idempotency {
    /// `actor` scopes keys to a principal; `request` is what must match on
    /// a retry (method, path and body); `master` comes from the service key.
    pub fn new(
        master: &[u8; 32],
        actor: &str,
        key: &str,
        request: &[u8],
    ) -> Result<Self, IdempotencyError> {
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IdempotencyError::BadKey);
        }
        let mut id = Sha256::new();
        id.update(actor.as_bytes());
        id.update([0]);
        id.update(key.as_bytes());
        let record_id = format!("{IDEMPOTENCY_SECRET}:{}", hex::encode(id.finalize()));
        let hkdf = hkdf::Hkdf::<Sha256>::new(Some(master), key.as_bytes());
        let mut encryption = [0u8; 32];
        hkdf.expand(b"proofline idempotency answer v1", &mut encryption)
            .expect("32 bytes is a valid HKDF length");
        Ok(Self {
            record_id,
            request_sha256: hex::encode(Sha256::digest(request)),
            encryption,
        })
    }

    /// The answer stored by an earlier identical request, if any is still
    /// kept. An expired record is deleted so the key can be used again.
    pub async fn replay(
        &self,
        store: &dyn EventStore,
        now: Timestamp,
    ) -> Result<Option<StoredAnswer>, IdempotencyError> {
        let Some(record) = store.secret(&self.record_id).await? else {
            return Ok(None);
        };
        let answer = self.open(&record, now)?;
        if answer.is_none() {
            store.delete_secret(&self.record_id).await?;
        }
        Ok(answer)
    }

    fn open(
        &self,
        record: &SecretRecord,
        now: Timestamp,
    ) -> Result<Option<StoredAnswer>, IdempotencyError> {
        let stored: Record = serde_json::from_str(record.material.expose_secret())
            .map_err(|_| IdempotencyError::Unreadable)?;
        if stored.created_at.as_datetime() + Duration::hours(RETENTION_HOURS) < now.as_datetime() {
            return Ok(None);
        }
        if stored.request_sha256 != self.request_sha256 {
            return Err(IdempotencyError::Mismatch);
        }
        let plain = crate::sealing::open(
            &self.encryption,
            self.record_id.as_bytes(),
            &crate::sealing::Sealed {
                nonce: stored.nonce.clone(),
                ciphertext: stored.ciphertext.clone(),
                key: None,
            },
        )
        .ok_or(IdempotencyError::Unreadable)?;
        let body: Value =
            serde_json::from_slice(&plain).map_err(|_| IdempotencyError::Unreadable)?;
        Ok(Some(StoredAnswer {
            status: stored.status,
            body,
            position: record.position,
        }))
    }

    /// The record of an answer, to be appended with the command's events
    /// (the secrets row then holds the position of the last of them).
    pub fn record(
        &self,
        status: u16,
        body: &Value,
        now: Timestamp,
    ) -> Result<SecretWrite, IdempotencyError> {
        let plain = serde_json::to_vec(body).map_err(|_| IdempotencyError::Unreadable)?;
        let sealed = crate::sealing::seal(&self.encryption, self.record_id.as_bytes(), &plain)
            .ok_or(IdempotencyError::Unreadable)?;
        let record = Record {
            v: 1,
            request_sha256: self.request_sha256.clone(),
            status,
            created_at: now,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
        };
        Ok(SecretWrite {
            id: self.record_id.clone(),
            kind: IDEMPOTENCY_SECRET.to_owned(),
            material: SecretString::from(
                serde_json::to_string(&record).map_err(|_| IdempotencyError::Unreadable)?,
            ),
            replace: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use proofline_domain::ids::StreamId;
    use serde_json::json;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_datetime(Utc.timestamp_opt(1_790_000_000 + secs, 0).unwrap())
    }

    fn record_of(write: &SecretWrite, position: u64) -> SecretRecord {
        SecretRecord {
            id: write.id.clone(),
            kind: write.kind.clone(),
            stream_id: StreamId::parse("lender-1").unwrap(),
            material: write.material.clone(),
            position,
            created_at: t(0),
        }
    }

    #[test]
    fn an_answer_round_trips_for_the_same_request_only() {
        let master = [7u8; 32];
        let first = Idempotency::new(&master, "operator", "key-1", b"POST /v1/lenders {}").unwrap();
        let body = json!({"lender_id": "x", "api_key": "pl_secret"});
        let write = first.record(201, &body, t(0)).unwrap();
        assert!(
            !write.material.expose_secret().contains("pl_secret"),
            "the answer is encrypted"
        );
        let again = Idempotency::new(&master, "operator", "key-1", b"POST /v1/lenders {}").unwrap();
        let answer = again.open(&record_of(&write, 10), t(60)).unwrap().unwrap();
        assert_eq!((answer.status, answer.position), (201, 10));
        assert_eq!(answer.body, body);

        let other_body =
            Idempotency::new(&master, "operator", "key-1", b"POST /v1/lenders {\"x\":1}").unwrap();
        assert!(matches!(
            other_body.open(&record_of(&write, 10), t(60)),
            Err(IdempotencyError::Mismatch)
        ));
        assert_eq!(
            again.open(&record_of(&write, 10), t(25 * 3600)).unwrap(),
            None,
            "expired after a day"
        );
    }

    #[test]
    fn records_are_scoped_and_bound_to_their_keys() {
        let master = [7u8; 32];
        let a = Idempotency::new(&master, "operator", "k", b"r").unwrap();
        let b = Idempotency::new(&master, "lender:1", "k", b"r").unwrap();
        assert_ne!(
            a.record_id, b.record_id,
            "keys are scoped to their principal"
        );
        let write = a.record(201, &json!({}), t(0)).unwrap();
        // Another master (another service key) cannot open it.
        let stranger = Idempotency::new(&[8u8; 32], "operator", "k", b"r").unwrap();
        assert!(matches!(
            stranger.open(&record_of(&write, 1), t(1)),
            Err(IdempotencyError::Unreadable)
        ));
        for bad in ["", "with space", &"x".repeat(256)] {
            assert!(matches!(
                Idempotency::new(&master, "operator", bad, b"r"),
                Err(IdempotencyError::BadKey)
            ));
        }
    }
}
