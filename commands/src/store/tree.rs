//! The stored Merkle tree (`tlog_tiles`), for both databases: the C2SP
//! tiles of the tree (see `proofline_domain::merkle::tree`), one row per
//! tile, its `hashes` the 32-byte hashes of up to 256 consecutive nodes of
//! one tile level. The follower (`crate::tree`) writes a full tile once and
//! grows the rightmost, partial one; proofs and tile routes read them.
//!
//! A row per tile rather than per node: the follower writes one row per 256
//! leaves instead of 256 (what an append costs with the follower beside
//! it, BENCHMARKS.md), and a tile is served from one row.

use std::collections::{BTreeMap, HashMap};

use proofline_domain::log::{Envelope, EventHash, HashInput, Timestamp};
use proofline_domain::merkle::tree::{NodeId, TILE_WIDTH};
use proofline_domain::merkle::{Hash, leaf_hash};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgPool, Row, SqlitePool};

use super::rows::{parse_hash, parse_time, parse_uuid, to_i64, to_u64};
use super::{Leaf, MAX_READ_LIMIT, StoreError};

const HASH: usize = 32;

/// Tiles per insert statement.
const INSERT_CHUNK: usize = 200;

/// A tile: its level and its index at that level.
type TileId = (u32, u64);

fn tile_of(id: NodeId) -> (TileId, usize) {
    (
        (id.level, id.index / TILE_WIDTH),
        (id.index % TILE_WIDTH) as usize * HASH,
    )
}

/// Tile indexes grouped by level, as the queries take them.
fn tiles_by_level(ids: impl IntoIterator<Item = TileId>) -> BTreeMap<u32, Vec<i64>> {
    let mut levels: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for (level, index) in ids {
        let indexes = levels.entry(level).or_default();
        if indexes.last() != Some(&to_i64(index)) {
            indexes.push(to_i64(index));
        }
    }
    levels
}

fn checked(bytes: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(HASH) || bytes.len() > HASH * 256 {
        return Err(StoreError::corrupt(
            "tlog_tiles.hashes",
            format!("{} bytes is not 1 to 256 hashes", bytes.len()),
        ));
    }
    Ok(bytes)
}

/// The hashes of `ids` found in `tiles`.
fn pick(ids: &[NodeId], tiles: &HashMap<TileId, Vec<u8>>) -> HashMap<NodeId, Hash> {
    ids.iter()
        .filter_map(|&id| {
            let (tile, offset) = tile_of(id);
            let bytes = tiles.get(&tile)?.get(offset..offset + HASH)?;
            Some((id, bytes.try_into().ok()?))
        })
        .collect()
}

/// New nodes as runs per tile: (tile, byte offset of the first, bytes).
/// The follower writes consecutive nodes of each level.
fn runs(nodes: &[(NodeId, Hash)]) -> Result<BTreeMap<TileId, (usize, Vec<u8>)>, StoreError> {
    let mut runs: BTreeMap<TileId, (usize, Vec<u8>)> = BTreeMap::new();
    for (id, hash) in nodes {
        let (tile, offset) = tile_of(*id);
        let (first, bytes) = runs.entry(tile).or_insert((offset, Vec::new()));
        if *first + bytes.len() != offset {
            return Err(StoreError::corrupt(
                "tlog_tiles",
                format!(
                    "node {} of level {} is not next in its tile",
                    id.index, id.level
                ),
            ));
        }
        bytes.extend_from_slice(hash);
    }
    Ok(runs)
}

/// The tiles to write: each run after what its tile holds; none for a run
/// stored already (another follower's).
fn merged(
    runs: BTreeMap<TileId, (usize, Vec<u8>)>,
    stored: &HashMap<TileId, Vec<u8>>,
) -> Result<Vec<(TileId, Vec<u8>)>, StoreError> {
    let mut out = Vec::with_capacity(runs.len());
    for (tile, (offset, bytes)) in runs {
        let have = stored.get(&tile).map_or(&[][..], Vec::as_slice);
        if have.len() >= offset + bytes.len() {
            continue;
        }
        if have.len() < offset {
            return Err(StoreError::corrupt(
                "tlog_tiles",
                format!(
                    "tile {} of level {} holds {} hashes; the next to store is its {}th",
                    tile.1,
                    tile.0,
                    have.len() / HASH,
                    offset / HASH + 1
                ),
            ));
        }
        out.push((tile, [&have[..offset], &bytes].concat()));
    }
    Ok(out)
}

