//! The Postgres adapter.
//!
//! One writer per process, and across processes a transaction-scoped advisory
//! lock held through COMMIT: whoever holds it reads the head, assigns the next
//! positions and commits before the next holder reads the head. Commits thus
//! happen in position order, which is what makes a reader's
//! `position > after` scan gapless. After each commit the writer sends a
//! NOTIFY so tails in other processes (a relay, a projector) wake at once.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use proofline_domain::ids::StreamId;
use proofline_domain::log::{Envelope, Timestamp};
use proofline_domain::merkle::Hash;
use proofline_domain::merkle::tree::NodeId;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

mod connect;
mod listen;

pub use connect::{ACQUIRE_TIMEOUT, PgStoreOptions, connect_pool};

use super::breaker::Breaker;
use super::heads::{CategoryHeads, HeadReceiver, HeadSender};
use super::plan::{self, Context, EventRow, HeadRow, SecretRow, StoredEvent};
use super::rows::{parse_hash, parse_stream, to_i64, to_u64};
use super::writer::{Committer, Tx, Writer, WriterStats};
use super::{
    AppendOutcome, AppendRequest, Backend, EventStore, Head, MAX_READ_LIMIT, Prepared,
    SecretRecord, StoreError,
};

/// The advisory lock key of the writer (0x50524f4f464c494e, "PROOFLIN" in
/// ASCII), as a literal
/// so it can be spliced into the transaction's first statement.
macro_rules! writer_lock {
    () => {
        "5787775673024923982"
    };
}
/// The NOTIFY channel that carries the new head position after each commit.
macro_rules! channel {
    () => {
        "proofline_events"
    };
}
pub(super) const CHANNEL: &str = channel!();
/// BEGIN and the writer lock in one round trip (a simple-protocol query may
/// hold several statements).
const BEGIN_LOCKED: &str = concat!("BEGIN; SELECT pg_advisory_xact_lock(", writer_lock!(), ")");

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

pub struct PgEventStore {
    pool: PgPool,
    breaker: Breaker,
    writer_pool: PgPool,
    writer: Writer<PgCommitter>,
    head: HeadReceiver,
    listener: Mutex<Option<JoinHandle<()>>>,
}

impl PgEventStore {
    /// Opens the store on a migrated database and starts its writer and its
    /// LISTEN task.
    pub async fn open(pool: PgPool) -> Result<Self, StoreError> {
        let start = head_row(&pool).await?.map_or(0, |h| h.position);
        let breaker = Breaker::new((*pool.connect_options()).clone());
        let (head_tx, head_rx) = HeadSender::new(start);
        let head_tx = Arc::new(head_tx);
        // The writer has a connection of its own: it never waits behind
        // readers, and skips the pool's ping before each transaction (a
        // broken connection fails that one transaction, and is replaced).
        let writer_pool = PgPoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(
                (*pool.connect_options())
                    .clone()
                    // Its statements never change shape; re-planning the
                    // batch INSERT and the context query for every
                    // transaction cost more than executing them (measured:
                    // 4x the throughput with generic plans). They look rows
                    // up by key only: with sequential scans allowed, the
                    // generic plan made at the first commit of a fresh
                    // database (an empty table, no ANALYZE yet) scanned the
                    // events table, and every commit paid for it as the
                    // table grew (`bench verify`: the context query went
                    // from 3.6 to 12 ms within 30,000 events, most of
                    // Postgres's CPU).
                    .options([
                        ("plan_cache_mode", "force_generic_plan"),
                        ("enable_seqscan", "off"),
                    ]),
            );
        let writer = Writer::spawn(
            PgCommitter {
                pool: writer_pool.clone(),
                breaker: breaker.clone(),
            },
            head_tx.clone(),
        );
        let listener = tokio::spawn(listen::listen(pool.clone(), breaker.clone(), head_tx));
        Ok(Self {
            pool,
            breaker,
            writer_pool,
            writer,
            head: head_rx,
            listener: Mutex::new(Some(listener)),
        })
    }

