//! One harness per backend: a fresh database, a way to (re)open the store on
//! it, and a way to run SQL as the application user behind the store's back.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use proofline_commands::migrate;
use proofline_commands::store::EventStore;
use proofline_commands::store::sqlite::{self as sqlite_store, SqliteEventStore};

#[async_trait]
pub trait Harness: Send + Sync {
    /// Opens the store on this harness's database; called again, it is a
    /// restart of the service.
    async fn open(&self) -> Arc<dyn EventStore>;
    /// Runs a statement directly, as the application's database user.
    async fn execute_raw(&self, sql: &'static str) -> Result<u64, String>;
}

pub struct SqliteHarness {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

pub async fn sqlite() -> SqliteHarness {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("events.sqlite");
    SqliteHarness { _dir: dir, path }
}

#[async_trait]
impl Harness for SqliteHarness {
    async fn open(&self) -> Arc<dyn EventStore> {
        let pool = sqlite_store::connect_pool(&self.path)
            .await
            .expect("open SQLite file");
        migrate::apply_sqlite(&pool).await.expect("migrate");
        Arc::new(
            SqliteEventStore::open(pool, &self.path)
                .await
                .expect("open store"),
        )
    }

    async fn execute_raw(&self, sql: &'static str) -> Result<u64, String> {
        let pool = sqlite_store::connect_pool(&self.path)
            .await
            .map_err(|e| e.to_string())?;
        let result = sqlx::query(sql).execute(&pool).await;
        pool.close().await;
        result.map(|r| r.rows_affected()).map_err(|e| e.to_string())
    }
}

#[cfg(feature = "service-tests")]
pub use pg::postgres;

#[cfg(feature = "service-tests")]
mod pg {
    use super::*;
    use proofline_commands::store::postgres::{self as pg_store, PgEventStore, PgStoreOptions};
    use proofline_testkit::TestDatabase;
    use secrecy::SecretString;

    pub struct PgHarness {
        database: TestDatabase,
    }

    pub async fn postgres() -> PgHarness {
        PgHarness {
            database: TestDatabase::create().await,
        }
    }

    impl PgHarness {
        fn url(&self) -> SecretString {
            SecretString::from(self.database.url().to_owned())
        }
    }

    #[async_trait]
    impl Harness for PgHarness {
        async fn open(&self) -> Arc<dyn EventStore> {
            let pool = pg_store::connect_pool(&self.url(), &PgStoreOptions::default())
                .await
                .expect("connect");
            migrate::apply_postgres(&pool).await.expect("migrate");
            Arc::new(PgEventStore::open(pool).await.expect("open store"))
        }

        async fn execute_raw(&self, sql: &'static str) -> Result<u64, String> {
            let pool = pg_store::connect_pool(&self.url(), &PgStoreOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            let result = sqlx::query(sql).execute(&pool).await;
            pool.close().await;
            result.map(|r| r.rows_affected()).map_err(|e| e.to_string())
        }
    }
}
