//! The SQLite adapter of the embedded mode.
//!
//! The same writer and planning as on Postgres. The writer opens its
//! transactions with `BEGIN IMMEDIATE`, which takes SQLite's single write
//! lock before the head is read, so a second process on the same file (a
//! `proofline migrate` or `bench` next to a running server) is serialized
//! too. WAL mode lets readers run beside the writer; `synchronous = FULL`
//! makes every commit durable, and group commit pays that fsync once per
//! group.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use proofline_domain::ids::StreamId;
use proofline_domain::log::{Envelope, Timestamp};
use proofline_domain::merkle::Hash;
use proofline_domain::merkle::tree::NodeId;
use secrecy::{ExposeSecret, SecretString};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use tokio::sync::watch;

use super::error::{OpenError, describe_connect_error};
use super::heads::{CategoryHeads, HeadReceiver, HeadSender};
use super::plan::{self, Context, EventRow, HeadRow, SecretRow, StoredEvent};
use super::rows::{parse_hash, parse_stream, parse_time, parse_uuid, to_i64, to_u64};
use super::writer::{Committer, Tx, Writer, WriterStats};
use super::{
    AppendOutcome, AppendRequest, Backend, EventStore, Head, MAX_READ_LIMIT, Prepared,
    SecretRecord, StoreError,
};

/// Rows per INSERT statement (11 parameters each).
const ROWS_PER_INSERT: usize = 64;

macro_rules! select_envelope {
    ($tail:literal) => {
        concat!(
            "SELECT position, event_id, stream_id, stream_version, type, schema_version, ",
            "data, metadata, recorded_at, prev_hash, hash FROM events ",
            $tail
        )
    };
}

/// Opens (creating if needed) the SQLite file with the store's settings.
pub async fn connect_pool(path: &Path) -> Result<SqlitePool, OpenError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .map_err(|e| OpenError::DataDir {
            path: path.display().to_string(),
            reason: describe_connect_error(&e),
        })
}

pub struct SqliteEventStore {
    pool: SqlitePool,
    writer: Writer<SqliteCommitter>,
    head: HeadReceiver,
    path: PathBuf,
}

impl SqliteEventStore {
    /// Opens the store on a migrated file and starts its writer.
    pub async fn open(pool: SqlitePool, path: &Path) -> Result<Self, StoreError> {
        let start = head_row(&pool).await?.map_or(0, |h| h.position);
        let (head_tx, head_rx) = HeadSender::new(start);
        let writer = Writer::spawn(
            SqliteCommitter { pool: pool.clone() },
            std::sync::Arc::new(head_tx),
        );
        Ok(Self {
            pool,
            writer,
            head: head_rx,
            path: path.to_owned(),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

async fn head_row<'e, E>(executor: E) -> Result<Option<HeadRow>, StoreError>
where
    E: sqlx::SqliteExecutor<'e>,
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
            recorded_at: parse_time(row.try_get("recorded_at")?, "recorded_at")?,
        })
    })
    .transpose()
}

struct SqliteCommitter {
    pool: SqlitePool,
}

impl Committer for SqliteCommitter {
    type Db = Sqlite;

    async fn begin(&self) -> Result<Tx<Self>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn context(tx: &mut Tx<Self>, batch: &[Prepared]) -> Result<Context, StoreError> {
        load_context(tx, batch).await
    }

    async fn head(tx: &mut Tx<Self>) -> Result<Option<HeadRow>, StoreError> {
        head_row(&mut **tx).await
    }

