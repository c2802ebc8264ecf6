//! The log's Merkle tree (RFC 9162 §2.1, docs/log-format.md "The tree"):
//! kept complete up to the head by a follower, and read for proofs and
//! C2SP tiles.
//!
//! The tree is derived from the events alone, so it is written beside the
//! log rather than in the append transaction: the append path keeps its
//! speed (BENCHMARKS.md), and the checkpoint signer, which runs the
//! follower before it signs, signs only a tree it has stored. Several
//! processes may follow at once; they write the same hashes, and a node
//! already stored is kept.

use proofline_domain::log::EventHash;
use proofline_domain::merkle::tree::{self, NodeId, TILE_WIDTH, Tree};
use proofline_domain::merkle::{Hash, consistency_spans, inclusion_spans, leaf_hash};

use crate::store::{EventStore, StoreError};

/// Events read and hashed per transaction of the follower (32 full tiles).
const PAGE: usize = 8_192;

/// The stored tree's head: its size (the last position it covers), root,
/// and the chain hash of the event at that position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    pub size: u64,
    pub root: Hash,
    pub hash: EventHash,
}

/// Keeps the stored tree complete up to the log's head.
#[derive(Debug, Default)]
pub struct TreeFollower {
    /// The right edge of the stored tree, with the chain hash at its size.
    edge: Option<(Tree, EventHash)>,
}

impl TreeFollower {
    pub fn new() -> Self {
        Self::default()
    }

    /// Hashes and stores every event past the stored tree, up to the head
    /// as read now; the tree's head, `None` for an empty log.
    pub async fn catch_up(
        &mut self,
        store: &dyn EventStore,
    ) -> Result<Option<TreeHead>, StoreError> {
        let outcome = self.follow(store).await;
        if outcome.is_err() {
            // What is stored is the truth: start again from it.
            self.edge = None;
        }
        outcome
    }

    async fn follow(&mut self, store: &dyn EventStore) -> Result<Option<TreeHead>, StoreError> {
        let stored = store.tree_size().await?;
        if self.edge.as_ref().is_none_or(|(t, _)| t.size() < stored) {
            self.edge = resume(store, stored).await?;
        }
        let Some((tree, last)) = self.edge.as_mut() else {
            // An empty tree: start it at the first event.
            let first = store.read_all(0, 1).await?;
            if first.is_empty() {
                return Ok(None);
            }
            self.edge = Some((Tree::new(), EventHash::GENESIS));
            return Box::pin(self.follow(store)).await;
        };
        loop {
            let page = store.read_leaves(tree.size(), PAGE).await?;
            let mut nodes = Vec::with_capacity(page.len() + page.len() / 200 + 2);
            for leaf in &page {
                if leaf.position != tree.size() + 1 {
                    return Err(StoreError::corrupt(
                        "events",
                        format!("position {} follows {}", leaf.position, tree.size()),
                    ));
                }
                nodes.extend(tree.push(leaf.leaf));
                *last = leaf.hash;
            }
            if !nodes.is_empty() {
                store.store_tree_nodes(&nodes).await?;
                metrics::gauge!("proofline_tree_size").set(tree.size() as f64);
            }
            tree.trim();
            if page.len() < PAGE {
                break;
            }
        }
        Ok((tree.size() > 0).then(|| TreeHead {
            size: tree.size(),
            root: tree.root(),
            hash: *last,
        }))
    }
}

/// The stored tree of `size` leaves, resumed from its right edge.
async fn resume(
    store: &dyn EventStore,
    size: u64,
) -> Result<Option<(Tree, EventHash)>, StoreError> {
    if size == 0 {
        return Ok(None);
    }
    let nodes = store.tree_nodes(&tree::edge_nodes(size)).await?;
    let tree = Tree::resume(size, &mut |id| nodes.get(&id).copied())
        .ok_or_else(|| StoreError::corrupt("tlog_tiles", "a node of the tree's edge is missing"))?;
    let at = store.read_all(size - 1, 1).await?;
    let hash = match at.first() {
        Some(envelope) if envelope.position == size => envelope.hash,
        _ => {
            return Err(StoreError::corrupt(
                "tlog_tiles",
                format!("the tree covers {size} events but the log does not"),
            ));
        }
    };
    Ok(Some((tree, hash)))
}

/// Why a proof cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The request asks for what cannot exist (position 0, past the size,
    /// a size past the head, `from > to`).
    #[error("{0}")]
    Invalid(String),
    /// The log has the size, the stored tree not yet (the follower is
    /// behind by a moment).
    #[error("the tree does not cover {wanted} events yet (it covers {covered}); try again")]
    NotYet { wanted: u64, covered: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks that a tree of `size` is one the log has and the stored tree
/// covers.
async fn check_size(store: &dyn EventStore, size: u64) -> Result<(), ProofError> {
    if size == 0 {
        return Err(ProofError::Invalid("a tree size is at least 1".into()));
    }
    let covered = store.tree_size().await?;
    if size <= covered {
        return Ok(());
    }
    let head = store.head().await?.map_or(0, |h| h.position);
    if size > head {
        return Err(ProofError::Invalid(format!(
            "the log has {head} events, fewer than {size}"
        )));
    }
    Err(ProofError::NotYet {
        wanted: size,
        covered,
    })
}

/// The hashes of `spans`, read from the stored tree in one lookup.
async fn spans_hashes(
    store: &dyn EventStore,
    spans: &[std::ops::Range<u64>],
) -> Result<Vec<Hash>, ProofError> {
    let ids: Vec<NodeId> = tree::nodes_for(spans).into_iter().collect();
    let nodes = store.tree_nodes(&ids).await?;
    tree::hashes_of(spans, &nodes).ok_or_else(|| {
        StoreError::corrupt("tlog_tiles", "a node below the tree's size is missing").into()
    })
}

/// The root of the tree of the first `size` events.
pub async fn root(store: &dyn EventStore, size: u64) -> Result<Hash, ProofError> {
    check_size(store, size).await?;
    let whole = 0..size;
    Ok(spans_hashes(store, std::slice::from_ref(&whole))
        .await?
        .remove(0))
}

/// An inclusion proof of the event at `position` in the tree of
/// `tree_size` events: the leaf hash and the path, from the leaf up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inclusion {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub leaf_hash: Hash,
    pub hashes: Vec<Hash>,
}

