//! Concurrent writers: racing appends on one stream, on distinct streams,
//! from two stores on one database, and atomic multi-stream appends.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use proofline_commands::store::tail::Tail;
use proofline_commands::store::{Backend, CategoryHeads, ExpectedVersion, StoreError};
use proofline_domain::ids::StreamId;
use tokio::sync::Barrier;

use super::{PATIENCE, all_events, append, assert_intact_chain, event, stream};
use crate::harness::Harness;

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

/// Each category of stream has a head of its own (what the trust
/// registry's cache checks): an append moves its categories' heads and the
/// log's, no other. On Postgres another store on the database hears the
/// same from the writer's NOTIFY.
pub async fn category_heads_move_with_their_streams(h: &impl Harness) {
    let stores = [h.open().await, h.open().await];
    let issuer = StreamId::new("issuer", uuid::Uuid::now_v7().to_string()).unwrap();
    let verification = StreamId::new("verification", uuid::Uuid::now_v7().to_string()).unwrap();
    let first = stores[0]
        .append(append(&issuer, ExpectedVersion::Any, 1))
        .await
        .unwrap()
        .last_position;
    let second = stores[0]
        .append(append(&verification, ExpectedVersion::Any, 2))
        .await
        .unwrap()
        .last_position;
    let expect = |heads: CategoryHeads| {
        assert_eq!(
            heads.of_stream(&issuer),
            first,
            "issuers stay where they were"
        );
        assert_eq!(heads.of_stream(&verification), second);
        assert_eq!(
            heads.of_stream(&stream("other")),
            second,
            "a stream of no category: the log"
        );
    };
    assert_eq!(*stores[0].watch_head().borrow(), second);
    expect(*stores[0].watch_category_heads().borrow());
    if stores[1].backend() == Backend::Postgres {
        let mut log = stores[1].watch_head();
        tokio::time::timeout(PATIENCE, log.wait_for(|head| *head >= second))
            .await
            .expect("the NOTIFY arrives")
            .unwrap();
        expect(*stores[1].watch_category_heads().borrow());
    }
    for store in stores {
        store.close().await;
    }
}
