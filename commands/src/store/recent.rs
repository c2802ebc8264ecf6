//! The events this process's writer committed last, handed to the tree
//! follower in memory: it hashes their leaves from the very texts the
//! writer hashed, instead of reading each row back from the database, which
//! is what the tree cost appends (BENCHMARKS.md, `bench append`).
//!
//! Only once a follower reads leaves from this store does the writer keep
//! them (a process that appends but signs no checkpoints keeps nothing),
//! and at most [`CAPACITY`]: a follower further behind, or events another
//! process appended, are read from the database as before. The buffer holds
//! a contiguous run of positions; a gap (another process's appends) starts
//! it again.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use proofline_domain::log::{EventHash, HashInput, Timestamp};
use proofline_domain::merkle::leaf_hash;
use uuid::Uuid;

use super::Leaf;
use super::plan::EventRow;

/// Rows kept at most (a few seconds of appends at the rates measured).
pub(crate) const CAPACITY: usize = 32_768;

/// A committed event, owned.
pub(crate) struct CommittedRow {
    position: u64,
    event_id: Uuid,
    stream_id: String,
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
            stream_id: row.stream_id.as_str().to_owned(),
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
            stream_id: &self.stream_id,
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
}

#[derive(Default)]
pub(crate) struct Recent {
    /// Set when a follower first reads leaves.
    wanted: AtomicBool,
    rows: Mutex<VecDeque<CommittedRow>>,
}

impl Recent {
    /// Whether the writer should keep what it commits.
    pub fn wanted(&self) -> bool {
        self.wanted.load(Ordering::Relaxed)
    }

    /// Keeps `rows`, just committed, in position order.
    pub fn push(&self, rows: Vec<CommittedRow>) {
        let mut kept = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(last), Some(first)) = (kept.back(), rows.first())
            && first.position != last.position + 1
        {
            kept.clear();
        }
        kept.extend(rows);
        let excess = kept.len().saturating_sub(CAPACITY);
        kept.drain(..excess);
    }

    /// The rows after position `after`, at most `limit`, if the buffer
    /// holds the next one; they leave the buffer (and older ones with
    /// them). `None`: read the database.
    pub fn take(&self, after: u64, limit: usize) -> Option<Vec<CommittedRow>> {
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
            stream_id: format!("thing-{position}"),
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

    fn positions(rows: Option<Vec<CommittedRow>>) -> Option<Vec<u64>> {
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
}
