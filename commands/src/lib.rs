//! The write side of Proofline.
//!
//! Commands end here: they are appended to the event store, which is the
//! source of truth. The store is one trait, [`store::EventStore`], with a
//! Postgres adapter for production and a SQLite adapter for the embedded
//! mode; both share the group-commit writer and the planning of a batch, so
//! positions, versions, duplicates and the hash chain follow one rule.
//!
//! # Layout
//!
//! - [`store`]: the trait, its request and answer types, and [`StoreError`].
//!   - `store::plan`: pure planning of one group commit (versions, duplicates,
//!     positions, hashes).
//!   - `store::writer`: the single writer task per process that batches
//!     appends into one transaction.
//!   - [`store::postgres`], [`store::sqlite`]: the adapters.
//!   - [`store::tail`]: subscriptions that tail the log from a position, and
//!     durable ones that keep their position in the store.
//! - [`migrate`]: the embedded migrations of each backend and the check that
//!   refuses to run on a schema that is behind.
//! - [`handler`]: load, decide, append, with retries on conflict; the one
//!   way commands change state.
//! - [`lenders`], [`auditors`]: the principals' commands.
//! - [`issuers`]: the trust registry's commands (issuers, status lists).
//! - [`outbound`]: the guard on every outside connection (addresses,
//!   resolver, TLS roots); [`fetch`]: the one fetcher of trust documents.
//! - [`registry`]: the trust registry as the verifier reads it, from the
//!   write side, cached by stream version.
//! - [`checkpoints`]: signing checkpoints of the log, reading them back.
//! - [`auth`]: API keys to principals, with the cache that makes steady-state
//!   authentication cost a hash and a lookup.
//! - [`idempotency`]: idempotent answers, sealed into the secrets table with
//!   the command's events.
//! - [`keys`]: API key generation and argon2id hashing, and the operator key
//!   created on first start.
//! - [`signing`]: the service's Ed25519 signing key file.
//! - [`report`]: errors with their sources on one line, for logs.
//! - [`oid4vp`]: Proofline as an OpenID4VP 1.0 verifier (request objects,
//!   responses, the verifier's identity).
//! - [`x5c`]: whether an issuer-signed JWT's `x5c` chain makes its signer a
//!   trusted issuer (operator-registered trust anchors); `x509` holds the
//!   certificate reading and chain validation it shares with [`oid4vp`].

pub mod auditors;
pub mod auth;
pub mod checkpoints;
pub mod fetch;
pub mod fetched_keys;
pub mod fetched_lists;
pub mod handler;
pub mod idempotency;
pub mod issuers;
pub mod keys;
pub mod lenders;
pub mod migrate;
pub mod oid4vp;
pub mod outbound;
pub mod registry;
pub mod report;
pub mod schemas;
pub mod sealing;
pub(crate) mod secret_file;
pub mod service_keys;
pub mod signing;
pub mod store;
pub mod tree;
pub mod trust_anchors;
pub mod type_metadata;
pub mod verifications;
pub mod webhooks;
pub mod witnesses;
pub(crate) mod x509;
pub mod x5c;

pub use store::{StoreError, error::OpenError};
