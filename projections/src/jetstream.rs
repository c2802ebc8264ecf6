//! The Postgres + NATS mode's subscription: a JetStream durable pull
//! consumer with explicit acks.

use std::collections::BTreeMap;

use async_nats::jetstream::{self, consumer};
use async_trait::async_trait;
use futures::StreamExt;
use proofline_domain::log::Envelope;

use crate::relay::{RelayOptions, ensure_stream};
use crate::subscription::{Subscription, SubscriptionError};

fn bus(error: impl std::fmt::Display) -> SubscriptionError {
    SubscriptionError::Bus(error.to_string())
}

pub struct JetStreamSubscription {
    messages: consumer::pull::Stream,
    /// Delivered, not yet acknowledged, by position.
    pending: BTreeMap<u64, jetstream::Message>,
}

impl JetStreamSubscription {
    /// The durable consumer `durable` on the stream, created if missing to
    /// start after `after` (stream sequences are log positions when the
    /// relay publishes; if they are not, the projector's checkpoint still
    /// decides).
    pub async fn open(
        client: async_nats::Client,
        options: &RelayOptions,
        durable: &str,
        after: u64,
    ) -> Result<Self, SubscriptionError> {
        let js = jetstream::new(client);
        let stream = ensure_stream(&js, options).await.map_err(bus)?;
        let deliver_policy = if after == 0 {
            consumer::DeliverPolicy::All
        } else {
            consumer::DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            }
        };
        let consumer: consumer::PullConsumer = stream
            .get_or_create_consumer(
                durable,
                consumer::pull::Config {
                    durable_name: Some(durable.to_owned()),
                    deliver_policy,
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: options.ack_wait,
                    max_ack_pending: 1_000,
                    filter_subject: format!("{}.>", options.subject_prefix),
                    ..Default::default()
                },
            )
            .await
            .map_err(bus)?;
        let messages = consumer.messages().await.map_err(bus)?;
        Ok(Self {
            messages,
            pending: BTreeMap::new(),
        })
    }
}

#[async_trait]
impl Subscription for JetStreamSubscription {
    async fn next(&mut self) -> Result<Envelope, SubscriptionError> {
        loop {
            let message = self
                .messages
                .next()
                .await
                .ok_or_else(|| SubscriptionError::Bus("the consumer ended".into()))?
                .map_err(bus)?;
            match serde_json::from_slice::<Envelope>(&message.payload) {
                Ok(envelope) => {
                    self.pending.insert(envelope.position, message);
                    return Ok(envelope);
                }
                Err(error) => {
                    // Not ours to read; acknowledged so it is not redelivered.
                    tracing::warn!(%error, subject = %message.subject, "skipping a message that is not an envelope");
                    message.ack().await.map_err(bus)?;
                }
            }
        }
    }

    async fn ack(&mut self, position: u64) -> Result<(), SubscriptionError> {
        let later = self.pending.split_off(&(position + 1));
        let done = std::mem::replace(&mut self.pending, later);
        for (_, message) in done {
            message.ack().await.map_err(bus)?;
        }
        Ok(())
    }
}
