//! The events this process's writer committed last, kept in memory for the
//! readers in the same process.
//!
//! - The tree follower takes their leaves, hashed from the very texts the
//!   writer hashed, instead of reading each row back from the database,
//!   which is what the tree cost appends (BENCHMARKS.md, `bench append`).
//!   What it takes leaves the buffer.
//! - Tails (projectors on the embedded store, the relay, the key cache's
//!   invalidations) read the same events as envelopes, each parsed once
//!   however many tails read it, instead of each reading and parsing every
//!   row (`bench verify`). Those stay, at most [`EVENTS_CAPACITY`].
//!
//! Only once a reader asks does the writer keep anything (a process that
//! appends but signs no checkpoints and tails nothing keeps nothing), and
//! at most the capacity: a reader further behind, or events another process
//! appended, are read from the database as before. Each buffer holds a
//! contiguous run of positions; a gap (another process's appends) starts it
//! again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use proofline_domain::ids::StreamId;
use proofline_domain::log::{Envelope, EventHash, HashInput, Timestamp};
use proofline_domain::merkle::leaf_hash;
use uuid::Uuid;

use super::plan::EventRow;
use super::{Leaf, StoreError};

/// Rows kept at most for the tree follower (a few seconds of appends at the
/// rates measured).
pub(crate) const CAPACITY: usize = 32_768;

/// Events kept at most for tails: about a third of a second at the peak of
/// `bench verify`, ample for tails that keep up (a few milliseconds behind);
/// a tail further behind reads the database. Each is kept parsed, which
/// costs memory: 4,096 added 70 MiB to the service's peak RSS.
pub(crate) const EVENTS_CAPACITY: usize = 1_024;

/// A committed event, owned.
pub(crate) struct CommittedRow {
    position: u64,
    event_id: Uuid,
    stream_id: StreamId,
    stream_version: u64,
    event_type: String,
    schema_version: u32,
    data: String,
    metadata: String,
    recorded_at: Timestamp,
    prev_hash: EventHash,
    hash: EventHash,
}

impl CommittedRow {
    pub fn of(row: &EventRow<'_>) -> Self {
        Self {
            position: row.position,
            event_id: row.event_id,
            stream_id: row.stream_id.clone(),
            stream_version: row.stream_version,
            event_type: row.event_type.to_owned(),
            schema_version: row.schema_version,
            data: row.data.to_owned(),
            metadata: row.metadata.to_owned(),
            recorded_at: row.recorded_at,
            prev_hash: row.prev_hash,
            hash: row.hash,
        }
    }

    /// Its leaf, from the canonical texts the writer hashed and stored.
    pub fn leaf(&self) -> Leaf {
        let input = HashInput {
            position: self.position,
            event_id: &self.event_id,
            stream_id: self.stream_id.as_str(),
            stream_version: self.stream_version,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            canonical_data: &self.data,
            canonical_metadata: &self.metadata,
            recorded_at: &self.recorded_at,
            prev_hash: &self.prev_hash,
        };
        Leaf {
            position: self.position,
            leaf: leaf_hash(&input.leaf_bytes(&self.hash)),
            hash: self.hash,
        }
    }

