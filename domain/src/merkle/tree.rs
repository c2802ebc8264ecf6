//! The tree as a store keeps it: the hashes at every eighth level (leaves,
//! then nodes of 256 leaves, of 65,536, …), which are exactly the hashes of
//! C2SP `tlog-tiles` (tiles of height 8). Any subtree's hash is then at most
//! 255 node hashes away from stored ones, so a proof in a tree of millions
//! of leaves reads at most about a thousand stored hashes (measured: 1,000
//! at 10^6 leaves), in one lookup per level.
//!
//! [`Tree`] grows the stored levels leaf by leaf and can forget all but
//! their right edge (a follower that writes them to a store), or keep them
//! all (an auditor recomputing a log in memory).

use std::collections::{BTreeSet, HashMap};

use super::{Hash, Span, consistency_spans, empty_root, inclusion_spans, node_hash, split_u64};

/// Levels between two stored levels: the height of a C2SP tile.
pub const TILE_HEIGHT: u32 = 8;
/// Hashes in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;

/// A stored node: `level` counts tiles (0 holds leaf hashes, 1 the nodes of
/// 256 leaves, …) and `index` its place in that level, from the left. It is
/// the hash at index `index` of the C2SP tile level `level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u32,
    pub index: u64,
}

/// The tree hash of the leaves in `span`, given the stored nodes; `None`
/// when `lookup` lacks one it needs.
pub fn span_hash(span: &Span, lookup: &mut impl FnMut(NodeId) -> Option<Hash>) -> Option<Hash> {
    let n = span.end.checked_sub(span.start)?;
    match n {
        0 => Some(empty_root()),
        _ if n.is_power_of_two() && span.start.is_multiple_of(n) => {
            let height = n.trailing_zeros();
            let level = height / TILE_HEIGHT;
            let below = height % TILE_HEIGHT;
            let shift = level * TILE_HEIGHT;
            let first = span.start >> shift;
            let mut row = (first..first + (1 << below))
                .map(|index| lookup(NodeId { level, index }))
                .collect::<Option<Vec<Hash>>>()?;
            while row.len() > 1 {
                row = row.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
            }
            row.pop()
        }
        _ => {
            let k = split_u64(n);
            let left = span_hash(&(span.start..span.start + k), lookup)?;
            let right = span_hash(&(span.start + k..span.end), lookup)?;
            Some(node_hash(&left, &right))
        }
    }
}

/// The stored nodes [`span_hash`] reads for these spans, each once.
pub fn nodes_for(spans: &[Span]) -> BTreeSet<NodeId> {
    let mut needed = BTreeSet::new();
    for span in spans {
        span_hash(span, &mut |id| {
            needed.insert(id);
            Some([0; 32])
        });
    }
    needed
}

/// The hashes of `spans` from stored nodes read into `nodes`; `None` when
/// one is missing.
pub fn hashes_of(spans: &[Span], nodes: &HashMap<NodeId, Hash>) -> Option<Vec<Hash>> {
    spans
        .iter()
        .map(|s| span_hash(s, &mut |id| nodes.get(&id).copied()))
        .collect()
}

/// How many nodes a tree of `size` leaves has at stored `level`.
pub fn level_width(size: u64, level: u32) -> u64 {
    size.checked_shr(level * TILE_HEIGHT).unwrap_or(0)
}

/// The stored nodes a tree of `size` leaves needs to resume growing: at
/// every level, those of its last, incomplete tile.
pub fn edge_nodes(size: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut level = 0;
    loop {
        let width = level_width(size, level);
        if width == 0 {
            return out;
        }
        let first = width - width % TILE_WIDTH;
        out.extend((first..width).map(|index| NodeId { level, index }));
        level += 1;
    }
}

/// The stored levels of a tree, grown one leaf at a time.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    size: u64,
    /// `levels[l]` holds the hashes of level `l` from index `offsets[l]`.
    levels: Vec<Vec<Hash>>,
    offsets: Vec<u64>,
}

