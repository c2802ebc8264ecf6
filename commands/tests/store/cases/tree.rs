//! The Merkle tree over the log: kept by a follower, equal to the tree an
//! auditor recomputes from the events, rebuilt to the same hashes, and
//! signed in checkpoint notes.

use std::sync::Arc;

use proofline_commands::store::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use proofline_commands::tree::{self, ProofError, TreeFollower};
use proofline_domain::ids::StreamId;
use proofline_domain::merkle::{self, Hash, leaf_hash, verify_consistency, verify_inclusion};
use serde_json::json;

use crate::harness::Harness;

/// Appends `n` events from 8 concurrent tasks (so they group-commit).
async fn append(store: &Arc<dyn EventStore>, n: usize) {
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in (t..n).step_by(8) {
                    store
                        .append(AppendRequest::new(
                            StreamId::new("thing", uuid::Uuid::now_v7()).unwrap(),
                            ExpectedVersion::NoStream,
                            vec![NewEvent::new(
                                "Noted",
                                1,
                                json!({"i": i, "text": "é\u{1F600}"}),
                            )],
                        ))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// The leaf hashes an auditor computes from an export of the log.
async fn exported_leaves(store: &dyn EventStore) -> Vec<Hash> {
    let mut leaves = Vec::new();
    loop {
        let page = store.read_all(leaves.len() as u64, 1_000).await.unwrap();
        if page.is_empty() {
            return leaves;
        }
        for envelope in page {
            let whole = proofline_domain::log::canonical_json(&envelope).unwrap();
            leaves.push(leaf_hash(whole.as_bytes()));
        }
    }
}

/// The follower's tree is the tree of the export, at every size; its proofs
/// verify; its tiles are the stored levels; a size it does not cover is
/// refused as the contract says.
pub async fn the_tree_follows_the_log(h: &impl Harness) {
    let store = h.open().await;
    let mut follower = TreeFollower::new();
    assert_eq!(follower.catch_up(store.as_ref()).await.unwrap(), None);
    append(&store, 300).await;
    let head = follower.catch_up(store.as_ref()).await.unwrap().unwrap();
    assert_eq!(head.size, 300);
    append(&store, 310).await;
    // A second follower (another process) and a restart of the first.
    let mut other = TreeFollower::new();
    let (a, b) = tokio::join!(
        follower.catch_up(store.as_ref()),
        other.catch_up(store.as_ref())
    );
    assert_eq!(a.unwrap(), b.unwrap());
    let leaves = exported_leaves(store.as_ref()).await;
    assert_eq!(leaves.len(), 610);
    let head = store.head().await.unwrap().unwrap();
    let restarted = TreeFollower::new()
        .catch_up(store.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(restarted.size, 610);
    assert_eq!(restarted.hash, head.hash);
    assert_eq!(restarted.root, merkle::root(&leaves));
    assert_eq!(store.tree_size().await.unwrap(), 610);

    for size in [1u64, 2, 255, 256, 257, 300, 512, 609, 610] {
        let root = tree::root(store.as_ref(), size).await.unwrap();
        assert_eq!(root, merkle::root(&leaves[..size as usize]), "size {size}");
        for position in [1, size / 2 + 1, size] {
            let proof = tree::inclusion(store.as_ref(), position, size)
                .await
                .unwrap();
            assert_eq!(proof.leaf_hash, leaves[position as usize - 1]);
            verify_inclusion(position - 1, size, &proof.leaf_hash, &proof.hashes, &root).unwrap();
        }
        let to = tree::root(store.as_ref(), 610).await.unwrap();
        let proof = tree::consistency(store.as_ref(), size, 610).await.unwrap();
        verify_consistency(size, 610, &root, &to, &proof).unwrap();
    }
    for (position, size) in [(0, 10), (11, 10), (1, 611)] {
        assert!(
            matches!(
                tree::inclusion(store.as_ref(), position, size).await,
                Err(ProofError::Invalid(_))
            ),
            "position {position} of {size}"
        );
    }
    assert!(matches!(
        tree::consistency(store.as_ref(), 5, 4).await,
        Err(ProofError::Invalid(_))
    ));
    assert!(matches!(
        tree::consistency(store.as_ref(), 0, 4).await,
        Err(ProofError::Invalid(_))
    ));
    // The log has grown past the stored tree: not yet, rather than wrong.
    append(&store, 1).await;
    assert!(matches!(
        tree::inclusion(store.as_ref(), 1, 611).await,
        Err(ProofError::NotYet {
            wanted: 611,
            covered: 610
        })
    ));

    // Tiles: level 0 holds the leaf hashes, level 1 the 256-leaf nodes.
    let tile = tree::tile(store.as_ref(), 0, 1, 256)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tile, leaves[256..512].concat());
    let partial = tree::tile(store.as_ref(), 0, 2, 98).await.unwrap().unwrap();
    assert_eq!(partial, leaves[512..610].concat());
    assert_eq!(tree::tile(store.as_ref(), 0, 2, 99).await.unwrap(), None);
    assert_eq!(tree::tile(store.as_ref(), 0, 2, 256).await.unwrap(), None);
    let upper = tree::tile(store.as_ref(), 1, 0, 2).await.unwrap().unwrap();
    assert_eq!(upper[..32], merkle::root(&leaves[..256]));
    assert_eq!(upper[32..], merkle::root(&leaves[256..512]));
    // Entry bundles: length-prefixed canonical envelopes.
    let bundle = tree::entries(store.as_ref(), 0, 256)
        .await
        .unwrap()
        .unwrap();
    let mut at = 0;
    for leaf in &leaves[..256] {
        let len = usize::from(u16::from_be_bytes([bundle[at], bundle[at + 1]]));
        assert_eq!(leaf_hash(&bundle[at + 2..at + 2 + len]), *leaf);
        at += 2 + len;
    }
    assert_eq!(at, bundle.len());
}

/// A tree cleared and followed again (`proofline rebuild --tree`) has the
/// same hashes, tile for tile.
pub async fn a_rebuilt_tree_has_the_same_hashes(h: &impl Harness) {
    let store = h.open().await;
    append(&store, 700).await;
    let before = TreeFollower::new()
        .catch_up(store.as_ref())
        .await
        .unwrap()
        .unwrap();
    let tiles = async || {
        let mut all = Vec::new();
        for (level, index, width) in [(0, 0, 256), (0, 1, 256), (0, 2, 188), (1, 0, 2)] {
            all.push(
                tree::tile(store.as_ref(), level, index, width)
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        all
    };
    let first = tiles().await;
    store.clear_tree().await.unwrap();
    assert_eq!(store.tree_size().await.unwrap(), 0);
    let after = TreeFollower::new()
        .catch_up(store.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, before);
    assert_eq!(tiles().await, first);
}

/// The leaves the store makes from its stored texts are those of the
/// envelopes it returns.
pub async fn stored_leaves_are_the_envelopes_leaves(h: &impl Harness) {
    use proofline_commands::store::Leaf;
    let store = h.open().await;
    store
        .append(AppendRequest::new(
            StreamId::new("thing", uuid::Uuid::now_v7()).unwrap(),
            ExpectedVersion::NoStream,
            vec![NewEvent::new(
                "Noted",
                1,
                json!({"z": [15, -7, 9_007_199_254_740_991_i64, null], "a": "\u{7f}\"\\\n\u{2028}é", "m": {"b": 1, "a": true}}),
            )],
        ))
        .await
        .unwrap();
    append(&store, 40).await;
    let envelopes = store.read_all(0, 1_000).await.unwrap();
    let expected: Vec<Leaf> = envelopes.iter().map(Leaf::of).collect();
    assert_eq!(store.read_leaves(0, 1_000).await.unwrap(), expected);
    assert_eq!(store.read_leaves(10, 5).await.unwrap(), expected[10..15]);
    assert_eq!(expected.len(), 41);

    // Once a follower reads leaves, the writer hands what it commits next
    // over in memory (the first read below); the same leaves either way.
    append(&store, 30).await;
    let envelopes = store.read_all(41, 1_000).await.unwrap();
    let expected: Vec<Leaf> = envelopes.iter().map(Leaf::of).collect();
    assert_eq!(expected.len(), 30);
    assert_eq!(store.read_leaves(41, 1_000).await.unwrap(), expected);
    assert_eq!(store.read_leaves(41, 1_000).await.unwrap(), expected);
    assert_eq!(store.read_leaves(50, 3).await.unwrap(), expected[9..12]);
}
