//! The Postgres + NATS mode's subscription: a JetStream durable pull
//! consumer with cumulative acks (`AckPolicy::All`).

use std::collections::BTreeMap;

use async_nats::jetstream::{self, consumer};
use async_trait::async_trait;
use futures::StreamExt;
use proofline_domain::ids::{Category, StreamId};
use proofline_domain::log::{Envelope, EventHash, Metadata, Timestamp};

use crate::relay::{RelayOptions, ensure_stream};
use crate::subscription::{Subscription, SubscriptionError};

fn bus(error: impl std::fmt::Display) -> SubscriptionError {
    SubscriptionError::Bus(error.to_string())
}

pub struct JetStreamSubscription {
    messages: consumer::pull::Stream,
    /// Delivered, not yet acknowledged, by position.
    pending: BTreeMap<u64, jetstream::Message>,
    /// The consumer's acks are cumulative: the last message of a batch
    /// acknowledges every one before it (one ack per batch, not per event).
    ack_all: bool,
    /// The categories whose events are read whole; the others' are handed
    /// over as [`Skeleton`]s.
    interest: &'static [Category],
    /// The subjects' prefix, with its trailing dot.
    prefix: String,
}

/// An envelope without `data` and `metadata`: what a projector needs of an
/// event it does not read (its position, its stream), parsed without
/// building the event's JSON tree.
#[derive(serde::Deserialize)]
struct Skeleton {
    position: u64,
    event_id: uuid::Uuid,
    stream_id: StreamId,
    stream_version: u64,
    #[serde(rename = "type")]
    event_type: String,
    schema_version: u32,
    recorded_at: Timestamp,
    prev_hash: EventHash,
    hash: EventHash,
}

impl Skeleton {
    fn envelope(self) -> Envelope {
        Envelope {
            position: self.position,
            event_id: self.event_id,
            stream_id: self.stream_id,
            stream_version: self.stream_version,
            event_type: self.event_type,
            schema_version: self.schema_version,
            data: serde_json::Value::Null,
            metadata: Metadata::default(),
            recorded_at: self.recorded_at,
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

impl JetStreamSubscription {
    /// Whether the message's subject (`<prefix>.<category>.<type>`) names
    /// a category read whole, or none the subscription knows.
    fn read_whole(&self, subject: &str) -> bool {
        subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.split('.').next())
            .and_then(Category::parse)
            .is_none_or(|category| self.interest.contains(&category))
    }
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
        interest: &'static [Category],
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
                    ack_policy: consumer::AckPolicy::All,
                    ack_wait: options.ack_wait,
                    max_ack_pending: 1_000,
                    filter_subject: format!("{}.>", options.subject_prefix),
                    ..Default::default()
                },
            )
            .await
            .map_err(bus)?;
        // Consumers made before acks were cumulative keep their explicit
        // policy (JetStream cannot change it): every message is acked.
        let ack_all = consumer.cached_info().config.ack_policy == consumer::AckPolicy::All;
        let messages = consumer.messages().await.map_err(bus)?;
        Ok(Self {
            messages,
            pending: BTreeMap::new(),
            ack_all,
            interest,
            prefix: format!("{}.", options.subject_prefix),
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
            let parsed = if self.read_whole(message.subject.as_str()) {
                serde_json::from_slice::<Envelope>(&message.payload)
            } else {
                serde_json::from_slice::<Skeleton>(&message.payload).map(Skeleton::envelope)
            };
            match parsed {
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
        if self.ack_all {
            if let Some((_, last)) = done.into_iter().next_back() {
                last.ack().await.map_err(bus)?;
            }
            return Ok(());
        }
        for (_, message) in done {
            message.ack().await.map_err(bus)?;
        }
        Ok(())
    }
}
