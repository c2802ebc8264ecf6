//! Proofline as an OpenID4VP 1.0 verifier: the verifier's identity towards
//! wallets, presentation requests and the wallet's responses.
//!
//! # Layout
//!
//! - [`identity`]: the `client_id` and the key that signs request objects
//!   (`decentralized_identifier:did:key`, `x509_san_dns`, `x509_hash`,
//!   `redirect_uri`), and the wallet's check of a request object.
//! - [`flow`]: creating a request, its request object's claims, reading it
//!   back with its verifications, forgetting disclosed values after the TTL.
//! - [`response`]: the wallet's fetch and response: decryption, the one
//!   answer that wins; `judge.rs`: the seven steps on each presentation of
//!   a `vp_token`, then DCQL.

pub mod flow;
pub mod identity;
mod judge;
pub mod response;

pub use flow::{CreatedRequest, FlowSettings, Flows, NewPresentationRequest, PresentationView};
pub use response::{Fetch, ResponseForm, WalletAnswer, WalletFacingError};
