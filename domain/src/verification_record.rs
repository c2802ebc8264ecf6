//! What the log keeps of a verification: one event, PresentationVerified or
//! PresentationRejected, on the verification's own stream.
//!
//! The stream of a first use of a nonce is `verification-<id>` with the id
//! derived from the lender and the nonce ([`VerificationId::for_nonce`]), and
//! it is appended with `no_stream`: the store refuses a second use, which is
//! what makes a replay fail. The replay is recorded too, under an id of its
//! own.
//!
//! The record names claims, never their values: the presentation and the
//! nonce are kept as SHA-256 digests, the disclosed claims as paths.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::decider::EventSchema;
use crate::ids::StreamId;
use crate::lender::LenderId;
use crate::log::Timestamp;
use crate::verification::{Outcome, StatusUsed, Step, StepResult};

/// Longest `iss`, `kid` or `vct` the record keeps; a longer one is not a
/// registered value and is recorded as absent.
pub const MAX_RECORDED_TEXT: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VerificationId(Uuid);

impl VerificationId {
    /// The id of the first verification by `lender` with `nonce`: a UUIDv8
    /// from SHA-256(lender id bytes ‖ 0x00 ‖ nonce).
    pub fn for_nonce(lender: LenderId, nonce: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(lender.as_uuid().as_bytes());
        hasher.update([0u8]);
        hasher.update(nonce.as_bytes());
        let digest = hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(Uuid::new_v8(bytes))
    }

    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    pub fn stream_id(&self) -> StreamId {
        StreamId::new("verification", self.0).expect("a UUID makes a valid stream id")
    }
}

impl fmt::Display for VerificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Hex SHA-256 of a text.
pub fn sha256_hex(text: &str) -> String {
    hex_lower(&Sha256::digest(text.as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

/// One verification as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VerificationRecord {
    pub verification_id: VerificationId,
    pub lender_id: LenderId,
    pub verified: bool,
    pub failed_step: Option<Step>,
    pub reason: Option<String>,
    pub steps: Vec<StepResult>,
    pub issuer: Option<String>,
    pub kid: Option<String>,
    pub vct: Option<String>,
    /// Paths of the selectively disclosed claims; never their values.
    pub disclosed_claims: Vec<String>,
    /// Hex SHA-256 of the presentation as received.
    pub presentation_sha256: String,
    /// Hex SHA-256 of the nonce.
    pub nonce_sha256: String,
    /// The audience the Key Binding JWT had to name.
    pub audience: String,
    pub required_claims: Vec<String>,
    pub require_holder_binding: bool,
    /// The status list entry consulted, and the list version that said so.
    pub status: Option<StatusUsed>,
    /// Set on a replay: the verification that used the nonce first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_use: Option<VerificationId>,
    pub verified_at: Timestamp,
}

/// What the lender asked, as the record keeps it.
#[derive(Debug, Clone)]
pub struct Asked<'a> {
    pub lender_id: LenderId,
    pub presentation: &'a str,
    pub nonce: &'a str,
    pub audience: &'a str,
    pub required_claims: Vec<String>,
    pub require_holder_binding: bool,
    pub at: Timestamp,
}

fn bounded(text: Option<&String>) -> Option<String> {
    text.filter(|t| t.len() <= MAX_RECORDED_TEXT).cloned()
}

impl VerificationRecord {
    /// The record of `outcome`, under `id`.
    pub fn new(id: VerificationId, asked: &Asked<'_>, outcome: &Outcome) -> Self {
        Self {
            verification_id: id,
            lender_id: asked.lender_id,
            verified: outcome.verified(),
            failed_step: outcome.failed_step,
            reason: outcome.reason.clone(),
            steps: outcome.steps.clone(),
            issuer: bounded(outcome.issuer.as_ref()),
            kid: bounded(outcome.kid.as_ref()),
            vct: bounded(outcome.vct.as_ref()),
            disclosed_claims: outcome.disclosed_paths.clone(),
            presentation_sha256: sha256_hex(asked.presentation),
            nonce_sha256: sha256_hex(asked.nonce),
            audience: asked.audience.to_owned(),
            required_claims: asked.required_claims.clone(),
            require_holder_binding: asked.require_holder_binding,
            status: outcome.status.clone(),
            first_use: None,
            verified_at: asked.at,
        }
    }

    pub fn into_event(self) -> VerificationEvent {
        if self.verified {
            VerificationEvent::PresentationVerified(self)
        } else {
            VerificationEvent::PresentationRejected(self)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum VerificationEvent {
    PresentationVerified(VerificationRecord),
    PresentationRejected(VerificationRecord),
}

impl VerificationEvent {
    pub fn record(&self) -> &VerificationRecord {
        match self {
            VerificationEvent::PresentationVerified(r)
            | VerificationEvent::PresentationRejected(r) => r,
        }
    }
}

impl EventSchema for VerificationEvent {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verification::Step;

    fn lender(n: u128) -> LenderId {
        LenderId::from_uuid(Uuid::from_u128(n))
    }

    #[test]
    fn the_id_of_a_nonce_depends_on_lender_and_nonce_only() {
        let a = VerificationId::for_nonce(lender(1), "n-1");
        assert_eq!(a, VerificationId::for_nonce(lender(1), "n-1"));
        assert_ne!(a, VerificationId::for_nonce(lender(2), "n-1"));
        assert_ne!(a, VerificationId::for_nonce(lender(1), "n-2"));
        // The separator keeps lender and nonce apart.
        assert_eq!(a.as_uuid().get_version_num(), 8);
        assert!(a.stream_id().as_str().starts_with("verification-"));
    }

    #[test]
    fn the_record_keeps_digests_and_names_not_values() {
        let outcome = Outcome {
            failed_step: Some(Step::Claims),
            reason: Some("claim_missing".into()),
            steps: Vec::new(),
            issuer: Some("did:example:issuer".into()),
            kid: Some("x".repeat(MAX_RECORDED_TEXT + 1)),
            vct: Some("https://credentials.example/identity".into()),
            status: None,
            claims: serde_json::from_str(r#"{"given_name":"Erika"}"#).ok(),
            disclosed_paths: vec!["given_name".into()],
        };
        let asked = Asked {
            lender_id: lender(1),
            presentation: "abc~",
            nonce: "n-1",
            audience: "urn:aud",
            required_claims: vec!["address.country".into()],
            require_holder_binding: true,
            at: Timestamp::parse("2026-01-01T00:00:00Z").expect("a timestamp"),
        };
        let record = VerificationRecord::new(
            VerificationId::for_nonce(lender(1), "n-1"),
            &asked,
            &outcome,
        );
        let event = record.clone().into_event();
        assert!(matches!(event, VerificationEvent::PresentationRejected(_)));
        let text = serde_json::to_string(&event.encode().data).expect("serializes");
        assert!(!text.contains("Erika"));
        assert!(!text.contains("abc~"));
        assert!(text.contains(&sha256_hex("abc~")));
        assert_eq!(record.kid, None, "an oversized kid is not kept");
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let decoded = VerificationEvent::decode("PresentationRejected", 1, &event.encode().data)
            .expect("decodes");
        assert_eq!(decoded, event);
    }
}
