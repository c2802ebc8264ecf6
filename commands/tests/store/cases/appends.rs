//! Single appends: expected versions, idempotent retries, immutability,
//! stored metadata and the appends the store refuses.

use std::collections::HashSet;

use proofline_commands::store::{AppendRequest, ExpectedVersion, NewEvent, StoreError};
use proofline_domain::log::Metadata;
use serde_json::json;

use super::{all_events, append, assert_conflict, assert_intact_chain, event, stream};
use crate::harness::Harness;

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