    async fn insert_events(tx: &mut Tx<Self>, rows: &[EventRow<'_>]) -> Result<(), StoreError> {
        insert_events(tx, rows).await
    }

    async fn insert_secrets(
        tx: &mut Tx<Self>,
        secrets: &[SecretRow<'_>],
        recorded_at: Timestamp,
    ) -> Result<(), StoreError> {
        let recorded_at = recorded_at.to_rfc3339();
        for row in secrets {
            sqlx::query(
                "INSERT INTO secrets (id, kind, stream_id, material, position, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, stream_id = excluded.stream_id, \
                 material = excluded.material, position = excluded.position, created_at = excluded.created_at",
            )
            .bind(row.secret.id.as_str())
            .bind(row.secret.kind.as_str())
            .bind(row.stream_id.as_str())
            .bind(row.secret.material.expose_secret())
            .bind(to_i64(row.position))
            .bind(recorded_at.as_str())
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

/// Inserts rows in statements of up to [`ROWS_PER_INSERT`] rows.
async fn insert_events(
    conn: &mut sqlx::SqliteConnection,
    rows: &[EventRow<'_>],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut sql = String::from(
            "INSERT INTO events (position, event_id, stream_id, stream_version, type, schema_version, data, \
             metadata, recorded_at, prev_hash, hash) VALUES ",
        );
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 {
                "(?,?,?,?,?,?,?,?,?,?,?)"
            } else {
                ",(?,?,?,?,?,?,?,?,?,?,?)"
            });
        }
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = query
                .bind(to_i64(row.position))
                .bind(row.event_id.to_string())
                .bind(row.stream_id.as_str())
                .bind(to_i64(row.stream_version))
                .bind(row.event_type)
                .bind(i64::from(row.schema_version))
                .bind(row.data)
                .bind(row.metadata)
                .bind(row.recorded_at.to_rfc3339())
                .bind(row.prev_hash.to_hex())
                .bind(row.hash.to_hex());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The head, the batch's stream versions, which of its event ids are
/// stored and which of its secret ids are taken: one statement. `json_each`
/// turns one bound JSON array into an IN list of any length.
async fn load_context(
    tx: &mut Transaction<'static, Sqlite>,
    batch: &[Prepared],
) -> Result<Context, StoreError> {
    let keys = plan::keys(batch);
    let ids: Vec<String> = keys.event_ids.iter().map(|id| id.to_string()).collect();
    let rows = sqlx::query(
        "SELECT * FROM (SELECT 'head' AS kind, position, hash AS text, NULL AS event_id, \
                recorded_at, NULL AS version FROM events ORDER BY position DESC LIMIT 1) \
         UNION ALL \
         SELECT 'version', NULL, stream_id, NULL, NULL, MAX(stream_version) FROM events \
          WHERE stream_id IN (SELECT value FROM json_each(?1)) GROUP BY stream_id \
         UNION ALL \
         SELECT 'event', position, stream_id, event_id, NULL, stream_version FROM events \
          WHERE event_id IN (SELECT value FROM json_each(?2)) \
         UNION ALL \
         SELECT 'secret', NULL, id, NULL, NULL, NULL FROM secrets \
          WHERE id IN (SELECT value FROM json_each(?3))",
    )
    .bind(json_array(&keys.streams)?)
    .bind(json_array(&ids)?)
    .bind(json_array(&keys.secret_ids)?)
    .fetch_all(&mut **tx)
    .await?;
    let mut context = Context::default();
    for row in rows {
        let kind: &str = row.try_get("kind")?;
        let number = |column: &str| -> Result<u64, StoreError> {
            to_u64(
                row.try_get::<Option<i64>, _>(column)?.unwrap_or(-1),
                "position or version",
            )
        };
        let text = || -> Result<String, StoreError> { Ok(row.try_get("text")?) };
        match kind {
            "head" => {
                let recorded_at: Option<String> = row.try_get("recorded_at")?;
                context.head = Some(HeadRow {
                    position: number("position")?,
                    hash: parse_hash(text()?, "hash")?,
                    recorded_at: parse_time(recorded_at.unwrap_or_default(), "recorded_at")?,
                });
            }
            "version" => {
                context
                    .versions
                    .insert(parse_stream(text()?)?, number("version")?);
            }
            "event" => {
                let event_id: Option<String> = row.try_get("event_id")?;
                context.stored_events.insert(
                    parse_uuid(event_id.unwrap_or_default())?,
                    StoredEvent {
                        position: number("position")?,
                        stream_id: parse_stream(text()?)?,
                        stream_version: number("version")?,
                    },
                );
            }
            _ => {
                context.taken_secret_ids.insert(text()?);
            }
        }
    }
    Ok(context)
}

/// A JSON array to bind for `json_each`, which turns it into an IN list.
fn json_array<T: serde::Serialize>(items: &[T]) -> Result<String, StoreError> {
    serde_json::to_string(items).map_err(|e| StoreError::InvalidAppend(e.to_string()))
}

pub(super) fn envelope(row: &SqliteRow) -> Result<Envelope, StoreError> {
    let data: String = row.try_get("data")?;
    let metadata: String = row.try_get("metadata")?;
    Ok(Envelope {
        position: to_u64(row.try_get("position")?, "position")?,
        event_id: parse_uuid(row.try_get("event_id")?)?,
        stream_id: parse_stream(row.try_get("stream_id")?)?,
        stream_version: to_u64(row.try_get("stream_version")?, "stream_version")?,
        event_type: row.try_get("type")?,
        schema_version: u32::try_from(row.try_get::<i64, _>("schema_version")?)
            .map_err(|e| StoreError::corrupt("schema_version", e))?,
        data: serde_json::from_str(&data).map_err(|e| StoreError::corrupt("data", e))?,
        metadata: serde_json::from_str(&metadata)
            .map_err(|e| StoreError::corrupt("metadata", e))?,
        recorded_at: parse_time(row.try_get("recorded_at")?, "recorded_at")?,
        prev_hash: parse_hash(row.try_get("prev_hash")?, "prev_hash")?,
        hash: parse_hash(row.try_get("hash")?, "hash")?,
    })
}

#[async_trait]
impl EventStore for SqliteEventStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        self.writer.append(request).await
    }

    async fn import(&self, envelopes: &[Envelope]) -> Result<(), StoreError> {
        self.writer.import(envelopes).await
    }

    async fn tree_size(&self) -> Result<u64, StoreError> {
        super::tree::sqlite_size(&self.pool).await
    }

    async fn tree_nodes(
        &self,
        ids: &[NodeId],
    ) -> Result<std::collections::HashMap<NodeId, Hash>, StoreError> {
        super::tree::sqlite_nodes(&self.pool, ids).await
    }

    async fn store_tree_nodes(&self, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
        super::tree::sqlite_store(&self.pool, nodes).await
    }

    async fn clear_tree(&self) -> Result<(), StoreError> {
        super::tree::sqlite_clear(&self.pool).await
    }

    async fn read_leaves(&self, after: u64, limit: usize) -> Result<Vec<super::Leaf>, StoreError> {
        if let Some(rows) = self.writer.recent().take(after, limit) {
            return Ok(rows.iter().map(|row| row.leaf()).collect());
        }
        super::tree::sqlite_leaves(&self.pool, after, limit).await
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
        let rows = sqlx::query(select_envelope!(
            "WHERE stream_id = ? AND stream_version > ? ORDER BY stream_version LIMIT ?"
        ))
        .bind(stream_id.as_str())
        .bind(to_i64(after_version))
        .bind(to_i64(limit.min(MAX_READ_LIMIT) as u64))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(envelope).collect()
    }

    async fn last_of_stream(&self, stream_id: &StreamId) -> Result<Option<Envelope>, StoreError> {
        let sql = select_envelope!("WHERE stream_id = ? ORDER BY stream_version DESC LIMIT 1");
        let row = sqlx::query(sql)
            .bind(stream_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(envelope).transpose()
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        if let Some(fresh) = self
            .writer
            .recent()
            .events(after, limit.min(MAX_READ_LIMIT))
        {
            return fresh;
        }
        let rows = sqlx::query(select_envelope!(
            "WHERE position > ? ORDER BY position LIMIT ?"
        ))
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
        self.head.log.clone()
    }

    fn watch_category_heads(&self) -> watch::Receiver<CategoryHeads> {
        self.head.categories.clone()
    }

    async fn secret(&self, id: &str) -> Result<Option<SecretRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, kind, stream_id, material, position, created_at FROM secrets WHERE id = ?",
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
                created_at: parse_time(row.try_get("created_at")?, "created_at")?,
            })
        })
        .transpose()
    }

    async fn secret_ids_of_kind(&self, kind: &str) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM secrets WHERE kind = ? ORDER BY id")
                .bind(kind)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn update_secret(&self, id: &str, material: &SecretString) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE secrets SET material = ? WHERE id = ?")
            .bind(material.expose_secret())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_secret(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM secrets WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn consumer_position(&self, name: &str) -> Result<u64, StoreError> {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM consumer_positions WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        position.map_or(Ok(0), |p| to_u64(p, "consumer position"))
    }

    async fn save_consumer_position(&self, name: &str, position: u64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consumer_positions (name, position, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position, \
             updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(to_i64(position))
        .bind(Timestamp::from_datetime(Utc::now()).to_rfc3339())
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
        self.pool.close().await;
    }
}
