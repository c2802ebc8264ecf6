//! A three-node NATS JetStream cluster under Proofline: the stream at three
//! replicas, its leader killed (SIGKILL) under steady appends, then the
//! next leader. The relay and the projector carry on; no event is lost or
//! doubled, in the stream or in the read model.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proofline_testkit::nats::NatsCluster;

use crate::support::{Running, get, proofline};

const STREAM: &str = "PROOFLINE_EVENTS";

/// Commands acknowledged by the API: when, and at which log position.
type Acknowledged = Arc<Mutex<Vec<(Instant, u64, String)>>>;

async fn gauge(base: &str, name: &str) -> Option<f64> {
    let metrics = get(&format!("{base}/metrics")).await.text().await.ok()?;
    metrics.lines().find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        (key == name).then(|| value.parse().ok())?
    })
}

/// The stream's leader and replicas, once the cluster answers.
async fn stream_info(js: &async_nats::jetstream::Context) -> Option<(String, Vec<(String, bool)>)> {
    let mut stream = tokio::time::timeout(Duration::from_millis(500), js.get_stream(STREAM))
        .await
        .ok()?
        .ok()?;
    let info = tokio::time::timeout(Duration::from_millis(500), stream.info())
        .await
        .ok()?
        .ok()?;
    let cluster = info.cluster.clone()?;
    let replicas = cluster
        .replicas
        .iter()
        .map(|r| (r.name.clone(), r.current))
        .collect();
    Some((cluster.leader?, replicas))
}

async fn wait_for<T, F: AsyncFnMut() -> Option<T>>(what: &str, mut probe: F) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What one leader's death cost (printed for RELIABILITY.md).
struct Failover {
    killed: String,
    new_leader: String,
    election: Duration,
    recovered: Duration,
    delayed: usize,
}