impl Tree {
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree of `size` leaves from the nodes of its right edge
    /// ([`edge_nodes`]); `None` when one is missing.
    pub fn resume(size: u64, lookup: &mut impl FnMut(NodeId) -> Option<Hash>) -> Option<Self> {
        let mut tree = Self {
            size,
            ..Self::default()
        };
        let mut level = 0;
        loop {
            let width = level_width(size, level);
            if width == 0 {
                return Some(tree);
            }
            let first = width - width % TILE_WIDTH;
            let row = (first..width)
                .map(|index| lookup(NodeId { level, index }))
                .collect::<Option<Vec<Hash>>>()?;
            tree.levels.push(row);
            tree.offsets.push(first);
            level += 1;
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds the next leaf hash; returns the stored nodes it adds: the leaf,
    /// then each node of a tile it completes.
    pub fn push(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let mut added = Vec::with_capacity(1);
        let mut hash = leaf;
        let mut level = 0;
        loop {
            if self.levels.len() == level as usize {
                self.levels.push(Vec::new());
                self.offsets.push(0);
            }
            let row = &mut self.levels[level as usize];
            let index = self.offsets[level as usize] + row.len() as u64;
            row.push(hash);
            added.push((NodeId { level, index }, hash));
            if !(index + 1).is_multiple_of(TILE_WIDTH) {
                break;
            }
            let tile = &row[row.len() - TILE_WIDTH as usize..];
            let mut fold = tile.to_vec();
            while fold.len() > 1 {
                fold = fold.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
            }
            hash = fold[0];
            level += 1;
        }
        self.size += 1;
        added
    }

    /// Forgets every complete tile: what is left is the right edge, all that
    /// [`Tree::push`] and [`Tree::root`] need.
    pub fn trim(&mut self) {
        for (row, offset) in self.levels.iter_mut().zip(&mut self.offsets) {
            let width = *offset + row.len() as u64;
            let keep_from = width - width % TILE_WIDTH;
            let drop = (keep_from - *offset) as usize;
            row.drain(..drop);
            *offset = keep_from;
        }
    }

    /// A stored node this tree still holds.
    pub fn node(&self, id: NodeId) -> Option<Hash> {
        let row = self.levels.get(id.level as usize)?;
        let at = id.index.checked_sub(self.offsets[id.level as usize])?;
        row.get(usize::try_from(at).ok()?).copied()
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.root_at(self.size)
            .expect("the right edge holds every node of the root")
    }

    /// The root of the tree of the first `size` leaves, if this tree still
    /// holds the nodes it needs (always, unless trimmed).
    pub fn root_at(&self, size: u64) -> Option<Hash> {
        if size > self.size {
            return None;
        }
        span_hash(&(0..size), &mut |id| self.node(id))
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Option<Vec<Hash>> {
        if size > self.size {
            return None;
        }
        let spans = inclusion_spans(index, size)?;
        spans
            .iter()
            .map(|s| span_hash(s, &mut |id| self.node(id)))
            .collect()
    }

    /// The consistency proof from `old_size` leaves to `new_size`.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Option<Vec<Hash>> {
        if new_size > self.size {
            return None;
        }
        let spans = consistency_spans(old_size, new_size)?;
        spans
            .iter()
            .map(|s| span_hash(s, &mut |id| self.node(id)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{self, leaf_hash};

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn stored_levels_give_the_same_roots_and_proofs_as_the_leaves() {
        let all = leaves(600);
        let mut tree = Tree::new();
        for (i, leaf) in all.iter().enumerate() {
            tree.push(*leaf);
            let size = i as u64 + 1;
            assert_eq!(tree.root(), merkle::root(&all[..=i]), "size {size}");
        }
        for size in [1u64, 255, 256, 257, 511, 512, 513, 600] {
            let prefix = &all[..size as usize];
            for index in [0, size / 3, size - 1] {
                assert_eq!(
                    tree.inclusion_proof(index, size),
                    merkle::inclusion_proof(index as usize, prefix)
                );
            }
            for old in [1, size / 2 + 1, size] {
                assert_eq!(
                    tree.consistency_proof(old, size),
                    merkle::consistency_proof(old as usize, prefix)
                );
            }
        }
    }

    #[test]
    fn a_trimmed_tree_resumed_from_its_edge_grows_as_the_whole_one() {
        let all = leaves(70_000);
        let mut whole = Tree::new();
        let mut trimmed = Tree::new();
        for (i, leaf) in all.iter().enumerate() {
            let added = whole.push(*leaf);
            assert_eq!(trimmed.push(*leaf), added);
            if i % 1_000 == 0 {
                trimmed.trim();
                let size = trimmed.size();
                let mut resumed = Tree::resume(size, &mut |id| whole.node(id)).unwrap();
                assert_eq!(resumed.root(), whole.root());
                assert_eq!(trimmed.root(), whole.root());
                let next = leaf_hash(b"next");
                let mut copy = whole.clone();
                assert_eq!(resumed.push(next), copy.push(next));
                assert_eq!(edge_nodes(size).len(), {
                    let mut n = 0;
                    Tree::resume(size, &mut |_| {
                        n += 1;
                        Some([0; 32])
                    });
                    n
                });
            }
        }
        // A 65,536-leaf subtree is stored at level 2.
        assert!(whole.node(NodeId { level: 2, index: 0 }).is_some());
        assert_eq!(
            whole.node(NodeId { level: 2, index: 0 }),
            Some(merkle::root(&all[..65_536]))
        );
    }

    #[test]
    fn nodes_for_names_what_hashes_of_reads() {
        let mut tree = Tree::new();
        for leaf in leaves(1_000) {
            tree.push(leaf);
        }
        let spans = inclusion_spans(300, 999).unwrap();
        let nodes: HashMap<NodeId, Hash> = nodes_for(&spans)
            .into_iter()
            .map(|id| (id, tree.node(id).unwrap()))
            .collect();
        assert_eq!(hashes_of(&spans, &nodes), tree.inclusion_proof(300, 999));
        let mut fewer = nodes.clone();
        let first = *fewer.keys().next().unwrap();
        fewer.remove(&first);
        assert_eq!(hashes_of(&spans, &fewer), None);
    }
}
