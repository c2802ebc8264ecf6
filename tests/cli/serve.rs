use std::process::Stdio;

use proofline_domain::api_key::ApiKey;

use crate::support::{Running, get, mode, proofline};

#[tokio::test]
async fn serves_ready_on_the_embedded_store_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let service = Running::start(proofline(&data));

    let live = get(&format!("{}/health/live", service.base)).await;
    assert_eq!(live.status(), 200);
    let ready = get(&format!("{}/health/ready", service.base)).await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["store"]["backend"], "sqlite");

    let missing = get(&format!("{}/no/such/route", service.base)).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );

    // First start: the data directory, the store, and both keys, owner-only.
    assert_eq!(mode(&data), 0o700);
    assert!(data.join("proofline.sqlite").exists());
    assert_eq!(mode(&data.join("operator.key")), 0o600);
    assert_eq!(mode(&data.join("signing.key")), 0o600);
    let operator_key = std::fs::read_to_string(data.join("operator.key")).unwrap();
    let parsed = ApiKey::parse(operator_key.trim()).expect("the file holds an API key");

    let (status, log) = service.terminate();
    assert!(status.success(), "exit after SIGTERM: {status:?}\n{log}");
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    assert!(
        !log.contains(operator_key.trim()),
        "the operator key is never logged"
    );
    assert!(log.contains(parsed.prefix()), "the public prefix is logged");

    // Second start: the same keys, nothing re-created.
    let signing_key = std::fs::read_to_string(data.join("signing.key")).unwrap();
    let again = Running::start(proofline(&data));
    assert_eq!(
        get(&format!("{}/health/ready", again.base)).await.status(),
        200
    );
    let (status, log) = again.terminate();
    assert!(status.success());
    assert!(log.contains("operator API key in place"), "{log}");
    assert_eq!(
        std::fs::read_to_string(data.join("operator.key")).unwrap(),
        operator_key
    );
    assert_eq!(
        std::fs::read_to_string(data.join("signing.key")).unwrap(),
        signing_key
    );
}

/// A SIGTERM that arrives the moment the service says it listens is a
/// graceful stop, never the default action (killed by the signal).
#[test]
fn a_sigterm_right_after_start_is_a_graceful_stop() {
    let dir = tempfile::tempdir().unwrap();
    for attempt in 0..5 {
        let (status, log) = Running::start(proofline(dir.path())).terminate();
        assert!(status.success(), "attempt {attempt}: {status:?}\n{log}");
        assert!(log.contains("stopped"), "attempt {attempt}:\n{log}");
    }
}

/// NATS unreachable (nothing listens on its port): a SIGTERM still ends
/// the process, gracefully, well within the test's patience (a flush of
/// the NATS client used to wait for a connection without end).
#[test]
fn a_sigterm_with_nats_unreachable_still_stops() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("nats://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut command = proofline(dir.path());
    command.env("NATS_URL", url);
    let (status, log) = Running::start(command).terminate();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn bad_configuration_exits_2_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("PROOFLINE_BIND", "localhost"),
        ("DATABASE_URL", "mysql://root:hunter2@localhost/db"),
        ("PROOFLINE_PRESENTATION_MAX_AGE_SECONDS", "-5"),
        ("NATS_URL", "http://localhost:4222"),
    ] {
        let output = proofline(dir.path()).env(name, value).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}={value}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: invalid configuration: {name}: ")),
            "{stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(
            !stderr.contains("hunter2"),
            "secrets are not echoed: {stderr}"
        );
    }
}

#[test]
fn an_unreachable_database_is_reported_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://proofline:hunter2@127.0.0.1:{port}/proofline");
    let output = proofline(dir.path())
        .env("DATABASE_URL", &url)
        .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "error: cannot reach the database at 127.0.0.1:{port}/proofline: "
        )),
        "{stderr}"
    );
    assert!(last.to_lowercase().contains("refused"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[tokio::test]
async fn no_migrate_refuses_a_schema_that_is_behind() {
    let dir = tempfile::tempdir().unwrap();
    let output = proofline(dir.path())
        .args(["serve", "--no-migrate"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("schema is behind"), "{stderr}");
    assert!(stderr.contains("proofline migrate"), "{stderr}");

    let migrated = proofline(dir.path()).arg("migrate").output().unwrap();
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert!(String::from_utf8_lossy(&migrated.stdout).contains("migrations applied"));

    let mut command = proofline(dir.path());
    command.args(["serve", "--no-migrate"]);
    let service = Running::start(command);
    assert_eq!(
        get(&format!("{}/health/ready", service.base))
            .await
            .status(),
        200
    );
    assert!(service.terminate().0.success());
}

#[test]
fn keygen_writes_an_owner_only_key_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("new.key");
    let first = proofline(dir.path())
        .args(["keygen", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(mode(&out), 0o600);
    let pem = std::fs::read_to_string(&out).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let second = proofline(dir.path())
        .args(["keygen", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), pem);
}

#[cfg(feature = "service-tests")]
#[tokio::test]
async fn serves_ready_on_postgres() {
    let database = proofline_testkit::TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut command = proofline(dir.path());
    command
        .env("DATABASE_URL", database.url())
        .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline");
    let service = Running::start(command);
    let ready = get(&format!("{}/health/ready", service.base)).await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["store"]["backend"], "postgres");
    assert_eq!(mode(&dir.path().join("operator.key")), 0o600);
    let (status, log) = service.terminate();
    assert!(status.success(), "{log}");

    // A second instance with its own (empty) data directory finds the
    // operator key registered in the database and creates no other.
    let other = tempfile::tempdir().unwrap();
    let mut command = proofline(other.path());
    command
        .env("DATABASE_URL", database.url())
        .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline");
    let second = Running::start(command);
    let (status, log) = second.terminate();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(
        log.contains("an operator API key is registered, but its file is not here"),
        "{log}"
    );
    assert!(!other.path().join("operator.key").exists());
}
