//! `proofline serve --role …`: the API and the projectors as two processes
//! on one embedded store, as they would run against one Postgres.

use crate::support::{Running, get, proofline, verify_with_demo};

#[tokio::test]
async fn an_api_process_and_a_projector_process_share_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let api = Running::start({
        let mut command = proofline(&data);
        command.args(["serve", "--role", "api"]);
        command
    });
    let projector = Running::start({
        let mut command = proofline(&data);
        command.args(["serve", "--role", "projector"]);
        command
    });

    // A verification through the API process.
    let answer = verify_with_demo(proofline(&data).args(["demo", "--url", &api.base]));
    let position = answer["position"].as_u64().unwrap();

    // Listed by the API from the read model the other process keeps.
    let key = std::fs::read_to_string(data.join("demo/lender.key")).unwrap();
    proofline_projections::webhooks::client::install_crypto_provider();
    let listed: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/v1/verifications?min_position={position}",
            api.base
        ))
        .bearer_auth(key.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["items"][0]["verification_id"], answer["verification_id"],
        "{listed}"
    );

    // The projector process serves health and metrics only.
    let ready = get(&format!("{}/health/ready", projector.base)).await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert!(
        body["checks"]["projectors"]["verifications"]["position"]
            .as_u64()
            .unwrap()
            >= position
    );
    assert_eq!(
        get(&format!("{}/v1/verifications", projector.base))
            .await
            .status(),
        404
    );
    let (status, log) = projector.terminate();
    assert!(status.success(), "{log}");
    let (status, log) = api.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn roles_that_cannot_run_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let output = proofline(&dir.path().join("data"))
        .args(["serve", "--role", "relay"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("NATS_URL"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = proofline(&dir.path().join("data"))
        .args(["serve", "--role", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "a usage error");
}

/// Production mode: Postgres and NATS, the API, a projector and two relays
/// as separate processes. One relay publishes; when it dies, the other
/// takes over.
#[cfg(feature = "service-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_nats_roles_with_a_relay_that_takes_over() {
    let database = proofline_testkit::TestDatabase::create().await;
    let nats = proofline_testkit::nats::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let role = |name: &str| {
        let mut command = proofline(&data);
        command
            .env("DATABASE_URL", database.url())
            .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
            .env("NATS_URL", nats.url())
            .args(["serve", "--role", name]);
        command
    };
    let api = Running::start(role("api"));
    let projector = Running::start(role("projector"));
    let first = Running::start(role("relay"));
    let second = Running::start(role("relay"));

    let verify = || {
        verify_with_demo(
            proofline(&data)
                .env("DATABASE_URL", database.url())
                .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
                .args(["demo", "--url", &api.base]),
        )
    };
    let listed = async |answer: &serde_json::Value| {
        let key = std::fs::read_to_string(data.join("demo/lender.key")).unwrap();
        proofline_projections::webhooks::client::install_crypto_provider();
        let listed: serde_json::Value = reqwest::Client::new()
            .get(format!(
                "{}/v1/verifications?min_position={}",
                api.base, answer["position"]
            ))
            .bearer_auth(key.trim())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            listed["items"][0]["verification_id"], answer["verification_id"],
            "{listed}"
        );
    };
    let answer = verify();
    listed(&answer).await;

    // Exactly one relay took the lock; kill it, and the other takes over.
    let holds = |log: &str| log.contains("relay lock taken");
    let (leader, follower) = if holds(&first.log()) {
        (first, second)
    } else {
        (second, first)
    };
    assert!(!holds(&follower.log()), "only one relay publishes");
    drop(leader); // killed
    let answer = verify();
    listed(&answer).await;
    // (Projectors catch up from the store when NATS is quiet, so the list
    // does not wait for the takeover; the relay's own position does.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let relayed = loop {
        let metrics = get(&format!("{}/metrics", follower.base))
            .await
            .text()
            .await
            .unwrap();
        let relayed = metrics
            .lines()
            .find_map(|l| l.strip_prefix("proofline_relay_position "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if relayed >= answer["position"].as_f64().unwrap() {
            break relayed;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the other relay publishes: {}",
            follower.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(holds(&follower.log()), "{}", follower.log());
    assert!(relayed > 0.0);
    let ready: serde_json::Value = get(&format!("{}/health/ready", api.base))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ready["checks"]["nats"]["status"], "ok", "{ready}");
    drop(projector);
    drop(follower);
}

/// A bare HTTP receiver on 127.0.0.1 that answers 204 and hands over each
/// request's head and body.
#[cfg(feature = "service-tests")]
async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 8192];
                loop {
                    let Ok(n) = socket.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&request).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            let _ = tx.send(text.clone());
                            let _ = socket
                                .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                                .await;
                            request.clear();
                        }
                    }
                }
            });
        }
    });
    (url, rx)
}

