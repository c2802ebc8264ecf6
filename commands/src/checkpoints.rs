//! Signing checkpoints of the log, and reading them back.
//!
//! The API process runs [`Checkpointer::tick`] every second (and
//! [`Checkpointer::follow`] five times a second): it first brings
//! the Merkle tree up to the head ([`TreeFollower`]), then, when at least
//! `every_events` events were appended since the last checkpoint, or
//! `every_seconds` passed with something new, it signs the tree's head
//! twice: the JWS of `{position, hash, signed_at}` (the first format, kept)
//! and a C2SP tlog-checkpoint note of the tree's size and root. A receipt is
//! covered by a signed head within seconds. Several API processes may
//! tick; the append expects the checkpoint stream's version, so only one of
//! them records each checkpoint.

use proofline_domain::checkpoint::{self, Checkpoint, CheckpointEvent};
use proofline_domain::log::{Envelope, Metadata, Timestamp};
use proofline_domain::note;

use crate::handler::CommandError;
use crate::signing::ServiceKey;
use crate::store::{AppendRequest, EventStore, ExpectedVersion, NewEvent, StoreError};
use crate::tree::TreeFollower;

/// A recorded checkpoint and where the log holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub event: CheckpointEvent,
    /// The position of the `LogCheckpointSigned` event itself.
    pub recorded_at_position: u64,
    pub stream_version: u64,
}

impl Recorded {
    /// The C2SP checkpoint note, if this checkpoint has one.
    pub fn note(&self) -> Option<&str> {
        let CheckpointEvent::LogCheckpointSigned { note, .. } = &self.event;
        note.as_deref()
    }

    pub fn covered(&self) -> (u64, Timestamp) {
        let CheckpointEvent::LogCheckpointSigned {
            position,
            signed_at,
            ..
        } = &self.event;
        (*position, *signed_at)
    }
}

fn decode(envelope: &Envelope) -> Result<Recorded, CommandError> {
    Ok(Recorded {
        event: envelope.decode::<CheckpointEvent>()?,
        recorded_at_position: envelope.position,
        stream_version: envelope.stream_version,
    })
}

/// Checkpoints recorded after stream version `after_version`, oldest
/// first, at most `limit`.
pub async fn read(
    store: &dyn EventStore,
    after_version: u64,
    limit: usize,
) -> Result<Vec<Recorded>, CommandError> {
    store
        .read_stream(&checkpoint::stream(), after_version, limit)
        .await?
        .iter()
        .map(decode)
        .collect()
}

