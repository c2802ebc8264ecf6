//! Subscriptions behind one trait: what projectors and the webhook consumer
//! read events from.
//!
//! Delivery is at least once and in position order, but a subscription may
//! repeat an event or skip positions (a JetStream server that lost
//! unsynced messages in a crash). Consumers keep their own checkpoint,
//! skip what is at or below it, and fill a gap from the store before going
//! on: exactly-once effects over at-least-once delivery.

use std::sync::Arc;

use async_trait::async_trait;
use proofline_commands::StoreError;
use proofline_commands::store::EventStore;
use proofline_commands::store::tail::Tail;
use proofline_domain::log::Envelope;

#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bus failed (a reconnect may help).
    #[error("the bus: {0}")]
    Bus(String),
    /// A message that is not an envelope.
    #[error("an undecodable message: {0}")]
    Decode(String),
}

#[async_trait]
pub trait Subscription: Send {
    /// The next event.
    async fn next(&mut self) -> Result<Envelope, SubscriptionError>;
    /// Called after the consumer committed the effects of every event up to
    /// and including `position`; the subscription may forget them.
    async fn ack(&mut self, position: u64) -> Result<(), SubscriptionError>;
}

/// The embedded mode's subscription: a tail of the store itself.
pub struct StoreSubscription {
    tail: Tail,
}

impl StoreSubscription {
    /// Events after `after`.
    pub fn new(store: Arc<dyn EventStore>, after: u64) -> Self {
        Self {
            tail: Tail::new(store, after),
        }
    }
}

#[async_trait]
impl Subscription for StoreSubscription {
    async fn next(&mut self) -> Result<Envelope, SubscriptionError> {
        Ok(self.tail.next().await?)
    }

    async fn ack(&mut self, _position: u64) -> Result<(), SubscriptionError> {
        // The consumer's checkpoint is the position; nothing to forget.
        Ok(())
    }
}
