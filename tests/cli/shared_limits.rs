//! Two API processes on one Postgres enforce one budget, not two: the
//! requests of an API key, and the failed authentications of a client
//! address and of a key's prefix.

use std::time::Instant;

use crate::support::{Running, proofline};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_instances_on_one_postgres_share_their_rate_limits() {
    proofline_projections::webhooks::client::install_crypto_provider();
    let database = proofline_testkit::TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let api = |extra: &[&str]| {
        let mut command = proofline(&data);
        command
            .env("DATABASE_URL", database.url())
            .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
            .env("PROOFLINE_RATE_LIMIT_PER_KEY", "5")
            .env("PROOFLINE_FAILED_AUTH_PER_MINUTE", "6")
            .args(["serve", "--role", "api"])
            .args(extra);
        Running::start(command)
    };
    let first = api(&[]);
    let second = api(&["--no-migrate"]);
    let bases = [first.base.clone(), second.base.clone()];
    let operator = std::fs::read_to_string(data.join("operator.key")).unwrap();
    let operator = operator.trim();
    let http = reqwest::Client::new();
    let status = async |n: usize, key: &str| {
        http.get(format!("{}/v1/lenders", bases[n % 2]))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };

    // The key once, so both instances know it good (failures aside).
    assert_ne!(status(0, operator).await, 429);
    assert_ne!(status(1, operator).await, 429);
    // Requests: 5 a second in bursts of 10, whichever instance answers.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await; // refilled
    let started = Instant::now();
    let mut admitted = 0;
    for n in 0..40 {
        admitted += usize::from(status(n, operator).await != 429);
    }
    let most = 10 + (5.0 * started.elapsed().as_secs_f64()).ceil() as usize;
    assert!(
        (10..=most).contains(&admitted),
        "{admitted} of 40 admitted across two instances; one budget admits 10 to {most}\n{}",
        first.log()
    );

    // Failed authentications: 6 a minute per address and per prefix, the
    // seventh wrong secret refused before it is checked, on either.
    let (prefix, secret) = operator.split_at(operator.len() - 4);
    let wrong = format!("{prefix}{}", if secret == "AAAA" { "BBBB" } else { "AAAA" });
    let mut answers = Vec::new();
    for n in 0..14 {
        answers.push(status(n, &wrong).await);
    }
    let checked = answers.iter().filter(|s| **s == 401).count();
    assert_eq!(checked, 6, "{answers:?}");
    assert!(answers[6..].iter().all(|s| *s == 429), "{answers:?}");
}