/// The newest recorded checkpoint, read in one lookup.
pub async fn latest(store: &dyn EventStore) -> Result<Option<Recorded>, CommandError> {
    store
        .last_of_stream(&checkpoint::stream())
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

/// The newest checkpoint and its signed note, if it has one (checkpoints
/// signed before the Merkle tree have none).
pub async fn latest_note(
    store: &dyn EventStore,
) -> Result<Option<(Recorded, String)>, CommandError> {
    Ok(latest(store).await?.and_then(|recorded| {
        let note = recorded.note()?.to_owned();
        Some((recorded, note))
    }))
}

/// Checkpoints covering positions after `after`, oldest first, at most
/// `limit` (the stream is ordered by covered position).
pub async fn covering_after(
    store: &dyn EventStore,
    after: u64,
    limit: usize,
) -> Result<Vec<Recorded>, CommandError> {
    let mut out = Vec::new();
    let mut version = 0;
    loop {
        let page = read(store, version, 1_000).await?;
        let done = page.len() < 1_000;
        for recorded in page {
            version = recorded.stream_version;
            if recorded.covered().0 > after {
                out.push(recorded);
                if out.len() == limit {
                    return Ok(out);
                }
            }
        }
        if done {
            return Ok(out);
        }
    }
}

/// At most this many events past the last checkpoint are looked through
/// to tell that none is new (checkpoints and cosignatures are not).
const MAX_TRAILING_BOOKKEEPING: u64 = 64;

/// Signs checkpoints as the log grows.
pub struct Checkpointer {
    every_events: u64,
    every_seconds: u64,
    /// The log's name in its notes (`PROOFLINE_LOG_ORIGIN`).
    origin: String,
    tree: TreeFollower,
    last: Option<Recorded>,
    /// The first tick: with no checkpoint yet, seconds count from here.
    started: Option<Timestamp>,
}

impl Checkpointer {
    /// A checkpoint after `every_events` events, or `every_seconds` with
    /// new ones.
    pub fn new(every_events: u64, every_seconds: u64, origin: impl Into<String>) -> Self {
        Self {
            every_events: every_events.max(1),
            every_seconds: every_seconds.max(1),
            origin: origin.into(),
            tree: TreeFollower::new(),
            last: None,
            started: None,
        }
    }

    /// Catches up with the recorded checkpoints.
    async fn refresh(&mut self, store: &dyn EventStore) -> Result<(), CommandError> {
        if self.last.is_none() {
            self.last = latest(store).await?;
            return Ok(());
        }
        loop {
            let after = self.last.as_ref().map_or(0, |l| l.stream_version);
            let page = read(store, after, 1_000).await?;
            let done = page.len() < 1_000;
            if let Some(newest) = page.into_iter().last() {
                self.last = Some(newest);
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Brings the stored tree up to the head without signing: the signer's
    /// loop runs it between ticks, so that the tree grows in small steps
    /// (and from the rows the writer just committed, in memory) rather than
    /// in one burst a second.
    pub async fn follow(&mut self, store: &dyn EventStore) -> Result<(), CommandError> {
        self.tree.catch_up(store).await?;
        Ok(())
    }

    /// Signs the head if it is time; the position signed, if any.
    pub async fn tick(
        &mut self,
        store: &dyn EventStore,
        key: &ServiceKey,
        now: Timestamp,
    ) -> Result<Option<u64>, CommandError> {
        self.refresh(store).await?;
        let started = *self.started.get_or_insert(now);
        let Some(head) = self.tree.catch_up(store).await? else {
            return Ok(None);
        };
        let (covered, signed_at, version) = match &self.last {
            Some(last) => {
                let (covered, signed_at) = last.covered();
                (covered, Some(signed_at), last.stream_version)
            }
            None => (0, None, 0),
        };
        // Nothing new but checkpoints and witnesses' cosignatures (which
        // must not call for a checkpoint of their own, else an idle log
        // would be checkpointed forever). Events appended while the last
        // checkpoint was being signed are new, though it was recorded
        // after them.
        if head.size <= covered {
            return Ok(None);
        }
        let uncovered = head.size - covered;
        if uncovered <= MAX_TRAILING_BOOKKEEPING {
            let (checkpoints, witnesses) = (checkpoint::stream(), checkpoint::witness_stream());
            let trailing = store.read_all(covered, uncovered as usize).await?;
            if trailing
                .iter()
                .all(|e| e.stream_id == checkpoints || e.stream_id == witnesses)
            {
                return Ok(None);
            }
        }
        let events_due = head.size - covered >= self.every_events;
        let since = signed_at.unwrap_or(started);
        let time_due = (now.as_datetime() - since.as_datetime()).num_seconds()
            >= i64::try_from(self.every_seconds).unwrap_or(i64::MAX);
        if !events_due && !time_due {
            return Ok(None);
        }
        let checkpoint = Checkpoint {
            position: head.size,
            hash: head.hash,
            signed_at: now,
        };
        let note = key
            .sign_note(&note::Checkpoint {
                origin: self.origin.clone(),
                size: head.size,
                root: head.root,
                extensions: Vec::new(),
            })
            .map_err(|e| {
                StoreError::InvalidAppend(format!("cannot sign the checkpoint note: {e}"))
            })?;
        let kid = key.kid();
        let signature = key.sign(checkpoint.signing_input(&kid).as_bytes());
        let event = checkpoint.event(&kid, &signature.to_bytes(), Some(note));
        let mut request = AppendRequest::new(
            checkpoint::stream(),
            ExpectedVersion::Exact(version),
            vec![NewEvent::of(&event)],
        );
        request.metadata = Metadata {
            actor: Some("system".into()),
            ..Metadata::default()
        };
        match store.append(request).await {
            Ok(_) => Ok(Some(head.size)),
            // Another instance recorded one first.
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }
}
