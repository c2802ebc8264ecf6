//! The read side of Proofline: the relay that publishes the log to NATS
//! JetStream, the subscriptions projectors read (JetStream durable
//! consumers, or a tail of the store in embedded mode), the projectors and
//! their read models, the queries the API asks, rebuilds, and the webhook
//! consumer.
//!
//! # Layout
//!
//! - [`subscription`], [`jetstream`]: what projectors read.
//! - [`relay`]: the log onto JetStream.
//! - [`db`]: the read models' database (Postgres schema or SQLite file).
//! - [`models`], [`projector`], [`read_side`]: the read models and the
//!   projectors that keep them.
//! - [`queries`]: what the API asks the read models.
//! - [`rebuild`]: replaying the log into fresh tables and swapping them in.
//! - [`webhooks`]: the deliveries model, the signed HTTP client, the
//!   consumer.
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
