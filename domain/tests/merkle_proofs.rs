//! The proofs of the stored tree ([`Tree`]) checked by a verifier written
//! here from RFC 9162 itself, with its own SHA-256 hashing and its own
//! Merkle Tree Hash: nothing below computes an expected root or accepts a
//! proof with the production code. Every (index, size) and every pair of
//! sizes up to 130 leaves, then random ones in a tree of 1,000,000 leaves;
//! each proof is accepted as made and refused once any hash, the leaf, a
//! root, the index or a size changes, or a hash is dropped or added.
//!
//! The production verifiers are also asked every question put to the one
//! here, and must answer the same.

use std::collections::HashMap;
use std::sync::OnceLock;

use proofline_domain::merkle::tree::{NodeId, Tree, hashes_of, nodes_for};
use proofline_domain::merkle::{
    consistency_spans, inclusion_spans, leaf_hash, verify_consistency, verify_inclusion,
};
use sha2::{Digest, Sha256};

type Hash = [u8; 32];

// ---------------------------------------------------------------------------
// RFC 9162 §2.1, written again.

/// SHA-256 (FIPS 180-4): the message padded here (§5.1.1), from the
/// initial hash value (§5.3.3), through the `sha2` crate's compression
/// function alone. (Its `Digest` plumbing is generic, so compiled without
/// optimisation in this test; the compression function is not.)
fn sha256(parts: &[&[u8]]) -> Hash {
    const H0: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    // The message, 0x80, zeros up to 8 bytes short of a whole block, and
    // the length in bits.
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let padded = (len + 1 + 8).next_multiple_of(64);
    let mut msg = vec![0u8; padded];
    let mut at = 0;
    for part in parts {
        msg[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    msg[len] = 0x80;
    msg[padded - 8..].copy_from_slice(&(len as u64 * 8).to_be_bytes());
    let (blocks, rest) = msg.as_chunks::<64>();
    assert!(rest.is_empty());
    let mut state = H0;
    sha2::block_api::compress256(&mut state, blocks);
    let words = state.map(u32::to_be_bytes);
    *words.as_flattened().as_array().expect("8 words of 4 bytes")
}

/// HASH(0x00 ‖ d): a leaf (§2.1.1).
fn rfc_leaf(data: &[u8]) -> Hash {
    sha256(&[&[0x00], data])
}

/// HASH(0x01 ‖ left ‖ right): an interior node (§2.1.1).
fn rfc_node(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// "the largest power of two smaller than n" (§2.1.1), n > 1.
fn largest_power_of_two_below(n: u64) -> u64 {
    assert!(n > 1);
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D_n) of §2.1.1 over leaf hashes, by its recursive definition.
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => sha256(&[]),
        1 => leaves[0],
        n => {
            let k = largest_power_of_two_below(n as u64) as usize;
            rfc_node(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

fn lsb(x: u64) -> bool {
    x & 1 == 1
}

/// §2.1.3.2: verifying an inclusion proof, step by step.
fn rfc_verify_inclusion(
    leaf_index: u64,
    tree_size: u64,
    hash: &Hash,
    inclusion_path: &[Hash],
    root_hash: &Hash,
) -> bool {
    // 1. leaf_index ≥ tree_size fails.
    if leaf_index >= tree_size {
        return false;
    }
    // 2. fn = leaf_index, sn = tree_size - 1. 3. r = hash.
    let (mut fn_, mut sn) = (leaf_index, tree_size - 1);
    let mut r = *hash;
    // 4. For each p in inclusion_path:
    for p in inclusion_path {
        // a. sn = 0 fails.
        if sn == 0 {
            return false;
        }
        // b.
        if lsb(fn_) || fn_ == sn {
            r = rfc_node(p, &r);
            if !lsb(fn_) {
                while !(lsb(fn_) || fn_ == 0) {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = rfc_node(&r, p);
        }
        // c.
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5. sn = 0 and r = root_hash.
    sn == 0 && r == *root_hash
}

/// §2.1.4.2: verifying consistency between two tree heads. The RFC
/// defines proofs for 0 < first < second only; for first = second this
/// takes, as clients of RFC 6962 logs do, an empty path and equal roots.
fn rfc_verify_consistency(
    first: u64,
    second: u64,
    first_hash: &Hash,
    second_hash: &Hash,
    consistency_path: &[Hash],
) -> bool {
    if first == 0 || first > second {
        return false;
    }
    if first == second {
        return consistency_path.is_empty() && first_hash == second_hash;
    }
    // 1. An empty path fails.
    if consistency_path.is_empty() {
        return false;
    }
    // 2. first a power of two: prepend first_hash.
    let mut path = Vec::with_capacity(consistency_path.len() + 1);
    if first & (first - 1) == 0 {
        path.push(*first_hash);
    }
    path.extend_from_slice(consistency_path);
    // 3.
    let (mut fn_, mut sn) = (first - 1, second - 1);
    // 4.
    while lsb(fn_) {
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5.
    let (mut fr, mut sr) = (path[0], path[0]);
    // 6.
    for c in &path[1..] {
        if sn == 0 {
            return false;
        }
        if lsb(fn_) || fn_ == sn {
            fr = rfc_node(c, &fr);
            sr = rfc_node(c, &sr);
            if !lsb(fn_) {
                while !(lsb(fn_) || fn_ == 0) {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = rfc_node(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // 7.
    fr == *first_hash && sr == *second_hash && sn == 0
}

// ---------------------------------------------------------------------------
// Every question goes to both verifiers; they must agree.

fn inclusion_holds(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    let ours = rfc_verify_inclusion(index, size, leaf, proof, root);
    let theirs = verify_inclusion(index, size, leaf, proof, root);
    assert_eq!(
        ours,
        theirs.is_ok(),
        "the verifiers disagree on leaf {index} of {size}, {} hashes: {theirs:?}",
        proof.len()
    );
    ours
}

fn consistency_holds(old: u64, new: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> bool {
    let ours = rfc_verify_consistency(old, new, old_root, new_root, proof);
    let theirs = verify_consistency(old, new, old_root, new_root, proof);
    assert_eq!(
        ours,
        theirs.is_ok(),
        "the verifiers disagree from {old} to {new}, {} hashes: {theirs:?}",
        proof.len()
    );
    ours
}

fn flipped(hash: &Hash, bit: usize) -> Hash {
    let mut out = *hash;
    out[(bit / 8) % 32] ^= 1 << (bit % 8);
    out
}

/// An inclusion proof from the tree: accepted as made, refused once any
/// part changes. `leaf` and `root` give the leaf hashes and this file's
/// roots; `max` is the largest size they know. `salt` picks the bits flipped.
fn check_inclusion(
    tree: &Tree,
    index: u64,
    size: u64,
    max: u64,
    leaf: &dyn Fn(u64) -> Hash,
    root: &dyn Fn(u64) -> Hash,
    salt: usize,
) {
    let proof = tree
        .inclusion_proof(index, size)
        .unwrap_or_else(|| panic!("no proof of {index} in {size}"));
    let (l, r) = (leaf(index), root(size));
    let what = format!("leaf {index} of {size}");
    assert!(inclusion_holds(index, size, &l, &proof, &r), "{what}");
    assert_eq!(
        proof.len(),
        inclusion_spans(index, size).unwrap().len(),
        "{what}"
    );
    for at in 0..proof.len() {
        let mut bent = proof.clone();
        bent[at] = flipped(&bent[at], salt + 11 * at);
        assert!(
            !inclusion_holds(index, size, &l, &bent, &r),
            "{what}: hash {at}"
        );
    }
    assert!(
        !inclusion_holds(index, size, &flipped(&l, salt), &proof, &r),
        "{what}: leaf"
    );
    assert!(
        !inclusion_holds(index, size, &l, &proof, &flipped(&r, salt)),
        "{what}: root"
    );
    // Another index: claimed for this leaf, or with the leaf really there.
    let others = [index.checked_sub(1), Some(index + 1).filter(|&i| i < size)];
    for other in others.into_iter().flatten() {
        assert!(
            !inclusion_holds(other, size, &l, &proof, &r),
            "{what}: as {other}"
        );
        let there = leaf(other);
        assert!(
            !inclusion_holds(other, size, &there, &proof, &r),
            "{what}: leaf {other}"
        );
    }
    // Another size, with that size's root (a size is only ever claimed
    // with its signed root).
    let sizes = [size - 1, size + 1];
    for other in sizes.into_iter().filter(|&s| s > index && s <= max) {
        let there = root(other);
        assert!(
            !inclusion_holds(index, other, &l, &proof, &there),
            "{what}: in {other}"
        );
        // With the root unchanged the verifiers only need to agree: a path
        // of the same shape in the other size reaches the same root.
        inclusion_holds(index, other, &l, &proof, &r);
    }
    // A hash fewer, a hash more.
    if let Some((_, rest)) = proof.split_first() {
        assert!(
            !inclusion_holds(index, size, &l, rest, &r),
            "{what}: first dropped"
        );
        let short = &proof[..proof.len() - 1];
        assert!(
            !inclusion_holds(index, size, &l, short, &r),
            "{what}: last dropped"
        );
    }
    for extra in [r, l, [0; 32]] {
        let mut longer = proof.clone();
        longer.push(extra);
        assert!(
            !inclusion_holds(index, size, &l, &longer, &r),
            "{what}: one more"
        );
        longer.rotate_right(1);
        assert!(
            !inclusion_holds(index, size, &l, &longer, &r),
            "{what}: one before"
        );
    }
}

/// A consistency proof from the tree: accepted as made, refused once any
/// part changes.
fn check_consistency(
    tree: &Tree,
    old: u64,
    new: u64,
    max: u64,
    root: &dyn Fn(u64) -> Hash,
    salt: usize,
) {
    let proof = tree
        .consistency_proof(old, new)
        .unwrap_or_else(|| panic!("no proof from {old} to {new}"));
    let (or, nr) = (root(old), root(new));
    let what = format!("from {old} to {new}");
    assert!(consistency_holds(old, new, &or, &nr, &proof), "{what}");
    assert_eq!(
        proof.len(),
        consistency_spans(old, new).unwrap().len(),
        "{what}"
    );
    assert_eq!(proof.is_empty(), old == new, "{what}");
    for at in 0..proof.len() {
        let mut bent = proof.clone();
        bent[at] = flipped(&bent[at], salt + 13 * at);
        assert!(
            !consistency_holds(old, new, &or, &nr, &bent),
            "{what}: hash {at}"
        );
    }
    let (bent_old, bent_new) = (flipped(&or, salt), flipped(&nr, salt + 1));
    assert!(
        !consistency_holds(old, new, &bent_old, &nr, &proof),
        "{what}: old root"
    );
    assert!(
        !consistency_holds(old, new, &or, &bent_new, &proof),
        "{what}: new root"
    );
    // Another size, with that size's root.
    for other in [old - 1, old + 1]
        .into_iter()
        .filter(|&s| s >= 1 && s <= max)
    {
        let there = root(other);
        assert!(
            !consistency_holds(other, new, &there, &nr, &proof),
            "{what}: from {other}"
        );
    }
    for other in [new - 1, new + 1]
        .into_iter()
        .filter(|&s| s >= 1 && s <= max)
    {
        let there = root(other);
        assert!(
            !consistency_holds(old, other, &or, &there, &proof),
            "{what}: to {other}"
        );
    }
    // A hash fewer, a hash more.
    if let Some((_, rest)) = proof.split_first() {
        assert!(
            !consistency_holds(old, new, &or, &nr, rest),
            "{what}: first dropped"
        );
        let short = &proof[..proof.len() - 1];
        assert!(
            !consistency_holds(old, new, &or, &nr, short),
            "{what}: last dropped"
        );
    }
    for extra in [or, nr, [0; 32]] {
        let mut longer = proof.clone();
        longer.push(extra);
        assert!(
            !consistency_holds(old, new, &or, &nr, &longer),
            "{what}: one more"
        );
        longer.rotate_right(1);
        assert!(
            !consistency_holds(old, new, &or, &nr, &longer),
            "{what}: one before"
        );
    }
}

// ---------------------------------------------------------------------------
// Every proof up to 130 leaves.

const SMALL: u64 = 130;

/// `SMALL + 1` leaves (one more, for the root of a size one larger), in a
/// tree and as this file's leaf hashes and roots of every prefix.
fn small() -> (Tree, Vec<Hash>, Vec<Hash>) {
    let leaves: Vec<Hash> = (0..=SMALL)
        .map(|i| rfc_leaf(format!("entry {i}").as_bytes()))
        .collect();
    let mut tree = Tree::new();
    for l in &leaves {
        tree.push(*l);
    }
    let roots = (0..=leaves.len()).map(|n| mth(&leaves[..n])).collect();
    (tree, leaves, roots)
}

#[test]
fn every_inclusion_proof_up_to_130_leaves() {
    let (tree, leaves, roots) = small();
    let leaf = |i: u64| leaves[i as usize];
    let root = |n: u64| roots[n as usize];
    for size in 1..=SMALL {
        assert_eq!(tree.root_at(size), Some(root(size)), "root of {size}");
        for index in 0..size {
            check_inclusion(&tree, index, size, SMALL + 1, &leaf, &root, index as usize);
        }
        assert_eq!(tree.inclusion_proof(size, size), None);
        assert!(!inclusion_holds(size, size, &leaf(0), &[], &root(size)));
    }
    let whole = SMALL + 1;
    assert_eq!(tree.root(), root(whole));
    assert_eq!(tree.inclusion_proof(0, whole + 1), None);
}

#[test]
fn every_consistency_proof_up_to_130_leaves() {
    let (tree, _, roots) = small();
    let root = |n: u64| roots[n as usize];
    for new in 1..=SMALL {
        for old in 1..=new {
            check_consistency(&tree, old, new, SMALL + 1, &root, (old * 7 + new) as usize);
        }
        assert_eq!(tree.consistency_proof(0, new), None);
        assert_eq!(tree.consistency_proof(new + 1, new), None);
        assert!(!consistency_holds(0, new, &root(0), &root(new), &[]));
    }
    assert_eq!(tree.consistency_proof(1, SMALL + 2), None);
}

#[test]
fn the_hashes_are_sha256_and_the_rfcs() {
    let bytes: Vec<u8> = (0..=255).collect();
    for n in 0..=bytes.len() {
        let want: Hash = Sha256::digest(&bytes[..n]).into();
        assert_eq!(sha256(&[&bytes[..n]]), want, "{n} bytes");
    }
    for data in [&b""[..], b"\x00", b"entry 7", &[0xff; 100]] {
        assert_eq!(leaf_hash(data), rfc_leaf(data));
    }
    // The first Certificate Transparency test vector.
    assert_eq!(
        hex::encode(mth(&[rfc_leaf(b"")])),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
}

// ---------------------------------------------------------------------------
// Random proofs in a tree of 1,000,000 leaves.

const BIG: u64 = 1_000_000;

/// The big tree, and this file's hashes of every complete subtree
/// (`levels[h][j]` = MTH of leaves [j·2^h, (j+1)·2^h)), so that the root of
/// any size costs a few dozen hashes.
struct Big {
    tree: Tree,
    levels: Vec<Vec<Hash>>,
}

impl Big {
    fn leaf(&self, i: u64) -> Hash {
        self.levels[0][i as usize]
    }

    /// MTH of leaves [start, end) by the recursion of §2.1.1, reading a
    /// complete subtree's hash from `levels` instead of recomputing it.
    fn mth(&self, start: u64, end: u64) -> Hash {
        let n = end - start;
        match n {
            0 => sha256(&[]),
            _ if n.is_power_of_two() && start.is_multiple_of(n) => {
                self.levels[n.trailing_zeros() as usize][(start / n) as usize]
            }
            _ => {
                let k = largest_power_of_two_below(n);
                rfc_node(&self.mth(start, start + k), &self.mth(start + k, end))
            }
        }
    }

    fn root(&self, size: u64) -> Hash {
        self.mth(0, size)
    }

    /// MTH of leaves [start, end) where leaf `BIG`, one past the tree, is
    /// `next`.
    fn mth_and(&self, start: u64, end: u64, next: &Hash) -> Hash {
        match end - start {
            _ if end <= BIG => self.mth(start, end),
            1 => *next,
            n => {
                let k = largest_power_of_two_below(n);
                let left = self.mth_and(start, start + k, next);
                rfc_node(&left, &self.mth_and(start + k, end, next))
            }
        }
    }
}

fn big() -> &'static Big {
    static BIG_TREE: OnceLock<Big> = OnceLock::new();
    BIG_TREE.get_or_init(|| {
        let leaves: Vec<Hash> = (0..BIG).map(|i| rfc_leaf(&i.to_be_bytes())).collect();
        let mut tree = Tree::new();
        for l in &leaves {
            tree.push(*l);
        }
        let mut levels = vec![leaves];
        while levels.last().unwrap().len() > 1 {
            let next = levels
                .last()
                .unwrap()
                .chunks_exact(2)
                .map(|p| rfc_node(&p[0], &p[1]))
                .collect();
            levels.push(next);
        }
        Big { tree, levels }
    })
}

/// SplitMix64 from a fixed seed (the domain's tests read no environment:
/// change the seed here to explore other trees).
struct Rng(u64);

impl Rng {
    fn new(stream: u64) -> Self {
        let seed = 0x9162_2021_5eed_0001u64;
        Self(seed ^ stream)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi].
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// A size in [lo, hi]: uniform, or at a tile or power-of-two edge.
    fn size(&mut self, lo: u64, hi: u64) -> u64 {
        const EDGES: [u64; 8] = [1, 255, 256, 257, 65_535, 65_536, 65_537, 524_288];
        match self.next() % 4 {
            0 => {
                let edge = EDGES[(self.next() % EDGES.len() as u64) as usize];
                edge.clamp(lo, hi)
            }
            1 => hi - self.next() % 3.min(hi - lo + 1),
            _ => self.between(lo, hi),
        }
    }
}

/// The proof the store would serve (`nodes_for` then `hashes_of`) from the
/// tree's nodes; it must be the tree's own.
fn served(tree: &Tree, spans: &[std::ops::Range<u64>]) -> (Vec<Hash>, usize) {
    let ids = nodes_for(spans);
    let nodes: HashMap<NodeId, Hash> = ids
        .iter()
        .map(|id| {
            (
                *id,
                tree.node(*id).expect("an untrimmed tree has every node"),
            )
        })
        .collect();
    (
        hashes_of(spans, &nodes).expect("every node read"),
        ids.len(),
    )
}

#[test]
fn the_own_root_of_a_million_leaves_is_the_definitions() {
    let big = big();
    let leaves = &big.levels[0];
    assert_eq!(big.root(BIG), mth(leaves));
}

#[test]
fn random_inclusion_proofs_in_a_million_leaves() {
    let big = big();
    let mut rng = Rng::new(1);
    let leaf = |i: u64| big.leaf(i);
    let root = |n: u64| big.root(n);
    let mut most_nodes = 0;
    for case in 0..200 {
        let size = rng.size(1, BIG);
        let index = match case % 5 {
            0 => 0,
            1 => size - 1,
            _ => rng.between(0, size - 1),
        };
        let salt = rng.next() as usize;
        check_inclusion(&big.tree, index, size, BIG, &leaf, &root, salt);
        let spans = inclusion_spans(index, size).unwrap();
        let (proof, read) = served(&big.tree, &spans);
        assert_eq!(
            Some(proof),
            big.tree.inclusion_proof(index, size),
            "{index} of {size}"
        );
        most_nodes = most_nodes.max(read);
    }
    println!("at most {most_nodes} stored nodes read for an inclusion proof");
}

#[test]
fn random_consistency_proofs_in_a_million_leaves() {
    let big = big();
    let mut rng = Rng::new(2);
    let root = |n: u64| big.root(n);
    let mut most_nodes = 0;
    for case in 0..200 {
        let new = rng.size(1, BIG);
        let old = match case % 5 {
            0 => new,
            1 => new - rng.next() % new.min(3),
            2 => rng.size(1, new),
            _ => rng.between(1, new),
        };
        let salt = rng.next() as usize;
        check_consistency(&big.tree, old, new, BIG, &root, salt);
        let spans = consistency_spans(old, new).unwrap();
        let (proof, read) = served(&big.tree, &spans);
        assert_eq!(
            Some(proof),
            big.tree.consistency_proof(old, new),
            "{old} to {new}"
        );
        most_nodes = most_nodes.max(read);
    }
    println!("at most {most_nodes} stored nodes read for a consistency proof");
}

#[test]
fn roots_of_random_sizes_and_after_trimming() {
    let big = big();
    let mut rng = Rng::new(3);
    for _ in 0..200 {
        let size = rng.size(1, BIG);
        let want = big.root(size);
        assert_eq!(big.tree.root_at(size), Some(want), "root of {size}");
        let whole = 0..size;
        let (served, _) = served(&big.tree, std::slice::from_ref(&whole));
        assert_eq!(served, vec![want], "served root of {size}");
    }
    assert_eq!(big.tree.root_at(BIG + 1), None);
    let mut trimmed = big.tree.clone();
    trimmed.trim();
    assert_eq!(trimmed.root(), big.root(BIG));
    assert_eq!(trimmed.root(), big.tree.root());
    // The right edge still proves the last leaf.
    let last = trimmed
        .inclusion_proof(BIG - 1, BIG)
        .expect("the edge proves the last leaf");
    assert!(inclusion_holds(
        BIG - 1,
        BIG,
        &big.leaf(BIG - 1),
        &last,
        &big.root(BIG)
    ));
    // And grows on as the whole tree would.
    let next = rfc_leaf(&BIG.to_be_bytes());
    trimmed.push(next);
    assert_eq!(trimmed.root(), big.mth_and(0, BIG + 1, &next));
}