/// The webhooks role as its own process on Postgres and NATS: it opens the
/// secret the API sealed, delivers, records, and counts in its metrics.
#[cfg(feature = "service-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhooks_role_delivers_on_postgres_and_nats() {
    let database = proofline_testkit::TestDatabase::create().await;
    let nats = proofline_testkit::nats::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let role = |name: &str| {
        let mut command = proofline(&data);
        command
            .env("DATABASE_URL", database.url())
            .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
            .env("NATS_URL", nats.url())
            .env("PROOFLINE_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
            .args(["serve", "--role", name]);
        command
    };
    // A proxy in the environment is never used: it would make the
    // connections, past the SSRF guard's resolver.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let proxied = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = proxied.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = proxy.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    let webhooks_role = || {
        let mut command = role("webhooks");
        // It opens webhook secrets with the sealing key alone: the service
        // signing key is not given to it.
        command.env("PROOFLINE_SIGNING_KEY_FILE", "/nonexistent/signing.key");
        for name in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            command.env(name, &proxy_url);
        }
        command
    };
    let api = Running::start(role("api"));
    let _relay = Running::start(role("relay"));
    let first = Running::start(webhooks_role());
    let second = Running::start(webhooks_role());

    let output = proofline(&data)
        .env("DATABASE_URL", database.url())
        .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
        .args(["demo", "--url", &api.base])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = std::fs::read_to_string(data.join("demo/lender.key")).unwrap();
    let key = key.trim();
    let (url, mut requests) = receiver().await;
    proofline_projections::webhooks::client::install_crypto_provider();
    let client = reqwest::Client::new();
    let configured: serde_json::Value = client
        .put(format!("{}/v1/lenders/me/webhook", api.base))
        .bearer_auth(key)
        .json(&serde_json::json!({"url": url}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = configured["secret"].as_str().unwrap().to_owned();
    let verified: serde_json::Value = client
        .post(format!("{}/v1/verifications", api.base))
        .bearer_auth(key)
        .json(&serde_json::json!({"presentation": "not an sd-jwt", "nonce": "webhook-role-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verification = verified["verification_id"].as_str().unwrap().to_owned();

    let request = tokio::time::timeout(std::time::Duration::from_secs(30), requests.recv())
        .await
        .expect("a delivery within 30 s")
        .unwrap();
    let lower = request.to_ascii_lowercase();
    assert!(lower.contains("webhook-id: "), "{request}");
    assert!(lower.contains("webhook-signature: v1,"), "{request}");
    assert!(request.contains(&verification), "{request}");
    assert!(!request.contains(&secret));

    // One consumer sends; the other waits for its lock.
    let holds = |log: &str| log.contains("webhooks lock taken");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !holds(&first.log()) && !holds(&second.log()) {
        assert!(std::time::Instant::now() < deadline, "a consumer leads");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (webhooks, follower) = if holds(&first.log()) {
        (first, second)
    } else {
        (second, first)
    };
    assert!(!holds(&follower.log()), "only one consumer sends");
    let counted = async || {
        let metrics = get(&format!("{}/metrics", webhooks.base))
            .await
            .text()
            .await
            .unwrap();
        metrics
            .lines()
            .any(|l| l.starts_with("proofline_webhook_deliveries_total{outcome=\"delivered\"} 1"))
            .then_some(metrics)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let metrics = loop {
        if let Some(metrics) = counted().await {
            break metrics;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the delivery is counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        metrics.contains("proofline_webhook_delivery_latency_seconds"),
        "{metrics}"
    );
    let (status, log) = webhooks.terminate();
    assert!(status.success(), "{log}");
    assert!(!log.contains(secret.trim_start_matches("whsec_")));

    // The other takes over and sends what comes next.
    let verified: serde_json::Value = client
        .post(format!("{}/v1/verifications", api.base))
        .bearer_auth(key)
        .json(&serde_json::json!({"presentation": "not an sd-jwt", "nonce": "webhook-role-2"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verification = verified["verification_id"].as_str().unwrap().to_owned();
    // (At least once: a delivery the old leader sent may come again if
    // its outcome was not projected when the new leader looked.)
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(request) = requests.recv().await {
            if request.contains(&verification) {
                return;
            }
        }
    })
    .await
    .expect("a delivery by the other consumer within 30 s");
    assert!(holds(&follower.log()), "{}", follower.log());
    assert_eq!(
        proxied.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no connection went through the proxy"
    );
}

/// A fresh install pointed at a NATS whose stream holds an earlier
/// install's log: its relay refuses to publish, and says so in its log and
/// in `/health/ready`, instead of skipping its events up to the other log's
/// last position.
#[cfg(feature = "service-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_install_on_a_stream_of_another_log_is_not_ready_and_says_why() {
    let nats = proofline_testkit::nats::NatsServer::start();
    let serve = |data: &std::path::Path| {
        let mut command = proofline(data);
        command.env("NATS_URL", nats.url()).arg("serve");
        command
    };
    let dir = tempfile::tempdir().unwrap();
    let earlier = Running::start(serve(&dir.path().join("earlier")));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let metrics = get(&format!("{}/metrics", earlier.base))
            .await
            .text()
            .await
            .unwrap();
        let published = metrics
            .lines()
            .find_map(|l| l.strip_prefix("proofline_relay_position "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if published > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the earlier install relays"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, _) = earlier.terminate();
    assert!(status.success());

    let fresh = Running::start(serve(&dir.path().join("fresh")));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let body = loop {
        let ready = get(&format!("{}/health/ready", fresh.base)).await;
        if ready.status() == 503 {
            let body: serde_json::Value = ready.json().await.unwrap();
            if body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("another log")
            {
                break body;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the fresh install is not ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(body["code"], "UNAVAILABLE", "{body}");
    let (status, log) = fresh.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("refusing to publish"), "{log}");
    assert!(log.contains("PROOFLINE_EVENTS holds another log"), "{log}");
}

/// A NATS with users (`deploy/nats/nats.conf`): the service logs in as the
/// user and password of `NATS_URL`, percent-encoding and all, and relays.
#[cfg(feature = "service-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_logs_in_to_nats_as_the_user_of_its_url() {
    let database = proofline_testkit::TestDatabase::create().await;
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nats/nats.conf");
    let nats = proofline_testkit::nats::NatsServer::start_with_config(
        &config,
        &[
            ("PROOFLINE_NATS_PASSWORD", "pw:with/odd@chars"),
            ("ANALYST_NATS_PASSWORD", "analyst-pw"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut command = proofline(&dir.path().join("data"));
    command
        .env("DATABASE_URL", database.url())
        .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
        .env(
            "NATS_URL",
            format!(
                "nats://proofline:pw%3Awith%2Fodd%40chars@127.0.0.1:{}",
                nats.port
            ),
        )
        .arg("serve");
    let service = Running::start(command);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ready: serde_json::Value = get(&format!("{}/health/ready", service.base))
            .await
            .json()
            .await
            .unwrap();
        let relayed = get(&format!("{}/metrics", service.base))
            .await
            .text()
            .await
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("proofline_relay_position "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if ready["checks"]["nats"]["status"] == "ok" && relayed > 0.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not logged in to NATS: {ready}\n{}",
            service.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        !service.log().contains("pw:with"),
        "the password is not logged"
    );
}
