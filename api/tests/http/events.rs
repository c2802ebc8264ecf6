//! The cases of the HTTP contract for reading the log: pages and the
//! Server-Sent Events tail.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use proofline_api::ApiSettings;
use proofline_commands::store::{AppendRequest, ExpectedVersion, NewEvent};
use proofline_domain::ids::StreamId;
use serde_json::{Value, json};

use crate::support::TestApp;

async fn auditor(app: &TestApp) -> String {
    app.register_auditor("Ledger Audit").await
}

async fn append(app: &TestApp, n: usize) {
    for i in 0..n {
        app.store
            .append(AppendRequest::new(
                StreamId::new("audit-test", uuid::Uuid::now_v7()).unwrap(),
                ExpectedVersion::NoStream,
                vec![NewEvent::new("Noted", 1, json!({"n": i}))],
            ))
            .await
            .unwrap();
    }
}

/// An open tail: SSE messages as (id, data) as they arrive.
struct Tail {
    messages: tokio::sync::mpsc::UnboundedReceiver<(u64, Value)>,
    task: tokio::task::JoinHandle<()>,
}

impl Tail {
    async fn open(app: &TestApp, key: &str, query: &str, last_event_id: Option<u64>) -> Tail {
        let mut request = app
            .client
            .get(format!("{}/v1/events/stream{query}", app.base))
            .bearer_auth(key);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let (tx, messages) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut body = response.bytes_stream();
            let mut text = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = text.find("\n\n") {
                    let block: String = text.drain(..end + 2).collect();
                    let mut id = None;
                    let mut data = String::new();
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id:") {
                            id = v.trim().parse::<u64>().ok();
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push_str(v.trim_start());
                        }
                    }
                    if let Some(id) = id {
                        let _ = tx.send((id, serde_json::from_str(&data).unwrap()));
                    }
                }
            }
        });
        Tail { messages, task }
    }

    async fn take(&mut self, n: usize) -> Vec<(u64, Value)> {
        let mut got = Vec::new();
        while got.len() < n {
            let next = tokio::time::timeout(Duration::from_secs(20), self.messages.recv())
                .await
                .expect("the tail keeps up")
                .expect("the tail is open");
            got.push(next);
        }
        got
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn the_log_is_paged_and_tailed_for_auditors_only<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(ApiSettings::default()).await;
    let auditor = auditor(&app).await;
    let (_, lender) = app.register_lender("events@acme.example").await;
    for path in [
        "/v1/events",
        "/v1/events/stream",
        "/v1/log/checkpoints",
        "/v1/log/checkpoints/latest",
    ] {
        let answer = app.get(path, Some(&lender)).await;
        assert_eq!((answer.status, answer.code()), (403, "FORBIDDEN"), "{path}");
        assert_eq!(app.get(path, None).await.status, 401, "{path}");
    }
    for bad in ["?limit=0", "?limit=1001", "?after=x", "?nope=1"] {
        let answer = app.get(&format!("/v1/events{bad}"), Some(&auditor)).await;
        assert_eq!(
            (answer.status, answer.code()),
            (422, "VALIDATION_FAILED"),
            "{bad}"
        );
    }

    // Pages: exactly the stored envelopes, gapless, with next_after.
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let page = app
            .get(
                &format!("/v1/events?after={after}&limit=3"),
                Some(&app.operator_key),
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        let events = page.body["events"].as_array().unwrap().clone();
        if events.is_empty() {
            assert_eq!(page.body["next_after"], after);
            break;
        }
        after = page.body["next_after"].as_u64().unwrap();
        seen.extend(events);
    }
    let stored = serde_json::to_value(app.all_events().await).unwrap();
    assert_eq!(Value::from(seen), stored, "the envelopes as stored");

    // The tail: connected before 100 appends, it gets all 100 in order.
    let head = app.store.head().await.unwrap().map_or(0, |h| h.position);
    let mut tail = Tail::open(&app, &auditor, &format!("?after={head}"), None).await;
    append(&app, 100).await;
    let got = tail.take(100).await;
    let positions: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
    assert_eq!(positions, (head + 1..=head + 100).collect::<Vec<_>>());
    for (id, envelope) in &got {
        assert_eq!(envelope["position"], *id);
        assert!(envelope["hash"].is_string());
    }
    drop(tail);

    // Reconnecting with Last-Event-ID misses nothing appended meanwhile.
    let last = head + 60;
    append(&app, 10).await;
    let mut again = Tail::open(&app, &auditor, "?after=0", Some(last)).await;
    let got = again.take(50).await;
    let positions: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
    assert_eq!(positions, (last + 1..=head + 110).collect::<Vec<_>>());
}
