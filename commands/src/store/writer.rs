//! The single writer: group commit.
//!
//! Every append of a process goes through one task. It takes the first
//! queued append, then everything else already queued (up to a cap), and
//! commits them in one transaction: one lock, one head read, one insert, one
//! fsync for the whole group. Appenders wait on a oneshot for their own
//! outcome, so a conflict answers only its own command. If the transaction
//! fails on a statement (not on the connection), the group is retried one
//! append per transaction, so one poisoned append cannot fail the others.

use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;
use proofline_domain::log::Timestamp;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use proofline_domain::ids::StreamId;
use proofline_domain::log::{ChainVerifier, Envelope, EventHash};

use crate::report::error_chain;

use super::heads::{CategorySet, HeadSender};
use super::plan::{self, Context, EventRow, HeadRow, SecretRow};
use super::recent::{CommittedRow, Recent};
use super::rows::{canonical_texts, rows_of};
use super::{AppendOutcome, AppendRequest, Prepared, StoreError};

/// Most events committed in one transaction.
pub(crate) const MAX_BATCH_EVENTS: usize = 2_000;
/// Appends that may wait for the writer before appenders are held back.
const QUEUE_CAPACITY: usize = 8_192;

/// The result of one transaction.
pub(crate) struct Committed {
    pub outcomes: Vec<Result<AppendOutcome, StoreError>>,
    /// The last position written, if anything was.
    pub last_position: Option<u64>,
    /// The rows written, when a tree follower wants them.
    pub rows: Option<Vec<CommittedRow>>,
    /// The categories of the streams written.
    pub categories: CategorySet,
}

