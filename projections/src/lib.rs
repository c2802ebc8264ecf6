//! The read side of Proofline: the relay that publishes the log to NATS
//! JetStream, the subscriptions projectors read (JetStream durable
//! consumers, or a tail of the store in embedded mode), the projectors and
//! their read models, the queries the API asks, rebuilds, and the webhook
//! consumer. See ARCHITECTURE.md for the map.

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
