//! Signed log checkpoints: due, signed once among racing signers, and
//! picked up again after a restart.

use proofline_commands::store::{AppendRequest, ExpectedVersion, NewEvent};
use proofline_domain::ids::StreamId;
use serde_json::json;

use crate::harness::Harness;

/// Checkpoints: signed when due, once among racing signers, checked by the
/// domain's rule, and picked up again after a restart.
pub async fn checkpoints_are_signed_once_and_survive_restarts(h: &impl Harness) {
    use proofline_commands::checkpoints::{Checkpointer, covering_after};
    use proofline_commands::signing::ServiceKey;
    use proofline_domain::checkpoint;
    use proofline_domain::log::Timestamp;

    let store = h.open().await;
    let key = ServiceKey::generate().unwrap();
    let at = |s: i64| {
        Timestamp::from_datetime(chrono::DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap())
    };
    let append = async |n: usize| {
        for _ in 0..n {
            store
                .append(AppendRequest::new(
                    StreamId::new("thing", uuid::Uuid::now_v7()).unwrap(),
                    ExpectedVersion::NoStream,
                    vec![NewEvent::new("Noted", 1, json!({}))],
                ))
                .await
                .unwrap();
        }
    };
    let mut first = Checkpointer::new(10, 10, "test.example/log");
    assert_eq!(
        first.tick(store.as_ref(), &key, at(0)).await.unwrap(),
        None,
        "an empty log"
    );
    append(3).await;
    assert_eq!(
        first.tick(store.as_ref(), &key, at(1)).await.unwrap(),
        None,
        "not due"
    );
    append(7).await;
    assert_eq!(
        first.tick(store.as_ref(), &key, at(2)).await.unwrap(),
        Some(10),
        "10 events"
    );
    assert_eq!(
        first.tick(store.as_ref(), &key, at(30)).await.unwrap(),
        None,
        "only itself is new"
    );

    // A restart: the next checkpointer knows the last one from the log.
    let mut second = Checkpointer::new(10, 10, "test.example/log");
    append(2).await;
    assert_eq!(
        second.tick(store.as_ref(), &key, at(5)).await.unwrap(),
        None
    );
    assert_eq!(
        second.tick(store.as_ref(), &key, at(13)).await.unwrap(),
        Some(13),
        "10 s later"
    );

    // Racing signers record one checkpoint.
    append(10).await;
    let (mut one, mut two) = (
        Checkpointer::new(10, 10, "test.example/log"),
        Checkpointer::new(10, 10, "test.example/log"),
    );
    let (a, b) = tokio::join!(
        one.tick(store.as_ref(), &key, at(20)),
        two.tick(store.as_ref(), &key, at(20)),
    );
    assert_eq!(
        [a.unwrap(), b.unwrap()]
            .iter()
            .filter(|s| s.is_some())
            .count(),
        1
    );

    let recorded = covering_after(store.as_ref(), 0, 100).await.unwrap();
    assert_eq!(recorded.len(), 3);
    for checkpoint in &recorded {
        checkpoint::check(&checkpoint.event, &key.verifying_key()).unwrap();
        let (position, _) = checkpoint.covered();
        let event = store
            .read_all(position - 1, 1)
            .await
            .unwrap()
            .pop()
            .unwrap();
        let checkpoint::CheckpointEvent::LogCheckpointSigned { hash, note, .. } = &checkpoint.event;
        assert_eq!(*hash, event.hash, "the signed hash is the event's");
        // The note: signed under the origin, the tree of `position` events.
        use proofline_domain::note;
        let log = note::Verifier::new(
            "test.example/log",
            note::KeyType::Ed25519,
            key.verifying_key(),
        )
        .unwrap();
        let (signed, _) = note::Checkpoint::open(note.as_deref().unwrap(), &log, &[]).unwrap();
        assert_eq!(signed.origin, "test.example/log");
        assert_eq!(signed.size, position);
        assert_eq!(
            signed.root,
            proofline_commands::tree::root(store.as_ref(), position)
                .await
                .unwrap()
        );
        let other = note::Verifier::new(
            "test.example/log",
            note::KeyType::Ed25519,
            ServiceKey::generate().unwrap().verifying_key(),
        )
        .unwrap();
        assert!(note::Checkpoint::open(note.as_deref().unwrap(), &other, &[]).is_err());
    }
    assert_eq!(
        covering_after(store.as_ref(), 13, 100).await.unwrap().len(),
        1
    );
}
