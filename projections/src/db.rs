//! The read models' database: PostgreSQL (schema `proofline_read`, next to
//! the log) or, embedded, a SQLite file of its own beside the log (so
//! projector writes never wait on the log's writer).
//!
//! Read models are few and simple, so their SQL is written once, in the
//! subset both databases speak (`$n` parameters, TEXT, BIGINT, BOOLEAN,
//! `ON CONFLICT`), and run through [`ReadDb`]. Times are RFC 3339 text in
//! UTC with microseconds, which sorts as time does.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, Row, Sqlite, Transaction};

/// The Postgres schema of the read models.
pub const SCHEMA: &str = "proofline_read";

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("read-model database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("read-model data: {0}")]
    Data(String),
}

/// A value bound to, or read from, a read-model statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(Option<bool>),
}

impl Param {
    pub fn text(value: impl Into<String>) -> Self {
        Param::Text(Some(value.into()))
    }

    pub fn int(value: i64) -> Self {
        Param::Int(Some(value))
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Param::Text(Some(t)) => Some(t),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Param::Int(v) => *v,
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Param::Bool(v) => *v,
            _ => None,
        }
    }
}

/// The kind of a selected column.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Text,
    Int,
    Bool,
}

macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for param in $params {
            query = match param {
                Param::Text(v) => query.bind(v.clone()),
                Param::Int(v) => query.bind(*v),
                Param::Bool(v) => query.bind(*v),
            };
        }
        query
    }};
}

macro_rules! read_row {
    ($row:expr, $columns:expr) => {{
        let mut values = Vec::with_capacity($columns.len());
        for (i, kind) in $columns.iter().enumerate() {
            values.push(match kind {
                Kind::Text => Param::Text($row.try_get::<Option<String>, _>(i)?),
                Kind::Int => Param::Int($row.try_get::<Option<i64>, _>(i)?),
                Kind::Bool => Param::Bool($row.try_get::<Option<bool>, _>(i)?),
            });
        }
        values
    }};
}

#[derive(Clone, Debug)]
pub enum ReadDb {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl ReadDb {
    /// The read models in `url`'s database, schema [`SCHEMA`].
    pub async fn postgres(url: &str, max_connections: u32) -> Result<Self, ReadError> {
        Self::postgres_in(url, max_connections, SCHEMA).await
    }

