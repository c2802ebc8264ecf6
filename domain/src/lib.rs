//! Pure types and rules of Proofline.
//!
//! Everything here is deterministic: no IO, no async, no clock. Time and
//! randomness are passed in by the callers in `commands` and `api`, which is
//! what lets the rules be tested given/when/then and the log be verified
//! offline by an auditor with nothing but this crate.
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
//! - [`principal`]: who is calling, and their role.
//! - [`api_key`]: the public shape of API keys (prefix and secret part).
//! - [`jose`]: strict base64url, compact JWS, public JWKs, and signature
//!   checks where the key decides the algorithm.
//! - [`did`]: DIDs, and did:key with Ed25519.
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
pub mod decider;
pub mod did;
pub mod ids;
pub mod issuer;
pub mod jose;
pub mod key_ring;
pub mod lender;
pub mod log;
pub mod operator;
pub mod principal;
pub mod schemas;
pub mod sd_jwt;
#[cfg(feature = "testing")]
pub mod specification;
pub mod status_list;
pub mod values;
pub mod verification;
pub mod verification_record;
pub mod webhook_delivery;