/// Tiles that runs continue (those not starting at a tile's first node).
fn continued(runs: &BTreeMap<TileId, (usize, Vec<u8>)>) -> Vec<TileId> {
    runs.iter()
        .filter(|(_, (offset, _))| *offset > 0)
        .map(|(tile, _)| *tile)
        .collect()
}

fn size_of(row: Option<(i64, i64)>) -> Result<u64, StoreError> {
    row.map_or(Ok(0), |(index, length)| {
        Ok(to_u64(index, "tlog_tiles.idx")? * TILE_WIDTH
            + to_u64(length, "tlog_tiles.hashes")? / HASH as u64)
    })
}

const SIZE: &str =
    "SELECT idx, length(hashes) FROM tlog_tiles WHERE level = 0 ORDER BY idx DESC LIMIT 1";

pub(crate) async fn pg_size(pool: &PgPool) -> Result<u64, StoreError> {
    let row: Option<(i64, i32)> = sqlx::query_as(SIZE).fetch_optional(pool).await?;
    size_of(row.map(|(i, l)| (i, i64::from(l))))
}

async fn pg_tiles(
    pool: &PgPool,
    ids: impl IntoIterator<Item = TileId>,
) -> Result<HashMap<TileId, Vec<u8>>, StoreError> {
    // One round trip for every level (a proof needs tiles of several).
    let (mut levels, mut indexes) = (Vec::new(), Vec::new());
    for (level, at) in tiles_by_level(ids) {
        let level = i16::try_from(level).unwrap_or(i16::MAX);
        levels.extend(std::iter::repeat_n(level, at.len()));
        indexes.extend(at);
    }
    let mut out = HashMap::new();
    if levels.is_empty() {
        return Ok(out);
    }
    let rows = sqlx::query(
        "SELECT level, idx, hashes FROM tlog_tiles \
         WHERE (level, idx) IN (SELECT * FROM unnest($1::smallint[], $2::bigint[]))",
    )
    .bind(&levels)
    .bind(&indexes)
    .fetch_all(pool)
    .await?;
    for row in rows {
        let level = u32::try_from(row.try_get::<i16, _>("level")?)
            .map_err(|e| StoreError::corrupt("tlog_tiles.level", e))?;
        let index = to_u64(row.try_get("idx")?, "tlog_tiles.idx")?;
        out.insert((level, index), checked(row.try_get("hashes")?)?);
    }
    Ok(out)
}

