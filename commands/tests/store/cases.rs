//! The cases of the contract. Each takes a harness and asserts behaviour
//! through the `EventStore` trait only (plus raw SQL where the database
//! itself must refuse something).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use proofline_commands::store::tail::{DurableTail, Tail};
use proofline_commands::store::{
    AppendOutcome, AppendRequest, EventStore, ExpectedVersion, NewEvent, SecretWrite, StoreError,
};
use proofline_domain::ids::StreamId;
use proofline_domain::log::{ChainVerifier, Envelope, Metadata};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tokio::sync::Barrier;

use crate::harness::Harness;

/// Bounds waits on live events so a broken tail fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);

fn stream(name: &str) -> StreamId {
    StreamId::new("test", format!("{name}-{}", uuid::Uuid::now_v7())).unwrap()
}

fn event(n: u64) -> NewEvent {
    NewEvent::new("Tested", 1, json!({"n": n, "note": "contract suite"}))
}

fn append(stream: &StreamId, expected: ExpectedVersion, n: u64) -> AppendRequest {
    AppendRequest::new(stream.clone(), expected, vec![event(n)])
}

async fn all_events(store: &dyn EventStore) -> Vec<Envelope> {
    let mut events = Vec::new();
    loop {
        let after = events.last().map_or(0, |e: &Envelope| e.position);
        let page = store.read_all(after, 1_000).await.unwrap();
        if page.is_empty() {
            return events;
        }
        events.extend(page);
    }
}

/// Positions 1..=n, each prev_hash linking, each hash recomputed.
fn assert_intact_chain(events: &[Envelope]) {
    let mut chain = ChainVerifier::new();
    for e in events {
        chain
            .check(e)
            .unwrap_or_else(|err| panic!("chain broken: {err}"));
    }
}

fn assert_conflict(result: Result<AppendOutcome, StoreError>, expected_actual: u64) {
    match result {
        Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, expected_actual),
        other => panic!("expected a conflict at version {expected_actual}, got {other:?}"),
    }
}

pub async fn expected_version_any(h: &impl Harness) {
    let store = h.open().await;
    let s = stream("any");
    let first = store
        .append(append(&s, ExpectedVersion::Any, 1))
        .await
        .unwrap();
    assert_eq!(
        (
            first.stream_version,
            first.first_position,
            first.already_stored
        ),
        (1, 1, false)
    );
    let second = store
        .append(append(&s, ExpectedVersion::Any, 2))
        .await
        .unwrap();
    assert_eq!((second.stream_version, second.first_position), (2, 2));
    store.close().await;
}

pub async fn expected_version_no_stream(h: &impl Harness) {
    let store = h.open().await;
    let s = stream("new");
    let created = store
        .append(append(&s, ExpectedVersion::NoStream, 1))
        .await
        .unwrap();
    assert_eq!(created.stream_version, 1);
    assert_conflict(
        store.append(append(&s, ExpectedVersion::NoStream, 2)).await,
        1,
    );
    assert_eq!(store.read_stream(&s, 0, 10).await.unwrap().len(), 1);
    store.close().await;
}

pub async fn expected_version_exact(h: &impl Harness) {
    let store = h.open().await;
    let s = stream("exact");
    // Exact(0) is "the stream is empty", what a handler sends after loading nothing.
    assert_eq!(
        store
            .append(append(&s, ExpectedVersion::Exact(0), 1))
            .await
            .unwrap()
            .stream_version,
        1
    );
    assert_eq!(
        store
            .append(append(&s, ExpectedVersion::Exact(1), 2))
            .await
            .unwrap()
            .stream_version,
        2
    );
    assert_conflict(
        store.append(append(&s, ExpectedVersion::Exact(1), 3)).await,
        2,
    );
    assert_conflict(
        store.append(append(&s, ExpectedVersion::Exact(5), 3)).await,
        2,
    );
    assert_conflict(
        store
            .append(append(&stream("other"), ExpectedVersion::Exact(1), 1))
            .await,
        0,
    );
    let versions: Vec<u64> = store
        .read_stream(&s, 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, vec![1, 2]);
    store.close().await;
}

