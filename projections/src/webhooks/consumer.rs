//! The webhook consumer: sends what the deliveries read model says is due,
//! and records each attempt's outcome in the log.
//!
//! Nothing is kept only in memory: a delivery stays `pending` in the read
//! model until a WebhookDelivered or WebhookDeliveryFailed is projected, so
//! a crash between sending and recording sends it again (at least once,
//! with the same `webhook-id`, which receivers use to drop duplicates).
//!
//! Isolation: each lender has its own lane of `per_lender` requests in
//! flight, the due query returns at most a few rows per lender, and no
//! request waits for another lender's; a receiver that hangs holds only its
//! own lane, for at most the request timeout.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use proofline_commands::handler::{CommandContext, CommandError};
use proofline_commands::store::EventStore;
use proofline_commands::webhooks::{record_attempt, secret_of};
use proofline_domain::lender::LenderId;
use proofline_domain::log::{Metadata, Timestamp};
use proofline_domain::webhook_delivery::{
    AttemptOutcome, DEFAULT_RETRY_SCHEDULE, DeliveryError, DeliveryId, next_delay,
};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::client::{ClientOptions, Sent, WebhookClient};
use crate::db::{Kind, Param, ReadDb, ReadError};

#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    pub client: ClientOptions,
    /// Delays after each failed attempt of a round; its length is the
    /// number of retries.
    pub schedule: Vec<Duration>,
    /// Requests in flight per lender.
    pub per_lender: usize,
    /// Requests in flight in all.
    pub concurrency: usize,
    /// The longest pause between looks at the read model (a projector in
    /// this process wakes the consumer sooner).
    pub poll: Duration,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self {
            client: ClientOptions::default(),
            schedule: DEFAULT_RETRY_SCHEDULE.to_vec(),
            per_lender: 4,
            concurrency: 256,
            poll: Duration::from_millis(500),
        }
    }
}

/// A due delivery as the read model has it.
#[derive(Debug, Clone)]
struct Due {
    id: Uuid,
    lender: LenderId,
    body: String,
    attempts: u32,
    round_attempts: u32,
    version: i64,
    created_ms: i64,
}

/// A delivery this process is sending, or sent and waits to see projected.
struct Flight {
    /// The stream version its outcome was recorded at.
    recorded: Option<i64>,
    since: Instant,
    /// Not before then (after a failure to read what sending needs).
    hold_until: Option<Instant>,
}

struct Shared {
    store: Arc<dyn EventStore>,
    db: ReadDb,
    sealing_key: Arc<proofline_commands::sealing::SealingKey>,
    client: WebhookClient,
    schedule: Vec<Duration>,
    flights: Mutex<HashMap<Uuid, Flight>>,
}

pub struct WebhookConsumer {
    shared: Arc<Shared>,
    options: ConsumerOptions,
}

/// How long a sent delivery waits to be seen projected before it may be
/// sent again.
const FORGET_AFTER: Duration = Duration::from_secs(300);
/// How long a delivery waits after a failure of the store or read model.
const HOLD: Duration = Duration::from_secs(5);
/// Rows per lender a look at the read model returns.
const PER_LENDER_ROWS: i64 = 16;
/// Rows a look returns in all.
const ROWS: i64 = 2_000;
/// The shortest pause between looks.
const MIN_PAUSE: Duration = Duration::from_millis(5);

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

impl WebhookConsumer {
    pub fn new(
        store: Arc<dyn EventStore>,
        db: ReadDb,
        sealing_key: Arc<proofline_commands::sealing::SealingKey>,
        options: ConsumerOptions,
    ) -> Result<Self, String> {
        let client = WebhookClient::new(&options.client)?;
        Ok(Self {
            shared: Arc::new(Shared {
                store,
                db,
                sealing_key,
                client,
                schedule: options.schedule.clone(),
                flights: Mutex::new(HashMap::new()),
            }),
            options,
        })
    }

