//! The read side of Proofline.
//!
//! This crate will hold the relay that publishes the log to NATS JetStream,
//! the subscriptions behind one trait (JetStream durable consumers, or a tail
//! of the store in embedded mode), the projectors and their read models, and
//! the webhook consumer. Today the only subscription is the store's own tail,
//! [`proofline_commands::store::tail`], which it re-exports.
//!
//! # Layout
//!
//! - [`tail`]: re-export of the store tail used by embedded-mode consumers.

pub mod db;
pub mod jetstream;
pub mod models;
pub mod projector;
pub mod queries;
pub mod read_side;
pub mod rebuild;
pub mod relay;
pub mod subscription;
pub mod webhooks;

pub use proofline_commands::store::tail;
