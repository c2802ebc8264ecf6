//! Failure drills on real processes (RELIABILITY.md): the service killed
//! with SIGKILL under load, NATS gone for 30 s, PostgreSQL gone. Each
//! names what must hold and prints what it measured.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proofline_testkit::nats::NatsServer;
use proofline_testkit::postgres::PgServer;

use crate::support::{Running, get, proofline, verify_with_demo};

/// Lenders the API acknowledged (201), by id.
type Acknowledged = Arc<Mutex<Vec<String>>>;

/// Registers lenders from `clients` concurrent clients until `stop`,
/// against whichever base URL `base` holds; every 201 is recorded, every
/// other answer or error counted.
fn load(
    base: Arc<Mutex<String>>,
    operator: String,
    clients: usize,
    acknowledged: Acknowledged,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let tasks: Vec<_> = (0..clients)
            .map(|client| {
                let (base, operator, acknowledged, mut stop) = (
                    base.clone(),
                    operator.clone(),
                    acknowledged.clone(),
                    stop.clone(),
                );
                tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    let mut failed = 0;
                    for n in 0.. {
                        if *stop.borrow_and_update() {
                            break;
                        }
                        let url = format!("{}/v1/lenders", base.lock().unwrap());
                        let answer = http
                            .post(url)
                            .bearer_auth(&operator)
                            .json(&serde_json::json!({
                                "name": format!("Lender {client}-{n}"),
                                "contact_email": format!("ops{client}-{n}@lender.example"),
                            }))
                            .timeout(Duration::from_secs(5))
                            .send()
                            .await;
                        match answer {
                            Ok(answer) if answer.status() == 201 => {
                                let body: serde_json::Value = answer.json().await.unwrap();
                                let id = body["lender_id"].as_str().unwrap().to_owned();
                                acknowledged.lock().unwrap().push(id);
                            }
                            _ => {
                                failed += 1;
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                    failed
                })
            })
            .collect();
        let mut failed = 0;
        for task in tasks {
            failed += task.await.unwrap();
        }
        failed
    })
}

async fn wait_for<T>(what: &str, limit: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every acknowledged lender is in the log once and in the read model
/// once, and the read model holds nothing the log does not.
async fn nothing_lost_or_doubled(database_url: &str, acknowledged: &[String]) {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    let logged: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE type = 'LenderRegistered'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let expected = acknowledged.len();
    let rows = wait_for(
        "the read model to hold every lender",
        Duration::from_secs(60),
        async || {
            let rows: Vec<String> =
                sqlx::query_scalar("SELECT lender_id FROM proofline_read.lenders")
                    .fetch_all(&pool)
                    .await
                    .ok()?;
            (rows.len() as i64 >= logged).then_some(rows)
        },
    )
    .await;
    assert_eq!(
        rows.len() as i64,
        logged,
        "one read-model row per registration in the log"
    );
    let rows: std::collections::HashSet<_> = rows.into_iter().collect();
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|id| !rows.contains(*id))
        .collect();
    assert!(missing.is_empty(), "acknowledged and lost: {missing:?}");
    assert!(logged as usize >= expected);
    pool.close().await;
}

/// kill -9 of the all-in-one process (Postgres and NATS) under load, then
/// a restart on the same data: no acknowledged command lost, no read-model
/// row doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_service_loses_no_acknowledged_command() {
    proofline_projections::webhooks::client::install_crypto_provider();
    let database = proofline_testkit::TestDatabase::create().await;
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = || {
        let mut command = proofline(&data);
        command
            .env("DATABASE_URL", database.url())
            .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
            .env("NATS_URL", nats.url())
            .env("PROOFLINE_RATE_LIMIT_PER_KEY", "0")
            .arg("serve");
        Running::start(command)
    };
    let service = serve();
    let operator = std::fs::read_to_string(data.join("operator.key")).unwrap();
    let base = Arc::new(Mutex::new(service.base.clone()));
    let acknowledged = Acknowledged::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = load(
        base.clone(),
        operator.trim().to_owned(),
        8,
        acknowledged.clone(),
        stopped,
    );
    wait_for("load", Duration::from_secs(30), async || {
        (acknowledged.lock().unwrap().len() >= 100).then_some(())
    })
    .await;
    let at_kill = acknowledged.lock().unwrap().len();
    drop(service); // SIGKILL
    let restarted = Instant::now();
    let service = serve();
    *base.lock().unwrap() = service.base.clone();
    wait_for(
        "commands after the restart",
        Duration::from_secs(30),
        async || (acknowledged.lock().unwrap().len() >= at_kill + 50).then_some(()),
    )
    .await;
    let back = restarted.elapsed();
    stop.send(true).unwrap();
    let failed = running.await.unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    nothing_lost_or_doubled(database.url(), &acknowledged).await;
    eprintln!(
        "kill -9 under load: {at_kill} acknowledged before the kill, {} in all, {failed} requests \
         failed around it; serving again {:.1} s after the restart began; 0 lost, 0 doubled",
        acknowledged.len(),
        back.as_secs_f64()
    );
    drop(service);
}

