//! The relay and the JetStream subscription against real nats-server
//! processes of the tests' own (stopped and started at will), fed from a
//! real store. Needs nats-server, so behind `service-tests`.
#![cfg(feature = "service-tests")]

mod world;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use proofline_commands::migrate;
use proofline_commands::store::sqlite::{self, SqliteEventStore};
use proofline_commands::store::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use proofline_domain::ids::Category::{self, Verification};
use proofline_domain::ids::StreamId;
use proofline_projections::jetstream::JetStreamSubscription;
use proofline_projections::relay::{Relay, RelayOptions, ensure_stream};
use proofline_projections::subscription::Subscription;
use proofline_testkit::nats::NatsServer;
use serde_json::json;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::world::{World, until, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_its_subject_once_in_order() {
    let world = world().await;
    world.append(150).await;
    let (stop, published, task) = world.relay().await;
    world.append(150).await;
    let head = world.head().await;
    until("the relay", Duration::from_secs(30), async || {
        published.load(Ordering::Relaxed) >= head
    })
    .await;
    let _ = stop.send(());
    task.await.unwrap();
    world.assert_stream_is_the_log().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_before_saving_its_position_neither_repeats_nor_skips() {
    let world = world().await;
    world.append(100).await;
    let (stop, published, task) = world.relay().await;
    until("the relay", Duration::from_secs(30), async || {
        published.load(Ordering::Relaxed) >= 100
    })
    .await;
    let _ = stop.send(());
    task.await.unwrap();
    // As if it died after publishing but before saving: the saved position
    // is behind what the stream has.
    let name = format!("relay:{}", world.options.stream);
    world.store.save_consumer_position(&name, 40).await.unwrap();
    world.append(25).await;
    let (stop, published, task) = world.relay().await;
    until("the second relay", Duration::from_secs(30), async || {
        published.load(Ordering::Relaxed) >= 125
    })
    .await;
    let _ = stop.send(());
    task.await.unwrap();
    world.assert_stream_is_the_log().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_for_ten_seconds_loses_and_repeats_nothing() {
    let mut world = world().await;
    world.append(50).await;
    let (stop, published, task) = world.relay().await;
    until("the relay", Duration::from_secs(30), async || {
        published.load(Ordering::Relaxed) >= 50
    })
    .await;
    world.nats.stop();
    // Commands go on while the bus is down.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        world.append(10).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    world.nats.restart();
    let head = world.head().await;
    until(
        "the relay after the outage",
        Duration::from_secs(60),
        async || published.load(Ordering::Relaxed) >= head,
    )
    .await;
    let _ = stop.send(());
    task.await.unwrap();
    world.assert_stream_is_the_log().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_drops_duplicates_and_refuses_deletes() {
    let world = world().await;
    let js = jetstream::new(world.client().await);
    let stream = ensure_stream(&js, &world.options).await.unwrap();
    let publish = async |id: &str| {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id);
        js.publish_with_headers("proofline.events.test.Thing", headers, "{}".into())
            .await
            .unwrap()
            .await
            .unwrap()
    };
    let first = publish("same").await;
    let again = publish("same").await;
    assert!(
        !first.duplicate && again.duplicate,
        "the duplicate window works"
    );
    assert_eq!(first.sequence, again.sequence);
    assert!(
        stream.delete_message(first.sequence).await.is_err(),
        "deny_delete"
    );
    let info = js
        .get_stream(&world.options.stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.state.messages, 1);
    assert!(info.config.deny_purge && info.config.deny_delete);
    assert_eq!(info.config.duplicate_window, world.options.duplicate_window);
    // An expected last message id that does not match is refused.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "next");
    headers.insert("Nats-Expected-Last-Msg-Id", "not-the-last");
    let refused = js
        .publish_with_headers("proofline.events.test.Thing", headers, "{}".into())
        .await
        .unwrap()
        .await;
    assert!(refused.is_err(), "Nats-Expected-Last-Msg-Id is enforced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_delivers_in_order_and_redelivers_what_was_not_acked() {
    let world = world().await;
    world.append(30).await;
    let (stop, published, task) = world.relay().await;
    until("the relay", Duration::from_secs(30), async || {
        published.load(Ordering::Relaxed) >= 30
    })
    .await;
    let client = world.client().await;
    // Reading verification events only: the others come as skeletons,
    // without their data, each in its place.
    let mut subscription =
        JetStreamSubscription::open(client.clone(), &world.options, "t1", 0, &[Verification])
            .await
            .unwrap();
    let stored = world.store.read_all(0, 10).await.unwrap();
    for expected in &stored {
        let envelope = subscription.next().await.unwrap();
        assert_eq!(envelope.position, expected.position);
        assert_eq!(envelope.stream_id, expected.stream_id);
        assert_eq!(envelope.hash, expected.hash);
        if envelope.stream_id.kind() == Some(Verification) {
            assert_eq!(envelope.data, expected.data);
        } else {
            assert_eq!(envelope.data, serde_json::Value::Null);
        }
    }
    assert_eq!(stored.len(), 10);
    subscription.ack(5).await.unwrap();
    drop(subscription);
    // 6..=10 were delivered but not acked: they come again (after the ack
    // wait), before 11.
    let mut again = JetStreamSubscription::open(client, &world.options, "t1", 0, &Category::ALL)
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 25 {
        let envelope = tokio::time::timeout(Duration::from_secs(30), again.next())
            .await
            .expect("redelivery")
            .unwrap();
        again.ack(envelope.position).await.unwrap();
        seen.push(envelope.position);
    }
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, (6..=30).collect::<Vec<_>>());
    let _ = stop.send(());
    task.await.unwrap();
}

/// A fresh store (a restore, an import, a second environment) pointed at a
/// stream that holds another log's events: the relay refuses to publish
/// and says why, instead of resuming after the other log's last position
/// and skipping this log's events up to it. Given an empty stream (the
/// way out README describes), it publishes this log from its first event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_another_log_is_refused_not_skipped() {
    let first = world().await;
    first.append(8).await;
    let (stop, published, task) = first.relay().await;
    until("the first log", Duration::from_secs(30), async || {
        published.load(Ordering::Relaxed) >= 8
    })
    .await;
    let _ = stop.send(());
    task.await.unwrap();

    // Another log on the same NATS and stream: longer and shorter ones.
    for events in [12, 3] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.sqlite");
        let pool = sqlite::connect_pool(&path).await.unwrap();
        migrate::apply_sqlite(&pool).await.unwrap();
        let store: Arc<dyn EventStore> =
            Arc::new(SqliteEventStore::open(pool, &path).await.unwrap());
        let other = World {
            store,
            nats: NatsServer::start(),
            options: first.options.clone(),
            _dir: dir,
        };
        other.append(events).await;
        let relay = Relay::new(
            other.store.clone(),
            first.client().await,
            first.options.clone(),
        );
        let (published, refusal) = (relay.published(), relay.refusal());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(relay.run(async move {
            let _ = stopped.await;
        }));
        until("the refusal", Duration::from_secs(30), async || {
            refusal.read().unwrap().is_some()
        })
        .await;
        let why = refusal.read().unwrap().clone().unwrap();
        assert!(why.contains("another log"), "{why}");
        assert!(why.contains("position 8"), "{why}");
        assert_eq!(published.load(Ordering::Relaxed), 0, "nothing published");
        assert_eq!(
            first.stream_contents().await.len(),
            8,
            "the stream is untouched"
        );
        let _ = stop.send(());
        task.await.unwrap();
    }

    // The way out: an empty stream. The relay publishes this log whole.
    let js = jetstream::new(first.client().await);
    js.delete_stream(&first.options.stream).await.unwrap();
    let other = world().await;
    let other = World {
        options: first.options.clone(),
        ..other
    };
    other.append(5).await;
    let relay = Relay::new(
        other.store.clone(),
        first.client().await,
        first.options.clone(),
    );
    let (published, refusal) = (relay.published(), relay.refusal());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(relay.run(async move {
        let _ = stopped.await;
    }));
    until("the new log", Duration::from_secs(30), async || {
        published.load(Ordering::Relaxed) >= 5
    })
    .await;
    assert!(refusal.read().unwrap().is_none());
    let contents = first.stream_contents().await;
    let log = other.store.read_all(0, 100).await.unwrap();
    assert_eq!(
        contents.into_iter().map(|(_, _, e)| e).collect::<Vec<_>>(),
        log,
        "every event of this log, from position 1"
    );
    let _ = stop.send(());
    task.await.unwrap();
}

/// `deploy/nats/nats.conf`: the analyst reads the events and makes
/// consumers of its own, and can do nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analyst_user_reads_and_does_nothing_else() {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nats/nats.conf");
    // Every read model's consumer is denied to the analyst, every way.
    let text = std::fs::read_to_string(&config).unwrap();
    for model in proofline_projections::models::all() {
        let consumer = format!("proofline-{}", model.name());
        for denied in [
            format!("$JS.API.CONSUMER.MSG.NEXT.PROOFLINE_EVENTS.{consumer}\""),
            format!("$JS.ACK.PROOFLINE_EVENTS.{consumer}.>"),
            format!("$JS.API.CONSUMER.CREATE.PROOFLINE_EVENTS.{consumer}\""),
            format!("$JS.API.CONSUMER.CREATE.PROOFLINE_EVENTS.{consumer}.>"),
            format!("$JS.API.CONSUMER.DURABLE.CREATE.PROOFLINE_EVENTS.{consumer}\""),
        ] {
            assert!(text.contains(&denied), "nats.conf denies {denied}");
        }
    }
    let nats = NatsServer::start_with_config(
        &config,
        &[
            ("PROOFLINE_NATS_PASSWORD", "service-pw"),
            ("ANALYST_NATS_PASSWORD", "analyst-pw"),
        ],
    );
    let connect = async |user: &str, password: &str| {
        async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
            .connect(nats.url())
            .await
            .unwrap()
    };
    let service = connect("proofline", "service-pw").await;
    let analyst = connect("analyst", "analyst-pw").await;
    assert!(
        async_nats::ConnectOptions::with_user_and_password("analyst".into(), "wrong".into())
            .connect(nats.url())
            .await
            .is_err(),
        "a wrong password is refused"
    );

    // The service publishes the log as the relay does, and has a consumer.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    let pool = sqlite::connect_pool(&path).await.unwrap();
    migrate::apply_sqlite(&pool).await.unwrap();
    let store: Arc<dyn EventStore> = Arc::new(SqliteEventStore::open(pool, &path).await.unwrap());
    for i in 0..5 {
        store
            .append(AppendRequest::new(
                StreamId::new("verification", Uuid::now_v7()).unwrap(),
                ExpectedVersion::NoStream,
                vec![NewEvent::new("PresentationVerified", 1, json!({"i": i}))],
            ))
            .await
            .unwrap();
    }
    let relay = Relay::new(store.clone(), service.clone(), RelayOptions::default());
    let published = relay.published();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(relay.run(async move {
        let _ = stopped.await;
    }));
    until("the relay", Duration::from_secs(30), async || {
        published.load(Ordering::Relaxed) >= 5
    })
    .await;
    let mut projector = JetStreamSubscription::open(
        service.clone(),
        &RelayOptions::default(),
        "proofline-verifications",
        0,
        &Category::ALL,
    )
    .await
    .unwrap();
    assert_eq!(projector.next().await.unwrap().position, 1);

    // The analyst: a durable consumer of its own reads every event.
    let js = jetstream::new(analyst.clone());
    let stream = js.get_stream("PROOFLINE_EVENTS").await.unwrap();
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            "analyst-1",
            jetstream::consumer::pull::Config {
                durable_name: Some("analyst-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut batch = consumer.fetch().max_messages(5).messages().await.unwrap();
    let mut read = 0;
    while let Some(message) = futures::StreamExt::next(&mut batch).await {
        message.unwrap().ack().await.unwrap();
        read += 1;
    }
    assert_eq!(read, 5);

    // And nothing else: no publishing events, no deleting the stream, no
    // reading the service's consumer.
    let timeout = Duration::from_secs(3);
    let publish = tokio::time::timeout(timeout, async {
        js.publish("proofline.events.verification.Forged", "{}".into())
            .await?
            .await
    })
    .await;
    assert!(
        !matches!(publish, Ok(Ok(_))),
        "the analyst may not publish events"
    );
    let delete = tokio::time::timeout(timeout, js.delete_stream("PROOFLINE_EVENTS")).await;
    assert!(
        !matches!(delete, Ok(Ok(_))),
        "the analyst may not delete the stream"
    );
    let theirs = tokio::time::timeout(timeout, async {
        let consumer: jetstream::consumer::PullConsumer =
            stream.get_consumer("proofline-verifications").await?;
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(1))
            .messages()
            .await?;
        Ok::<_, async_nats::Error>(
            futures::StreamExt::next(&mut batch)
                .await
                .map(|m| m.is_ok()),
        )
    })
    .await;
    assert!(
        !matches!(theirs, Ok(Ok(Some(true)))),
        "the analyst may not read the service's consumer"
    );
    assert_eq!(
        service_info_messages(&service).await,
        5,
        "the stream is intact"
    );

    // Nor settle the service's messages: a service consumer holds a message
    // unacknowledged; the analyst's +ACK and +TERM on its reply subject are
    // refused, so the message stays pending for the service.
    let service_js = jetstream::new(service.clone());
    let service_stream = service_js.get_stream("PROOFLINE_EVENTS").await.unwrap();
    let theirs: jetstream::consumer::PullConsumer = service_stream
        .get_or_create_consumer(
            "proofline-daily_stats",
            jetstream::consumer::pull::Config {
                durable_name: Some("proofline-daily_stats".into()),
                ack_wait: Duration::from_secs(60),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let pending = || async {
        service_stream
            .consumer_info("proofline-daily_stats")
            .await
            .unwrap()
            .num_ack_pending
    };
    let before = pending().await;
    let mut batch = theirs.fetch().max_messages(1).messages().await.unwrap();
    let held = futures::StreamExt::next(&mut batch).await.unwrap().unwrap();
    let reply = held.reply.clone().expect("a reply subject to ack on");
    assert!(
        reply
            .as_str()
            .starts_with("$JS.ACK.PROOFLINE_EVENTS.proofline-daily_stats."),
        "{reply}"
    );
    assert_eq!(pending().await, before + 1);
    for verdict in ["+ACK", "+TERM"] {
        analyst
            .publish(reply.clone(), verdict.into())
            .await
            .unwrap();
    }
    analyst.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pending().await, before + 1, "the analyst settled nothing");
    held.ack().await.unwrap();

    // Nor create or change a consumer under a service consumer's name, by
    // any of the API's subjects.
    let config_before = service_stream
        .consumer_info("proofline-verifications")
        .await
        .unwrap()
        .config;
    let request = |subject: String, durable: &str| {
        let body = json!({
            "stream_name": "PROOFLINE_EVENTS",
            "config": {
                "durable_name": durable,
                "name": durable,
                "deliver_policy": "new",
                "ack_policy": "none",
                "description": "taken over",
            },
        });
        let analyst = analyst.clone();
        async move {
            tokio::time::timeout(
                Duration::from_secs(3),
                analyst.request(subject, body.to_string().into()),
            )
            .await
        }
    };
    let mut attempts = Vec::new();
    for name in ["proofline-verifications", "proofline-webhook_deliveries"] {
        for subject in [
            format!("$JS.API.CONSUMER.CREATE.PROOFLINE_EVENTS.{name}"),
            format!("$JS.API.CONSUMER.CREATE.PROOFLINE_EVENTS.{name}.proofline.events.>"),
            format!("$JS.API.CONSUMER.DURABLE.CREATE.PROOFLINE_EVENTS.{name}"),
            "$JS.API.CONSUMER.CREATE.PROOFLINE_EVENTS".to_owned(),
            format!("$JS.API.CONSUMER.DELETE.PROOFLINE_EVENTS.{name}"),
        ] {
            let attempt = request(subject.clone(), name);
            attempts.push(async move { (subject, attempt.await) });
        }
    }
    for (subject, answer) in futures::future::join_all(attempts).await {
        // Refused: no answer (a permission violation), or an error.
        if let Ok(Ok(message)) = answer {
            let body: serde_json::Value =
                serde_json::from_slice(&message.payload).unwrap_or_default();
            assert!(body.get("error").is_some(), "{subject}: {body}");
        }
    }
    let config_after = service_stream
        .consumer_info("proofline-verifications")
        .await
        .unwrap()
        .config;
    assert_eq!(config_after.description, config_before.description);
    assert_eq!(config_after.deliver_policy, config_before.deliver_policy);
    assert_eq!(config_after.ack_policy, config_before.ack_policy);
    let names: Vec<String> = futures::StreamExt::collect::<Vec<_>>(service_stream.consumer_names())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(
        !names.contains(&"proofline-webhook_deliveries".to_owned()),
        "the analyst created no consumer under a service name: {names:?}"
    );
    let _ = stop.send(());
    task.await.unwrap();
}

async fn service_info_messages(client: &async_nats::Client) -> u64 {
    jetstream::new(client.clone())
        .get_stream("PROOFLINE_EVENTS")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages
}
