//! Pure types and rules of Proofline.
//!
//! Everything here is deterministic: no IO, no async, no clock. Time and
//! randomness are passed in by the callers in `commands` and `api`, which is
//! what lets the rules be tested given/when/then and the log be verified
//! offline by an auditor with nothing but this crate.
//!
//! An auditor's check of a log, for instance: each envelope's hash covers
//! the one before it, so a changed event breaks the chain where it stands.
//!
//! ```
//! use proofline_domain::ids::{Category, StreamId};
//! use proofline_domain::log::{ChainError, ChainVerifier, Envelope, EventHash, Metadata, Timestamp};
//!
//! let event = |position: u64, prev_hash: EventHash| {
//!     Envelope {
//!         position,
//!         event_id: uuid::Uuid::from_u128(u128::from(position)),
//!         stream_id: StreamId::of(Category::Lender, uuid::Uuid::from_u128(7)),
//!         stream_version: position,
//!         event_type: "LenderReactivated".into(),
//!         schema_version: 1,
//!         data: serde_json::json!({"reactivated_at": "2026-12-01T00:00:00.000000Z"}),
//!         metadata: Metadata::default(),
//!         recorded_at: Timestamp::parse("2026-12-01T00:00:00Z").unwrap(),
//!         prev_hash,
//!         hash: EventHash::GENESIS,
//!     }
//!     .seal()
//! };
//! let first = event(1, EventHash::GENESIS);
//! let second = event(2, first.hash);
//!
//! let mut verifier = ChainVerifier::new();
//! assert!(verifier.check(&first).is_ok() && verifier.check(&second).is_ok());
//!
//! let mut changed = first.clone();
//! changed.data["reactivated_at"] = "2020-01-01T00:00:00.000000Z".into();
//! assert_eq!(
//!     ChainVerifier::new().check(&changed),
//!     Err(ChainError::HashMismatch { position: 1 })
//! );
//! ```
//!
//! # Layout
//!
//! - [`bounded`]: text from input, bounded before it reaches the log.
//! - [`ids`]: validated identifiers (stream ids and their categories, event
//!   type names).
//! - [`values`]: validated values (names, contact emails, audiences, key
//!   prefixes).
//! - [`log`]: the event envelope, its canonical bytes (RFC 8785) and the
//!   SHA-256 hash chain, with a verifier for a sequence of envelopes.
//! - [`checkpoint`]: signed checkpoints of the log, and their check.
//! - [`decider`]: the `Decider` shape of every aggregate, rejection kinds,
//!   and how events are encoded for the log; `specification` (with the
//!   `testing` feature): given/when/then for deciders.
//! - [`lender`], [`auditor`], [`operator`]: the principals' aggregates;
//!   [`key_ring`]: the API key rules lenders and auditors share (rotation
//!   with a grace, revocation of the previous key).
//! - [`issuer`]: the trust registry's issuers and their keys.
//! - [`status_list`]: Token Status List tokens, their checks and the
//!   StatusList aggregate.
//! - [`trust_anchor`]: the X.509 roots the operator trusts for `x5c`
//!   issuers.
//! - [`principal`]: who is calling, and their role.
//! - [`api_key`]: the public shape of API keys (prefix and secret part).
//! - [`jose`]: strict base64url, compact JWS, public JWKs, and signature
//!   checks where the key decides the algorithm.
//! - [`jwe`]: compact JWE with ECDH-ES on P-256 and AES-GCM, the encrypted
//!   responses of OpenID4VP 1.0 (`direct_post.jwt`) and HAIP.
//! - [`did`]: DIDs, and did:key with Ed25519.
//! - [`discovery`]: reading the documents an issuer's keys are discovered
//!   from (did:web DID documents, SD-JWT VC issuer metadata, JWK Sets),
//!   and Subresource Integrity for type metadata.
//! - [`dcql`]: the Digital Credentials Query Language of OpenID4VP 1.0 (the
//!   `dc+sd-jwt` subset): checking a query, claims path pointers, whether a
//!   response satisfies it, and what a wallet answers it with.
//! - [`sd_jwt`]: the SD-JWT format: presentations, Disclosures, processing;
//!   issuing and presenting for the demo and tests.
//! - [`verification`]: the seven steps of verifying a presentation, their
//!   reason codes, and what they need of the trust registry.
//! - [`verification_record`]: what the log keeps of a verification, and the
//!   id that makes a nonce single-use.
//! - [`webhook_delivery`]: what lenders are told by webhook, the retry
//!   schedule, and the WebhookDelivery aggregate of attempt outcomes.

pub mod api_key;
pub mod auditor;
pub mod bounded;
pub mod checkpoint;
pub mod dcql;
pub mod decider;
pub mod did;
pub mod discovery;
pub mod ids;
pub mod issuer;
pub mod jose;
pub mod jwe;
pub mod key_ring;
pub mod lender;
pub mod log;
pub mod merkle;
pub mod note;
pub mod operator;
pub mod presentation_request;
pub mod principal;
pub mod schemas;
pub mod sd_jwt;
#[cfg(feature = "testing")]
pub mod specification;
pub mod status_list;
mod tagged;
pub mod trust_anchor;
pub mod values;
pub mod verification;
pub mod verification_record;
pub mod webhook_delivery;
