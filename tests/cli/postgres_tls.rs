//! PostgreSQL over TLS with `sslmode=verify-full`: a server of the test's
//! own with a certificate from a CA made here. Proofline connects when it
//! is told to trust that CA and the host name matches, and refuses at
//! start, saying why, when the name is wrong or the CA is not trusted.

use proofline::https::LocalCa;
use proofline_testkit::postgres::{PgServer, ServerTls};

use crate::support::{Running, get, proofline};

fn migrate(data: &std::path::Path, url: &str) -> (bool, String) {
    let output = proofline(data)
        .env("DATABASE_URL", url)
        .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
        .arg("migrate")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_is_verified_in_full() {
    let ca = LocalCa::new("proofline test postgres CA").unwrap();
    let (certificate, key) = ca.leaf_pem(&["localhost"]).unwrap();
    let server = PgServer::start(Some(&ServerTls { certificate, key }));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let trusted = dir.path().join("ca.pem");
    std::fs::write(&trusted, ca.pem()).unwrap();
    let stranger = dir.path().join("other-ca.pem");
    std::fs::write(&stranger, LocalCa::new("another CA").unwrap().pem()).unwrap();
    let url = |host: &str, root: &std::path::Path| {
        format!(
            "postgres://postgres@{host}:{}/postgres?sslmode=verify-full&sslrootcert={}",
            server.port,
            root.display()
        )
    };

    // A name the certificate does not hold: refused, and said so.
    let (ok, said) = migrate(&data, &url("127.0.0.1", &trusted));
    assert!(!ok, "a wrong host name is refused");
    assert!(said.contains("name the host of DATABASE_URL"), "{said}");
    assert!(said.to_lowercase().contains("certificate"), "{said}");
    assert!(said.contains("not valid for"), "{said}");
    // A CA that did not sign the server's certificate: refused.
    let (ok, said) = migrate(&data, &url("localhost", &stranger));
    assert!(!ok, "an untrusted CA is refused");
    assert!(said.to_lowercase().contains("certificate"), "{said}");
    assert!(
        said.contains("UnknownIssuer") || said.contains("unknown issuer"),
        "{said}"
    );
    // The URL itself is not repeated (it may hold a password).
    assert!(!said.contains("postgres://"), "{said}");

    // The right name and CA: migrations run, the service serves, and
    // every connection it holds is encrypted.
    let (ok, said) = migrate(&data, &url("localhost", &trusted));
    assert!(ok, "{said}");
    let api = Running::start({
        let mut command = proofline(&data);
        command
            .env("DATABASE_URL", url("localhost", &trusted))
            .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
            .args(["serve", "--no-migrate"]);
        command
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ready = get(&format!("{}/health/ready", api.base)).await;
        if ready.status() == 200 {
            break;
        }
        let said = ready.text().await.unwrap();
        assert!(std::time::Instant::now() < deadline, "never ready: {said}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let admin = sqlx::PgPool::connect(&server.url("127.0.0.1"))
        .await
        .unwrap();
    let (plain, encrypted): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE NOT s.ssl), count(*) FILTER (WHERE s.ssl)
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
         WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
           AND a.application_name LIKE 'proofline%'",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(plain, 0, "no connection of Proofline's is in the clear");
    assert!(encrypted > 0, "Proofline holds connections");
    admin.close().await;
    drop(api);
}