/// NATS gone for 30 s: commands keep succeeding on Postgres; the relay
/// and the projectors catch up once it is back; the stream holds each
/// position once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_for_thirty_seconds_delays_and_loses_nothing() {
    proofline_projections::webhooks::client::install_crypto_provider();
    let database = proofline_testkit::TestDatabase::create().await;
    let mut nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut command = proofline(&data);
    command
        .env("DATABASE_URL", database.url())
        .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
        .env("NATS_URL", nats.url())
        .env("PROOFLINE_RATE_LIMIT_PER_KEY", "0")
        .arg("serve");
    let service = Running::start(command);
    let operator = std::fs::read_to_string(data.join("operator.key")).unwrap();
    let base = Arc::new(Mutex::new(service.base.clone()));
    let acknowledged = Acknowledged::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = load(
        base,
        operator.trim().to_owned(),
        2,
        acknowledged.clone(),
        stopped,
    );
    wait_for("load", Duration::from_secs(30), async || {
        (acknowledged.lock().unwrap().len() >= 20).then_some(())
    })
    .await;
    nats.stop();
    let before = acknowledged.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let during = acknowledged.lock().unwrap().len() - before;
    nats.restart();
    let back = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.send(true).unwrap();
    let failed = running.await.unwrap();
    assert_eq!(failed, 0, "no command failed while NATS was down");
    assert!(during > 0, "commands went on while NATS was down");
    let head = wait_for(
        "the relay to publish the log",
        Duration::from_secs(60),
        async || {
            let metrics = get(&format!("{}/metrics", service.base))
                .await
                .text()
                .await
                .ok()?;
            let gauge = |name: &str| {
                metrics.lines().find_map(|l| {
                    l.strip_prefix(name)
                        .and_then(|v| v.strip_prefix(' '))
                        .and_then(|v| v.trim().parse::<f64>().ok())
                })
            };
            let (head, relayed) = (
                gauge("proofline_store_head_position")?,
                gauge("proofline_relay_position")?,
            );
            (relayed >= head).then_some(head as u64)
        },
    )
    .await;
    let caught_up = back.elapsed();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("PROOFLINE_EVENTS").await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    assert!(state.last_sequence >= head);
    assert_eq!(state.messages, state.last_sequence, "no message twice");
    for sequence in 1..=state.last_sequence {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let position = message.headers.get("Proofline-Position").unwrap().as_str();
        assert_eq!(position, sequence.to_string());
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    nothing_lost_or_doubled(database.url(), &acknowledged).await;
    eprintln!(
        "NATS down 30 s: {during} commands acknowledged while it was down, 0 failed; \
         the relay had published the whole log (head {head}) {:.1} s after NATS came back",
        caught_up.as_secs_f64()
    );
}

