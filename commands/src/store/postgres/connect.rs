//! Connecting: the pool's settings, and a first attempt that says why it
//! failed.

use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::store::error::{OpenError, describe_connect_error};

/// Longest a statement waits for a connection before the store answers
/// unavailable (503). With the database down, the pool retries connecting
/// for all of it; the store's [`Breaker`] gives such waits up as soon as a
/// probe finds the database gone (`tests/cli/chaos.rs`). 300 ms here
/// refused commands of a loaded test run: a wait for a busy pool is not a
/// database gone.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the first connection at start may take (a remote server's TLS
/// handshake included).
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// Connection settings of the Postgres store.
#[derive(Debug, Clone)]
pub struct PgStoreOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: ACQUIRE_TIMEOUT,
        }
    }
}

/// Connects a pool, failing fast with one line (and no password) when the
/// server cannot be reached.
pub async fn connect_pool(
    url: &SecretString,
    options: &PgStoreOptions,
) -> Result<PgPool, OpenError> {
    let connect = PgConnectOptions::from_str(url.expose_secret())
        .map_err(|e| OpenError::Unreachable {
            target: "DATABASE_URL".into(),
            reason: describe_connect_error(&e),
        })?
        .application_name("proofline");
    let target = format!(
        "{}:{}/{}",
        connect.get_host(),
        connect.get_port(),
        connect.get_database().unwrap_or("(default database)")
    );
    // One plain attempt first: a pool retries until its timeout and then only
    // says "timed out", where the operator needs "connection refused" or
    // "password authentication failed".
    let unreachable = |reason: String| OpenError::Unreachable {
        target: target.clone(),
        reason,
    };
    match tokio::time::timeout(
        options.acquire_timeout.max(START_TIMEOUT),
        PgConnection::connect_with(&connect),
    )
    .await
    {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
        }
        Ok(Err(e)) => return Err(unreachable(describe_connect_error(&e))),
        Err(_) => return Err(unreachable("timed out".into())),
    }
    PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await
        .map_err(|e| unreachable(describe_connect_error(&e)))
}
