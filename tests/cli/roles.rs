//! `proofline serve --role …`: the API and the projectors as two processes
//! on one embedded store, as they would run against one Postgres.

use std::process::Command;

use crate::support::{Running, get, proofline};

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
    let output = proofline(&data)
        .args(["demo", "--url", &api.base])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let curl = stdout.lines().rfind(|l| l.starts_with("curl ")).unwrap();
    let answer = Command::new("sh").args(["-c", curl]).output().unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&answer.stdout).unwrap();
    assert_eq!(answer["verified"], true, "{answer}");
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
            .env("NATS_URL", nats.url())
            .args(["serve", "--role", name]);
        command
    };
    let api = Running::start(role("api"));
    let projector = Running::start(role("projector"));
    let first = Running::start(role("relay"));
    let second = Running::start(role("relay"));

    let verify = || {
        let output = proofline(&data)
            .env("DATABASE_URL", database.url())
            .args(["demo", "--url", &api.base])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let curl = stdout
            .lines()
            .rfind(|l| l.starts_with("curl "))
            .unwrap()
            .to_owned();
        let answer = Command::new("sh").args(["-c", &curl]).output().unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&answer.stdout).unwrap();
        assert_eq!(answer["verified"], true, "{answer}");
        answer
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
    assert!(holds(&follower.log()), "{}", follower.log());
    let ready: serde_json::Value = get(&format!("{}/health/ready", api.base))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ready["checks"]["nats"]["status"], "ok", "{ready}");
    let metrics = get(&format!("{}/metrics", follower.base))
        .await
        .text()
        .await
        .unwrap();
    let relayed: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("proofline_relay_position "))
        .unwrap_or_else(|| panic!("{metrics}"))
        .trim()
        .parse()
        .unwrap();
    assert!(relayed >= answer["position"].as_f64().unwrap(), "{metrics}");
    drop(projector);
    drop(follower);
}
