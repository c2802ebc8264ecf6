//! The Merkle tree of RFC 9162 §2.1 (Certificate Transparency 2.0) over a
//! list of leaves: the tree hash, inclusion proofs and consistency proofs,
//! and their verification.
//!
//! Leaf `i` hashes as SHA-256(0x00 ‖ data), an interior node as
//! SHA-256(0x01 ‖ left ‖ right); a tree of `n` leaves splits at `k`, the
//! largest power of two below `n`. Pure: the caller supplies leaf hashes
//! (a store keeps them; these functions only combine them).
//!
//! Written here rather than taken from a crate: it is a few dozen lines of
//! arithmetic on which auditors' proofs rest, and it is tested exhaustively
//! (every index and size up to 64, every pair of sizes) against the
//! definition and against the published test vectors.
//!
//! A proof is planned as runs of leaves ([`inclusion_spans`],
//! [`consistency_spans`]) whose hashes a store then gives from the nodes it
//! keeps ([`tree`]): the same planning serves a slice of leaves in memory
//! and a log of millions of events on disk.

pub mod tree;

use sha2::{Digest, Sha256};

/// A node or leaf hash.
pub type Hash = [u8; 32];

/// SHA-256 of the empty string: the root of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The leaf hash of `data`: SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(data);
    hasher.finalize().into()
}

/// An interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The Merkle Tree Hash of `leaves` (leaf hashes, in order).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The inclusion proof of leaf `index` in the tree of `leaves` (RFC 9162
/// §2.1.3.1 PATH), from the leaf up; `None` when `index` is out of range.
pub fn inclusion_proof(index: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    let spans = inclusion_spans(index as u64, leaves.len() as u64)?;
    Some(
        spans
            .into_iter()
            .map(|s| root(&leaves[span_range(&s)]))
            .collect(),
    )
}

/// The consistency proof between the tree of the first `old_size` leaves
/// and the tree of all `leaves` (RFC 9162 §2.1.4.1 PROOF); `None` unless
/// 0 < old_size ≤ leaves.len().
pub fn consistency_proof(old_size: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    let spans = consistency_spans(old_size as u64, leaves.len() as u64)?;
    Some(
        spans
            .into_iter()
            .map(|s| root(&leaves[span_range(&s)]))
            .collect(),
    )
}

fn span_range(span: &Span) -> std::ops::Range<usize> {
    let at = |v: u64| usize::try_from(v).expect("a span of a slice fits in usize");
    at(span.start)..at(span.end)
}

/// A run of leaves `[start, end)`: a proof's hashes are the Merkle Tree
/// Hashes of such runs.
pub type Span = std::ops::Range<u64>;

/// The runs of leaves whose tree hashes, in order, make the inclusion proof
/// of leaf `index` in a tree of `size` leaves (RFC 9162 §2.1.3.1 PATH, from
/// the leaf up); `None` when `index` ≥ `size`.
pub fn inclusion_spans(index: u64, size: u64) -> Option<Vec<Span>> {
    (index < size).then(|| {
        let mut out = Vec::new();
        path(index, 0, size, &mut out);
        out
    })
}

/// PATH(m, D[start:end]), pushed from the leaf up.
fn path(m: u64, start: u64, end: u64, out: &mut Vec<Span>) {
    let n = end - start;
    if n <= 1 {
        return;
    }
    let k = split_u64(n);
    if m < k {
        path(m, start, start + k, out);
        out.push(start + k..end);
    } else {
        path(m - k, start + k, end, out);
        out.push(start..start + k);
    }
}

/// The runs of leaves whose tree hashes, in order, make the consistency
/// proof from a tree of `old_size` leaves to one of `new_size` (RFC 9162
/// §2.1.4.1 PROOF); `None` unless 0 < old_size ≤ new_size.
pub fn consistency_spans(old_size: u64, new_size: u64) -> Option<Vec<Span>> {
    (old_size > 0 && old_size <= new_size).then(|| {
        let mut out = Vec::new();
        subproof(old_size, 0, new_size, true, &mut out);
        out
    })
}

/// SUBPROOF(m, D[start:end], complete).
fn subproof(m: u64, start: u64, end: u64, complete: bool, out: &mut Vec<Span>) {
    let n = end - start;
    if m == n {
        if !complete {
            out.push(start..end);
        }
        return;
    }
    let k = split_u64(n);
    if m <= k {
        subproof(m, start, start + k, complete, out);
        out.push(start + k..end);
    } else {
        subproof(m - k, start + k, end, false, out);
        out.push(start..start + k);
    }
}

/// The largest power of two smaller than `n` (n ≥ 2).
pub(crate) fn split_u64(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// Why a proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the index {index} is not in a tree of {size} leaves")]
    OutOfRange { index: u64, size: u64 },
    #[error("the sizes are not 0 < old ≤ new ({old} and {new})")]
    Sizes { old: u64, new: u64 },
    #[error("the proof has the wrong number of hashes")]
    Length,
    #[error("the proof does not lead to the root")]
    Mismatch,
}

/// Verifies that `leaf` (a leaf hash) is at `index` in the tree of `size`
/// leaves whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange { index, size });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::Length);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::Length);
    }
    if r != *root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

/// Verifies that the tree of `old_size` leaves with root `old_root` is a
/// prefix of the tree of `new_size` leaves with root `new_root` (RFC 9162
/// §2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size == 0 || old_size > new_size {
        return Err(ProofError::Sizes {
            old: old_size,
            new: new_size,
        });
    }
    if proof.is_empty() && old_size != new_size {
        return Err(ProofError::Length);
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::Length);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    let mut proof = proof.to_vec();
    if old_size.is_power_of_two() {
        proof.insert(0, *old_root);
    }
    let Some((first, rest)) = proof.split_first() else {
        return Err(ProofError::Length);
    };
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return Err(ProofError::Length);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::Length);
    }
    if fr != *old_root || sr != *new_root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}
