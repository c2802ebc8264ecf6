//! `proofline rebuild`: replay the store into fresh tables, then swap them
//! in while queries go on.
//!
//! The fresh tables live in a scratch schema (`proofline_read_rebuild`, on
//! Postgres) or a scratch file (embedded). They are filled from the store
//! up to the head at the start, a page per transaction, and checksummed.
//! The swap is one transaction on the live database that first takes the
//! projector's checkpoint lock (so a running projector waits), replaces the
//! table (Postgres: drop and move the fresh one in; SQLite: delete and copy
//! from the attached scratch file) and sets the checkpoint to the rebuilt
//! position; a running projector then finds the checkpoint behind it and
//! reads the few events since from the store.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proofline_commands::store::EventStore;
use sha2::{Digest, Sha256};
use sqlx::Connection;

use crate::db::{Param, ReadDb, ReadError, SCHEMA};
use crate::models::{CHECKPOINTS, Projection};
use crate::projector::ProjectorError;

/// The Postgres schema a rebuild fills before the swap.
pub const REBUILD_SCHEMA: &str = "proofline_read_rebuild";

/// Where the fresh tables are built.
pub enum Scratch {
    /// The same database as the live read models, another schema.
    Postgres { url: String },
    /// A file of its own, attached for the swap.
    Sqlite { path: PathBuf },
}

/// What one rebuild did.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    pub name: &'static str,
    pub events: u64,
    pub position: u64,
    pub rows: u64,
    /// SHA-256 over the rows in key order: equal for equal tables.
    pub checksum: String,
    pub elapsed: Duration,
}

/// The checksum of `projection`'s table in `db`, and its row count.
pub async fn checksum(
    db: &ReadDb,
    projection: &dyn Projection,
) -> Result<(String, u64), ReadError> {
    let columns = projection.columns();
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let kinds: Vec<_> = columns.iter().map(|(_, k)| *k).collect();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        names.join(", "),
        projection.tables()[0],
        names.join(", ")
    );
    let rows = db.fetch(&sql, &[], &kinds).await?;
    let mut hasher = Sha256::new();
    for row in &rows {
        let values: Vec<serde_json::Value> = row
            .iter()
            .map(|p| match p {
                Param::Text(v) => v.clone().into(),
                Param::Int(v) => (*v).into(),
                Param::Bool(v) => (*v).into(),
            })
            .collect();
        hasher.update(serde_json::Value::from(values).to_string().as_bytes());
        hasher.update(b"\n");
    }
    Ok((hex::encode(hasher.finalize()), rows.len() as u64))
}

async fn open_scratch(scratch: &Scratch) -> Result<ReadDb, ReadError> {
    match scratch {
        Scratch::Postgres { url } => ReadDb::postgres_in(url, 2, REBUILD_SCHEMA).await,
        Scratch::Sqlite { path } => ReadDb::sqlite(path).await,
    }
}

/// Rebuilds `projection` from `store` and swaps it into `live`; `progress`
/// hears the position of every page applied and the head it goes to.
pub async fn rebuild(
    live: &ReadDb,
    scratch: &Scratch,
    store: Arc<dyn EventStore>,
    projection: &dyn Projection,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<Rebuilt, ProjectorError> {
    let started = Instant::now();
    let head = store.head().await?.map_or(0, |h| h.position);
    let fresh = open_scratch(scratch).await?;
    for table in projection.tables() {
        fresh
            .execute(&format!("DROP TABLE IF EXISTS {table}"), &[])
            .await?;
    }
    for statement in CHECKPOINTS.iter().chain(projection.schema()) {
        fresh.execute(statement, &[]).await?;
    }
    let mut at = 0;
    let mut events = 0;
    while at < head {
        let page = store.read_all(at, (head - at).min(2_000) as usize).await?;
        if page.is_empty() {
            break;
        }
        let mut tx = fresh.begin().await?;
        projection.apply_batch(&mut tx, &page).await?;
        at = page.last().map_or(at, |e| e.position);
        tx.commit().await?;
        events += page.len() as u64;
        progress(at, head);
    }
    let (sum, rows) = checksum(&fresh, projection).await?;
    fresh.close().await;
    swap(live, scratch, projection, at).await?;
    Ok(Rebuilt {
        name: projection.name(),
        events,
        position: at,
        rows,
        checksum: sum,
        elapsed: started.elapsed(),
    })
}

async fn swap(
    live: &ReadDb,
    scratch: &Scratch,
    projection: &dyn Projection,
    position: u64,
) -> Result<(), ReadError> {
    let name = projection.name();
    for statement in CHECKPOINTS.iter().chain(projection.schema()) {
        live.execute(statement, &[]).await?;
    }
    match (live, scratch) {
        (ReadDb::Postgres(_), Scratch::Postgres { .. }) => {
            let mut tx = live.begin().await?;
            tx.lock_checkpoint(name).await?;
            for table in projection.tables() {
                tx.execute(&format!("DROP TABLE {SCHEMA}.{table}"), &[])
                    .await?;
                tx.execute(
                    &format!("ALTER TABLE {REBUILD_SCHEMA}.{table} SET SCHEMA {SCHEMA}"),
                    &[],
                )
                .await?;
            }
            tx.set_checkpoint(name, position).await?;
            tx.commit().await
        }
        (ReadDb::Sqlite(pool), Scratch::Sqlite { path }) => {
            let mut conn = pool.acquire().await?;
            sqlx::query("ATTACH DATABASE $1 AS rebuild")
                .bind(path.display().to_string())
                .execute(&mut *conn)
                .await?;
            let copied = async {
                let mut tx = conn.begin().await?;
                sqlx::query(
                    "INSERT INTO checkpoints (name, position) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .execute(&mut *tx)
                .await?;
                for table in projection.tables() {
                    sqlx::query(&format!("DELETE FROM main.{table}"))
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(&format!(
                        "INSERT INTO main.{table} SELECT * FROM rebuild.{table}"
                    ))
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query("UPDATE checkpoints SET position = $1 WHERE name = $2")
                    .bind(position as i64)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            }
            .await;
            let detached = sqlx::query("DETACH DATABASE rebuild")
                .execute(&mut *conn)
                .await;
            copied?;
            detached?;
            Ok(())
        }
        _ => Err(ReadError::Data(
            "the scratch space is not on the live read models' backend".into(),
        )),
    }
}