    /// The pool, for the Postgres-only parts (read models, benchmarks, tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

pub(super) async fn head_row<'e, E>(executor: E) -> Result<Option<HeadRow>, StoreError>
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

struct PgCommitter {
    pool: PgPool,
    breaker: Breaker,
}

impl Committer for PgCommitter {
    type Db = Postgres;

    // Four round trips per group: BEGIN with the lock, the context, the
    // INSERT with its NOTIFY (and the secrets' INSERT, when any), COMMIT.
    async fn begin(&self) -> Result<Tx<Self>, StoreError> {
        Ok(self.breaker.run(self.pool.begin_with(BEGIN_LOCKED)).await?)
    }

    async fn context(tx: &mut Tx<Self>, batch: &[Prepared]) -> Result<Context, StoreError> {
        load_context(tx, batch).await
    }

    async fn head(tx: &mut Tx<Self>) -> Result<Option<HeadRow>, StoreError> {
        head_row(&mut **tx).await
    }

    async fn insert_events(tx: &mut Tx<Self>, rows: &[EventRow<'_>]) -> Result<(), StoreError> {
        // An import may bring many thousands of rows; arrays of a few
        // thousand keep each statement's memory small.
        for chunk in rows.chunks(super::writer::MAX_BATCH_EVENTS) {
            insert_events(&mut **tx, chunk).await?;
        }
        Ok(())
    }

    async fn insert_secrets(
        tx: &mut Tx<Self>,
        secrets: &[SecretRow<'_>],
        recorded_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut ids = Vec::new();
        let mut kinds = Vec::new();
        let mut streams = Vec::new();
        let mut materials = Vec::new();
        let mut positions = Vec::new();
        for row in secrets {
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
             AS u(id, kind, stream_id, material, position) \
             ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, stream_id = EXCLUDED.stream_id, \
             material = EXCLUDED.material, position = EXCLUDED.position, created_at = EXCLUDED.created_at",
        )
        .bind(&ids)
        .bind(&kinds)
        .bind(&streams)
        .bind(&materials)
        .bind(&positions)
        .bind(recorded_at.as_datetime())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// The head, the batch's stream versions, which of its event ids are
/// stored and which of its secret ids are taken: one query, one round trip.
async fn load_context(
    tx: &mut Transaction<'static, Postgres>,
    batch: &[Prepared],
) -> Result<Context, StoreError> {
    let keys = plan::keys(batch);
    let rows = sqlx::query(
        "SELECT 'head' AS kind, position, hash AS text, NULL::uuid AS event_id, recorded_at, \
                NULL::int8 AS version \
           FROM (SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1) AS h \
         UNION ALL \
         SELECT 'version', NULL::int8, stream_id, NULL::uuid, NULL::timestamptz, max(stream_version) \
           FROM events WHERE stream_id = ANY($1) GROUP BY stream_id \
         UNION ALL \
         SELECT 'event', position, stream_id, event_id, NULL::timestamptz, stream_version \
           FROM events WHERE event_id = ANY($2) \
         UNION ALL \
         SELECT 'secret', NULL::int8, id, NULL::uuid, NULL::timestamptz, NULL::int8 \
           FROM secrets WHERE id = ANY($3)",
    )
    .bind(&keys.streams)
    .bind(&keys.event_ids)
    .bind(&keys.secret_ids)
    .fetch_all(&mut **tx)
    .await?;
    let mut context = Context::default();
    for row in rows {
        let kind: &str = row.try_get("kind")?;
        let position = || -> Result<u64, StoreError> {
            to_u64(
                row.try_get::<Option<i64>, _>("position")?.unwrap_or(-1),
                "position",
            )
        };
        let version = || -> Result<u64, StoreError> {
            to_u64(
                row.try_get::<Option<i64>, _>("version")?.unwrap_or(-1),
                "stream_version",
            )
        };
        match kind {
            "head" => {
                let recorded_at: Option<DateTime<Utc>> = row.try_get("recorded_at")?;
                context.head = Some(HeadRow {
                    position: position()?,
                    hash: parse_hash(row.try_get("text")?, "hash")?,
                    recorded_at: Timestamp::from_datetime(recorded_at.unwrap_or_default()),
                });
            }
            "version" => {
                context
                    .versions
                    .insert(parse_stream(row.try_get("text")?)?, version()?);
            }
            "event" => {
                let event_id: Option<Uuid> = row.try_get("event_id")?;
                context.stored_events.insert(
                    event_id.unwrap_or_default(),
                    StoredEvent {
                        position: position()?,
                        stream_id: parse_stream(row.try_get("text")?)?,
                        stream_version: version()?,
                    },
                );
            }
            _ => {
                context.taken_secret_ids.insert(row.try_get("text")?);
            }
        }
    }
    Ok(context)
}

macro_rules! insert_into {
    ($table:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (position, event_id, stream_id, stream_version, type, schema_version, ",
            "data, metadata, recorded_at, prev_hash, hash) ",
            "SELECT u.position, u.event_id, u.stream_id, u.stream_version, u.type, ",
            "u.schema_version, u.data::json, u.metadata::json, u.recorded_at, u.prev_hash, u.hash ",
            "FROM UNNEST($1::int8[], $2::uuid[], $3::text[], $4::int8[], $5::text[], $6::int4[], ",
            "$7::text[], $8::text[], $9::timestamptz[], $10::text[], $11::text[]) ",
            "AS u(position, event_id, stream_id, stream_version, type, schema_version, data, ",
            "metadata, recorded_at, prev_hash, hash)"
        )
    };
}

/// One INSERT for a whole group of rows, from arrays.
async fn insert_events<'e, E>(executor: E, rows: &[EventRow<'_>]) -> Result<(), StoreError>
where
    E: sqlx::PgExecutor<'e>,
{
    let n = rows.len();
    let mut positions = Vec::with_capacity(n);
    let mut event_ids = Vec::with_capacity(n);
    let mut streams = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut schema_versions = Vec::with_capacity(n);
    let mut data = Vec::with_capacity(n);
    let mut metadata = Vec::with_capacity(n);
    let mut recorded_at = Vec::with_capacity(n);
    let mut prev_hashes = Vec::with_capacity(n);
    let mut hashes = Vec::with_capacity(n);
    for row in rows {
        positions.push(to_i64(row.position));
        event_ids.push(row.event_id);
        streams.push(row.stream_id.as_str());
        versions.push(to_i64(row.stream_version));
        types.push(row.event_type);
        schema_versions.push(i32::try_from(row.schema_version).unwrap_or(i32::MAX));
        data.push(row.data);
        metadata.push(row.metadata);
        recorded_at.push(row.recorded_at.as_datetime());
        prev_hashes.push(row.prev_hash.to_hex());
        hashes.push(row.hash.to_hex());
    }
    // The NOTIFY rides on the INSERT: one round trip for both. Its
    // payload is the last position and the categories written (`heads`).
    let sql = concat!(
        "WITH inserted AS (",
        insert_into!("events"),
        " RETURNING position) SELECT pg_notify('",
        channel!(),
        "', max(position)::text || ' ' || $12) FROM inserted"
    );
    let categories = super::writer::categories_of(rows).hex();
    sqlx::query(sql)
        .bind(&positions)
        .bind(&event_ids)
        .bind(&streams)
        .bind(&versions)
        .bind(&types)
        .bind(&schema_versions)
        .bind(&data)
        .bind(&metadata)
        .bind(&recorded_at)
        .bind(&prev_hashes)
        .bind(&hashes)
        .bind(&categories)
        .execute(executor)
        .await?;
    Ok(())
}

pub(super) fn envelope(row: &PgRow) -> Result<Envelope, StoreError> {
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

    async fn import(&self, envelopes: &[Envelope]) -> Result<(), StoreError> {
        self.writer.import(envelopes).await
    }

    async fn tree_size(&self) -> Result<u64, StoreError> {
        self.breaker
            .run(async { super::tree::pg_size(&self.pool).await })
            .await
    }

    async fn tree_nodes(
        &self,
        ids: &[NodeId],
    ) -> Result<std::collections::HashMap<NodeId, Hash>, StoreError> {
        self.breaker
            .run(async { super::tree::pg_nodes(&self.pool, ids).await })
            .await
    }

    async fn store_tree_nodes(&self, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
        self.breaker
            .run(async { super::tree::pg_store(&self.pool, nodes).await })
            .await
    }

    async fn clear_tree(&self) -> Result<(), StoreError> {
        self.breaker
            .run(async { super::tree::pg_clear(&self.pool).await })
            .await
    }

    async fn read_leaves(&self, after: u64, limit: usize) -> Result<Vec<super::Leaf>, StoreError> {
        if let Some(rows) = self.writer.recent().take(after, limit) {
            return Ok(rows.iter().map(|row| row.leaf()).collect());
        }
        self.breaker
            .run(super::tree::pg_leaves(&self.pool, after, limit))
            .await
    }

    fn writer_stats(&self) -> &WriterStats {
        self.writer.stats()
    }

    async fn read_stream(
        &self,
        stream_id: &StreamId,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        self.breaker
            .run(async {
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
            })
            .await
    }

    async fn last_of_stream(&self, stream_id: &StreamId) -> Result<Option<Envelope>, StoreError> {
        self.breaker
            .run(async {
                let sql =
                    select_envelope!("WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1");
                let row = sqlx::query(sql)
                    .bind(stream_id.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(envelope).transpose()
            })
            .await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        if let Some(fresh) = self
            .writer
            .recent()
            .events(after, limit.min(MAX_READ_LIMIT))
        {
            return fresh;
        }
        let sql = select_envelope!("WHERE position > $1 ORDER BY position LIMIT $2");
        let query = sqlx::query(sql)
            .bind(to_i64(after))
            .bind(to_i64(limit.min(MAX_READ_LIMIT) as u64))
            .fetch_all(&self.pool);
        let rows = self.breaker.run(query).await?;
        rows.iter().map(envelope).collect()
    }

    async fn head(&self) -> Result<Option<Head>, StoreError> {
        self.breaker
            .run(async {
                Ok(head_row(&self.pool).await?.map(|h| Head {
                    position: h.position,
                    hash: h.hash,
                }))
            })
            .await
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.log.clone()
    }

    fn watch_category_heads(&self) -> watch::Receiver<CategoryHeads> {
        self.head.categories.clone()
    }

    async fn secret(&self, id: &str) -> Result<Option<SecretRecord>, StoreError> {
        self.breaker.run(async {
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
        })
        .await
    }

    async fn secret_ids_of_kind(&self, kind: &str) -> Result<Vec<String>, StoreError> {
        self.breaker
            .run(async {
                Ok(
                    sqlx::query_scalar("SELECT id FROM secrets WHERE kind = $1 ORDER BY id")
                        .bind(kind)
                        .fetch_all(&self.pool)
                        .await?,
                )
            })
            .await
    }

    async fn update_secret(&self, id: &str, material: &SecretString) -> Result<bool, StoreError> {
        self.breaker
            .run(async {
                let done = sqlx::query("UPDATE secrets SET material = $1 WHERE id = $2")
                    .bind(material.expose_secret())
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            })
            .await
    }

    async fn delete_secret(&self, id: &str) -> Result<(), StoreError> {
        self.breaker
            .run(async {
                sqlx::query("DELETE FROM secrets WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            })
            .await
    }

    async fn consumer_position(&self, name: &str) -> Result<u64, StoreError> {
        self.breaker
            .run(async {
                let position: Option<i64> =
                    sqlx::query_scalar("SELECT position FROM consumer_positions WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&self.pool)
                        .await?;
                position.map_or(Ok(0), |p| to_u64(p, "consumer position"))
            })
            .await
    }

    async fn save_consumer_position(&self, name: &str, position: u64) -> Result<(), StoreError> {
        self.breaker.run(async {
            sqlx::query(
                "INSERT INTO consumer_positions (name, position, updated_at) VALUES ($1, $2, now()) \
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = now()",
            )
            .bind(name)
            .bind(to_i64(position))
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.breaker
            .run(async {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            })
            .await
    }

    fn breaker(&self) -> Option<&Breaker> {
        Some(&self.breaker)
    }

    async fn close(&self) {
        self.writer.close().await;
        self.writer_pool.close().await;
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