pub(crate) async fn pg_nodes(
    pool: &PgPool,
    ids: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, StoreError> {
    let tiles = pg_tiles(pool, ids.iter().map(|&id| tile_of(id).0)).await?;
    Ok(pick(ids, &tiles))
}

pub(crate) async fn pg_store(pool: &PgPool, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
    let runs = runs(nodes)?;
    let stored = pg_tiles(pool, continued(&runs)).await?;
    let tiles = merged(runs, &stored)?;
    let mut tx = pool.begin().await?;
    for chunk in tiles.chunks(INSERT_CHUNK) {
        let levels: Vec<i16> = chunk
            .iter()
            .map(|((level, _), _)| i16::try_from(*level).unwrap_or(i16::MAX))
            .collect();
        let indexes: Vec<i64> = chunk.iter().map(|((_, i), _)| to_i64(*i)).collect();
        let hashes: Vec<&[u8]> = chunk.iter().map(|(_, h)| h.as_slice()).collect();
        // A tile only grows: a follower behind another leaves it be.
        sqlx::query(
            "INSERT INTO tlog_tiles (level, idx, hashes) \
             SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[]) \
             ON CONFLICT (level, idx) DO UPDATE SET hashes = EXCLUDED.hashes \
             WHERE length(EXCLUDED.hashes) > length(tlog_tiles.hashes)",
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
    sqlx::query("DELETE FROM tlog_tiles").execute(pool).await?;
    Ok(())
}

pub(crate) async fn sqlite_size(pool: &SqlitePool) -> Result<u64, StoreError> {
    let row: Option<(i64, i64)> = sqlx::query_as(SIZE).fetch_optional(pool).await?;
    size_of(row)
}

async fn sqlite_tiles(
    pool: &SqlitePool,
    ids: impl IntoIterator<Item = TileId>,
) -> Result<HashMap<TileId, Vec<u8>>, StoreError> {
    let mut out = HashMap::new();
    for (level, indexes) in tiles_by_level(ids) {
        for chunk in indexes.chunks(1_000) {
            let list = serde_json::to_string(chunk).map_err(|e| StoreError::corrupt("ids", e))?;
            let rows = sqlx::query(
                "SELECT idx, hashes FROM tlog_tiles WHERE level = ? \
                 AND idx IN (SELECT value FROM json_each(?))",
            )
            .bind(i64::from(level))
            .bind(list)
            .fetch_all(pool)
            .await?;
            for row in rows {
                let index = to_u64(row.try_get("idx")?, "tlog_tiles.idx")?;
                out.insert((level, index), checked(row.try_get("hashes")?)?);
            }
        }
    }
    Ok(out)
}

pub(crate) async fn sqlite_nodes(
    pool: &SqlitePool,
    ids: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, StoreError> {
    let tiles = sqlite_tiles(pool, ids.iter().map(|&id| tile_of(id).0)).await?;
    Ok(pick(ids, &tiles))
}

pub(crate) async fn sqlite_store(
    pool: &SqlitePool,
    nodes: &[(NodeId, Hash)],
) -> Result<(), StoreError> {
    let runs = runs(nodes)?;
    let stored = sqlite_tiles(pool, continued(&runs)).await?;
    let tiles = merged(runs, &stored)?;
    let mut tx = pool.begin().await?;
    for chunk in tiles.chunks(INSERT_CHUNK) {
        let mut builder =
            sqlx::QueryBuilder::<sqlx::Sqlite>::new("INSERT INTO tlog_tiles (level, idx, hashes) ");
        builder.push_values(chunk, |mut row, ((level, index), hashes)| {
            row.push_bind(i64::from(*level))
                .push_bind(to_i64(*index))
                .push_bind(hashes.clone());
        });
        builder.push(
            " ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes \
             WHERE length(excluded.hashes) > length(tlog_tiles.hashes)",
        );
        builder.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn sqlite_clear(pool: &SqlitePool) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM tlog_tiles").execute(pool).await?;
    Ok(())
}

/// A leaf from a row's stored texts, which are the canonical texts the
/// writer hashed: spliced, not parsed. A row whose texts do not give its
/// hash (not written by this writer) is parsed and canonicalized instead;
/// if that fails too, the log is corrupt.
fn leaf_from(
    input: HashInput<'_>,
    hash: EventHash,
    envelope: impl FnOnce() -> Result<Envelope, StoreError>,
) -> Result<Leaf, StoreError> {
    let (leaf, computed) = input.leaf_bytes_and_hash(&hash);
    if computed == hash {
        return Ok(Leaf {
            position: input.position,
            leaf: leaf_hash(&leaf),
            hash,
        });
    }
    let envelope = envelope()?;
    if envelope.compute_hash() != envelope.hash {
        return Err(StoreError::corrupt(
            "events",
            format!(
                "the event at position {} does not hash to its hash",
                envelope.position
            ),
        ));
    }
    Ok(Leaf::of(&envelope))
}

const LEAVES_PG: &str = "SELECT position, event_id, stream_id, stream_version, type, \
     schema_version, data::text AS data, metadata::text AS metadata, recorded_at, prev_hash, \
     hash FROM events WHERE position > $1 ORDER BY position LIMIT $2";

fn pg_leaf(row: &PgRow) -> Result<Leaf, StoreError> {
    let recorded_at =
        Timestamp::from_datetime(row.try_get::<chrono::DateTime<chrono::Utc>, _>("recorded_at")?);
    let prev_hash = parse_hash(row.try_get("prev_hash")?, "prev_hash")?;
    let hash = parse_hash(row.try_get("hash")?, "hash")?;
    let event_id: uuid::Uuid = row.try_get("event_id")?;
    let input = HashInput {
        position: to_u64(row.try_get("position")?, "position")?,
        event_id: &event_id,
        stream_id: row.try_get("stream_id")?,
        stream_version: to_u64(row.try_get("stream_version")?, "stream_version")?,
        event_type: row.try_get("type")?,
        schema_version: u32::try_from(row.try_get::<i32, _>("schema_version")?)
            .map_err(|e| StoreError::corrupt("schema_version", e))?,
        canonical_data: row.try_get("data")?,
        canonical_metadata: row.try_get("metadata")?,
        recorded_at: &recorded_at,
        prev_hash: &prev_hash,
    };
    leaf_from(input, hash, || super::postgres::envelope(row))
}

pub(crate) async fn pg_leaves(
    pool: &PgPool,
    after: u64,
    limit: usize,
) -> Result<Vec<Leaf>, StoreError> {
    let rows = sqlx::query(LEAVES_PG)
        .bind(to_i64(after))
        .bind(to_i64(limit.min(MAX_READ_LIMIT) as u64))
        .fetch_all(pool)
        .await?;
    rows.iter().map(pg_leaf).collect()
}

const LEAVES_SQLITE: &str = "SELECT position, event_id, stream_id, stream_version, type, \
     schema_version, data, metadata, recorded_at, prev_hash, hash FROM events \
     WHERE position > ? ORDER BY position LIMIT ?";

fn sqlite_leaf(row: &SqliteRow) -> Result<Leaf, StoreError> {
    let recorded_at = parse_time(row.try_get("recorded_at")?, "recorded_at")?;
    let prev_hash = parse_hash(row.try_get("prev_hash")?, "prev_hash")?;
    let hash = parse_hash(row.try_get("hash")?, "hash")?;
    let event_id = parse_uuid(row.try_get("event_id")?)?;
    let input = HashInput {
        position: to_u64(row.try_get("position")?, "position")?,
        event_id: &event_id,
        stream_id: row.try_get("stream_id")?,
        stream_version: to_u64(row.try_get("stream_version")?, "stream_version")?,
        event_type: row.try_get("type")?,
        schema_version: u32::try_from(row.try_get::<i64, _>("schema_version")?)
            .map_err(|e| StoreError::corrupt("schema_version", e))?,
        canonical_data: row.try_get("data")?,
        canonical_metadata: row.try_get("metadata")?,
        recorded_at: &recorded_at,
        prev_hash: &prev_hash,
    };
    leaf_from(input, hash, || super::sqlite::envelope(row))
}

pub(crate) async fn sqlite_leaves(
    pool: &SqlitePool,
    after: u64,
    limit: usize,
) -> Result<Vec<Leaf>, StoreError> {
    let rows = sqlx::query(LEAVES_SQLITE)
        .bind(to_i64(after))
        .bind(to_i64(limit.min(MAX_READ_LIMIT) as u64))
        .fetch_all(pool)
        .await?;
    rows.iter().map(sqlite_leaf).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(level: u32, index: u64) -> (NodeId, Hash) {
        (NodeId { level, index }, [index as u8; 32])
    }

    #[test]
    fn new_nodes_continue_their_tiles() {
        // Leaves 254..258 and the level-1 node 0: three tiles touched.
        let nodes = [
            node(0, 254),
            node(0, 255),
            node(1, 0),
            node(0, 256),
            node(0, 257),
        ];
        let runs = runs(&nodes).unwrap();
        assert_eq!(continued(&runs), vec![(0, 0)]);
        let mut stored = HashMap::new();
        stored.insert((0, 0), vec![7; 254 * HASH]);
        let tiles = merged(runs.clone(), &stored).unwrap();
        assert_eq!(tiles.len(), 3);
        assert_eq!(tiles[0].0, (0, 0));
        assert_eq!(tiles[0].1.len(), 256 * HASH);
        assert_eq!(&tiles[0].1[254 * HASH..], &[[254; 32], [255; 32]].concat());
        assert_eq!(tiles[1], ((0, 1), [[0; 32], [1; 32]].concat()));
        assert_eq!(tiles[2], ((1, 0), vec![0; 32]));
        let picked = pick(
            &[
                NodeId {
                    level: 0,
                    index: 255,
                },
                NodeId {
                    level: 0,
                    index: 300,
                },
            ],
            &tiles.into_iter().collect(),
        );
        assert_eq!(picked.len(), 1, "a node past its tile's end is absent");

        // Stored already (another follower): nothing to write; a gap is
        // refused.
        stored.insert((0, 0), vec![7; 256 * HASH]);
        stored.insert((0, 1), vec![7; 2 * HASH]);
        stored.insert((1, 0), vec![7; HASH]);
        assert!(merged(runs.clone(), &stored).unwrap().is_empty());
        stored.insert((0, 0), vec![7; 253 * HASH]);
        assert!(merged(runs, &stored).is_err());
        assert!(super::runs(&[node(0, 1), node(0, 3)]).is_err());
    }

    #[test]
    fn the_size_is_the_last_level_0_tile() {
        assert_eq!(size_of(None).unwrap(), 0);
        assert_eq!(size_of(Some((0, 32))).unwrap(), 1);
        assert_eq!(size_of(Some((3, 256 * 32))).unwrap(), 1024);
        assert_eq!(size_of(Some((4, 5 * 32))).unwrap(), 1029);
        assert!(checked(vec![0; 31]).is_err());
        assert!(checked(Vec::new()).is_err());
        assert!(checked(vec![0; 257 * 32]).is_err());
    }
}
