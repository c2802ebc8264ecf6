//! Webhooks: the deliveries read model, the signed and SSRF-guarded HTTP
//! client, and the consumer that sends and records.

pub mod client;
pub mod consumer;
pub mod model;

pub use consumer::{ConsumerOptions, WebhookConsumer};
pub use model::WebhookDeliveries;
