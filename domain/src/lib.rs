//! Pure types and rules of Proofline.
//!
//! Everything here is deterministic: no IO, no async, no clock. Time and
//! randomness are passed in by the callers in `commands` and `api`, which is
//! what lets the rules be tested given/when/then and the log be verified
//! offline by an auditor with nothing but this crate.
//!
//! # Layout
//!
//! - [`ids`]: validated identifiers (stream ids, event type names).
//! - [`log`]: the event envelope, its canonical bytes (RFC 8785) and the
//!   SHA-256 hash chain, with a verifier for a sequence of envelopes.
//! - [`api_key`]: the public shape of API keys (prefix and secret part).
//! - [`operator`]: the operator principal's events.

pub mod api_key;
pub mod ids;
pub mod log;
pub mod operator;
