//! Test support shared by Proofline's test suites. Never a dependency of
//! production code.
//!
//! Tests that concern storage run against a real PostgreSQL server: each test
//! gets a database of its own, created from the admin URL
//! (`PROOFLINE_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and dropped when the handle
//! is dropped, even when the test panics.
//!
//! # Layout
//!
//! - [`TestDatabase`]: a fresh database per test.
//! - [`nats::NatsServer`]: a nats-server of a test's own, to stop and start;
//!   [`nats::NatsCluster`]: several, as one JetStream cluster.
//! - [`postgres::PgServer`]: a PostgreSQL of a test's own (TLS, a replica).

pub mod nats;
pub mod postgres;

use sqlx::{Connection, PgConnection};

/// The admin URL tests create their databases from.
pub fn admin_database_url() -> String {
    std::env::var("PROOFLINE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin: String,
}

impl TestDatabase {
    /// Creates an empty database with a unique name. Panics with directions
    /// when the server cannot be reached: a service test never passes by
    /// skipping.
    pub async fn create() -> Self {
        let admin = admin_database_url();
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "cannot reach PostgreSQL at {admin} ({e}). Start it with \
                 `pg_ctlcluster --skip-systemctl-redirect 15 main start`, or point \
                 PROOFLINE_TEST_DATABASE_URL at a server where the user may CREATE DATABASE"
            )
        });
        let name = format!("proofline_test_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        let _ = conn.close().await;
        let mut url = url::Url::parse(&admin).expect("PROOFLINE_TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        let url = url.to_string();
        Self { name, url, admin }
    }

    /// A URL of this database for the application.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on, so
        // the DROP runs on a thread with a runtime of its own.
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin).await.ok()?;
                sqlx::query(&sql).execute(&mut conn).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}