pub async fn racing_writers_on_one_stream(h: &impl Harness) {
    const WRITERS: usize = 32;
    const ROUNDS: u64 = 8;
    let store = h.open().await;
    let s = stream("race");
    let barrier = Arc::new(Barrier::new(WRITERS));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (store, s, barrier) = (store.clone(), s.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for round in 0..ROUNDS {
                barrier.wait().await;
                let result = store
                    .append(append(&s, ExpectedVersion::Exact(round), w as u64))
                    .await;
                results.push(result);
                barrier.wait().await;
            }
            results
        }));
    }
    let mut per_round = vec![(0usize, 0usize); ROUNDS as usize];
    for task in tasks {
        for (round, result) in task.await.unwrap().into_iter().enumerate() {
            match result {
                Ok(outcome) => {
                    assert_eq!(outcome.stream_version, round as u64 + 1);
                    per_round[round].0 += 1;
                }
                Err(StoreError::Conflict { actual, .. }) => {
                    assert_eq!(
                        actual,
                        round as u64 + 1,
                        "a loser sees the winner's version"
                    );
                    per_round[round].1 += 1;
                }
                Err(other) => panic!("unexpected error {other:?}"),
            }
        }
    }
    for (round, (wins, conflicts)) in per_round.iter().enumerate() {
        assert_eq!((*wins, *conflicts), (1, WRITERS - 1), "round {round}");
    }
    let stored = store.read_stream(&s, 0, 100).await.unwrap();
    assert_eq!(
        stored.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        (1..=ROUNDS).collect::<Vec<_>>()
    );
    assert_intact_chain(&all_events(store.as_ref()).await);
    store.close().await;
}

pub async fn racing_no_stream_creators(h: &impl Harness) {
    const WRITERS: usize = 32;
    let store = h.open().await;
    let s = stream("create");
    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, s, barrier) = (store.clone(), s.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .append(append(&s, ExpectedVersion::NoStream, w as u64))
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict { actual: 1, .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(store.read_stream(&s, 0, 100).await.unwrap().len(), 1);
    store.close().await;
}

pub async fn writers_on_distinct_streams(h: &impl Harness) {
    const WRITERS: u64 = 32;
    const EACH: u64 = 25;
    let store = h.open().await;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let s = stream(&format!("w{w}"));
                let mut positions = Vec::new();
                for n in 0..EACH {
                    let outcome = store
                        .append(append(&s, ExpectedVersion::Exact(n), n))
                        .await
                        .unwrap();
                    assert_eq!(outcome.stream_version, n + 1);
                    positions.push(outcome.first_position);
                }
                (s, positions)
            })
        })
        .collect();
    let mut answered = BTreeSet::new();
    let mut streams = Vec::new();
    for task in tasks {
        let (s, positions) = task.await.unwrap();
        answered.extend(positions);
        streams.push(s);
    }
    let total = WRITERS * EACH;
    assert_eq!(
        answered,
        (1..=total).collect::<BTreeSet<_>>(),
        "every append got its own position"
    );
    let events = all_events(store.as_ref()).await;
    assert_eq!(events.len() as u64, total);
    assert_eq!(events.last().unwrap().position, total);
    assert_intact_chain(&events);
    for s in &streams {
        let versions: Vec<u64> = store
            .read_stream(s, 0, 100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.stream_version)
            .collect();
        assert_eq!(versions, (1..=EACH).collect::<Vec<_>>());
    }
    store.close().await;
}

