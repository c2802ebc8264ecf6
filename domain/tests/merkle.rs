//! RFC 9162 Merkle trees: the published test vectors, and every proof of
//! every tree up to 64 leaves checked, accepted as made and refused when
//! any part of it changes.

use proofline_domain::merkle::{
    Hash, ProofError, consistency_proof, empty_root, inclusion_proof, leaf_hash, node_hash, root,
    verify_consistency, verify_inclusion,
};

/// The leaves of the Certificate Transparency test vectors.
fn vector_leaves() -> Vec<Vec<u8>> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|h| hex::decode(h).unwrap())
    .collect()
}

fn hashes(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
        .collect()
}

/// The definition, written again without splitting helpers: the tree of
/// n > 1 leaves is the node of the largest power of two below n leaves and
/// the rest.
fn reference_root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return empty_root();
    }
    if leaves.len() == 1 {
        return leaves[0];
    }
    let mut k = 1;
    while k * 2 < leaves.len() {
        k *= 2;
    }
    node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
}

#[test]
fn the_certificate_transparency_roots() {
    let expected = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    let leaves: Vec<Hash> = vector_leaves().iter().map(|l| leaf_hash(l)).collect();
    for (n, want) in expected.iter().enumerate() {
        assert_eq!(hex::encode(root(&leaves[..=n])), *want, "size {}", n + 1);
    }
    assert_eq!(
        hex::encode(empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn roots_follow_the_definition() {
    for n in 0..=130 {
        let leaves = hashes(n);
        assert_eq!(root(&leaves), reference_root(&leaves), "size {n}");
    }
}

#[test]
fn every_inclusion_proof_verifies_and_nothing_else_does() {
    for size in 1..=64usize {
        let leaves = hashes(size);
        let tree = root(&leaves);
        for index in 0..size {
            let proof = inclusion_proof(index, &leaves).unwrap();
            let (i, n) = (index as u64, size as u64);
            assert_eq!(
                verify_inclusion(i, n, &leaves[index], &proof, &tree),
                Ok(()),
                "{index} of {size}"
            );
            // Another leaf, another index, another size, another root.
            let other = (index + 1) % size;
            if other != index {
                assert!(verify_inclusion(i, n, &leaves[other], &proof, &tree).is_err());
                assert!(verify_inclusion(other as u64, n, &leaves[index], &proof, &tree).is_err());
            }
            // The size is bound by the signed root, not by the proof: a
            // proof for the tree of `size` does not reach the root of one
            // leaf more.
            let grown = root(&hashes(size + 1));
            assert!(verify_inclusion(i, n + 1, &leaves[index], &proof, &grown).is_err());
            assert!(verify_inclusion(i, n, &leaves[index], &proof, &leaf_hash(b"x")).is_err());
            // Each hash of the proof changed; one hash more, one fewer.
            for at in 0..proof.len() {
                let mut bent = proof.clone();
                bent[at][0] ^= 1;
                assert_eq!(
                    verify_inclusion(i, n, &leaves[index], &bent, &tree),
                    Err(ProofError::Mismatch)
                );
            }
            let mut longer = proof.clone();
            longer.push(tree);
            assert!(verify_inclusion(i, n, &leaves[index], &longer, &tree).is_err());
            if !proof.is_empty() {
                assert!(verify_inclusion(i, n, &leaves[index], &proof[1..], &tree).is_err());
            }
        }
        assert!(inclusion_proof(size, &leaves).is_none());
        assert_eq!(
            verify_inclusion(size as u64, size as u64, &leaves[0], &[], &tree),
            Err(ProofError::OutOfRange {
                index: size as u64,
                size: size as u64
            })
        );
    }
}

#[test]
fn every_consistency_proof_verifies_and_nothing_else_does() {
    for new in 1..=64usize {
        let leaves = hashes(new);
        let new_root = root(&leaves);
        for old in 1..=new {
            let old_root = root(&leaves[..old]);
            let proof = consistency_proof(old, &leaves).unwrap();
            let (m, n) = (old as u64, new as u64);
            assert_eq!(
                verify_consistency(m, n, &old_root, &new_root, &proof),
                Ok(()),
                "{old} to {new}"
            );
            if old == new {
                assert!(proof.is_empty());
                continue;
            }
            // Another old root (a rewritten prefix), another new root.
            let rewritten = root(
                &(0..old)
                    .map(|i| leaf_hash(format!("other {i}").as_bytes()))
                    .collect::<Vec<_>>(),
            );
            assert!(verify_consistency(m, n, &rewritten, &new_root, &proof).is_err());
            assert!(verify_consistency(m, n, &old_root, &leaf_hash(b"x"), &proof).is_err());
            for at in 0..proof.len() {
                let mut bent = proof.clone();
                bent[at][31] ^= 0x80;
                assert!(
                    verify_consistency(m, n, &old_root, &new_root, &bent).is_err(),
                    "{old} to {new}, hash {at}"
                );
            }
            assert!(verify_consistency(m, n, &old_root, &new_root, &[]).is_err());
            assert!(verify_consistency(m, n, &old_root, &new_root, &proof[1..]).is_err());
            let mut longer = proof.clone();
            longer.push(new_root);
            assert!(verify_consistency(m, n, &old_root, &new_root, &longer).is_err());
        }
        assert!(consistency_proof(0, &leaves).is_none());
        assert!(consistency_proof(new + 1, &leaves).is_none());
        assert_eq!(
            verify_consistency(0, new as u64, &new_root, &new_root, &[]),
            Err(ProofError::Sizes {
                old: 0,
                new: new as u64
            })
        );
    }
}
