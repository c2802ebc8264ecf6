//! The relay: the log, in position order, onto NATS JetStream.
//!
//! Every event goes to stream `PROOFLINE_EVENTS` on
//! `proofline.events.<category>.<Type>`, its payload the envelope's JSON,
//! with headers `Nats-Msg-Id` (the event id: JetStream drops a repeat
//! within its duplicate window), `Proofline-Position`, `Proofline-Type` and
//! `Proofline-Correlation-Id`.
//!
//! Order and exactly-once do not rest on the duplicate window alone:
//! - each publish carries `Nats-Expected-Last-Msg-Id` (the previous
//!   event's id), so when one publish of a pipeline fails, the server
//!   refuses every later one instead of storing them out of order;
//! - on start and after any failure the relay asks the stream for its last
//!   message and resumes after that message's `Proofline-Position` (or its
//!   own saved position, if further), so a relay killed between a publish
//!   and saving its position neither repeats nor skips;
//! - before it trusts that position, it checks that the message is this
//!   log's: the store's event at that position must have the message's
//!   event id and hash. A stream holding another log (a restored or
//!   imported store, a second environment on one NATS) would otherwise make
//!   it skip every position up to the other log's end; instead it refuses
//!   to relay, says why in its log and in `/health/ready`
//!   ([`Relay::refusal`]), and checks again every
//!   [`FOREIGN_RETRY`] in case an operator gave it an empty stream.
//!
//! Publishes are pipelined (a page is sent, then its acks awaited in
//! order). NATS being down only delays the relay: it retries with backoff
//! while commands go on appending to the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use proofline_commands::store::EventStore;
use proofline_domain::log::Envelope;

/// The stream's name in production.
pub const STREAM: &str = "PROOFLINE_EVENTS";
/// Subjects are `<prefix>.<category>.<Type>`.
pub const SUBJECT_PREFIX: &str = "proofline.events";

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("NATS: {0}")]
    Bus(String),
    #[error(transparent)]
    Store(#[from] proofline_commands::StoreError),
    #[error("the stream's last message has no Proofline-Position header")]
    Foreign,
    /// The stream holds events of another log: relaying would skip or
    /// interleave. Nothing is published until this is resolved.
    #[error(
        "stream {stream} holds another log's events: {detail}; refusing to relay (give this log a stream of its own, or an empty one: see README, \"A stream that holds another log\")"
    )]
    ForeignLog { stream: String, detail: String },
}

/// How often a relay that found another log's events checks again.
pub const FOREIGN_RETRY: Duration = Duration::from_secs(10);

fn bus(error: impl std::fmt::Display) -> RelayError {
    RelayError::Bus(error.to_string())
}

#[derive(Debug, Clone)]
pub struct RelayOptions {
    pub stream: String,
    pub subject_prefix: String,
    pub duplicate_window: Duration,
    /// Events per pipelined page.
    pub page: usize,
    /// How long a consumer waits for an ack before redelivering.
    pub ack_wait: Duration,
    /// Copies of the stream (and of its consumers) a JetStream cluster
    /// keeps: 1 on a single server, 3 on a three-node cluster.
    pub replicas: usize,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            stream: STREAM.to_owned(),
            subject_prefix: SUBJECT_PREFIX.to_owned(),
            duplicate_window: Duration::from_secs(120),
            page: 256,
            ack_wait: Duration::from_secs(30),
            replicas: 1,
        }
    }
}

/// The subject of an event.
pub fn subject(prefix: &str, envelope: &Envelope) -> String {
    format!(
        "{prefix}.{}.{}",
        envelope.stream_id.category(),
        envelope.event_type
    )
}