pub async fn duplicate_event_ids(h: &impl Harness) {
    let store = h.open().await;
    let s = stream("dup");
    let request = append(&s, ExpectedVersion::NoStream, 1);
    let first = store.append(request.clone()).await.unwrap();
    // The same append again (a retry after a lost answer): same positions,
    // nothing stored twice, even though NoStream no longer holds.
    let again = store.append(request.clone()).await.unwrap();
    assert!(again.already_stored);
    assert_eq!(
        (again.first_position, again.stream_version),
        (first.first_position, 1)
    );

    // Many copies of one new append racing: stored once, all told where.
    let racing = append(&s, ExpectedVersion::Any, 2);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, racing) = (store.clone(), racing.clone());
            tokio::spawn(async move { store.append(racing).await })
        })
        .collect();
    let mut fresh = 0;
    let mut positions = HashSet::new();
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        positions.insert(outcome.first_position);
        if !outcome.already_stored {
            fresh += 1;
        }
    }
    assert_eq!((fresh, positions.len()), (1, 1));

    // Part of an append stored already, or an id reused on another stream: refused.
    let mut partial = append(&s, ExpectedVersion::Any, 3);
    partial.events.push(request.events[0].clone());
    let refused = store.append(partial.clone()).await;
    assert!(
        matches!(refused, Err(StoreError::DuplicateEventId { event_id }) if event_id == request.events[0].event_id)
    );
    let elsewhere = AppendRequest::new(
        stream("elsewhere"),
        ExpectedVersion::Any,
        request.events.clone(),
    );
    assert!(matches!(
        store.append(elsewhere).await,
        Err(StoreError::DuplicateEventId { .. })
    ));

    let events = all_events(store.as_ref()).await;
    assert_eq!(events.len(), 2);
    let ids: HashSet<_> = events.iter().map(|e| e.event_id).collect();
    assert!(!ids.contains(&partial.events[0].event_id));
    assert_intact_chain(&events);
    store.close().await;
}

pub async fn events_refuse_update_and_delete(h: &impl Harness) {
    let store = h.open().await;
    let s = stream("immutable");
    store
        .append(append(&s, ExpectedVersion::NoStream, 1))
        .await
        .unwrap();
    store
        .append(append(&s, ExpectedVersion::Exact(1), 2))
        .await
        .unwrap();
    let before = all_events(store.as_ref()).await;

    for sql in [
        "UPDATE events SET type = 'Changed'",
        "UPDATE events SET data = '{\"n\": 999}' WHERE position = 1",
        "DELETE FROM events",
        "DELETE FROM events WHERE position = 2",
    ] {
        let refused = h.execute_raw(sql).await;
        let message = refused.expect_err(sql);
        assert!(message.contains("append-only"), "{sql}: {message}");
    }
    assert_eq!(all_events(store.as_ref()).await, before);
    assert_intact_chain(&before);
    store.close().await;
}

pub async fn read_all_paging(h: &impl Harness) {
    let store = h.open().await;
    let s = stream("paging");
    let batch: Vec<NewEvent> = (0..50).map(event).collect();
    for chunk in 0..5 {
        let request = AppendRequest::new(
            s.clone(),
            ExpectedVersion::Exact(chunk * 50),
            batch
                .iter()
                .map(|e| NewEvent::new(e.event_type.clone(), 1, e.data.clone()))
                .collect(),
        );
        store.append(request).await.unwrap();
    }
    let mut after = 0;
    let mut sizes = Vec::new();
    loop {
        let page = store.read_all(after, 100).await.unwrap();
        if page.is_empty() {
            break;
        }
        for (i, e) in page.iter().enumerate() {
            assert_eq!(e.position, after + 1 + i as u64);
        }
        sizes.push(page.len());
        after = page.last().unwrap().position;
    }
    assert_eq!(sizes, vec![100, 100, 50]);
    assert!(store.read_all(250, 100).await.unwrap().is_empty());
    assert!(store.read_all(10_000, 100).await.unwrap().is_empty());
    assert!(store.read_all(0, 0).await.unwrap().is_empty());
    assert_eq!(store.read_all(247, 100).await.unwrap().len(), 3);
    store.close().await;
}