/// Kills the stream's leader and waits until another node leads and the
/// relay has published an event acknowledged after the kill.
async fn kill_leader(
    cluster: &mut NatsCluster,
    js: &async_nats::jetstream::Context,
    relay: &str,
    acknowledged: &Acknowledged,
) -> Failover {
    let (leader, _) = wait_for("a stream leader", async || stream_info(js).await).await;
    let index = cluster.index_of(&leader).expect("the leader is a node");
    let killed_at = Instant::now();
    cluster.kill(index);
    let new_leader = wait_for("a new leader", async || {
        stream_info(js).await.filter(|(l, _)| *l != leader)
    })
    .await
    .0;
    let election = killed_at.elapsed();
    let first_after = wait_for("a command acknowledged after the kill", async || {
        let acknowledged = acknowledged.lock().unwrap();
        acknowledged
            .iter()
            .find(|(at, _, _)| *at > killed_at)
            .map(|(_, position, _)| *position)
    })
    .await;
    wait_for("the relay to publish past the kill", async || {
        let published = gauge(relay, "proofline_relay_position").await?;
        (published >= first_after as f64).then_some(())
    })
    .await;
    let recovered = killed_at.elapsed();
    let delayed = acknowledged
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, _, _)| *at > killed_at && *at <= killed_at + recovered)
        .count();
    Failover {
        killed: leader,
        new_leader,
        election,
        recovered,
        delayed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_survives_its_leaders_death_on_a_three_node_cluster() {
    proofline_projections::webhooks::client::install_crypto_provider();
    let database = proofline_testkit::TestDatabase::create().await;
    let mut cluster = NatsCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let role = |name: &str| {
        let mut command = proofline(&data);
        command
            .env("DATABASE_URL", database.url())
            .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
            .env("NATS_URL", cluster.urls())
            .env("PROOFLINE_NATS_STREAM_REPLICAS", "3")
            .env("PROOFLINE_RATE_LIMIT_PER_KEY", "0")
            .args(["serve", "--role", name]);
        command
    };
    let api = Running::start(role("api"));
    let relay = Running::start(role("relay"));
    let projector = Running::start(role("projector"));

    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(cluster.urls().split(',').collect::<Vec<_>>())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    let (_, replicas) = wait_for("the stream at three replicas", async || {
        stream_info(&js).await.filter(|(_, r)| r.len() == 2)
    })
    .await;
    assert_eq!(replicas.len(), 2, "a leader and two replicas");

    // Steady appends: a lender registered every 50 ms, each acknowledged
    // with its position.
    let operator = std::fs::read_to_string(data.join("operator.key")).unwrap();
    let acknowledged: Acknowledged = Arc::default();
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let load = {
        let (acknowledged, base) = (acknowledged.clone(), api.base.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            let mut failures = Vec::new();
            for n in 0.. {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let answer = http
                    .post(format!("{base}/v1/lenders"))
                    .bearer_auth(operator.trim())
                    .json(&serde_json::json!({
                        "name": format!("Lender {n}"),
                        "contact_email": format!("ops{n}@lender.example"),
                    }))
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                match answer {
                    Ok(answer) if answer.status() == 201 => {
                        let body: serde_json::Value = answer.json().await.unwrap();
                        acknowledged.lock().unwrap().push((
                            Instant::now(),
                            body["position"].as_u64().unwrap(),
                            body["lender_id"].as_str().unwrap().to_owned(),
                        ));
                    }
                    Ok(answer) => failures.push(format!(
                        "{}: {}",
                        answer.status(),
                        answer.text().await.unwrap_or_default()
                    )),
                    Err(error) => failures.push(error.to_string()),
                }
            }
            failures
        })
    };
    wait_for("appends under way", async || {
        (acknowledged.lock().unwrap().len() >= 20).then_some(())
    })
    .await;

    let first = kill_leader(&mut cluster, &js, &relay.base, &acknowledged).await;
    let killed = cluster.index_of(&first.killed).unwrap();
    cluster.start_node(killed);
    wait_for("the killed node back and current", async || {
        stream_info(&js)
            .await
            .filter(|(_, r)| r.len() == 2 && r.iter().all(|(_, current)| *current))
    })
    .await;
    let second = kill_leader(&mut cluster, &js, &relay.base, &acknowledged).await;
    assert_ne!(first.killed, second.killed, "another node was killed");
    let killed = cluster.index_of(&second.killed).unwrap();
    cluster.start_node(killed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(true).unwrap();
    let failures = load.await.unwrap();
    assert!(
        failures.is_empty(),
        "commands failed while NATS failed over: {failures:?}"
    );

    let acknowledged = acknowledged.lock().unwrap().clone();
    let head = gauge(&api.base, "proofline_store_head_position")
        .await
        .unwrap() as u64;
    assert!(head >= acknowledged.len() as u64);
    wait_for("the relay to publish the whole log", async || {
        (gauge(&relay.base, "proofline_relay_position").await? >= head as f64).then_some(())
    })
    .await;

    // The stream holds each position once, in order.
    let mut stream = js.get_stream(STREAM).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    assert_eq!((state.messages, state.last_sequence), (head, head));
    for sequence in 1..=head {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let position = message.headers.get("Proofline-Position").unwrap().as_str();
        assert_eq!(position, sequence.to_string(), "stream sequence {sequence}");
    }
    // The projector read all of it through its consumer, and its read
    // model holds every acknowledged lender once.
    wait_for("the lenders consumer to acknowledge the log", async || {
        let mut consumer: async_nats::jetstream::consumer::PullConsumer =
            stream.get_consumer("proofline-lenders").await.ok()?;
        let info = consumer.info().await.ok()?;
        (info.ack_floor.stream_sequence >= head).then_some(())
    })
    .await;
    let pool = sqlx::PgPool::connect(database.url()).await.unwrap();
    let ids: Vec<String> = sqlx::query_scalar("SELECT lender_id FROM proofline_read.lenders")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut expected: Vec<String> = acknowledged.iter().map(|(_, _, id)| id.clone()).collect();
    let mut found = ids.clone();
    expected.sort();
    found.sort();
    assert_eq!(found, expected, "every acknowledged lender, once");
    pool.close().await;

    for (n, failover) in [first, second].iter().enumerate() {
        eprintln!(
            "failover {}: {} killed, {} leads after {:.1} s, relay publishing again after {:.1} s, \
             {} commands acknowledged meanwhile (published late, none lost)",
            n + 1,
            failover.killed,
            failover.new_leader,
            failover.election.as_secs_f64(),
            failover.recovered.as_secs_f64(),
            failover.delayed
        );
    }
    eprintln!("{} commands in all, head {head}", acknowledged.len());
    drop(projector);
    drop(relay);
    drop(api);
}
