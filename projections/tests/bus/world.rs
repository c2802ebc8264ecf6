//! The world the bus tests run in: a store on a temporary SQLite file, a
//! nats-server of the test's own, relay options naming a stream of the
//! test's own, and a way to wait for the relay.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use proofline_commands::migrate;
use proofline_commands::store::sqlite::{self, SqliteEventStore};
use proofline_commands::store::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use proofline_domain::ids::StreamId;
use proofline_domain::log::Envelope;
use proofline_projections::relay::{Relay, RelayOptions};
use proofline_testkit::nats::NatsServer;
use serde_json::json;
use tokio::sync::oneshot;
use uuid::Uuid;

pub(crate) struct World {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) nats: NatsServer,
    pub(crate) options: RelayOptions,
    pub(crate) _dir: tempfile::TempDir,
}

pub(crate) async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    let pool = sqlite::connect_pool(&path).await.unwrap();
    migrate::apply_sqlite(&pool).await.unwrap();
    let store: Arc<dyn EventStore> = Arc::new(SqliteEventStore::open(pool, &path).await.unwrap());
    World {
        store,
        nats: NatsServer::start(),
        options: RelayOptions {
            stream: format!("PROOFLINE_EVENTS_T{}", Uuid::now_v7().simple()),
            ack_wait: Duration::from_secs(1),
            ..RelayOptions::default()
        },
        _dir: dir,
    }
}

impl World {
    pub(crate) async fn client(&self) -> async_nats::Client {
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(self.nats.url())
            .await
            .unwrap()
    }

    pub(crate) async fn append(&self, count: usize) {
        for i in 0..count {
            let category = ["lender", "verification", "issuer"][i % 3];
            self.store
                .append(AppendRequest::new(
                    StreamId::new(category, Uuid::now_v7()).unwrap(),
                    ExpectedVersion::NoStream,
                    vec![NewEvent::new("SomethingHappened", 1, json!({"i": i}))],
                ))
                .await
                .unwrap();
        }
    }

    pub(crate) async fn head(&self) -> u64 {
        self.store.head().await.unwrap().map_or(0, |h| h.position)
    }

    /// Starts a relay; the sender stops it.
    pub(crate) async fn relay(
        &self,
    ) -> (
        oneshot::Sender<()>,
        Arc<std::sync::atomic::AtomicU64>,
        tokio::task::JoinHandle<()>,
    ) {
        let relay = Relay::new(
            self.store.clone(),
            self.client().await,
            self.options.clone(),
        );
        let published = relay.published();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(relay.run(async move {
            let _ = stopped.await;
        }));
        (stop, published, task)
    }

    /// Every message of the stream, in stream order.
    pub(crate) async fn stream_contents(&self) -> Vec<(u64, String, Envelope)> {
        let js = jetstream::new(self.client().await);
        let mut stream = js.get_stream(&self.options.stream).await.unwrap();
        let last = stream.info().await.unwrap().state.last_sequence;
        let mut out = Vec::new();
        for sequence in 1..=last {
            let message = stream.get_raw_message(sequence).await.unwrap();
            let envelope: Envelope = serde_json::from_slice(&message.payload).unwrap();
            assert_eq!(
                message.headers.get("Proofline-Position").unwrap().as_str(),
                envelope.position.to_string()
            );
            assert_eq!(
                message.headers.get("Nats-Msg-Id").unwrap().as_str(),
                envelope.event_id.to_string()
            );
            assert_eq!(
                message.headers.get("Proofline-Type").unwrap().as_str(),
                envelope.event_type
            );
            out.push((sequence, message.subject.to_string(), envelope));
        }
        out
    }

    pub(crate) async fn assert_stream_is_the_log(&self) {
        let contents = self.stream_contents().await;
        let positions: Vec<u64> = contents.iter().map(|(_, _, e)| e.position).collect();
        let head = self.head().await;
        assert_eq!(
            positions,
            (1..=head).collect::<Vec<_>>(),
            "every event once, in order"
        );
        let log = self.store.read_all(0, head as usize).await.unwrap();
        for ((_, subject, published), stored) in contents.iter().zip(&log) {
            assert_eq!(published, stored);
            assert_eq!(
                subject,
                &format!(
                    "proofline.events.{}.{}",
                    stored.stream_id.category(),
                    stored.event_type
                )
            );
        }
    }
}

pub(crate) async fn until(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