pub async fn read_stream_in_version_order(h: &impl Harness) {
    let store = h.open().await;
    let (a, b) = (stream("a"), stream("b"));
    for n in 0..6 {
        let s = if n % 2 == 0 { &a } else { &b };
        store
            .append(append(s, ExpectedVersion::Any, n))
            .await
            .unwrap();
    }
    let of_a = store.read_stream(&a, 0, 100).await.unwrap();
    assert_eq!(
        of_a.iter()
            .map(|e| e.data["n"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![0, 2, 4]
    );
    assert_eq!(
        of_a.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let tail_of_a = store.read_stream(&a, 1, 1).await.unwrap();
    assert_eq!(
        tail_of_a
            .iter()
            .map(|e| e.stream_version)
            .collect::<Vec<_>>(),
        vec![2]
    );
    assert!(
        store
            .read_stream(&stream("none"), 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}

pub async fn subscription_resumes_after_restart(h: &impl Harness) {
    let s = stream("sub");
    let store = h.open().await;
    for n in 0..20 {
        store
            .append(append(&s, ExpectedVersion::Any, n))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut tail = DurableTail::open(store.clone(), "contract-sub")
        .await
        .unwrap();
    for _ in 0..12 {
        let e = tail.next().await.unwrap();
        seen.push(e.position);
        tail.ack(e.position).await.unwrap();
    }
    drop(tail);
    store.close().await;

    // Restart: a new store on the same database; events land while the
    // subscriber is away.
    let store = h.open().await;
    for n in 20..30 {
        store
            .append(append(&s, ExpectedVersion::Any, n))
            .await
            .unwrap();
    }
    let mut tail = DurableTail::open(store.clone(), "contract-sub")
        .await
        .unwrap();
    for _ in 12..30 {
        let e = tokio::time::timeout(PATIENCE, tail.next())
            .await
            .expect("caught up")
            .unwrap();
        seen.push(e.position);
        tail.ack(e.position).await.unwrap();
    }
    // Live: events appended after the subscriber caught up arrive too.
    let writer = {
        let (store, s) = (store.clone(), s.clone());
        tokio::spawn(async move {
            for n in 30..35 {
                store
                    .append(append(&s, ExpectedVersion::Any, n))
                    .await
                    .unwrap();
            }
        })
    };
    for _ in 30..35 {
        let e = tokio::time::timeout(PATIENCE, tail.next())
            .await
            .expect("live event")
            .unwrap();
        seen.push(e.position);
        tail.ack(e.position).await.unwrap();
    }
    writer.await.unwrap();
    assert_eq!(seen, (1..=35).collect::<Vec<_>>(), "no gap, no repeat");
    assert!(
        tail.ack(36).await.is_err(),
        "cannot acknowledge what was not delivered"
    );
    assert_eq!(store.consumer_position("contract-sub").await.unwrap(), 35);
    assert_eq!(store.consumer_position("never-used").await.unwrap(), 0);

    // A plain tail from a position yields exactly what follows it.
    let mut plain = Tail::new(store.clone(), 33);
    assert_eq!(plain.next().await.unwrap().position, 34);
    assert_eq!(plain.next().await.unwrap().position, 35);
    store.close().await;
}

pub async fn secrets_are_written_with_their_append(h: &impl Harness) {
    let store = h.open().await;
    let s = stream("secret");
    let secret = |id: &str, material: &str| SecretWrite {
        id: id.into(),
        kind: "api_key".into(),
        material: SecretString::from(material.to_owned()),
        replace: false,
    };
    let outcome = store
        .append(
            append(&s, ExpectedVersion::NoStream, 1).with_secret(secret("api_key:aaaa", "hash-a")),
        )
        .await
        .unwrap();
    let stored = store.secret("api_key:aaaa").await.unwrap().expect("stored");
    assert_eq!(stored.material.expose_secret(), "hash-a");
    assert_eq!(
        (stored.position, &stored.stream_id, stored.kind.as_str()),
        (outcome.first_position, &s, "api_key")
    );

    // A refused append writes no secret.
    let conflicting =
        append(&s, ExpectedVersion::NoStream, 2).with_secret(secret("api_key:bbbb", "hash-b"));
    assert!(matches!(
        store.append(conflicting).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(store.secret("api_key:bbbb").await.unwrap().is_none());

    // A taken secret id refuses the append: no event either.
    let reused = append(&stream("other"), ExpectedVersion::Any, 3)
        .with_secret(secret("api_key:aaaa", "hash-c"));
    assert!(matches!(
        store.append(reused).await,
        Err(StoreError::SecretIdTaken { .. })
    ));
    assert_eq!(
        store
            .secret("api_key:aaaa")
            .await
            .unwrap()
            .unwrap()
            .material
            .expose_secret(),
        "hash-a"
    );
    let events = all_events(store.as_ref()).await;
    assert_eq!(events.len(), 1);
    // Secrets never enter the log.
    assert!(!serde_json::to_string(&events).unwrap().contains("hash-a"));

    // A secret that may be replaced (a rotated webhook secret) is, with the
    // append that replaces it.
    let rotated = append(&stream("other"), ExpectedVersion::Any, 4).with_secret(SecretWrite {
        replace: true,
        ..secret("api_key:aaaa", "hash-d")
    });
    let outcome = store.append(rotated).await.unwrap();
    let stored = store.secret("api_key:aaaa").await.unwrap().unwrap();
    assert_eq!(stored.material.expose_secret(), "hash-d");
    assert_eq!(stored.position, outcome.first_position);
    store.close().await;
}

/// Webhook secrets sealed with the key derived from the service key (before
/// sealing keys had a file of their own) are sealed again with the sealing
/// key, in place; the webhooks role then needs that key alone.
pub async fn webhook_secrets_move_to_the_sealing_key(h: &impl Harness) {
    use proofline_commands::sealing::{self, SealingKey};
    use proofline_commands::webhooks::{self, WEBHOOK_SECRET};
    let store = h.open().await;
    let legacy_bytes = [7u8; 32];
    let legacy = SealingKey::legacy(legacy_bytes);
    let lender = proofline_domain::lender::LenderId::from_uuid(uuid::Uuid::now_v7());
    let id = format!("webhook:{lender}");
    let old = sealing::seal(&legacy_bytes, id.as_bytes(), b"whsec_old").unwrap();
    let write = SecretWrite {
        id: id.clone(),
        kind: WEBHOOK_SECRET.into(),
        material: SecretString::from(serde_json::to_string(&old).unwrap()),
        replace: false,
    };
    store
        .append(append(&lender.stream_id(), ExpectedVersion::Any, 1).with_secret(write))
        .await
        .unwrap();
    let (dir, key) = {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = SealingKey::load_or_create(&dir.path().join("sealing.key")).unwrap();
        (dir, key)
    };
    assert!(
        webhooks::secret_of(store.as_ref(), &key, lender)
            .await
            .is_err()
    );
    assert_eq!(
        webhooks::reseal(store.as_ref(), &legacy, &key)
            .await
            .unwrap(),
        1
    );
    let opened = webhooks::secret_of(store.as_ref(), &key, lender)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(opened.expose_secret(), "whsec_old");
    assert!(
        webhooks::secret_of(store.as_ref(), &legacy, lender)
            .await
            .is_err()
    );
    assert_eq!(
        webhooks::reseal(store.as_ref(), &legacy, &key)
            .await
            .unwrap(),
        0,
        "nothing left to move"
    );
    drop(dir);
    store.close().await;
}

pub async fn head_and_metadata(h: &impl Harness) {
    let store = h.open().await;
    assert_eq!(store.head().await.unwrap(), None);
    assert_eq!(*store.watch_head().borrow(), 0);
    let metadata = Metadata {
        correlation_id: Some("req-1".into()),
        causation_id: Some("cmd-1".into()),
        actor: Some("operator".into()),
        request_id: Some("req-1".into()),
        ..Metadata::default()
    };
    let s = stream("meta");
    let request = append(&s, ExpectedVersion::Any, 1).with_metadata(metadata.clone());
    let outcome = store.append(request.clone()).await.unwrap();
    let stored = store.read_all(0, 10).await.unwrap();
    let e = &stored[0];
    assert_eq!(e.metadata, metadata);
    assert_eq!(
        (e.event_id, &e.event_type, &e.data),
        (
            request.events[0].event_id,
            &request.events[0].event_type,
            &request.events[0].data
        )
    );
    let head = store.head().await.unwrap().unwrap();
    assert_eq!((head.position, head.hash), (outcome.last_position, e.hash));
    assert_eq!(*store.watch_head().borrow(), outcome.last_position);
    store.close().await;
    // After close, appends are refused rather than lost silently.
    assert!(matches!(
        store.append(append(&s, ExpectedVersion::Any, 2)).await,
        Err(StoreError::Closed)
    ));
}

pub async fn invalid_appends_are_refused(h: &impl Harness) {
    let store = h.open().await;
    let s = stream("invalid");
    let empty = AppendRequest::new(s.clone(), ExpectedVersion::Any, vec![]);
    assert!(matches!(
        store.append(empty).await,
        Err(StoreError::InvalidAppend(_))
    ));
    let bad_type = AppendRequest::new(
        s.clone(),
        ExpectedVersion::Any,
        vec![NewEvent::new("not.valid", 1, json!({}))],
    );
    assert!(matches!(
        store.append(bad_type).await,
        Err(StoreError::InvalidAppend(_))
    ));
    let not_object = AppendRequest::new(
        s.clone(),
        ExpectedVersion::Any,
        vec![NewEvent::new("Tested", 1, json!([1]))],
    );
    assert!(matches!(
        store.append(not_object).await,
        Err(StoreError::InvalidAppend(_))
    ));
    let huge = AppendRequest::new(
        s.clone(),
        ExpectedVersion::Any,
        vec![NewEvent::new("Tested", 1, json!({"x": "y".repeat(70_000)}))],
    );
    assert!(matches!(
        store.append(huge).await,
        Err(StoreError::InvalidAppend(_))
    ));
    let e = event(1);
    let twice = AppendRequest::new(s.clone(), ExpectedVersion::Any, vec![e.clone(), e]);
    assert!(matches!(
        store.append(twice).await,
        Err(StoreError::InvalidAppend(_))
    ));
    assert!(all_events(store.as_ref()).await.is_empty());
    store.close().await;
}

/// docs/log-format.md promises integers within ±(2^53 − 1) only: anything
/// else would be written as a float by RFC 8785 and read back as another
/// number (or not at all), so the store refuses it, at any depth.
pub async fn numbers_the_log_cannot_hold_exactly_are_refused(h: &impl Harness) {
    let store = h.open().await;
    let s = stream("numbers");
    for data in [
        json!({"exp": i64::MAX}),
        json!({"exp": 9_007_199_254_740_992_u64}),
        json!({"nested": {"list": [1, -9_007_199_254_740_992_i64]}}),
        json!({"x": u64::MAX}),
        json!({"x": 1.5}),
        json!({"x": 1e300}),
    ] {
        let request = AppendRequest::new(
            s.clone(),
            ExpectedVersion::Any,
            vec![NewEvent::new("Tested", 1, data.clone())],
        );
        assert!(
            matches!(
                store.append(request).await,
                Err(StoreError::InvalidAppend(_))
            ),
            "{data}"
        );
    }
    assert!(all_events(store.as_ref()).await.is_empty());
    let edge = json!({"max": 9_007_199_254_740_991_u64, "min": -9_007_199_254_740_991_i64});
    let request = AppendRequest::new(
        s.clone(),
        ExpectedVersion::Any,
        vec![NewEvent::new("Tested", 1, edge.clone())],
    );
    store.append(request).await.unwrap();
    let stored = all_events(store.as_ref()).await;
    assert_eq!(stored[0].data, edge, "read back exactly");
    store.close().await;
}

/// Two stores on one database are two writers, as two processes would be:
/// the database-level writer lock (advisory lock on Postgres, BEGIN
/// IMMEDIATE on SQLite) must keep positions gapless, the chain intact and
/// one winner per stream version; and a tail on one sees the other's events.
pub async fn two_writers_share_one_log(h: &impl Harness) {
    const PER_STORE: usize = 16;
    const EACH: u64 = 10;
    let stores = [h.open().await, h.open().await];
    let shared = stream("shared");
    let mut tail = Tail::new(stores[0].clone(), 0).with_poll_interval(Duration::from_millis(100));
    let barrier = Arc::new(Barrier::new(PER_STORE * 2));
    let mut tasks = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        for w in 0..PER_STORE {
            let (store, shared, barrier) = (store.clone(), shared.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                // No panics inside: a task that died would leave the others
                // waiting at the barrier for ever. Errors are collected instead.
                let own = stream(&format!("s{i}w{w}"));
                let mut wins = Vec::new();
                let mut errors = Vec::new();
                for n in 0..EACH {
                    if let Err(e) = store.append(append(&own, ExpectedVersion::Any, n)).await {
                        errors.push(format!("own stream: {e:?}"));
                    }
                    barrier.wait().await;
                    match store
                        .append(append(&shared, ExpectedVersion::Exact(n), n))
                        .await
                    {
                        Ok(o) => wins.push(o.stream_version),
                        Err(StoreError::Conflict { .. }) => {}
                        Err(other) => errors.push(format!("shared stream: {other:?}")),
                    }
                    barrier.wait().await;
                }
                (wins, errors)
            }));
        }
    }
    let mut wins = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        let (w, e) = task.await.unwrap();
        wins.extend(w);
        errors.extend(e);
    }
    assert!(errors.is_empty(), "appends failed: {errors:?}");
    wins.sort_unstable();
    assert_eq!(
        wins,
        (1..=EACH).collect::<Vec<_>>(),
        "one winner per version across writers"
    );
    let total = (PER_STORE as u64 * 2 + 1) * EACH;
    let events = all_events(stores[1].as_ref()).await;
    assert_eq!(events.len() as u64, total);
    assert_intact_chain(&events);
    for expected in 1..=total {
        let e = tokio::time::timeout(PATIENCE, tail.next())
            .await
            .expect("tail keeps up")
            .unwrap();
        assert_eq!(e.position, expected);
    }
    for store in &stores {
        store.close().await;
    }
}

/// An append to several streams (a registration and the reservation of its
/// unique email) stores all of its events or none, and of many concurrent
/// appends reserving one stream exactly one wins.
pub async fn multi_stream_appends_are_atomic(h: &impl Harness) {
    let store = h.open().await;
    let reservation = stream("reserved");
    let (first, second) = (stream("first"), stream("second"));
    let both = append(&first, ExpectedVersion::NoStream, 1).also(
        reservation.clone(),
        ExpectedVersion::NoStream,
        vec![event(2)],
    );
    let outcome = store.append(both).await.unwrap();
    assert_eq!(
        (
            outcome.first_position,
            outcome.last_position,
            outcome.stream_version
        ),
        (1, 2, 1)
    );

    let refused = append(&second, ExpectedVersion::NoStream, 3).also(
        reservation.clone(),
        ExpectedVersion::NoStream,
        vec![event(4)],
    );
    match store.append(refused).await {
        Err(StoreError::Conflict {
            stream_id,
            actual: 1,
            ..
        }) => assert_eq!(stream_id, reservation),
        other => panic!("expected a conflict on the reservation, got {other:?}"),
    }
    assert!(
        store.read_stream(&second, 0, 10).await.unwrap().is_empty(),
        "nothing of a refused append is stored"
    );

    let contested = stream("contested");
    let barrier = Arc::new(Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let (store, contested, barrier) = (store.clone(), contested.clone(), barrier.clone());
            tokio::spawn(async move {
                let own = stream(&format!("claimant{n}"));
                barrier.wait().await;
                let request = append(&own, ExpectedVersion::NoStream, n).also(
                    contested,
                    ExpectedVersion::NoStream,
                    vec![event(n)],
                );
                (own, store.append(request).await)
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        let (own, result) = task.await.unwrap();
        let stored = store.read_stream(&own, 0, 10).await.unwrap().len();
        match result {
            Ok(_) => {
                winners += 1;
                assert_eq!(stored, 1);
            }
            Err(StoreError::Conflict { .. }) => assert_eq!(stored, 0, "a loser stored nothing"),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(store.read_stream(&contested, 0, 10).await.unwrap().len(), 1);
    assert_intact_chain(&all_events(store.as_ref()).await);
    store.close().await;
}

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
    let mut first = Checkpointer::new(10, 10);
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
    let mut second = Checkpointer::new(10, 10);
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
    let (mut one, mut two) = (Checkpointer::new(10, 10), Checkpointer::new(10, 10));
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
        let checkpoint::CheckpointEvent::LogCheckpointSigned { hash, .. } = &checkpoint.event;
        assert_eq!(*hash, event.hash, "the signed hash is the event's");
    }
    assert_eq!(
        covering_after(store.as_ref(), 13, 100).await.unwrap().len(),
        1
    );
}
