//! `DATABASE_READ_URL`: the query routes read from a streaming replica of
//! the database (a second PostgreSQL made by pg_basebackup in the test).
//! With the replica's replay paused, a list without `min_position` shows
//! the replica's stale view; one with it is answered by the primary after
//! the replica's bounded wait.

use std::time::Duration;

use proofline_testkit::postgres::PgServer;

use crate::support::{Running, proofline, verify_with_demo};

fn verify(data: &std::path::Path, base: &str, primary: &str) -> serde_json::Value {
    verify_with_demo(
        proofline(data)
            .env("DATABASE_URL", primary)
            .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
            .args(["demo", "--url", base]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_read_from_the_replica_and_fall_back_past_min_position() {
    proofline_projections::webhooks::client::install_crypto_provider();
    let primary = PgServer::start(None);
    let replica = PgServer::replica_of(&primary);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut command = proofline(&data);
    command
        .env("DATABASE_URL", primary.url("127.0.0.1"))
        .env("DATABASE_READ_URL", replica.url("127.0.0.1"))
        .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
        .arg("serve");
    let service = Running::start(command);
    let http = reqwest::Client::new();
    let list = async |key: &str, min_position: Option<u64>| -> Vec<String> {
        let query = min_position.map_or(String::new(), |p| format!("?min_position={p}"));
        let answer: serde_json::Value = http
            .get(format!("{}/v1/verifications{query}", service.base))
            .bearer_auth(key)
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"))
            .iter()
            .map(|i| i["verification_id"].as_str().unwrap().to_owned())
            .collect()
    };

    let first = verify(&data, &service.base, &primary.url("127.0.0.1"));
    let key = std::fs::read_to_string(data.join("demo/lender.key")).unwrap();
    let key = key.trim();
    let seen = list(key, first["position"].as_u64()).await;
    assert_eq!(seen, [first["verification_id"].as_str().unwrap()]);
    // The service reads the replica (and only reads there).
    let admin = sqlx::PgPool::connect(&replica.url("127.0.0.1"))
        .await
        .unwrap();
    let connections: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'proofline-replica'",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert!(
        connections > 0,
        "Proofline holds connections to the replica"
    );

    // Replay paused: the replica stands still while the log moves on.
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&admin)
        .await
        .unwrap();
    let second = verify(&data, &service.base, &primary.url("127.0.0.1"));
    let second_id = second["verification_id"].as_str().unwrap().to_owned();
    // Give the projector time to apply it on the primary.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stale = list(key, None).await;
    assert!(
        !stale.contains(&second_id),
        "the replica's view is stale: {stale:?}"
    );
    let started = std::time::Instant::now();
    let fresh = list(key, second["position"].as_u64()).await;
    assert!(
        fresh.contains(&second_id),
        "min_position is honoured: {fresh:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "asked the replica first"
    );
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&admin)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !list(key, None).await.contains(&second_id) {
        assert!(
            std::time::Instant::now() < deadline,
            "the replica caught up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    admin.close().await;
}
