//! Signed log checkpoints: due, signed once among racing signers, and
//! picked up again after a restart.

use proofline_commands::store::{AppendRequest, ExpectedVersion, NewEvent};
use proofline_domain::ids::StreamId;
use serde_json::json;

use crate::harness::Harness;

/// A time of the tests' clock, `s` seconds in.
fn at(s: i64) -> proofline_domain::log::Timestamp {
    proofline_domain::log::Timestamp::from_datetime(
        chrono::DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap(),
    )
}

/// Appends `n` events, each to a new stream.
async fn noted(store: &dyn proofline_commands::store::EventStore, n: usize) {
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
}

/// Checkpoints: signed when due, once among racing signers, checked by the
/// domain's rule, and picked up again after a restart.
pub async fn checkpoints_are_signed_once_and_survive_restarts(h: &impl Harness) {
    use proofline_commands::checkpoints::{Checkpointer, covering_after};
    use proofline_commands::signing::ServiceKey;
    use proofline_domain::checkpoint;

    let store = h.open().await;
    let key = ServiceKey::generate().unwrap();
    let append = async |n: usize| noted(store.as_ref(), n).await;
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

/// A witness's cosignature is served with the note of its tree, and is no
/// reason for a checkpoint of its own: an idle log stays idle.
pub async fn cosignatures_are_served_and_call_for_no_checkpoint(h: &impl Harness) {
    use proofline_commands::checkpoints::{Checkpointer, latest_note};
    use proofline_commands::signing::ServiceKey;
    use proofline_commands::witnesses::cosigned_note;
    use proofline_domain::checkpoint::{WitnessEvent, witness_stream};
    use proofline_domain::note::{self, KeyType, Verifier};

    let store = h.open().await;
    let key = ServiceKey::generate().unwrap();
    let thing = async || noted(store.as_ref(), 1).await;
    let witness = ed25519_dalek::SigningKey::from_bytes(&[11; 32]);
    let cosign = async |note: &str, size: u64| {
        let text = &note[..=note.find("\n\n").unwrap()];
        let line = note::cosign(text, "witness.example/w1", &witness, 1_800_000_000).unwrap();
        let root = note::Checkpoint::parse(text).unwrap().root;
        let event = WitnessEvent::LogCheckpointCosigned {
            tree_size: size,
            root_hash: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, root),
            witness: "witness.example/w1+00000000+AA".into(),
            cosignature: line.clone(),
        };
        store
            .append(AppendRequest::new(
                witness_stream(),
                ExpectedVersion::Any,
                vec![NewEvent::of(&event)],
            ))
            .await
            .unwrap();
        line
    };
    let mut signer = Checkpointer::new(1, 1, "test.example/log");
    for _ in 0..3 {
        thing().await;
    }
    assert_eq!(
        signer.tick(store.as_ref(), &key, at(0)).await.unwrap(),
        Some(3)
    );
    let (_, first) = latest_note(store.as_ref()).await.unwrap().unwrap();
    assert_eq!(cosigned_note(store.as_ref(), &first).await.unwrap(), first);

    let line = cosign(&first, 3).await;
    // Of another size: not this note's.
    cosign(&first, 2).await;
    assert_eq!(
        signer.tick(store.as_ref(), &key, at(10)).await.unwrap(),
        None,
        "only the checkpoint and cosignatures of it are new"
    );
    let served = cosigned_note(store.as_ref(), &first).await.unwrap();
    assert_eq!(served, format!("{first}{line}"));
    let log = Verifier::new("test.example/log", KeyType::Ed25519, key.verifying_key()).unwrap();
    let witness_key = Verifier::new(
        "witness.example/w1",
        KeyType::Cosignature,
        witness.verifying_key(),
    )
    .unwrap();
    let (_, opened) =
        note::Checkpoint::open(&served, &log, std::slice::from_ref(&witness_key)).unwrap();
    assert!(opened.signed_by(&witness_key));

    // Something new is checkpointed again; the old cosignature is not the
    // new note's.
    thing().await;
    let next = signer.tick(store.as_ref(), &key, at(20)).await.unwrap();
    assert_eq!(next, Some(7));
    let (_, second) = latest_note(store.as_ref()).await.unwrap().unwrap();
    assert_ne!(second, first);
    assert_eq!(
        cosigned_note(store.as_ref(), &second).await.unwrap(),
        second
    );
}

/// Events appended while a checkpoint was being signed land before it in
/// the log; the log going idle right then must not leave them uncovered.
pub async fn events_appended_while_signing_are_checkpointed_when_idle(h: &impl Harness) {
    use proofline_commands::checkpoints::Checkpointer;
    use proofline_commands::signing::ServiceKey;
    use proofline_domain::checkpoint::{self, Checkpoint};

    let store = h.open().await;
    let key = ServiceKey::generate().unwrap();
    noted(store.as_ref(), 5).await;
    let third = store.read_all(2, 1).await.unwrap().pop().unwrap();
    // A checkpoint of the first 3 events, recorded after events 4 and 5.
    let signed = Checkpoint {
        position: 3,
        hash: third.hash,
        signed_at: at(0),
    };
    let kid = key.kid();
    let signature = key.sign(signed.signing_input(&kid).as_bytes());
    store
        .append(AppendRequest::new(
            checkpoint::stream(),
            ExpectedVersion::NoStream,
            vec![NewEvent::of(&signed.event(
                &kid,
                &signature.to_bytes(),
                None,
            ))],
        ))
        .await
        .unwrap();
    let mut signer = Checkpointer::new(1_000, 10, "test.example/log");
    assert_eq!(
        signer.tick(store.as_ref(), &key, at(5)).await.unwrap(),
        None,
        "not due yet"
    );
    assert_eq!(
        signer.tick(store.as_ref(), &key, at(10)).await.unwrap(),
        Some(6),
        "events 4 and 5 are new"
    );
    assert_eq!(
        signer.tick(store.as_ref(), &key, at(30)).await.unwrap(),
        None,
        "now only the checkpoint is"
    );
}
