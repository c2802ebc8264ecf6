//! `proofline rebuild`: replay the store into fresh tables, then swap them
//! in while queries go on.
//!
//! The fresh tables live in a scratch schema (`proofline_read_rebuild`, on
//! Postgres) or a scratch file (embedded). They are filled from the store
//! up to the head at the start, a page per transaction (the next page read
//! while one is applied; secondary indexes built at the end), and
//! checksummed.
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
    /// Until the last event was applied (the rest: indexes, checksum, swap).
    pub replayed: Duration,
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
    let mut line = Vec::with_capacity(1_024);
    for row in &rows {
        line.clear();
        row_line(row, &mut line);
        hasher.update(&line);
    }
    Ok((hex::encode(hasher.finalize()), rows.len() as u64))
}

/// A row as one line of the checksum: its values as a compact JSON array
/// and a newline, written without building JSON values.
fn row_line(row: &[Param], line: &mut Vec<u8>) {
    line.push(b'[');
    for (i, value) in row.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        match value {
            Param::Text(Some(text)) => {
                serde_json::to_writer(&mut *line, text).expect("a string always serializes");
            }
            Param::Int(Some(n)) => line.extend_from_slice(n.to_string().as_bytes()),
            Param::Bool(Some(b)) => line.extend_from_slice(if *b { b"true" } else { b"false" }),
            Param::Text(None) | Param::Int(None) | Param::Bool(None) => {
                line.extend_from_slice(b"null");
            }
        }
    }
    line.extend_from_slice(b"]\n");
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
    // Secondary indexes are built once the rows are in, not kept up to
    // date row by row (unique ones stay first: upserts need them).
    let (indexes, tables): (Vec<&str>, Vec<&str>) = CHECKPOINTS
        .iter()
        .chain(projection.schema())
        .partition(|statement| statement.starts_with("CREATE INDEX"));
    for statement in tables {
        fresh.execute(statement, &[]).await?;
    }
    // The next page is read (and parsed) while this one is applied.
    let (pages, mut next_page) = tokio::sync::mpsc::channel(2);
    let reader = tokio::spawn(async move {
        let mut at = 0;
        while at < head {
            let page = store.read_all(at, (head - at).min(2_000) as usize).await?;
            let Some(last) = page.last() else { break };
            at = last.position;
            if pages.send(page).await.is_err() {
                break;
            }
        }
        Ok::<_, proofline_commands::store::StoreError>(())
    });
    let mut at = 0;
    let mut events = 0;
    let applied = async {
        while let Some(page) = next_page.recv().await {
            let mut tx = fresh.begin().await?;
            projection.apply_batch(&mut tx, &page).await?;
            at = page.last().map_or(at, |e| e.position);
            tx.commit().await?;
            events += page.len() as u64;
            progress(at, head);
        }
        Ok::<_, ProjectorError>(())
    }
    .await;
    drop(next_page);
    let read = reader.await.map_err(|e| {
        ProjectorError::Read(ReadError::Data(format!("the log reader stopped: {e}")))
    })?;
    applied?;
    read?;
    let replayed = started.elapsed();
    for statement in indexes {
        fresh.execute(statement, &[]).await?;
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
        replayed,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The checksum's lines are what they were when each row was made a
    /// JSON array of values first: checksums printed by older builds still
    /// compare.
    #[test]
    fn a_row_line_is_the_compact_json_array_of_its_values() {
        let row = [
            Param::Text(Some("é \"q\" \\ \n\u{1}\u{7f}\u{1F600}".into())),
            Param::Text(None),
            Param::Int(Some(-42)),
            Param::Int(Some(i64::MAX)),
            Param::Int(None),
            Param::Bool(Some(true)),
            Param::Bool(Some(false)),
            Param::Bool(None),
        ];
        let values: Vec<serde_json::Value> = row
            .iter()
            .map(|p| match p {
                Param::Text(v) => v.clone().into(),
                Param::Int(v) => (*v).into(),
                Param::Bool(v) => (*v).into(),
            })
            .collect();
        let mut line = Vec::new();
        row_line(&row, &mut line);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            format!("{}\n", serde_json::Value::from(values))
        );
    }
}