/// Creates the stream, or brings an existing one to this configuration:
/// file storage, no limits, `deny_delete`, `deny_purge`, the duplicate
/// window, the replicas.
pub async fn ensure_stream(
    js: &jetstream::Context,
    options: &RelayOptions,
) -> Result<stream::Stream, RelayError> {
    let config = stream::Config {
        name: options.stream.clone(),
        subjects: vec![format!("{}.>", options.subject_prefix)],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_messages: -1,
        max_bytes: -1,
        max_messages_per_subject: -1,
        deny_delete: true,
        deny_purge: true,
        duplicate_window: options.duplicate_window,
        num_replicas: options.replicas.max(1),
        ..Default::default()
    };
    let stream = js.get_or_create_stream(config.clone()).await.map_err(bus)?;
    js.update_stream(config).await.map_err(bus)?;
    Ok(stream)
}

/// The stream's last message, as far as the relay trusts it.
struct StreamEnd {
    position: u64,
    event_id: Option<String>,
    /// The `hash` member of the message's envelope.
    hash: Option<String>,
}

/// Where the stream ends: the last message's position, event id and hash.
async fn stream_end(stream: &mut stream::Stream) -> Result<StreamEnd, RelayError> {
    let last = stream.info().await.map_err(bus)?.state.last_sequence;
    if last == 0 {
        return Ok(StreamEnd {
            position: 0,
            event_id: None,
            hash: None,
        });
    }
    let message = stream.get_raw_message(last).await.map_err(bus)?;
    let position = message
        .headers
        .get("Proofline-Position")
        .and_then(|v| v.as_str().parse::<u64>().ok())
        .ok_or(RelayError::Foreign)?;
    let event_id = message
        .headers
        .get("Nats-Msg-Id")
        .map(|v| v.as_str().to_owned());
    let hash = serde_json::from_slice::<serde_json::Value>(&message.payload)
        .ok()
        .and_then(|v| v.get("hash").and_then(|h| h.as_str()).map(str::to_owned));
    Ok(StreamEnd {
        position,
        event_id,
        hash,
    })
}

/// Why the stream's end is not this log's event at that position, if it
/// is not.
async fn foreign(store: &dyn EventStore, end: &StreamEnd) -> Result<Option<String>, RelayError> {
    if end.position == 0 {
        return Ok(None);
    }
    let ours = store.read_all(end.position - 1, 1).await?;
    let Some(ours) = ours.first().filter(|e| e.position == end.position) else {
        let head = store.head().await?.map_or(0, |h| h.position);
        return Ok(Some(format!(
            "its last message is position {}, and this log ends at {head}",
            end.position
        )));
    };
    let (id, hash) = (ours.event_id.to_string(), ours.hash.to_hex());
    if end.event_id.as_deref() != Some(id.as_str()) || end.hash.as_deref() != Some(hash.as_str()) {
        return Ok(Some(format!(
            "position {} is event {} (hash {}) there, and event {id} (hash {hash}) here",
            end.position,
            end.event_id.as_deref().unwrap_or("?"),
            end.hash.as_deref().unwrap_or("?"),
        )));
    }
    Ok(None)
}

pub struct Relay {
    store: Arc<dyn EventStore>,
    js: jetstream::Context,
    options: RelayOptions,
    published: Arc<AtomicU64>,
    refusal: Refusal,
}

/// Why the relay refuses to publish, while it does.
pub type Refusal = Arc<std::sync::RwLock<Option<String>>>;

impl Relay {
    pub fn new(
        store: Arc<dyn EventStore>,
        client: async_nats::Client,
        options: RelayOptions,
    ) -> Self {
        Self {
            store,
            js: jetstream::new(client),
            options,
            published: Arc::default(),
            refusal: Arc::default(),
        }
    }

    /// Why the relay refuses to publish (the stream holds another log), or
    /// `None`: for readiness checks.
    pub fn refusal(&self) -> Refusal {
        self.refusal.clone()
    }

    fn refuse(&self, why: Option<String>) {
        *self.refusal.write().unwrap_or_else(|p| p.into_inner()) = why;
    }