    /// Sends due deliveries until `shutdown`, then waits for the requests
    /// in flight (each ends within the request timeout) and records them.
    /// `wake` is the deliveries projector's position, when it runs here.
    pub async fn run(
        &self,
        mut wake: Option<watch::Receiver<u64>>,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        tokio::pin!(shutdown);
        let global = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let per_lender = self.options.per_lender.max(1);
        let mut lanes: HashMap<LenderId, Arc<Semaphore>> = HashMap::new();
        let mut tasks = JoinSet::new();
        let mut failures = 0u32;
        loop {
            let now = now_ms();
            let mut pause = self.options.poll;
            match self.look(now).await {
                Ok((due, next)) => {
                    failures = 0;
                    for row in due {
                        if !self.claim(&row) {
                            continue;
                        }
                        let lane = lanes
                            .entry(row.lender)
                            .or_insert_with(|| Arc::new(Semaphore::new(per_lender)))
                            .clone();
                        let Ok(lane_permit) = lane.try_acquire_owned() else {
                            self.unclaim(row.id);
                            continue;
                        };
                        let Ok(permit) = global.clone().try_acquire_owned() else {
                            self.unclaim(row.id);
                            break;
                        };
                        let shared = self.shared.clone();
                        tasks.spawn(async move {
                            shared.attempt(row).await;
                            drop((lane_permit, permit));
                        });
                    }
                    if let Some(next) = next {
                        let until = Duration::from_millis(next.saturating_sub(now).max(0) as u64);
                        pause = pause.min(until);
                    }
                }
                Err(error) => {
                    failures += 1;
                    pause = Duration::from_millis(100 * u64::from(failures.min(50)));
                    tracing::warn!(%error, retry_in = ?pause, "cannot read the due webhook deliveries");
                }
            }
            lanes.retain(|_, lane| lane.available_permits() < per_lender);
            self.forget_old();
            let pause = tokio::time::sleep(pause.max(MIN_PAUSE));
            tokio::select! {
                _ = &mut shutdown => break,
                _ = pause => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                Ok(()) = async {
                    match wake.as_mut() {
                        Some(w) => w.changed().await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
            // Whatever else woke meanwhile is seen by the next look.
            while tasks.try_join_next().is_some() {}
            tokio::time::sleep(MIN_PAUSE).await;
        }
        while tasks.join_next().await.is_some() {}
    }

    /// The due deliveries (a few per lender) and the next time one is due.
    async fn look(&self, now: i64) -> Result<(Vec<Due>, Option<i64>), ReadError> {
        let rows = self
            .shared
            .db
            .fetch(
                "SELECT delivery_id, lender_id, body, attempts, round_attempts, version, created_ms \
                 FROM (SELECT delivery_id, lender_id, body, attempts, round_attempts, version, \
                       created_ms, next_attempt_ms, event_position, ROW_NUMBER() OVER \
                       (PARTITION BY lender_id ORDER BY next_attempt_ms, event_position) AS lane_rank \
                       FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_ms <= $1) due \
                 WHERE lane_rank <= $2 ORDER BY next_attempt_ms, event_position LIMIT $3",
                &[
                    Param::int(now),
                    Param::int(PER_LENDER_ROWS),
                    Param::int(ROWS),
                ],
                &[
                    Kind::Text,
                    Kind::Text,
                    Kind::Text,
                    Kind::Int,
                    Kind::Int,
                    Kind::Int,
                    Kind::Int,
                ],
            )
            .await?;
        let next = self
            .shared
            .db
            .fetch(
                "SELECT MIN(next_attempt_ms) FROM webhook_deliveries \
                 WHERE status = 'pending' AND next_attempt_ms > $1",
                &[Param::int(now)],
                &[Kind::Int],
            )
            .await?
            .first()
            .and_then(|r| r[0].as_int());
        let due = rows
            .into_iter()
            .filter_map(|row| {
                Some(Due {
                    id: Uuid::parse_str(row[0].as_text()?).ok()?,
                    lender: LenderId::from_uuid(Uuid::parse_str(row[1].as_text()?).ok()?),
                    body: row[2].as_text()?.to_owned(),
                    attempts: u32::try_from(row[3].as_int()?).ok()?,
                    round_attempts: u32::try_from(row[4].as_int()?).ok()?,
                    version: row[5].as_int()?,
                    created_ms: row[6].as_int()?,
                })
            })
            .collect();
        Ok((due, next))
    }

    /// Marks `row` as being sent, unless it is already, or its last
    /// recorded outcome is not projected yet.
    fn claim(&self, row: &Due) -> bool {
        let mut flights = self.shared.flights.lock().expect("not poisoned");
        if let Some(flight) = flights.get(&row.id) {
            let projected = flight.recorded.is_some_and(|v| row.version >= v);
            let released = flight.hold_until.is_some_and(|t| Instant::now() >= t);
            if !projected && !released {
                return false;
            }
        }
        flights.insert(
            row.id,
            Flight {
                recorded: None,
                since: Instant::now(),
                hold_until: None,
            },
        );
        true
    }

    fn unclaim(&self, id: Uuid) {
        self.shared
            .flights
            .lock()
            .expect("not poisoned")
            .remove(&id);
    }

    fn forget_old(&self) {
        self.shared
            .flights
            .lock()
            .expect("not poisoned")
            .retain(|_, f| {
                let done = f.recorded.is_some() || f.hold_until.is_some();
                !done || f.since.elapsed() < FORGET_AFTER
            });
    }
}

impl Shared {
    /// One attempt: look up the target and secret, POST, record.
    async fn attempt(&self, row: Due) {
        let id = row.id.to_string();
        let target = self
            .db
            .fetch(
                "SELECT url FROM webhook_targets WHERE lender_id = $1",
                &[Param::text(row.lender.to_string())],
                &[Kind::Text],
            )
            .await
            .map(|rows| rows.first().and_then(|r| r[0].as_text().map(str::to_owned)));
        let secret = secret_of(self.store.as_ref(), &self.sealing_key, row.lender).await;
        let started = Instant::now();
        let sent = match (target, secret) {
            (Ok(Some(url)), Ok(Some(secret))) => {
                let timestamp = Utc::now().timestamp();
                Some(
                    self.client
                        .send(&url, &secret, &id, timestamp, &row.body)
                        .await,
                )
            }
            (Ok(_), Ok(_)) => None,
            (Err(error), _) => {
                tracing::warn!(%error, delivery = %id, "cannot read the webhook target; retrying later");
                return self.hold(row.id);
            }
            (_, Err(error)) => {
                tracing::warn!(%error, delivery = %id, "cannot open the webhook secret; retrying later");
                return self.hold(row.id);
            }
        };
        let elapsed = started.elapsed();
        let now = Timestamp::from_datetime(Utc::now());
        let outcome = match sent {
            Some(Sent::Accepted(status)) => {
                metrics::counter!("proofline_webhook_attempts_total", "result" => "accepted")
                    .increment(1);
                metrics::histogram!("proofline_webhook_attempt_duration_seconds")
                    .record(elapsed.as_secs_f64());
                let latency = (now_ms() - row.created_ms).max(0) as f64 / 1_000.0;
                metrics::histogram!("proofline_webhook_delivery_latency_seconds").record(latency);
                AttemptOutcome::Delivered { status }
            }
            Some(Sent::Refused { error, status }) => {
                metrics::counter!("proofline_webhook_attempts_total", "result" => "refused")
                    .increment(1);
                metrics::histogram!("proofline_webhook_attempt_duration_seconds")
                    .record(elapsed.as_secs_f64());
                let retry_at = next_delay(&self.schedule, row.round_attempts + 1, random_unit())
                    .and_then(|d| chrono::Duration::from_std(d).ok())
                    .map(|d| Timestamp::from_datetime(now.as_datetime() + d));
                AttemptOutcome::Failed {
                    error,
                    status,
                    retry_at,
                }
            }
            None => AttemptOutcome::Failed {
                error: "the lender has no webhook configured any more".into(),
                status: None,
                retry_at: None,
            },
        };
        let result = match &outcome {
            AttemptOutcome::Delivered { .. } => "delivered",
            AttemptOutcome::Failed {
                retry_at: Some(_), ..
            } => "retrying",
            AttemptOutcome::Failed { .. } => "failed",
        };
        let context = CommandContext {
            now,
            metadata: Metadata {
                actor: Some("webhooks".into()),
                causation_id: Some(id.clone()),
                ..Metadata::default()
            },
        };
        match record_attempt(
            self.store.as_ref(),
            &context,
            DeliveryId::of_event(row.id),
            row.lender,
            row.attempts + 1,
            outcome,
        )
        .await
        {
            Ok(done) => {
                metrics::counter!("proofline_webhook_deliveries_total", "outcome" => result)
                    .increment(1);
                tracing::debug!(delivery = %id, outcome = result, attempt = row.attempts + 1,
                    "webhook attempt recorded");
                self.settle(row.id, done.outcome.stream_version as i64);
            }
            Err(CommandError::Rejected(rejected))
                if matches!(
                    rejected.downcast_ref::<DeliveryError>(),
                    Some(DeliveryError::AttemptRecorded { .. } | DeliveryError::Settled(_))
                ) =>
            {
                // Another consumer recorded this attempt (or the last one)
                // first.
                tracing::debug!(delivery = %id, %rejected, "webhook attempt recorded elsewhere");
                self.settle(row.id, row.version + 1);
            }
            Err(error) => {
                tracing::warn!(delivery = %id, %error,
                    "cannot record a webhook attempt; it is sent again later");
                self.hold(row.id);
            }
        }
    }

    /// The delivery may be sent again in a while (what sending needs could
    /// not be read, or the outcome not recorded).
    fn hold(&self, id: Uuid) {
        if let Some(flight) = self.flights.lock().expect("not poisoned").get_mut(&id) {
            flight.hold_until = Some(Instant::now() + HOLD);
            flight.since = Instant::now();
        }
    }

    /// The delivery waits until the read model shows `version`.
    fn settle(&self, id: Uuid, version: i64) {
        if let Some(flight) = self.flights.lock().expect("not poisoned").get_mut(&id) {
            flight.recorded = Some(version);
            flight.since = Instant::now();
        }
    }
}
