//! The event store: one trait, two adapters.
//!
//! Appends are optimistic (an [`ExpectedVersion`] per stream) and idempotent
//! by event id: re-sending an append whose events are all stored answers with
//! the stored positions instead of storing them twice, so a command that lost
//! its answer (a timeout, a dropped connection during COMMIT) can be retried
//! as it is. Positions are global, gapless and assigned in commit order by
//! one writer; see `writer` for how appends are grouped into transactions.
//!
//! The embedded adapter, as `proofline` opens it: a stream is created with
//! `NoStream`, and a second command that also expects it absent conflicts.
//!
//! ```
//! use proofline_commands::store::sqlite::{self, SqliteEventStore};
//! use proofline_commands::store::{AppendRequest, EventStore, ExpectedVersion, NewEvent, StoreError};
//! use proofline_domain::ids::StreamId;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("events.sqlite");
//! let pool = sqlite::connect_pool(&path).await?;
//! proofline_commands::migrate::apply_sqlite(&pool).await?;
//! let store = SqliteEventStore::open(pool, &path).await?;
//!
//! let stream = StreamId::parse("verification-1")?;
//! let append = || AppendRequest::new(
//!     stream.clone(),
//!     ExpectedVersion::NoStream,
//!     vec![NewEvent::new("Noted", 1, serde_json::json!({"n": 1}))],
//! );
//! let outcome = store.append(append()).await?;
//! assert_eq!((outcome.first_position, outcome.stream_version), (1, 1));
//! assert!(matches!(store.append(append()).await, Err(StoreError::Conflict { .. })));
//! assert_eq!(store.read_stream(&stream, 0, 10).await?.len(), 1);
//! store.close().await;
//! # Ok(())
//! # }
//! ```

use std::fmt;

use std::collections::HashMap;

use async_trait::async_trait;
use proofline_domain::decider::EventSchema;
use proofline_domain::ids::{StreamId, validate_event_type};
use proofline_domain::log::{Envelope, EventHash, Metadata, Timestamp, canonical_json};
use proofline_domain::merkle::Hash;
use proofline_domain::merkle::tree::NodeId;
use secrecy::SecretString;
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

pub mod breaker;
pub mod error;
pub mod heads;
pub(crate) mod plan;
pub mod postgres;
mod recent;
pub(crate) mod rows;
pub mod sqlite;
pub mod tail;
mod tree;
pub(crate) mod writer;

pub use error::StoreError;
pub use heads::{CategoryHeads, CategorySet};
pub use writer::WriterStats;

/// Most events one append may carry.
pub const MAX_EVENTS_PER_APPEND: usize = 100;
/// Largest `data` of one event, as compact JSON.
pub const MAX_EVENT_DATA_BYTES: usize = 64 * 1024;
/// Largest envelope, as its RFC 8785 bytes with `hash` (its Merkle leaf
/// data): a C2SP tlog-tiles entry bundle writes each entry's length in two
/// bytes.
pub const MAX_ENVELOPE_BYTES: usize = 65_535;
/// An upper bound of an envelope's bytes beyond its `data`, `metadata`,
/// stream id and type: member names, the event id, both hashes, the time
/// and numbers of their largest sizes (tested in `tests`).
const ENVELOPE_OVERHEAD: usize = 400;
/// Longest metadata value.
pub const MAX_METADATA_VALUE_LEN: usize = 256;
/// Most secrets one append may carry.
pub const MAX_SECRETS_PER_APPEND: usize = 8;
/// Largest page `read_all` and `read_stream` return.
pub const MAX_READ_LIMIT: usize = 10_000;

/// Which adapter is behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        })
    }
}

/// The version a stream must be at for an append to be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream has no events yet.
    NoStream,
    /// The stream's last event has this version; `Exact(0)` is the same as
    /// [`ExpectedVersion::NoStream`], which is what a handler that loaded an
    /// empty stream naturally sends.
    Exact(u64),
}

impl ExpectedVersion {
    pub(crate) fn accepts(self, current: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current == 0,
            ExpectedVersion::Exact(n) => current == n,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no_stream"),
            ExpectedVersion::Exact(n) => write!(f, "exact({n})"),
        }
    }
}

/// An event to append; the store adds position, version, time and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub data: Value,
}

impl NewEvent {
    /// An event with a fresh UUIDv7 id.
    pub fn new(event_type: impl Into<String>, schema_version: u32, data: Value) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version,
            data,
        }
    }

    /// A domain event, encoded as the log stores it, with a fresh id.
    pub fn of(event: &impl EventSchema) -> Self {
        let encoded = event.encode();
        Self::new(encoded.event_type, encoded.schema_version, encoded.data)
    }
}