    /// The name its position is saved under in the store.
    pub fn consumer_name(&self) -> String {
        format!("relay:{}", self.options.stream)
    }

    /// The last position the stream acknowledged.
    pub fn published(&self) -> Arc<AtomicU64> {
        self.published.clone()
    }

    /// Publishes until `shutdown`, retrying every failure with backoff.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send) {
        self.run_shared(shutdown).await
    }

    /// [`Relay::run`] on a shared relay.
    pub async fn run_shared(&self, shutdown: impl std::future::Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(200);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                outcome = self.publish_until_error() => {
                    let error = match outcome { Ok(never) => match never {}, Err(e) => e };
                    if let RelayError::ForeignLog { .. } = &error {
                        tracing::error!(%error, retry_in = ?FOREIGN_RETRY, "relay: refusing to publish");
                        self.refuse(Some(error.to_string()));
                        tokio::select! {
                            _ = &mut shutdown => return,
                            _ = tokio::time::sleep(FOREIGN_RETRY) => {}
                        }
                        continue;
                    }
                    tracing::warn!(%error, retry_in = ?backoff, "relay: publishing failed; retrying");
                }
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// One attempt: resync with the stream, then publish as the log grows.
    async fn publish_until_error(&self) -> Result<std::convert::Infallible, RelayError> {
        let mut stream = ensure_stream(&self.js, &self.options).await?;
        let name = self.consumer_name();
        let saved = self.store.consumer_position(&name).await?;
        let end = stream_end(&mut stream).await?;
        if let Some(detail) = foreign(self.store.as_ref(), &end).await? {
            return Err(RelayError::ForeignLog {
                stream: self.options.stream.clone(),
                detail,
            });
        }
        self.refuse(None);
        let (on_stream, mut last_id) = (end.position, end.event_id);
        let mut position = saved.max(on_stream);
        if on_stream < saved {
            // The stream lost acknowledged messages (or is new): publish
            // again from where it ends.
            tracing::warn!(
                on_stream,
                saved,
                "relay: the stream ends before the saved position; republishing from the stream's end"
            );
            position = on_stream;
        }
        self.published.store(position, Ordering::Relaxed);
        let mut head = self.store.watch_head();
        loop {
            let announced = *head.borrow();
            let page = self.store.read_all(position, self.options.page).await?;
            if page.is_empty() {
                if head.wait_for(|h| *h > position).await.is_err() {
                    return Err(RelayError::Bus("the store is closing".into()));
                }
                continue;
            }
            let short = page.len() < self.options.page;
            let mut acks = Vec::with_capacity(page.len());
            for envelope in &page {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", envelope.event_id.to_string().as_str());
                if let Some(previous) = &last_id {
                    headers.insert("Nats-Expected-Last-Msg-Id", previous.as_str());
                }
                headers.insert("Proofline-Position", envelope.position.to_string().as_str());
                headers.insert("Proofline-Type", envelope.event_type.as_str());
                if let Some(correlation) = &envelope.metadata.correlation_id {
                    headers.insert("Proofline-Correlation-Id", correlation.as_str());
                }
                let payload = serde_json::to_vec(envelope).map_err(bus)?;
                let ack = self
                    .js
                    .publish_with_headers(
                        subject(&self.options.subject_prefix, envelope),
                        headers,
                        payload.into(),
                    )
                    .await
                    .map_err(bus)?;
                acks.push(ack);
                last_id = Some(envelope.event_id.to_string());
            }
            for (ack, envelope) in acks.into_iter().zip(&page) {
                ack.await.map_err(bus)?;
                position = envelope.position;
                self.published.store(position, Ordering::Relaxed);
            }
            self.store.save_consumer_position(&name, position).await?;
            // The page reached the head announced before it was read: the
            // next read would come back empty, so wait for the head instead.
            if short && position >= announced && head.wait_for(|h| *h > position).await.is_err() {
                return Err(RelayError::Bus("the store is closing".into()));
            }
        }
    }
}
