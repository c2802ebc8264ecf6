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
//! nonce are kept as digests, the disclosed claims as paths. Nothing in it
//! is the same for every presentation of one credential (which would let
//! anyone reading the log follow one holder across lenders): the status
//! entry's index is not kept, and the presentation's digest is keyed by the
//! nonce (see [`presentation_digest`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::decider::EventSchema;
use crate::ids::{Category, StreamId};
use crate::lender::LenderId;
use crate::log::Timestamp;
use crate::verification::{KeyUsed, Outcome, Reason, StatusUsed, Step, StepResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VerificationId(Uuid);

impl VerificationId {
    /// The id of the first verification by `lender` with `nonce`: a UUIDv8
    /// from SHA-256(lender id bytes ‖ 0x00 ‖ nonce).
    pub fn for_nonce(lender: LenderId, nonce: &str) -> Self {
        Self(crate::ids::derived_uuid(&[
            lender.as_uuid().as_bytes(),
            nonce.as_bytes(),
        ]))
    }

    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    pub fn stream_id(&self) -> StreamId {
        StreamId::of(Category::Verification, self.0)
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

/// What the record and the receipt call `presentation_sha256`: the hex
/// HMAC-SHA256 of the presentation (ES256 signatures in their low-s form,
/// [`crate::sd_jwt::canonical_text`]) keyed by the UTF-8 bytes of the nonce.
///
/// A plain SHA-256 of a presentation without a Key Binding JWT is the same
/// at every lender it is shown to, so the log would link them; keyed by the
/// nonce, which the lender knows and the log holds only as a digest, it is
/// not, and the lender can still recompute it to check a receipt.
pub fn presentation_digest(nonce: &str, presentation: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(nonce.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(crate::sd_jwt::canonical_text(presentation).as_bytes());
    hex_lower(&mac.finalize().into_bytes())
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
    pub reason: Option<Reason>,
    pub steps: Vec<StepResult>,
    pub issuer: Option<String>,
    pub kid: Option<String>,
    pub vct: Option<String>,
    /// Paths of the selectively disclosed claims; never their values.
    pub disclosed_claims: Vec<String>,
    /// Hex HMAC-SHA256 of the presentation keyed by the nonce
    /// ([`presentation_digest`]).
    pub presentation_sha256: String,
    /// Hex SHA-256 of the nonce.
    pub nonce_sha256: String,
    /// The audience the Key Binding JWT had to name.
    pub audience: String,
    pub required_claims: Vec<String>,
    pub require_holder_binding: bool,
    /// The status list entry consulted, and the list version that said so.
    pub status: Option<StatusUsed>,
    /// The issuer key that verified it, and where the key came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyUsed>,
    /// Set on a replay: the verification that used the nonce first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_use: Option<VerificationId>,
    /// Set when a wallet presented it in answer to an OpenID4VP request:
    /// the request, and the id of the DCQL credential query it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presentation_request: Option<RequestLink>,
    pub verified_at: Timestamp,
}

/// A verification's place in an OpenID4VP flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestLink {
    pub request_id: crate::presentation_request::PresentationRequestId,
    pub credential_query_id: String,
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

impl VerificationRecord {
    /// The record of `outcome`, under `id`.
    pub fn new(id: VerificationId, asked: &Asked<'_>, outcome: &Outcome) -> Self {
        Self {
            verification_id: id,
            lender_id: asked.lender_id,
            verified: outcome.verified(),
            failed_step: outcome.failed_step,
            reason: outcome.reason,
            steps: outcome.steps.clone(),
            issuer: outcome.issuer.clone(),
            kid: outcome.kid.clone(),
            vct: outcome.vct.clone(),
            disclosed_claims: outcome.disclosed_paths.clone(),
            presentation_sha256: presentation_digest(asked.nonce, asked.presentation),
            nonce_sha256: sha256_hex(asked.nonce),
            audience: asked.audience.to_owned(),
            required_claims: asked.required_claims.clone(),
            require_holder_binding: asked.require_holder_binding,
            status: outcome.status.clone(),
            key: outcome.key.clone(),
            first_use: None,
            presentation_request: None,
            verified_at: asked.at,
        }
    }

    /// The record that stands in for one too large for the log (a
    /// presentation with a great many long claim names): a rejection at
    /// DECODE with a fixed reason and nothing taken from the presentation
    /// but its digest, so the attempt is still recorded and its nonce spent.
    pub fn too_large(self) -> Self {
        Self {
            verified: false,
            failed_step: Some(Step::Decode),
            reason: Some(Reason::RecordTooLarge),
            steps: vec![StepResult {
                name: Step::Decode,
                passed: false,
                detail: "the record of this presentation would exceed the log's event size".into(),
            }],
            issuer: None,
            kid: None,
            vct: None,
            disclosed_claims: Vec::new(),
            status: None,
            ..self
        }
    }

    /// Whether this is the stand-in [`VerificationRecord::too_large`] made.
    pub fn is_too_large_stand_in(&self) -> bool {
        self.reason == Some(Reason::RecordTooLarge)
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
            reason: Some(Reason::ClaimMissing),
            steps: Vec::new(),
            issuer: Some("did:example:issuer".into()),
            kid: Some("kid-1".into()),
            vct: Some("https://credentials.example/identity".into()),
            status: None,
            key: None,
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
        assert!(!text.contains(&sha256_hex("abc~")), "no plain digest");
        assert!(text.contains(&presentation_digest("n-1", "abc~")));
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let decoded = VerificationEvent::decode("PresentationRejected", 1, &event.encode().data)
            .expect("decodes");
        assert_eq!(decoded, event);
        let too_large = record.too_large();
        assert_eq!(
            (too_large.failed_step, too_large.reason),
            (Some(Step::Decode), Some(Reason::RecordTooLarge))
        );
        assert!(too_large.disclosed_claims.is_empty() && too_large.issuer.is_none());
    }

    #[test]
    fn the_presentation_digest_is_keyed_by_the_nonce() {
        let presentation = "eyJ.eyJ.c2ln~WyJ~";
        let at_a = presentation_digest("nonce-of-lender-a", presentation);
        let at_b = presentation_digest("nonce-of-lender-b", presentation);
        assert_ne!(at_a, at_b, "one presentation shown to two lenders");
        assert_eq!(at_a, presentation_digest("nonce-of-lender-a", presentation));
        assert_ne!(at_a, sha256_hex(presentation));
        // RFC 4231 test case 2: HMAC-SHA256 with key "Jefe".
        assert_eq!(
            presentation_digest("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn records_of_old_events_with_a_status_index_still_decode() {
        let data = serde_json::json!({
            "verification_id": "0190a0a0-0000-7000-8000-000000000001",
            "lender_id": "0190a0a0-0000-7000-8000-000000000002",
            "verified": true, "failed_step": null, "reason": null, "steps": [],
            "issuer": null, "kid": null, "vct": null, "disclosed_claims": [],
            "presentation_sha256": "00", "nonce_sha256": "00", "audience": "urn:a",
            "required_claims": [], "require_holder_binding": true,
            "status": {"uri": "https://issuer.example/list", "idx": 7, "list_version": 1, "status": 0},
            "verified_at": "2026-01-01T00:00:00Z"
        });
        let event = VerificationEvent::decode("PresentationVerified", 1, &data).expect("decodes");
        let status = event.record().status.clone().expect("a status");
        assert_eq!((status.list_version, status.status), (1, 0));
        let again = serde_json::to_string(&event.encode().data).unwrap();
        assert!(!again.contains("idx"));
    }
}
