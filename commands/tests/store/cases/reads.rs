//! Reading the log back: paging through all events, a stream in version
//! order, and durable subscriptions across a restart.

use proofline_commands::store::tail::{DurableTail, Tail};
use proofline_commands::store::{AppendRequest, ExpectedVersion, NewEvent};

use proofline_domain::log::Metadata;
use serde_json::json;

use super::{PATIENCE, append, event, stream};
use crate::harness::Harness;

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

/// A store hands its tails the events its writer just committed from
/// memory; what they get is exactly what reading the rows back gives
/// (integers, text, metadata, times, hashes), whichever store reads.
pub async fn events_read_from_memory_are_the_stored_events(h: &impl Harness) {
    let writer = h.open().await;
    // The first read asks the writer to keep what it commits.
    assert!(writer.read_all(0, 10).await.unwrap().is_empty());
    let s = stream("fresh");
    let data = [
        json!({"n": 1, "neg": -5, "max": 9_007_199_254_740_991_i64, "min": -9_007_199_254_740_991_i64}),
        json!({"text": "é\u{1F600}\u{7f}\"\\", "nested": {"z": [1, {"b": null, "a": true}]}}),
        json!({"list": [], "empty": {}, "zero": 0}),
    ];
    for (n, data) in data.into_iter().enumerate() {
        let request = AppendRequest::new(
            s.clone(),
            ExpectedVersion::Any,
            vec![NewEvent::new("Noted", 2, data)],
        )
        .with_metadata(Metadata {
            correlation_id: Some(format!("corr-{n}")),
            actor: Some("operator".into()),
            ..Metadata::default()
        });
        writer.append(request).await.unwrap();
    }
    let from_memory = writer.read_all(0, 100).await.unwrap();
    let from_memory_paged = [
        writer.read_all(0, 1).await.unwrap(),
        writer.read_all(1, 100).await.unwrap(),
    ]
    .concat();
    let reader = h.open().await;
    let stored = reader.read_all(0, 100).await.unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(from_memory, stored);
    assert_eq!(from_memory_paged, stored);
    let texts = |events: &[proofline_domain::log::Envelope]| {
        events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(texts(&from_memory), texts(&stored));
    writer.close().await;
    reader.close().await;
}