/// A secret written in the same transaction as the append that names it.
/// `material` is what must never enter the log: an argon2id hash of an API
/// key, a webhook signing secret.
#[derive(Debug, Clone)]
pub struct SecretWrite {
    pub id: String,
    pub kind: String,
    pub material: SecretString,
    /// Whether a secret already stored under `id` is replaced (a webhook
    /// secret rotated in place). Otherwise a taken id refuses the append
    /// ([`StoreError::SecretIdTaken`]).
    pub replace: bool,
}

/// One command's append.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub stream_id: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    /// Appends to other streams that commit with this one or not at all
    /// (such as the reservation of a unique contact email).
    pub also: Vec<StreamAppend>,
    pub metadata: Metadata,
    pub secrets: Vec<SecretWrite>,
}

/// One more stream of an atomic append.
#[derive(Debug, Clone)]
pub struct StreamAppend {
    pub stream_id: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

impl AppendRequest {
    pub fn new(stream_id: StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        Self {
            stream_id,
            expected,
            events,
            also: Vec::new(),
            metadata: Metadata::default(),
            secrets: Vec::new(),
        }
    }

    /// Adds a stream that must accept its events in the same atomic append:
    /// if any stream's expected version fails, nothing is stored.
    pub fn also(
        mut self,
        stream_id: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Self {
        self.also.push(StreamAppend {
            stream_id,
            expected,
            events,
        });
        self
    }

    /// Every stream of the append, the primary one first.
    pub(crate) fn parts(&self) -> impl Iterator<Item = (&StreamId, ExpectedVersion, &[NewEvent])> {
        std::iter::once((&self.stream_id, self.expected, self.events.as_slice())).chain(
            self.also
                .iter()
                .map(|p| (&p.stream_id, p.expected, p.events.as_slice())),
        )
    }

    /// Every event of the append with its stream, in position order.
    pub(crate) fn all_events(&self) -> impl Iterator<Item = (&StreamId, &NewEvent)> {
        self.parts()
            .flat_map(|(stream, _, events)| events.iter().map(move |e| (stream, e)))
    }

    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    pub fn with_secret(mut self, secret: SecretWrite) -> Self {
        self.secrets.push(secret);
        self
    }

    /// Checks the limits and computes the canonical (RFC 8785) text of every
    /// event's data and of the metadata. This runs on the appending task,
    /// before the writer, so a bad request never costs a transaction and the
    /// writer, which holds the log's lock, only has to splice and hash.
    pub(crate) fn prepare(self) -> Result<Prepared, StoreError> {
        let invalid = |m: String| Err(StoreError::InvalidAppend(m));
        if self.parts().any(|(_, _, events)| events.is_empty()) {
            return invalid("every stream of an append needs at least one event".into());
        }
        if self.all_events().count() > MAX_EVENTS_PER_APPEND {
            return invalid(format!("at most {MAX_EVENTS_PER_APPEND} events per append"));
        }
        let mut streams = std::collections::HashSet::new();
        if !self.parts().all(|(stream, _, _)| streams.insert(stream)) {
            return invalid("a stream appears twice in one append".into());
        }
        if self.secrets.len() > MAX_SECRETS_PER_APPEND {
            return invalid(format!(
                "at most {MAX_SECRETS_PER_APPEND} secrets per append"
            ));
        }
        let mut ids = std::collections::HashSet::new();
        let mut data = Vec::new();
        for (_, event) in self.all_events() {
            if !ids.insert(event.event_id) {
                return invalid(format!("event id {} appears twice", event.event_id));
            }
            if validate_event_type(&event.event_type).is_err() {
                return invalid(format!(
                    "event type {:?} is not a valid name",
                    event.event_type
                ));
            }
            if !event.data.is_object() {
                return invalid("event data must be a JSON object".into());
            }
            if let Some(number) = inexact_number(&event.data) {
                return invalid(format!(
                    "event data holds {number}: the log keeps only integers within ±(2^53 − 1), which every JSON reader reads back exactly"
                ));
            }
            let text = canonical_json(&event.data)
                .map_err(|e| StoreError::InvalidAppend(format!("event data: {e}")))?;
            if text.len() > MAX_EVENT_DATA_BYTES {
                return invalid(format!("event data is over {MAX_EVENT_DATA_BYTES} bytes"));
            }
            data.push(text);
        }
        let m = &self.metadata;
        for value in [&m.correlation_id, &m.causation_id, &m.actor, &m.request_id]
            .into_iter()
            .flatten()
        {
            if value.len() > MAX_METADATA_VALUE_LEN {
                return invalid(format!(
                    "metadata values are at most {MAX_METADATA_VALUE_LEN} bytes"
                ));
            }
        }
        let metadata = canonical_json(&self.metadata)
            .map_err(|e| StoreError::InvalidAppend(format!("metadata: {e}")))?;
        if metadata.len() > MAX_EVENT_DATA_BYTES {
            return invalid(format!("metadata is over {MAX_EVENT_DATA_BYTES} bytes"));
        }
        for ((stream, event), text) in self.all_events().zip(&data) {
            let names = stream.as_str().len() + event.event_type.len();
            if text.len() + metadata.len() + 2 * names + ENVELOPE_OVERHEAD > MAX_ENVELOPE_BYTES {
                return invalid(format!(
                    "the event would make an envelope over {MAX_ENVELOPE_BYTES} bytes (its data is {} bytes)",
                    text.len()
                ));
            }
        }
        let mut secret_ids = std::collections::HashSet::new();
        for secret in &self.secrets {
            if secret.id.is_empty() || secret.id.len() > 200 || !secret_ids.insert(&secret.id) {
                return invalid("secret ids must be unique and 1 to 200 bytes".into());
            }
        }
        Ok(Prepared {
            request: self,
            data,
            metadata,
        })
    }
}

/// The largest integer JSON carries exactly (2^53 − 1): RFC 8785 writes
/// numbers as IEEE 754 doubles, so a larger one would be stored as a float
/// and no longer read back as the integer it was.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The first number in `value` that is not an integer within
/// ±[`MAX_SAFE_INTEGER`] (docs/log-format.md: "All numbers in envelopes are
/// integers below 2^53").
fn inexact_number(value: &Value) -> Option<&serde_json::Number> {
    match value {
        Value::Number(n) => {
            let exact = n
                .as_u64()
                .map(|u| u <= MAX_SAFE_INTEGER)
                .or_else(|| n.as_i64().map(|i| i.unsigned_abs() <= MAX_SAFE_INTEGER))
                .unwrap_or(false);
            (!exact).then_some(n)
        }
        Value::Array(items) => items.iter().find_map(inexact_number),
        Value::Object(members) => members.values().find_map(inexact_number),
        Value::Null | Value::Bool(_) | Value::String(_) => None,
    }
}

/// A validated append with its canonical texts, as the writer takes it.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub request: AppendRequest,
    /// The JCS text of each event's data, in `all_events` order; this is
    /// what is hashed and what is stored.
    pub data: Vec<String>,
    /// The JCS text of the metadata.
    pub metadata: String,
}

/// What an accepted append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    pub stream_id: StreamId,
    pub first_position: u64,
    pub last_position: u64,
    /// The version of the stream's last event of this append.
    pub stream_version: u64,
    /// True when every event was stored already by an earlier identical
    /// append; nothing was written this time.
    pub already_stored: bool,
}