pub async fn inclusion(
    store: &dyn EventStore,
    position: u64,
    tree_size: u64,
) -> Result<Inclusion, ProofError> {
    if position == 0 || position > tree_size {
        return Err(ProofError::Invalid(format!(
            "position {position} is not in a tree of {tree_size} events (positions start at 1)"
        )));
    }
    check_size(store, tree_size).await?;
    let index = position - 1;
    let mut spans = inclusion_spans(index, tree_size).expect("index < size");
    spans.push(index..index + 1);
    let mut hashes = spans_hashes(store, &spans).await?;
    let leaf_hash = hashes.pop().expect("the leaf's span was added");
    Ok(Inclusion {
        leaf_index: index,
        tree_size,
        leaf_hash,
        hashes,
    })
}

/// A consistency proof from the tree of `from` events to that of `to`.
pub async fn consistency(
    store: &dyn EventStore,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>, ProofError> {
    if from == 0 || from > to {
        return Err(ProofError::Invalid(format!(
            "a consistency proof needs 1 ≤ from ≤ to (from {from}, to {to})"
        )));
    }
    check_size(store, to).await?;
    let spans = consistency_spans(from, to).expect("0 < from ≤ to");
    spans_hashes(store, &spans).await
}

/// The first `width` hashes of C2SP hash tile `level`/`index`, concatenated;
/// `None` while the stored tree has fewer. Tile levels are the stored
/// levels.
pub async fn tile(
    store: &dyn EventStore,
    level: u32,
    index: u64,
    width: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let size = store.tree_size().await?;
    let first = index.saturating_mul(TILE_WIDTH);
    if width == 0
        || width > TILE_WIDTH
        || tree::level_width(size, level) < first.saturating_add(width)
    {
        return Ok(None);
    }
    let ids: Vec<NodeId> = (first..first + width)
        .map(|index| NodeId { level, index })
        .collect();
    let nodes = store.tree_nodes(&ids).await?;
    let mut out = Vec::with_capacity(ids.len() * 32);
    for id in &ids {
        let hash = nodes.get(id).ok_or_else(|| {
            StoreError::corrupt("tlog_tiles", "a node of a complete tile is missing")
        })?;
        out.extend_from_slice(hash);
    }
    Ok(Some(out))
}

/// C2SP entry bundle `index` of `width` entries: each event's leaf data
/// (its canonical envelope) after its length in two bytes, big-endian;
/// `None` while the log has fewer.
pub async fn entries(
    store: &dyn EventStore,
    index: u64,
    width: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let first = index.saturating_mul(TILE_WIDTH);
    if width == 0 || width > TILE_WIDTH {
        return Ok(None);
    }
    let events = store.read_all(first, width as usize).await?;
    if (events.len() as u64) < width {
        return Ok(None);
    }
    let mut out = Vec::new();
    for envelope in &events {
        let bytes = envelope.leaf_bytes();
        let length = u16::try_from(bytes.len()).map_err(|_| {
            StoreError::corrupt(
                "events",
                format!("position {} is over 65535 bytes", envelope.position),
            )
        })?;
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&bytes);
    }
    Ok(Some(out))
}

/// What [`rebuild`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rebuilt {
    /// Events hashed (the head when it started).
    pub size: u64,
    /// Stored nodes compared (and written where missing).
    pub nodes: u64,
    pub root: Hash,
}

/// Recomputes the tree from the log alone, up to the head as read now,
/// writes the nodes the store lacks and compares every stored one: an
/// error names the first node that differs. Safe while the service runs
/// (nothing stored is removed or replaced). `progress` gets the events
/// done.
pub async fn rebuild(
    store: &dyn EventStore,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Option<Rebuilt>, StoreError> {
    let Some(head) = store.head().await? else {
        return Ok(None);
    };
    let mut tree = Tree::new();
    let mut nodes_checked = 0u64;
    while tree.size() < head.position {
        let page = store.read_all(tree.size(), PAGE).await?;
        if page.is_empty() {
            break;
        }
        let mut nodes = Vec::new();
        for envelope in page.iter().take_while(|e| e.position <= head.position) {
            nodes.extend(tree.push(leaf_hash(&envelope.leaf_bytes())));
        }
        store.store_tree_nodes(&nodes).await?;
        let ids: Vec<NodeId> = nodes.iter().map(|(id, _)| *id).collect();
        let stored = store.tree_nodes(&ids).await?;
        for (id, hash) in &nodes {
            if stored.get(id) != Some(hash) {
                return Err(StoreError::corrupt(
                    "tlog_tiles",
                    format!(
                        "the stored node {} of level {} is not the one the log gives",
                        id.index, id.level
                    ),
                ));
            }
        }
        nodes_checked += nodes.len() as u64;
        tree.trim();
        progress(tree.size());
    }
    Ok(Some(Rebuilt {
        size: tree.size(),
        nodes: nodes_checked,
        root: tree.root(),
    }))
}
