//! Running a projection: events in, one read-model transaction per batch
//! of deliveries (their effects and the checkpoint together), positions
//! contiguous.
//!
//! The checkpoint decides, not the subscription: an event at or below it is
//! acknowledged and skipped (a redelivery), and an event past the next
//! expected position means the subscription lost some: the gap is read from
//! the store and applied first. So delivery may be at least once, with
//! holes, and the effects are still exactly once and in order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use proofline_commands::store::EventStore;
use proofline_domain::log::Envelope;
use tokio::sync::watch;

/// Most deliveries applied in one transaction.
/// How long a subscription may be silent before the projector looks at
/// the store's head itself.
const IDLE: Duration = Duration::from_secs(1);
const BATCH: usize = 256;

use crate::db::{Kind, Param, ReadDb, ReadError};
use crate::models::{CHECKPOINTS, Projection};
use crate::subscription::{Subscription, SubscriptionError};

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Subscription(#[from] SubscriptionError),
    #[error(transparent)]
    Store(#[from] proofline_commands::StoreError),
}

/// Creates the checkpoints table and every projection's tables. A model
/// whose stored version is not its code's ([`Projection::version`]) is
/// dropped and its checkpoint reset, under its checkpoint lock, so its
/// projector builds it again from the log.
pub async fn prepare(db: &ReadDb, projections: &[Arc<dyn Projection>]) -> Result<(), ReadError> {
    for statement in CHECKPOINTS {
        db.execute(statement, &[]).await?;
    }
    for projection in projections {
        let name = projection.name();
        let mut tx = db.begin().await?;
        tx.lock_checkpoint(name).await?;
        let stored = tx
            .fetch(
                "SELECT version FROM read_model_versions WHERE name = $1",
                &[Param::text(name)],
                &[Kind::Int],
            )
            .await?
            .first()
            .and_then(|row| row[0].as_int())
            .unwrap_or(1);
        let version = i64::from(projection.version());
        if stored != version {
            tracing::info!(
                model = name,
                from = stored,
                to = version,
                "the read model's shape changed; rebuilding it from the log"
            );
            for table in projection.tables() {
                tx.execute(&format!("DROP TABLE IF EXISTS {table}"), &[])
                    .await?;
            }
            tx.set_checkpoint(name, 0).await?;
        }
        tx.execute(
            "INSERT INTO read_model_versions (name, version) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET version = excluded.version",
            &[Param::text(name), Param::int(version)],
        )
        .await?;
        for statement in projection.schema() {
            tx.execute(statement, &[]).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

pub struct Projector {
    db: ReadDb,
    store: Arc<dyn EventStore>,
    projection: Arc<dyn Projection>,
    /// The position applied so far (stored, or moved past events the model
    /// does not read and not stored yet).
    checkpoint: u64,
    /// The checkpoint as this projector last stored or read it.
    saved: u64,
    /// When the checkpoint moved past events the model does not read
    /// without being stored: it is stored once [`SAVE_WITHIN`] has passed.
    unsaved_since: Option<Instant>,
    reached: watch::Sender<u64>,
}

/// How long a checkpoint moved past events the model does not read may
/// stay in memory only: what a `min_position` wait on such a model may
/// take longer, and what a restart reads again (and ignores).
const SAVE_WITHIN: Duration = Duration::from_millis(100);

impl Projector {
    /// A projector from its stored checkpoint.
    pub async fn open(
        db: ReadDb,
        store: Arc<dyn EventStore>,
        projection: Arc<dyn Projection>,
    ) -> Result<Self, ReadError> {
        let checkpoint = db.checkpoint(projection.name()).await?;
        let (reached, _) = watch::channel(checkpoint);
        Ok(Self {
            db,
            store,
            projection,
            checkpoint,
            saved: checkpoint,
            unsaved_since: None,
            reached,
        })
    }

    pub fn name(&self) -> &'static str {
        self.projection.name()
    }

    /// The position applied so far.
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    /// Follows the position applied so far.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.reached.subscribe()
    }

    fn concerns(&self, envelope: &Envelope) -> bool {
        envelope
            .stream_id
            .kind()
            .is_some_and(|kind| self.projection.categories().contains(&kind))
    }

    /// Applies consecutive deliveries in one transaction: each one if it is
    /// the next, after filling any gap before it from the store; a repeat
    /// is skipped. Returns whether anything was applied. Runs of
    /// consecutive events go to the model together ([`Projection::apply_batch`]).
    ///
    /// The stored checkpoint decides, read under its lock in the same
    /// transaction as the effects: the in-memory one is only a shortcut for
    /// repeats, and for events the model does not read (a batch of only
    /// those, following the checkpoint without a gap, moves it in memory;
    /// it is stored within [`SAVE_WITHIN`], if nobody else moved the stored
    /// one meanwhile). A rebuild may move the stored one back; the gap is
    /// then read from the store here.
    pub async fn handle_batch(&mut self, envelopes: &[Envelope]) -> Result<bool, ProjectorError> {
        let Some(last) = envelopes.last() else {
            return Ok(false);
        };
        if last.position <= self.checkpoint {
            return Ok(false);
        }
        let fresh = envelopes.iter().filter(|e| e.position > self.checkpoint);
        let mut expected = self.checkpoint + 1;
        let follows = fresh.clone().all(|e| {
            let next = e.position == expected;
            expected += 1;
            next
        });
        if follows && !fresh.clone().any(|e| self.concerns(e)) {
            self.checkpoint = last.position;
            self.unsaved_since.get_or_insert_with(Instant::now);
            self.reached.send_replace(self.checkpoint);
            self.save_if_due().await?;
            return Ok(true);
        }
        let name = self.projection.name();
        let mut tx = self.db.begin().await?;
        let stored = tx.lock_checkpoint(name).await?;
        // Past the stored checkpoint, what this projector skipped in memory
        // holds nothing for the model, unless someone else moved it.
        let mut at = if stored == self.saved {
            stored.max(self.checkpoint)
        } else {
            stored
        };
        let start = stored;
        let mut run: Option<usize> = None;
        for (i, envelope) in envelopes.iter().enumerate() {
            let repeat = envelope.position <= at;
            let gap = at + 1 < envelope.position;
            if repeat || gap {
                // A run holds consecutive events only.
                if let Some(first) = run.take() {
                    self.projection
                        .apply_batch(&mut tx, &envelopes[first..i])
                        .await?;
                }
            }
            if repeat {
                continue;
            }
            if gap {
                while at + 1 < envelope.position {
                    let missing = (envelope.position - at - 1).min(1_000) as usize;
                    let page = self.store.read_all(at, missing).await?;
                    let Some(filled) = page.last().map(|e| e.position) else {
                        break;
                    };
                    tracing::debug!(
                        projector = name,
                        from = at + 1,
                        count = page.len(),
                        "filling a gap of the subscription from the store"
                    );
                    self.projection.apply_batch(&mut tx, &page).await?;
                    at = filled;
                }
            }
            run.get_or_insert(i);
            at = envelope.position;
        }
        if let Some(first) = run {
            self.projection
                .apply_batch(&mut tx, &envelopes[first..])
                .await?;
        }
        if at == start {
            drop(tx);
        } else {
            tx.set_checkpoint(name, at).await?;
            tx.commit().await?;
        }
        self.saved = at;
        self.unsaved_since = None;
        self.checkpoint = at;
        self.reached.send_replace(at);
        Ok(at > start)
    }

    /// Stores a checkpoint moved in memory once [`SAVE_WITHIN`] has passed.
    async fn save_if_due(&mut self) -> Result<(), ProjectorError> {
        if self
            .unsaved_since
            .is_some_and(|since| since.elapsed() >= SAVE_WITHIN)
        {
            self.save().await?;
        }
        Ok(())
    }

    /// Stores the checkpoint moved in memory, unless the stored one moved
    /// meanwhile (another replica, a rebuild): that one then decides.
    async fn save(&mut self) -> Result<(), ProjectorError> {
        if self.unsaved_since.is_none() {
            return Ok(());
        }
        let name = self.projection.name();
        let mut tx = self.db.begin().await?;
        let stored = tx.lock_checkpoint(name).await?;
        if stored == self.saved {
            tx.set_checkpoint(name, self.checkpoint).await?;
            tx.commit().await?;
            self.saved = self.checkpoint;
        } else {
            drop(tx);
            self.saved = stored;
            self.checkpoint = stored;
            self.reached.send_replace(stored);
        }
        self.unsaved_since = None;
        Ok(())
    }

    /// Applies what the log holds beyond the checkpoint, read from the
    /// store: for a subscription that went quiet while the log did not. On
    /// JetStream a message can be handed to a consumer process that has
    /// just died (its pull request outlives it) and comes back only after
    /// the ack wait; later messages fill such a hole from the store anyway,
    /// but the last events before a pause would wait. Deliveries that come
    /// later are skipped by the checkpoint.
    pub async fn catch_up(&mut self) -> Result<bool, ProjectorError> {
        let head = self.store.head().await?.map_or(0, |h| h.position);
        if head <= self.checkpoint {
            return Ok(false);
        }
        let page = self.store.read_all(self.checkpoint, BATCH).await?;
        self.handle_batch(&page).await
    }

    /// Reads `subscription` until `shutdown`, retrying failures with backoff.
    pub async fn run(
        mut self,
        mut subscription: Box<dyn Subscription>,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(100);
        loop {
            let unsaved = self.unsaved_since;
            let wait = unsaved.map_or(IDLE, |since| SAVE_WITHIN.saturating_sub(since.elapsed()));
            let next = tokio::select! {
                _ = &mut shutdown => {
                    if let Err(error) = self.save().await {
                        tracing::warn!(projector = self.name(), %error, "storing the checkpoint at stop failed");
                    }
                    return;
                }
                next = tokio::time::timeout(wait, subscription.next()) => next,
            };
            if next.is_err() && unsaved.is_some() {
                // Quiet after events the model does not read: store where
                // it is.
                if let Err(error) = self.save().await {
                    tracing::warn!(projector = self.name(), %error, "storing the checkpoint failed");
                }
                continue;
            }
            let Ok(next) = next else {
                // Idle: catch up from the store if the subscription has
                // fallen behind the log (see `catch_up`).
                match self.catch_up().await {
                    Ok(_) => backoff = Duration::from_millis(100),
                    Err(error) => {
                        tracing::warn!(projector = self.name(), %error, "catching up from the store failed");
                    }
                }
                continue;
            };
            let outcome = match next {
                Ok(envelope) => {
                    // Whatever else is ready now goes into the same
                    // transaction (polling once never waits, and a
                    // subscription's `next` loses nothing when dropped).
                    let mut batch = vec![envelope];
                    let mut failed = None;
                    while batch.len() < BATCH {
                        match subscription.next().now_or_never() {
                            Some(Ok(more)) => batch.push(more),
                            Some(Err(error)) => {
                                failed = Some(error);
                                break;
                            }
                            None => break,
                        }
                    }
                    let last = batch.last().map_or(0, |e| e.position);
                    match self.handle_batch(&batch).await {
                        Ok(_) => match subscription.ack(last).await {
                            Ok(()) => failed.map_or(Ok(()), |e| Err(e.into())),
                            Err(error) => Err(error.into()),
                        },
                        Err(error) => Err(error),
                    }
                }
                Err(error) => Err(error.into()),
            };
            match outcome {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(error) => {
                    tracing::warn!(projector = self.name(), %error, retry_in = ?backoff,
                        "projector failed; retrying");
                    tokio::select! {
                        _ = &mut shutdown => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