    /// Its envelope, parsed from the texts stored: what reading the row
    /// back from the database gives.
    fn envelope(&self) -> Result<Envelope, StoreError> {
        Ok(Envelope {
            position: self.position,
            event_id: self.event_id,
            stream_id: self.stream_id.clone(),
            stream_version: self.stream_version,
            event_type: self.event_type.clone(),
            schema_version: self.schema_version,
            data: serde_json::from_str(&self.data).map_err(|e| StoreError::corrupt("data", e))?,
            metadata: serde_json::from_str(&self.metadata)
                .map_err(|e| StoreError::corrupt("metadata", e))?,
            recorded_at: self.recorded_at,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

/// A committed event and its envelope, parsed by the first tail to read it.
struct Fresh {
    row: Arc<CommittedRow>,
    envelope: OnceLock<Envelope>,
}

impl Fresh {
    fn envelope(&self) -> Result<Envelope, StoreError> {
        if let Some(parsed) = self.envelope.get() {
            return Ok(parsed.clone());
        }
        let parsed = self.row.envelope()?;
        Ok(self.envelope.get_or_init(|| parsed).clone())
    }
}

/// Appends `items` (in position order) to a contiguous run, starting it
/// again at a gap, and keeps at most `capacity`.
fn extend_run<T>(
    kept: &mut VecDeque<T>,
    items: impl IntoIterator<Item = T>,
    position: impl Fn(&T) -> u64,
    capacity: usize,
) {
    let mut items = items.into_iter().peekable();
    if let (Some(last), Some(first)) = (kept.back(), items.peek())
        && position(first) != position(last) + 1
    {
        kept.clear();
    }
    kept.extend(items);
    let excess = kept.len().saturating_sub(capacity);
    kept.drain(..excess);
}

#[derive(Default)]
pub(crate) struct Recent {
    /// Set when a follower first reads leaves.
    wanted: AtomicBool,
    rows: Mutex<VecDeque<Arc<CommittedRow>>>,
    /// Set when a tail first reads events.
    events_wanted: AtomicBool,
    events: RwLock<VecDeque<Arc<Fresh>>>,
}

impl Recent {
    /// Whether the writer should keep what it commits.
    pub fn wanted(&self) -> bool {
        self.wanted.load(Ordering::Relaxed) || self.events_wanted.load(Ordering::Relaxed)
    }

    /// Keeps `rows`, just committed, in position order.
    pub fn push(&self, rows: Vec<CommittedRow>) {
        let rows: Vec<Arc<CommittedRow>> = rows.into_iter().map(Arc::new).collect();
        if self.events_wanted.load(Ordering::Relaxed) {
            let mut kept = self.events.write().unwrap_or_else(|p| p.into_inner());
            let fresh = rows.iter().map(|row| {
                Arc::new(Fresh {
                    row: row.clone(),
                    envelope: OnceLock::new(),
                })
            });
            extend_run(&mut kept, fresh, |f| f.row.position, EVENTS_CAPACITY);
        }
        if self.wanted.load(Ordering::Relaxed) {
            let mut kept = self.rows.lock().unwrap_or_else(|p| p.into_inner());
            extend_run(&mut kept, rows, |row| row.position, CAPACITY);
        }
    }

    /// The events after position `after`, at most `limit`, if the buffer
    /// holds the next one (they stay for other tails). `None`: read the
    /// database.
    pub fn events(&self, after: u64, limit: usize) -> Option<Result<Vec<Envelope>, StoreError>> {
        self.events_wanted.store(true, Ordering::Relaxed);
        let picked: Vec<Arc<Fresh>> = {
            let kept = self.events.read().unwrap_or_else(|p| p.into_inner());
            let first = kept.front()?.row.position;
            let last = kept.back()?.row.position;
            if after < first.checked_sub(1)? || after >= last {
                return None;
            }
            let start = usize::try_from(after + 1 - first).ok()?;
            let end = kept.len().min(start.saturating_add(limit));
            kept.range(start..end).cloned().collect()
        };
        Some(picked.iter().map(|f| f.envelope()).collect())
    }

    /// The rows after position `after`, at most `limit`, if the buffer
    /// holds the next one; they leave the buffer (and older ones with
    /// them). `None`: read the database.
    pub fn take(&self, after: u64, limit: usize) -> Option<Vec<Arc<CommittedRow>>> {
        self.wanted.store(true, Ordering::Relaxed);
        let mut kept = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let stale = kept.partition_point(|row| row.position <= after);
        kept.drain(..stale);
        if kept.front()?.position != after + 1 {
            return None;
        }
        let n = limit.min(kept.len());
        Some(kept.drain(..n).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(position: u64) -> CommittedRow {
        CommittedRow {
            position,
            event_id: Uuid::from_u128(u128::from(position)),
            stream_id: StreamId::parse(format!("thing-{position}")).unwrap(),
            stream_version: 1,
            event_type: "Noted".into(),
            schema_version: 1,
            data: "{}".into(),
            metadata: "{}".into(),
            recorded_at: Timestamp::from_datetime(chrono::DateTime::UNIX_EPOCH),
            prev_hash: EventHash::GENESIS,
            hash: EventHash::GENESIS,
        }
    }

    fn positions(rows: Option<Vec<Arc<CommittedRow>>>) -> Option<Vec<u64>> {
        rows.map(|rows| rows.iter().map(|r| r.position).collect())
    }

    #[test]
    fn a_contiguous_run_is_handed_over_once() {
        let recent = Recent::default();
        assert!(!recent.wanted());
        assert!(recent.take(0, 10).is_none());
        assert!(recent.wanted(), "a follower asked");
        recent.push((1..=5).map(row).collect());
        assert_eq!(positions(recent.take(0, 3)), Some(vec![1, 2, 3]));
        assert_eq!(positions(recent.take(3, 10)), Some(vec![4, 5]));
        assert!(recent.take(5, 10).is_none(), "taken");

        // Another process appended 6..=8: a gap starts the buffer again,
        // and a follower before it reads the database.
        recent.push((6..=7).map(row).collect());
        recent.push((10..=12).map(row).collect());
        assert!(recent.take(7, 10).is_none());
        assert_eq!(positions(recent.take(9, 10)), Some(vec![10, 11, 12]));

        // Beyond the capacity the oldest go.
        let many = CAPACITY as u64 + 10;
        recent.push((13..13 + many).map(row).collect());
        assert!(recent.take(12, 1).is_none());
        assert_eq!(positions(recent.take(22, 1)), Some(vec![23]));
    }

    fn event_positions(events: Option<Result<Vec<Envelope>, StoreError>>) -> Option<Vec<u64>> {
        events.map(|e| e.unwrap().iter().map(|e| e.position).collect())
    }

    #[test]
    fn events_stay_for_every_tail_and_are_parsed_once() {
        let recent = Recent::default();
        assert!(!recent.wanted());
        assert!(recent.events(0, 10).is_none());
        assert!(recent.wanted(), "a tail asked");
        recent.push((1..=5).map(row).collect());
        assert!(recent.take(0, 10).is_none(), "no follower asked for leaves");
        for _ in 0..2 {
            assert_eq!(event_positions(recent.events(0, 3)), Some(vec![1, 2, 3]));
            assert_eq!(event_positions(recent.events(3, 10)), Some(vec![4, 5]));
        }
        let parsed = recent
            .events
            .read()
            .unwrap()
            .iter()
            .all(|f| f.envelope.get().is_some());
        assert!(parsed, "parsed by the first read, cloned by the next");
        let first = recent.events(0, 1).unwrap().unwrap();
        assert_eq!(first[0].stream_id.as_str(), "thing-1");
        assert_eq!(first[0].data, serde_json::json!({}));
        assert!(
            recent.events(5, 10).is_none(),
            "past the last: the database"
        );
        // A gap starts the run again; before it, the database.
        recent.push((8..=9).map(row).collect());
        assert!(recent.events(5, 10).is_none());
        assert_eq!(event_positions(recent.events(7, 10)), Some(vec![8, 9]));
        // Beyond the capacity the oldest go.
        let many = EVENTS_CAPACITY as u64 + 10;
        recent.push((10..10 + many).map(row).collect());
        assert!(recent.events(7, 1).is_none());
        assert_eq!(event_positions(recent.events(19, 1)), Some(vec![20]));
    }
}
