//! The stored Merkle tree (`tlog_nodes`), for both databases: the hashes of
//! every eighth level, written by the tree follower (`crate::tree`) and read
//! for proofs and tiles. See `proofline_domain::merkle::tree`.

use std::collections::{BTreeMap, HashMap};

use proofline_domain::merkle::Hash;
use proofline_domain::merkle::tree::NodeId;
use sqlx::{PgPool, Row, SqlitePool};

use super::StoreError;
use super::rows::{to_i64, to_u64};

/// Node ids grouped by level, as the queries take them.
fn by_level(ids: &[NodeId]) -> BTreeMap<u32, Vec<i64>> {
    let mut levels: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for id in ids {
        levels.entry(id.level).or_default().push(to_i64(id.index));
    }
    levels
}

fn hash_of(bytes: Vec<u8>) -> Result<Hash, StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::corrupt("tlog_nodes.hash", "not 32 bytes"))
}

/// Rows per insert statement (three parameters each).
const INSERT_CHUNK: usize = 1_000;

pub(crate) async fn pg_size(pool: &PgPool) -> Result<u64, StoreError> {
    let last: Option<i64> = sqlx::query_scalar("SELECT max(idx) FROM tlog_nodes WHERE level = 0")
        .fetch_one(pool)
        .await?;
    last.map_or(Ok(0), |l| Ok(to_u64(l, "tlog_nodes.idx")? + 1))
}

pub(crate) async fn pg_nodes(
    pool: &PgPool,
    ids: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, StoreError> {
    let mut out = HashMap::with_capacity(ids.len());
    for (level, indexes) in by_level(ids) {
        let rows =
            sqlx::query("SELECT idx, hash FROM tlog_nodes WHERE level = $1 AND idx = ANY($2)")
                .bind(i16::try_from(level).unwrap_or(i16::MAX))
                .bind(&indexes)
                .fetch_all(pool)
                .await?;
        for row in rows {
            let index = to_u64(row.try_get("idx")?, "tlog_nodes.idx")?;
            out.insert(NodeId { level, index }, hash_of(row.try_get("hash")?)?);
        }
    }
    Ok(out)
}

pub(crate) async fn pg_store(pool: &PgPool, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    for chunk in nodes.chunks(INSERT_CHUNK) {
        let levels: Vec<i16> = chunk
            .iter()
            .map(|(id, _)| i16::try_from(id.level).unwrap_or(i16::MAX))
            .collect();
        let indexes: Vec<i64> = chunk.iter().map(|(id, _)| to_i64(id.index)).collect();
        let hashes: Vec<&[u8]> = chunk.iter().map(|(_, h)| h.as_slice()).collect();
        sqlx::query(
            "INSERT INTO tlog_nodes (level, idx, hash) \
             SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[]) \
             ON CONFLICT (level, idx) DO NOTHING",
        )
        .bind(&levels)
        .bind(&indexes)
        .bind(&hashes)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn pg_clear(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM tlog_nodes").execute(pool).await?;
    Ok(())
}

pub(crate) async fn sqlite_size(pool: &SqlitePool) -> Result<u64, StoreError> {
    let last: Option<i64> = sqlx::query_scalar("SELECT max(idx) FROM tlog_nodes WHERE level = 0")
        .fetch_one(pool)
        .await?;
    last.map_or(Ok(0), |l| Ok(to_u64(l, "tlog_nodes.idx")? + 1))
}

pub(crate) async fn sqlite_nodes(
    pool: &SqlitePool,
    ids: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, StoreError> {
    let mut out = HashMap::with_capacity(ids.len());
    for (level, indexes) in by_level(ids) {
        for chunk in indexes.chunks(INSERT_CHUNK) {
            let list = serde_json::to_string(chunk).map_err(|e| StoreError::corrupt("ids", e))?;
            let rows = sqlx::query(
                "SELECT idx, hash FROM tlog_nodes WHERE level = ? \
                 AND idx IN (SELECT value FROM json_each(?))",
            )
            .bind(i64::from(level))
            .bind(list)
            .fetch_all(pool)
            .await?;
            for row in rows {
                let index = to_u64(row.try_get("idx")?, "tlog_nodes.idx")?;
                out.insert(NodeId { level, index }, hash_of(row.try_get("hash")?)?);
            }
        }
    }
    Ok(out)
}

pub(crate) async fn sqlite_store(
    pool: &SqlitePool,
    nodes: &[(NodeId, Hash)],
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    for chunk in nodes.chunks(INSERT_CHUNK / 3) {
        let mut builder = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT OR IGNORE INTO tlog_nodes (level, idx, hash) ",
        );
        builder.push_values(chunk, |mut row, (id, hash)| {
            row.push_bind(i64::from(id.level))
                .push_bind(to_i64(id.index))
                .push_bind(hash.to_vec());
        });
        builder.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn sqlite_clear(pool: &SqlitePool) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM tlog_nodes").execute(pool).await?;
    Ok(())
}