/// What a database gives the writer: transactions that hold the writer's
/// lock, and the writer's statements inside them. The order of a commit
/// ([`commit`]) and of an import ([`import`]) is written once, here; an
/// adapter only says how its database does each step.
pub(crate) trait Committer: Send + Sync + 'static {
    type Db: sqlx::Database;

    /// A transaction that holds the writer's lock (SQLite: `BEGIN
    /// IMMEDIATE`; Postgres: an advisory lock taken with `BEGIN`), so the
    /// head read in it stays the head until it ends.
    fn begin(&self) -> impl Future<Output = Result<Tx<Self>, StoreError>> + Send;

    /// The head, the batch's stream versions, its stored event ids and taken
    /// secret ids.
    fn context(
        tx: &mut Tx<Self>,
        batch: &[Prepared],
    ) -> impl Future<Output = Result<Context, StoreError>> + Send;

    /// The last stored event.
    fn head(tx: &mut Tx<Self>) -> impl Future<Output = Result<Option<HeadRow>, StoreError>> + Send;

    /// Inserts rows into `events`, in as many statements as the database
    /// needs.
    fn insert_events(
        tx: &mut Tx<Self>,
        rows: &[EventRow<'_>],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Inserts (or replaces) the secrets written with the events.
    fn insert_secrets(
        tx: &mut Tx<Self>,
        secrets: &[SecretRow<'_>],
        recorded_at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn commit(tx: Tx<Self>) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move { Ok(tx.commit().await?) }
    }

    fn rollback(tx: Tx<Self>) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move { Ok(tx.rollback().await?) }
    }
}

/// A transaction of a committer's database.
pub(crate) type Tx<C> = sqlx::Transaction<'static, <C as Committer>::Db>;

/// Plans a group against the state read under the lock and writes it.
async fn commit<C: Committer>(
    committer: &C,
    batch: &[Prepared],
    now: Timestamp,
    keep_rows: bool,
) -> Result<Committed, StoreError> {
    let mut tx = committer.begin().await?;
    let context = C::context(&mut tx, batch).await?;
    let plan = plan::plan(context, batch, now);
    let Some(last_position) = plan.last_position() else {
        // Nothing to write (conflicts, duplicates): release the lock at once.
        C::rollback(tx).await?;
        return Ok(Committed {
            outcomes: plan.outcomes,
            last_position: None,
            rows: None,
            categories: CategorySet::default(),
        });
    };
    C::insert_events(&mut tx, &plan.rows).await?;
    if !plan.secrets.is_empty() {
        C::insert_secrets(&mut tx, &plan.secrets, plan.recorded_at).await?;
    }
    C::commit(tx).await?;
    let rows = keep_rows.then(|| plan.rows.iter().map(CommittedRow::of).collect());
    Ok(Committed {
        outcomes: plan.outcomes,
        last_position: Some(last_position),
        rows,
        categories: categories_of(&plan.rows),
    })
}

/// The categories of the streams `rows` write to.
pub(crate) fn categories_of(rows: &[EventRow<'_>]) -> CategorySet {
    let mut set = CategorySet::default();
    let mut last: Option<&StreamId> = None;
    for row in rows {
        if last != Some(row.stream_id) {
            set.insert(CategorySet::of_stream(row.stream_id));
            last = Some(row.stream_id);
        }
    }
    set
}

/// Envelopes stored exactly as given (positions, ids, times, hashes), in
/// one transaction under the writer's lock, after checking that they
/// continue the stored log: `proofline log import`.
pub(crate) async fn import<C: Committer>(
    committer: &C,
    envelopes: &[Envelope],
) -> Result<(), StoreError> {
    let mut tx = committer.begin().await?;
    let head = C::head(&mut tx).await?;
    check_import(head.map(|h| (h.position, h.hash)), envelopes)?;
    let texts = canonical_texts(envelopes)?;
    let rows = rows_of(envelopes, &texts);
    C::insert_events(&mut tx, &rows).await?;
    C::commit(tx).await
}

/// Checks that `rows` continue a log whose last stored event is `head`
/// (position and hash; none for an empty log).
fn check_import(head: Option<(u64, EventHash)>, rows: &[Envelope]) -> Result<(), StoreError> {
    let (position, hash) = head.unwrap_or((0, EventHash::GENESIS));
    let mut chain = ChainVerifier::resume(position, hash);
    for envelope in rows {
        chain.check(envelope).map_err(|e| {
            StoreError::InvalidAppend(format!("the imported events do not continue the log: {e}"))
        })?;
        let size = envelope.leaf_bytes().len();
        if size > super::MAX_ENVELOPE_BYTES {
            return Err(StoreError::InvalidAppend(format!(
                "the event at position {} is {size} bytes as canonical JSON, over {}",
                envelope.position,
                super::MAX_ENVELOPE_BYTES
            )));
        }
    }
    Ok(())
}

struct Pending {
    request: Prepared,
    reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
}

/// Counters of the writer, for benchmarks and metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub transactions: AtomicU64,
    pub appends: AtomicU64,
    pub events: AtomicU64,
}

pub(crate) struct Writer<C> {
    committer: Arc<C>,
    sender: Mutex<Option<mpsc::Sender<Pending>>>,
    task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    stats: Arc<WriterStats>,
    recent: Arc<Recent>,
}

impl<C: Committer> Writer<C> {
    pub fn spawn(committer: C, head: Arc<HeadSender>) -> Self {
        let committer = Arc::new(committer);
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let stats = Arc::new(WriterStats::default());
        let recent = Arc::new(Recent::default());
        let task = tokio::spawn(run(
            committer.clone(),
            receiver,
            head,
            stats.clone(),
            recent.clone(),
        ));
        Self {
            committer,
            sender: Mutex::new(Some(sender)),
            task: tokio::sync::Mutex::new(Some(task)),
            stats,
            recent,
        }
    }

    /// What this writer committed last, for the tree follower.
    pub fn recent(&self) -> &Recent {
        &self.recent
    }

    /// See [`import`]: for a store no service is appending to (the writer
    /// task is not told about the new head).
    pub async fn import(&self, envelopes: &[Envelope]) -> Result<(), StoreError> {
        import(self.committer.as_ref(), envelopes).await
    }

    pub async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        let request = request.prepare()?;
        let sender = {
            let guard = self.sender.lock().unwrap_or_else(|p| p.into_inner());
            guard.clone().ok_or(StoreError::Closed)?
        };
        let (reply, answer) = oneshot::channel();
        sender
            .send(Pending { request, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Stops taking appends, commits what is queued, and waits for the task.
    pub async fn close(&self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = self.task.lock().await.take()
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "event store writer task failed");
        }
    }
}

fn now() -> Timestamp {
    Timestamp::from_datetime(Utc::now())
}

async fn run<C: Committer>(
    committer: Arc<C>,
    mut queue: mpsc::Receiver<Pending>,
    head: Arc<HeadSender>,
    stats: Arc<WriterStats>,
    recent: Arc<Recent>,
) {
    let mut requests = Vec::new();
    let mut replies = Vec::new();
    while let Some(first) = queue.recv().await {
        let mut events = first.request.request.events.len();
        requests.push(first.request);
        replies.push(first.reply);
        // Appenders woken by the previous commit are about to queue their next
        // append; one yield lets them, which makes the groups larger.
        tokio::task::yield_now().await;
        while events < MAX_BATCH_EVENTS {
            match queue.try_recv() {
                Ok(next) => {
                    events += next.request.request.events.len();
                    requests.push(next.request);
                    replies.push(next.reply);
                }
                Err(_) => break,
            }
        }
        let outcomes = commit_group(committer.as_ref(), &requests, &head, &stats, &recent).await;
        for (reply, outcome) in replies.drain(..).zip(outcomes) {
            // The appender may have gone (its request was cancelled); the
            // outcome stands either way.
            let _ = reply.send(outcome);
        }
        requests.clear();
    }
}

async fn commit_group<C: Committer>(
    committer: &C,
    requests: &[Prepared],
    head: &HeadSender,
    stats: &WriterStats,
    recent: &Recent,
) -> Vec<Result<AppendOutcome, StoreError>> {
    match commit_once(committer, requests, head, stats, recent).await {
        Ok(outcomes) => outcomes,
        Err(error) if requests.len() > 1 && is_statement_failure(&error) => {
            tracing::warn!(error = %error_chain(&error), appends = requests.len(),
                "group commit failed on a statement; committing its appends one by one");
            let mut outcomes = Vec::with_capacity(requests.len());
            for request in requests {
                let single = std::slice::from_ref(request);
                match commit_once(committer, single, head, stats, recent).await {
                    Ok(mut one) => outcomes.push(one.pop().unwrap_or(Err(StoreError::Closed))),
                    Err(error) => outcomes.push(Err(error)),
                }
            }
            outcomes
        }
        Err(error) => {
            tracing::error!(error = %error_chain(&error), appends = requests.len(), "group commit failed");
            vec![Err(error); requests.len()]
        }
    }
}

async fn commit_once<C: Committer>(
    committer: &C,
    requests: &[Prepared],
    head: &HeadSender,
    stats: &WriterStats,
    recent: &Recent,
) -> Result<Vec<Result<AppendOutcome, StoreError>>, StoreError> {
    let started = std::time::Instant::now();
    let committed = commit(committer, requests, now(), recent.wanted()).await?;
    metrics::histogram!("proofline_store_append_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    if let Some(rows) = committed.rows {
        recent.push(rows);
    }
    if let Some(last) = committed.last_position {
        head.bump(last, committed.categories);
        let written = committed
            .outcomes
            .iter()
            .filter(|o| matches!(o, Ok(o) if !o.already_stored));
        let (appends, events) = written.fold((0, 0), |(a, e), o| {
            let o = o.as_ref().expect("filtered to Ok");
            (a + 1, e + o.last_position + 1 - o.first_position)
        });
        stats.transactions.fetch_add(1, Ordering::Relaxed);
        stats.appends.fetch_add(appends, Ordering::Relaxed);
        stats.events.fetch_add(events, Ordering::Relaxed);
        metrics::histogram!("proofline_store_append_batch_events").record(events as f64);
    }
    Ok(committed.outcomes)
}

/// A failure of one statement (a constraint, a bad value) rather than of the
/// connection: worth retrying the group's appends one at a time.
fn is_statement_failure(error: &StoreError) -> bool {
    matches!(error, StoreError::Unavailable(e) if matches!(**e, sqlx::Error::Database(_)))
}
