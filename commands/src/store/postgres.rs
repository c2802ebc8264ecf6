//! The Postgres adapter.
//!
//! One writer per process, and across processes a transaction-scoped advisory
//! lock held through COMMIT: whoever holds it reads the head, assigns the next
//! positions and commits before the next holder reads the head. Commits thus
//! happen in position order, which is what makes a reader's
//! `position > after` scan gapless. After each commit the writer sends a
//! NOTIFY so tails in other processes (a relay, a projector) wake at once.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use proofline_domain::ids::StreamId;
use proofline_domain::log::{Envelope, EventHash, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::error::{OpenError, describe_connect_error};
use super::plan::{self, Context, HeadRow, StoredEvent};
use super::writer::{Committed, Committer, Writer, WriterStats};
use super::{
    AppendOutcome, AppendRequest, Backend, EventStore, Head, MAX_READ_LIMIT, SecretRecord,
    StoreError,
};

/// The advisory lock key of the writer ("PROOFLIN" in ASCII).
const WRITER_LOCK: i64 = 0x5052_4f4f_464c_494e;
/// The NOTIFY channel that carries the new head position after each commit.
const CHANNEL: &str = "proofline_events";

/// `SELECT <every envelope column> FROM events <tail>`, as a `&'static str`.
macro_rules! select_envelope {
    ($tail:literal) => {
        concat!(
            "SELECT position, event_id, stream_id, stream_version, type, schema_version, ",
            "data::text AS data, metadata::text AS metadata, recorded_at, prev_hash, hash ",
            "FROM events ",
            $tail
        )
    };
}

/// Connection settings of the Postgres store.
#[derive(Debug, Clone)]
pub struct PgStoreOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Connects a pool, failing fast with one line (and no password) when the
/// server cannot be reached.
pub async fn connect_pool(
    url: &SecretString,
    options: &PgStoreOptions,
) -> Result<PgPool, OpenError> {
    let connect = PgConnectOptions::from_str(url.expose_secret())
        .map_err(|e| OpenError::Unreachable {
            target: "DATABASE_URL".into(),
            reason: describe_connect_error(&e),
        })?
        .application_name("proofline");
    let target = format!(
        "{}:{}/{}",
        connect.get_host(),
        connect.get_port(),
        connect.get_database().unwrap_or("(default database)")
    );
    PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await
        .map_err(|e| OpenError::Unreachable {
            target,
            reason: describe_connect_error(&e),
        })
}

pub struct PgEventStore {
    pool: PgPool,
    writer: Writer,
    head: watch::Receiver<u64>,
    listener: Mutex<Option<JoinHandle<()>>>,
}

impl PgEventStore {
    /// Opens the store on a migrated database and starts its writer and its
    /// LISTEN task.
    pub async fn open(pool: PgPool) -> Result<Self, StoreError> {
        let start = head_row(&pool).await?.map_or(0, |h| h.position);
        let (head_tx, head_rx) = watch::channel(start);
        let writer = Writer::spawn(PgCommitter { pool: pool.clone() }, head_tx.clone());
        let listener = tokio::spawn(listen(pool.clone(), head_tx));
        Ok(Self {
            pool,
            writer,
            head: head_rx,
            listener: Mutex::new(Some(listener)),
        })
    }

    /// The pool, for the Postgres-only parts (read models, benchmarks, tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn writer_stats(&self) -> &WriterStats {
        self.writer.stats()
    }
}

async fn head_row<'e, E>(executor: E) -> Result<Option<HeadRow>, StoreError>
where
    E: sqlx::PgExecutor<'e>,
{
    let row = sqlx::query(
        "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1",
    )
    .fetch_optional(executor)
    .await?;
    row.map(|row| {
        Ok(HeadRow {
            position: to_u64(row.try_get("position")?, "position")?,
            hash: parse_hash(row.try_get("hash")?, "hash")?,
            recorded_at: Timestamp::from_datetime(row.try_get("recorded_at")?),
        })
    })
    .transpose()
}

/// Follows NOTIFYs from every process's writer. When the connection drops,
/// notifications may have been missed, so the head is read again; tails also
/// poll, so a dead listener only costs latency.
async fn listen(pool: PgPool, head: watch::Sender<u64>) {
    let bump = |position: u64| {
        head.send_if_modified(|known| {
            let newer = position > *known;
            if newer {
                *known = position;
            }
            newer
        });
    };
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "cannot LISTEN for new events; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "cannot LISTEN for new events; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if let Ok(position) = n.payload().parse() {
                        bump(position);
                    }
                }
                Ok(None) => {
                    if let Ok(Some(h)) = head_row(&pool).await {
                        bump(h.position);
                    }
                }
                Err(e) => {
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!(error = %e, "LISTEN connection failed; reconnecting");
                    break;
                }
            }
        }
    }
}