/// An event as a leaf of the log's Merkle tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    pub position: u64,
    /// `SHA-256(0x00 || canonical envelope)`.
    pub leaf: Hash,
    /// The event's chain hash.
    pub hash: EventHash,
}

impl Leaf {
    pub fn of(envelope: &Envelope) -> Self {
        Self {
            position: envelope.position,
            leaf: proofline_domain::merkle::leaf_hash(&envelope.leaf_bytes()),
            hash: envelope.hash,
        }
    }
}

/// The last event of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub position: u64,
    pub hash: EventHash,
}

/// A stored secret. `Debug` shows the material as redacted.
#[derive(Debug, Clone)]
pub struct SecretRecord {
    pub id: String,
    pub kind: String,
    pub stream_id: StreamId,
    pub material: SecretString,
    /// Position of the last event of the append that wrote it.
    pub position: u64,
    pub created_at: Timestamp,
}

/// The event store. Both adapters pass the same contract suite
/// (`commands/tests/store`).
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Appends one command's events, group-committed with concurrent appends.
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError>;

    /// Stores envelopes exactly as given (positions, ids, times, hashes):
    /// `proofline log import`. They must continue the stored log (the first
    /// at the head's next position, linked to the head's hash, each hashing
    /// to its `hash`), checked under the writer's lock. Only for a store no
    /// service is appending to: this instance's writer is not told about
    /// the new head.
    async fn import(&self, envelopes: &[Envelope]) -> Result<(), StoreError>;

    /// Leaves in the stored Merkle tree: the log's first positions it
    /// covers (docs/log-format.md, "The tree").
    async fn tree_size(&self) -> Result<u64, StoreError>;

    /// Stored tree nodes by id; a node not stored is absent from the answer.
    async fn tree_nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>, StoreError>;

    /// Stores nodes computed by the tree follower, in one transaction; a
    /// node already stored is kept (two followers write the same hashes).
    async fn store_tree_nodes(&self, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError>;

    /// Forgets the stored tree, for `proofline rebuild --tree`.
    async fn clear_tree(&self) -> Result<(), StoreError>;

    /// The tree leaves of the events after `after`, at most `limit`, in
    /// position order: what the tree follower reads. The stores make them
    /// from the stored canonical texts without parsing the JSON (checked
    /// against each event's hash); this default reads whole envelopes.
    async fn read_leaves(&self, after: u64, limit: usize) -> Result<Vec<Leaf>, StoreError> {
        Ok(self
            .read_all(after, limit)
            .await?
            .iter()
            .map(Leaf::of)
            .collect())
    }

    /// Counters of this process's writer.
    fn writer_stats(&self) -> &WriterStats;

    /// Events of one stream with a version above `after_version`, in order.
    async fn read_stream(
        &self,
        stream_id: &StreamId,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<Envelope>, StoreError>;

    /// The last event of one stream (its highest version), if any: one
    /// indexed lookup, whatever the stream's length.
    async fn last_of_stream(&self, stream_id: &StreamId) -> Result<Option<Envelope>, StoreError>;

    /// Events with a position above `after`, in position order, at most
    /// `limit` (capped at [`MAX_READ_LIMIT`]).
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Envelope>, StoreError>;

    /// The last event of the log, if any.
    async fn head(&self) -> Result<Option<Head>, StoreError>;

    /// A receiver of the highest position known to be committed; it moves
    /// when this process commits and, on Postgres, when another one does.
    fn watch_head(&self) -> watch::Receiver<u64>;

    /// A receiver of the last position known committed in each category
    /// of stream (see [`heads`]); it moves with [`Self::watch_head`].
    fn watch_category_heads(&self) -> watch::Receiver<CategoryHeads>;

    async fn secret(&self, id: &str) -> Result<Option<SecretRecord>, StoreError>;

    /// Removes a secret (an expired idempotency record, a revoked key's
    /// hash). Events are never removed; secrets may be.
    async fn delete_secret(&self, id: &str) -> Result<(), StoreError>;

    /// The ids of every secret of `kind`, in id order.
    async fn secret_ids_of_kind(&self, kind: &str) -> Result<Vec<String>, StoreError>;

    /// Replaces the material of the secret `id` (sealed again under another
    /// key), keeping everything else; false when there is no such secret.
    async fn update_secret(&self, id: &str, material: &SecretString) -> Result<bool, StoreError>;

    /// The saved position of a durable subscription (0 when never saved).
    async fn consumer_position(&self, name: &str) -> Result<u64, StoreError>;

    async fn save_consumer_position(&self, name: &str, position: u64) -> Result<(), StoreError>;

    /// A cheap round trip, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    /// What knows whether the database server answers, for other pools
    /// on it (the shared rate limits) to fail as fast as the store. None
    /// for a store in files.
    fn breaker(&self) -> Option<&breaker::Breaker> {
        None
    }

    /// Finishes the appends already queued, then closes connections. Later
    /// appends fail with [`StoreError::Closed`].
    async fn close(&self);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An envelope whose every member but `data`, `metadata`, stream id and
    /// type is as long as it can be stays within [`ENVELOPE_OVERHEAD`].
    #[test]
    fn the_envelope_overhead_bounds_the_largest_fixed_members() {
        let envelope = Envelope {
            position: MAX_SAFE_INTEGER,
            event_id: Uuid::max(),
            stream_id: StreamId::parse("log-checkpoints".to_owned()).unwrap(),
            stream_version: MAX_SAFE_INTEGER,
            event_type: "T".into(),
            schema_version: u32::MAX,
            data: serde_json::json!({}),
            metadata: Metadata::default(),
            recorded_at: Timestamp::parse("9999-12-31T23:59:59.999999Z").unwrap(),
            prev_hash: EventHash::from_bytes([0xff; 32]),
            hash: EventHash::from_bytes([0xff; 32]),
        };
        let fixed = envelope.leaf_bytes().len() - 4 - "log-checkpoints".len() - 1;
        assert!(fixed <= ENVELOPE_OVERHEAD, "{fixed} bytes");
    }

    #[test]
    fn an_event_that_would_make_an_envelope_over_the_bundle_limit_is_refused() {
        let stream = StreamId::parse("log-checkpoints".to_owned()).unwrap();
        let append = |size: usize| {
            let data = serde_json::json!({"x": "a".repeat(size)});
            AppendRequest::new(
                stream.clone(),
                ExpectedVersion::Any,
                vec![NewEvent::new("Big", 1, data)],
            )
            .prepare()
        };
        assert!(append(64_000).is_ok());
        let Err(refused) = append(65_200) else {
            panic!("an envelope over the limit was accepted")
        };
        assert!(refused.to_string().contains("65535 bytes"), "{refused}");
    }
}