    /// The read models on a hot standby of the primary (streaming
    /// replication): read only, and nothing created there.
    pub async fn postgres_replica(url: &str, max_connections: u32) -> Result<Self, ReadError> {
        let options = PgConnectOptions::from_str(url)?
            .application_name("proofline-replica")
            .options([
                ("search_path", SCHEMA),
                ("default_transaction_read_only", "on"),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(ReadDb::Postgres(pool))
    }

    /// Tables in `schema` of `url`'s database (a rebuild's scratch schema).
    pub async fn postgres_in(
        url: &str,
        max_connections: u32,
        schema: &str,
    ) -> Result<Self, ReadError> {
        let options = PgConnectOptions::from_str(url)?
            .application_name("proofline-read")
            // A read model is rebuilt from the log and its checkpoint
            // commits with its rows: a crash that loses the last commits
            // only makes the projector apply those events again. So no
            // commit waits for its WAL flush.
            .options([("search_path", schema), ("synchronous_commit", "off")]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .execute(&pool)
            .await?;
        Ok(ReadDb::Postgres(pool))
    }

    /// The read models in their own SQLite file.
    pub async fn sqlite(path: &Path) -> Result<Self, ReadError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A read model is rebuilt from the log; NORMAL loses at most
            // the last commits on power loss, which the projector redoes.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(ReadDb::Sqlite(pool))
    }

    pub async fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, ReadError> {
        Ok(match self {
            ReadDb::Postgres(pool) => bind_all!(sqlx::query(sql), params)
                .execute(pool)
                .await?
                .rows_affected(),
            ReadDb::Sqlite(pool) => bind_all!(sqlx::query(sql), params)
                .execute(pool)
                .await?
                .rows_affected(),
        })
    }

    pub async fn fetch(
        &self,
        sql: &str,
        params: &[Param],
        columns: &[Kind],
    ) -> Result<Vec<Vec<Param>>, ReadError> {
        let mut out = Vec::new();
        match self {
            ReadDb::Postgres(pool) => {
                for row in bind_all!(sqlx::query(sql), params).fetch_all(pool).await? {
                    out.push(read_row!(row, columns));
                }
            }
            ReadDb::Sqlite(pool) => {
                for row in bind_all!(sqlx::query(sql), params).fetch_all(pool).await? {
                    out.push(read_row!(row, columns));
                }
            }
        }
        Ok(out)
    }

    pub async fn begin(&self) -> Result<ReadTx, ReadError> {
        Ok(match self {
            ReadDb::Postgres(pool) => ReadTx::Postgres(pool.begin().await?),
            ReadDb::Sqlite(pool) => ReadTx::Sqlite(pool.begin().await?),
        })
    }

    /// The position a projector's checkpoint says it reached.
    pub async fn checkpoint(&self, name: &str) -> Result<u64, ReadError> {
        let rows = self
            .fetch(
                "SELECT position FROM checkpoints WHERE name = $1",
                &[Param::text(name)],
                &[Kind::Int],
            )
            .await?;
        Ok(rows
            .first()
            .and_then(|r| r[0].as_int())
            .map_or(0, |p| p as u64))
    }

    pub async fn close(&self) {
        match self {
            ReadDb::Postgres(pool) => pool.close().await,
            ReadDb::Sqlite(pool) => pool.close().await,
        }
    }
}

/// One read-model transaction.
pub enum ReadTx {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

impl ReadTx {
    pub async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, ReadError> {
        Ok(match self {
            ReadTx::Postgres(tx) => bind_all!(sqlx::query(sql), params)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            ReadTx::Sqlite(tx) => bind_all!(sqlx::query(sql), params)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
        })
    }

    pub async fn fetch(
        &mut self,
        sql: &str,
        params: &[Param],
        columns: &[Kind],
    ) -> Result<Vec<Vec<Param>>, ReadError> {
        let mut out = Vec::new();
        match self {
            ReadTx::Postgres(tx) => {
                for row in bind_all!(sqlx::query(sql), params)
                    .fetch_all(&mut **tx)
                    .await?
                {
                    out.push(read_row!(row, columns));
                }
            }
            ReadTx::Sqlite(tx) => {
                for row in bind_all!(sqlx::query(sql), params)
                    .fetch_all(&mut **tx)
                    .await?
                {
                    out.push(read_row!(row, columns));
                }
            }
        }
        Ok(out)
    }

    /// `name`'s checkpoint, locked until this transaction ends (on
    /// Postgres; a SQLite write transaction excludes every other anyway).
    /// Whoever changes a read model takes this lock first, so projectors
    /// and a rebuild's swap never interleave.
    pub async fn lock_checkpoint(&mut self, name: &str) -> Result<u64, ReadError> {
        self.execute(
            "INSERT INTO checkpoints (name, position) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
            &[Param::text(name)],
        )
        .await?;
        let sql = match self {
            ReadTx::Postgres(_) => "SELECT position FROM checkpoints WHERE name = $1 FOR UPDATE",
            ReadTx::Sqlite(_) => "SELECT position FROM checkpoints WHERE name = $1",
        };
        let rows = self.fetch(sql, &[Param::text(name)], &[Kind::Int]).await?;
        Ok(rows
            .first()
            .and_then(|r| r[0].as_int())
            .map_or(0, |p| p as u64))
    }

    /// Moves `name`'s checkpoint to `position`.
    pub async fn set_checkpoint(&mut self, name: &str, position: u64) -> Result<(), ReadError> {
        self.execute(
            "INSERT INTO checkpoints (name, position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            &[Param::text(name), Param::int(position as i64)],
        )
        .await?;
        Ok(())
    }

    pub async fn commit(self) -> Result<(), ReadError> {
        match self {
            ReadTx::Postgres(tx) => tx.commit().await?,
            ReadTx::Sqlite(tx) => tx.commit().await?,
        }
        Ok(())
    }
}