struct PgCommitter {
    pool: PgPool,
}

impl Committer for PgCommitter {
    async fn commit<'a>(
        &'a mut self,
        batch: &'a [AppendRequest],
        now: Timestamp,
    ) -> Result<Committed, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITER_LOCK)
            .execute(&mut *tx)
            .await?;
        let context = load_context(&mut tx, batch).await?;
        let plan = plan::plan(context, batch, now);
        let Some(last_position) = plan.last_position() else {
            // Nothing to write (conflicts, duplicates): release the lock at once.
            tx.rollback().await?;
            return Ok(Committed {
                outcomes: plan.outcomes,
                last_position: None,
            });
        };
        insert_events(&mut tx, &plan.rows, plan.recorded_at).await?;
        if !plan.secrets.is_empty() {
            let mut ids = Vec::new();
            let mut kinds = Vec::new();
            let mut streams = Vec::new();
            let mut materials = Vec::new();
            let mut positions = Vec::new();
            for row in &plan.secrets {
                ids.push(row.secret.id.as_str());
                kinds.push(row.secret.kind.as_str());
                streams.push(row.stream_id.as_str());
                materials.push(row.secret.material.expose_secret());
                positions.push(to_i64(row.position));
            }
            sqlx::query(
                "INSERT INTO secrets (id, kind, stream_id, material, position, created_at) \
                 SELECT u.id, u.kind, u.stream_id, u.material, u.position, $6 \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[]) \
                 AS u(id, kind, stream_id, material, position)",
            )
            .bind(&ids)
            .bind(&kinds)
            .bind(&streams)
            .bind(&materials)
            .bind(&positions)
            .bind(plan.recorded_at.as_datetime())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(last_position.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Committed {
            outcomes: plan.outcomes,
            last_position: Some(last_position),
        })
    }
}

async fn load_context(
    tx: &mut Transaction<'static, Postgres>,
    batch: &[AppendRequest],
) -> Result<Context, StoreError> {
    let keys = plan::keys(batch);
    let mut context = Context {
        head: head_row(&mut **tx).await?,
        ..Context::default()
    };
    let versions = sqlx::query(
        "SELECT stream_id, max(stream_version) AS version FROM events \
         WHERE stream_id = ANY($1) GROUP BY stream_id",
    )
    .bind(&keys.streams)
    .fetch_all(&mut **tx)
    .await?;
    for row in versions {
        let stream = parse_stream(row.try_get("stream_id")?)?;
        context
            .versions
            .insert(stream, to_u64(row.try_get("version")?, "stream_version")?);
    }
    let stored = sqlx::query(
        "SELECT event_id, position, stream_id, stream_version FROM events WHERE event_id = ANY($1)",
    )
    .bind(&keys.event_ids)
    .fetch_all(&mut **tx)
    .await?;
    for row in stored {
        context.stored_events.insert(
            row.try_get("event_id")?,
            StoredEvent {
                position: to_u64(row.try_get("position")?, "position")?,
                stream_id: parse_stream(row.try_get("stream_id")?)?,
                stream_version: to_u64(row.try_get("stream_version")?, "stream_version")?,
            },
        );
    }
    if !keys.secret_ids.is_empty() {
        let taken: Vec<String> = sqlx::query_scalar("SELECT id FROM secrets WHERE id = ANY($1)")
            .bind(&keys.secret_ids)
            .fetch_all(&mut **tx)
            .await?;
        context.taken_secret_ids.extend(taken);
    }
    Ok(context)
}

/// One INSERT for the whole group, from arrays.
async fn insert_events(
    tx: &mut Transaction<'static, Postgres>,
    rows: &[Envelope],
    recorded_at: Timestamp,
) -> Result<(), StoreError> {
    let n = rows.len();
    let mut positions = Vec::with_capacity(n);
    let mut event_ids = Vec::with_capacity(n);
    let mut streams = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut schema_versions = Vec::with_capacity(n);
    let mut data = Vec::with_capacity(n);
    let mut metadata = Vec::with_capacity(n);
    let mut prev_hashes = Vec::with_capacity(n);
    let mut hashes = Vec::with_capacity(n);
    for row in rows {
        positions.push(to_i64(row.position));
        event_ids.push(row.event_id);
        streams.push(row.stream_id.as_str());
        versions.push(to_i64(row.stream_version));
        types.push(row.event_type.as_str());
        schema_versions.push(i32::try_from(row.schema_version).unwrap_or(i32::MAX));
        data.push(json_text(&row.data)?);
        metadata.push(json_text(&row.metadata)?);
        prev_hashes.push(row.prev_hash.to_hex());
        hashes.push(row.hash.to_hex());
    }
    sqlx::query(
        "INSERT INTO events (position, event_id, stream_id, stream_version, type, schema_version, \
         data, metadata, recorded_at, prev_hash, hash) \
         SELECT u.position, u.event_id, u.stream_id, u.stream_version, u.type, u.schema_version, \
         u.data::json, u.metadata::json, $9, u.prev_hash, u.hash \
         FROM UNNEST($1::int8[], $2::uuid[], $3::text[], $4::int8[], $5::text[], $6::int4[], \
         $7::text[], $8::text[], $10::text[], $11::text[]) \
         AS u(position, event_id, stream_id, stream_version, type, schema_version, data, metadata, \
         prev_hash, hash)",
    )
    .bind(&positions)
    .bind(&event_ids)
    .bind(&streams)
    .bind(&versions)
    .bind(&types)
    .bind(&schema_versions)
    .bind(&data)
    .bind(&metadata)
    .bind(recorded_at.as_datetime())
    .bind(&prev_hashes)
    .bind(&hashes)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) fn json_text(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::InvalidAppend(format!("event data: {e}")))
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|e| StoreError::corrupt(what, e))
}