/// PostgreSQL gone (a server of the test's own): commands answer 503
/// UNAVAILABLE within a second (the store's breaker, not the pool's 5 s
/// wait for a connection), and succeed again once it is back, without a
/// restart of Proofline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_answers_503_and_recovers_without_a_restart() {
    proofline_projections::webhooks::client::install_crypto_provider();
    let postgres = PgServer::start(None);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut command = proofline(&data);
    command
        .env("DATABASE_URL", postgres.url("127.0.0.1"))
        .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
        .arg("serve");
    let service = Running::start(command);
    let operator = std::fs::read_to_string(data.join("operator.key")).unwrap();
    let http = reqwest::Client::new();
    let register = async |n: u32| {
        let started = Instant::now();
        let answer = http
            .post(format!("{}/v1/lenders", service.base))
            .bearer_auth(operator.trim())
            .json(&serde_json::json!({
                "name": format!("L{n}"),
                "contact_email": format!("ops{n}@lender.example"),
            }))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let body: serde_json::Value = answer.json().await.unwrap_or_default();
        (status, body, started.elapsed())
    };
    assert_eq!(register(0).await.0, 201);

    postgres.stop();
    let mut slowest = Duration::ZERO;
    for n in 1..=5 {
        let (status, body, took) = register(n).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["code"], "UNAVAILABLE", "{body}");
        assert!(
            took < Duration::from_secs(1),
            "answered in {took:?}: {}",
            service.log()
        );
        slowest = slowest.max(took);
    }
    // A query too: the read models live in the same database.
    let (started, lenders) = (Instant::now(), format!("{}/v1/lenders", service.base));
    let list = http.get(lenders).bearer_auth(operator.trim()).send();
    let (status, took) = (list.await.unwrap().status(), started.elapsed());
    assert!(
        status == 503 && took < Duration::from_secs(1),
        "{status} in {took:?}"
    );
    slowest = slowest.max(took);
    let ready = get(&format!("{}/health/ready", service.base)).await;
    assert_eq!(ready.status(), 503);

    postgres.start_again();
    let back = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    for n in 100.. {
        let (status, body, _) = register(n).await;
        if status == 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "commands succeed again: {status} {body}\n{}",
            service.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = back.elapsed();
    wait_for("ready again", Duration::from_secs(30), async || {
        (get(&format!("{}/health/ready", service.base))
            .await
            .status()
            == 200)
            .then_some(())
    })
    .await;
    eprintln!(
        "Postgres down: 503 UNAVAILABLE in at most {} ms; commands succeed {:.1} s after it is back, \
         no restart",
        slowest.as_millis(),
        recovered.as_secs_f64()
    );
}

/// A lender's receiver: answers 503 while `failing`, then 204; sends each
/// request (head and body) with the status it got.
async fn receiver_on(
    listener: tokio::net::TcpListener,
    failing: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::sync::mpsc::UnboundedReceiver<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (tx, failing) = (tx.clone(), failing.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 8192];
                while let Ok(n) = socket.read(&mut buffer).await {
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&request).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() < length {
                        continue;
                    }
                    let status = if failing.load(std::sync::atomic::Ordering::SeqCst) {
                        503
                    } else {
                        204
                    };
                    let _ = tx.send((status, text.clone()));
                    let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
                    let _ = socket.write_all(answer.as_bytes()).await;
                    request.clear();
                }
            });
        }
    });
    rx
}

fn header<'a>(request: &'a str, name: &str) -> Option<&'a str> {
    request.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        key.eq_ignore_ascii_case(name).then_some(value.trim())
    })
}

