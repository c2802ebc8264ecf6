//! The cases of the contract, by concern. Each takes a harness and asserts
//! behaviour through the `EventStore` trait only (plus raw SQL where the
//! database itself must refuse something); the helpers they share live here.

pub mod appends;
pub mod checkpoints;
pub mod concurrency;
pub mod reads;
pub mod secrets;
pub mod tree;

use std::time::Duration;

use proofline_commands::store::{
    AppendOutcome, AppendRequest, EventStore, ExpectedVersion, NewEvent, StoreError,
};
use proofline_domain::ids::StreamId;
use proofline_domain::log::{ChainVerifier, Envelope};
use serde_json::json;

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