fn parse_stream(value: String) -> Result<StreamId, StoreError> {
    StreamId::parse(value).map_err(|e| StoreError::corrupt("stream_id", e))
}

fn parse_hash(value: String, what: &str) -> Result<EventHash, StoreError> {
    value.parse().map_err(|e| StoreError::corrupt(what, e))
}

fn envelope(row: &PgRow) -> Result<Envelope, StoreError> {
    let data: String = row.try_get("data")?;
    let metadata: String = row.try_get("metadata")?;
    let recorded_at: DateTime<Utc> = row.try_get("recorded_at")?;
    Ok(Envelope {
        position: to_u64(row.try_get("position")?, "position")?,
        event_id: row.try_get::<Uuid, _>("event_id")?,
        stream_id: parse_stream(row.try_get("stream_id")?)?,
        stream_version: to_u64(row.try_get("stream_version")?, "stream_version")?,
        event_type: row.try_get("type")?,
        schema_version: u32::try_from(row.try_get::<i32, _>("schema_version")?)
            .map_err(|e| StoreError::corrupt("schema_version", e))?,
        data: serde_json::from_str(&data).map_err(|e| StoreError::corrupt("data", e))?,
        metadata: serde_json::from_str(&metadata)
            .map_err(|e| StoreError::corrupt("metadata", e))?,
        recorded_at: Timestamp::from_datetime(recorded_at),
        prev_hash: parse_hash(row.try_get("prev_hash")?, "prev_hash")?,
        hash: parse_hash(row.try_get("hash")?, "hash")?,
    })
}

#[async_trait]
impl EventStore for PgEventStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        self.writer.append(request).await
    }

    async fn read_stream(
        &self,
        stream_id: &StreamId,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        let sql = select_envelope!(
            "WHERE stream_id = $1 AND stream_version > $2 ORDER BY stream_version LIMIT $3"
        );
        let rows = sqlx::query(sql)
            .bind(stream_id.as_str())
            .bind(to_i64(after_version))
            .bind(to_i64(limit.min(MAX_READ_LIMIT) as u64))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(envelope).collect()
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        let sql = select_envelope!("WHERE position > $1 ORDER BY position LIMIT $2");
        let rows = sqlx::query(sql)
            .bind(to_i64(after))
            .bind(to_i64(limit.min(MAX_READ_LIMIT) as u64))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(envelope).collect()
    }

    async fn head(&self) -> Result<Option<Head>, StoreError> {
        Ok(head_row(&self.pool).await?.map(|h| Head {
            position: h.position,
            hash: h.hash,
        }))
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }

    async fn secret(&self, id: &str) -> Result<Option<SecretRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, kind, stream_id, material, position, created_at FROM secrets WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(SecretRecord {
                id: row.try_get("id")?,
                kind: row.try_get("kind")?,
                stream_id: parse_stream(row.try_get("stream_id")?)?,
                material: SecretString::from(row.try_get::<String, _>("material")?),
                position: to_u64(row.try_get("position")?, "position")?,
                created_at: Timestamp::from_datetime(row.try_get("created_at")?),
            })
        })
        .transpose()
    }

    async fn consumer_position(&self, name: &str) -> Result<u64, StoreError> {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM consumer_positions WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        position.map_or(Ok(0), |p| to_u64(p, "consumer position"))
    }

    async fn save_consumer_position(&self, name: &str, position: u64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consumer_positions (name, position, updated_at) VALUES ($1, $2, now()) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = now()",
        )
        .bind(name)
        .bind(to_i64(position))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.writer.close().await;
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(listener) = listener {
            listener.abort();
        }
        self.pool.close().await;
    }
}