/// A lender's receiver down (connections refused), then failing (503),
/// then back, on a shortened retry schedule: every delivery arrives once,
/// and every attempt of one delivery carries the same webhook-id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_gets_every_delivery_once_when_it_is_back() {
    proofline_projections::webhooks::client::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut command = proofline(&data);
    command
        .env("PROOFLINE_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
        .env(
            "PROOFLINE_WEBHOOK_RETRY_SCHEDULE",
            "1,1,2,2,3,3,5,5,5,5,5,5,5,5",
        )
        .arg("serve");
    let service = Running::start(command);
    let output = proofline(&data)
        .args(["demo", "--url", &service.base])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = std::fs::read_to_string(data.join("demo/lender.key")).unwrap();
    let key = key.trim();
    // The receiver's port, closed for now: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = reqwest::Client::new();
    let configured = http
        .put(format!("{}/v1/lenders/me/webhook", service.base))
        .bearer_auth(key)
        .json(&serde_json::json!({"url": format!("http://127.0.0.1:{port}/hook")}))
        .send()
        .await
        .unwrap();
    assert_eq!(configured.status(), 200);
    let mut verifications = Vec::new();
    for n in 0..5 {
        let verified: serde_json::Value = http
            .post(format!("{}/v1/verifications", service.base))
            .bearer_auth(key)
            .json(
                &serde_json::json!({"presentation": "not an sd-jwt", "nonce": format!("down-{n}")}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        verifications.push(verified["verification_id"].as_str().unwrap().to_owned());
    }
    let down = Duration::from_secs(15);
    tokio::time::sleep(down).await;
    // Back, but failing for a while: attempts arrive and are refused.
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let mut requests = receiver_on(listener, failing.clone()).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    failing.store(false, std::sync::atomic::Ordering::SeqCst);
    let up = Instant::now();
    // Every verification delivered (204) once; its refused attempts had
    // the same webhook-id.
    let mut delivered: std::collections::HashMap<String, String> = Default::default();
    let mut refused: Vec<(String, String)> = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while delivered.len() < verifications.len() {
            let (status, request) = requests.recv().await.unwrap();
            let id = header(&request, "webhook-id").unwrap().to_owned();
            let verification = verifications
                .iter()
                .find(|v| request.contains(v.as_str()))
                .unwrap_or_else(|| panic!("a delivery of ours: {request}"))
                .clone();
            if status == 204 {
                assert!(
                    delivered.insert(verification.clone(), id).is_none(),
                    "{verification} delivered twice"
                );
            } else {
                refused.push((verification, id));
            }
        }
    })
    .await
    .expect("every delivery within 60 s of the receiver's return");
    let all_in = up.elapsed();
    for (verification, id) in &refused {
        assert_eq!(&delivered[verification], id, "one webhook-id per delivery");
    }
    // Nothing more arrives: no delivery twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    while let Ok((status, request)) = requests.try_recv() {
        assert_ne!(status, 204, "a delivery arrived again: {request}");
    }
    eprintln!(
        "receiver down {} s then failing 4 s: {} deliveries, {} refused attempts with the same \
         webhook-ids, all delivered once within {:.1} s of its return",
        down.as_secs(),
        delivered.len(),
        refused.len(),
        all_in.as_secs_f64()
    );
}

/// `proofline rebuild` killed with SIGKILL between its models while the
/// service runs: the live read models stay whole (the service answers from
/// them), and the next rebuild gives every model's checksum as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_killed_midway_leaves_the_read_models_whole() {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    proofline_projections::webhooks::client::install_crypto_provider();
    let database = proofline_testkit::TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let command = |args: &[&str]| {
        let mut command = proofline(&data);
        command
            .env("DATABASE_URL", database.url())
            .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
            .args(args);
        command
    };
    let service = Running::start(command(&["serve"]));
    verify_with_demo(&mut command(&["demo", "--url", &service.base]));
    // Each model's checksum, from a whole rebuild.
    let checksums = |output: &str| {
        let mut sums: Vec<String> = output
            .lines()
            .filter(|l| l.contains("checksum "))
            .map(|l| {
                let (model, rest) = l.split_once(':').unwrap();
                format!(
                    "{} {}",
                    model.trim(),
                    rest.rsplit_once("checksum ").unwrap().1.trim()
                )
            })
            .collect();
        sums.sort();
        sums
    };
    let whole = command(&["rebuild"]).output().unwrap();
    assert!(
        whole.status.success(),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let before = checksums(&String::from_utf8_lossy(&whole.stdout));
    assert!(before.len() >= 5, "{before:?}");

    // Killed as soon as its first model is swapped in.
    let mut killed_after = None;
    for _ in 0..5 {
        let mut child = command(&["rebuild"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok);
        child.kill().unwrap();
        let status = child.wait().unwrap();
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        let done =
            usize::from(first.is_some()) + rest.iter().filter(|l| l.contains("checksum ")).count();
        if status.signal() == Some(9) && done < before.len() {
            killed_after = Some(done);
            break;
        }
    }
    let killed_after = killed_after.expect("a rebuild killed before its last model");

    // The service still answers from its read models.
    let key = std::fs::read_to_string(data.join("demo/lender.key")).unwrap();
    let listed: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/verifications", service.base))
        .bearer_auth(key.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    // And the next rebuild finds the same rows everywhere.
    let again = command(&["rebuild"]).output().unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(checksums(&String::from_utf8_lossy(&again.stdout)), before);
    eprintln!(
        "rebuild killed after {killed_after} of {} models: the live models answered, the next \
         rebuild gave the same checksums",
        before.len()
    );
}
