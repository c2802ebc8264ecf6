//! Knowing that the database is gone, so that a request answers 503 at once
//! instead of waiting out the pool.
//!
//! With Postgres down, sqlx's pool retries a refused connection until its
//! acquire timeout (5 s), and every statement of a request pays for it. The
//! breaker is told when something looks like a lost database (a statement
//! failing on its connection, the LISTEN connection closing) and then tries
//! one plain connection of its own. If that fails too, the database is
//! *down*: every guarded operation fails at once, those already waiting are
//! given up, and a probe connects every [`PROBE_INTERVAL`] until the server
//! answers again. A suspicion the probe does not confirm (a busy pool, a
//! proxy closing an idle connection) changes nothing.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::watch;

use super::StoreError;

/// How often a down database is tried again.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(200);
/// Longest a probe's connection may take before the server counts as gone
/// (a loaded machine connects in tens of milliseconds).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// One per database server a process talks to; clones share the state.
#[derive(Clone)]
pub struct Breaker {
    inner: Arc<Inner>,
}

struct Inner {
    connect: PgConnectOptions,
    down: watch::Sender<bool>,
    probing: AtomicBool,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("down", &self.is_down())
            .finish()
    }
}

/// An error a guarded operation can fail with.
pub trait Guarded: Sized {
    /// The error of an operation refused because the database is down.
    fn down() -> Self;
    /// Whether the failure may mean the database is gone.
    fn lost_connection(&self) -> bool;
}

impl Breaker {
    /// A breaker for the server of `connect` (its probes log in as the
    /// pool does).
    pub fn new(connect: PgConnectOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                connect,
                down: watch::Sender::new(false),
                probing: AtomicBool::new(false),
            }),
        }
    }

    /// Whether the last probe found the database gone.
    pub fn is_down(&self) -> bool {
        *self.inner.down.borrow()
    }

    /// Runs `operation` unless the database is known to be down, and gives
    /// it up as soon as it is. A failure that may mean a lost database
    /// starts a probe.
    pub async fn run<T, E: Guarded>(
        &self,
        operation: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let mut down = self.inner.down.subscribe();
        if *down.borrow_and_update() {
            return Err(E::down());
        }
        tokio::select! {
            result = operation => {
                if let Err(error) = &result
                    && error.lost_connection()
                {
                    self.suspect();
                }
                result
            }
            _ = down.wait_for(|down| *down) => Err(E::down()),
        }
    }

    /// Something looked like a lost database: probe it (once at a time).
    pub fn suspect(&self) {
        if self.inner.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.inner.clone();
        tokio::spawn(async move {
            probe_until_up(&inner).await;
            inner.probing.store(false, Ordering::Release);
        });
    }

    /// Returns once the database is not known to be down.
    pub async fn until_up(&self) {
        let mut down = self.inner.down.subscribe();
        let _ = down.wait_for(|down| !*down).await;
    }
}

/// Probes until a connection succeeds, marking the database down while
/// none does.
async fn probe_until_up(inner: &Inner) {
    let mut since: Option<Instant> = None;
    loop {
        match probe(&inner.connect).await {
            Ok(()) => {
                if let Some(since) = since {
                    inner.down.send_replace(false);
                    tracing::info!(
                        down_for_s = since.elapsed().as_secs_f64(),
                        "the database answers again"
                    );
                }
                return;
            }
            Err(reason) => {
                if since.is_none() {
                    since = Some(Instant::now());
                    inner.down.send_replace(true);
                    tracing::warn!(
                        %reason,
                        "the database is unreachable; answering 503 until it is back"
                    );
                }
                tokio::time::sleep(PROBE_INTERVAL).await;
            }
        }
    }
}

/// One plain connection: `Err` with the reason when the server did not
/// take it.
async fn probe(connect: &PgConnectOptions) -> Result<(), String> {
    match tokio::time::timeout(PROBE_TIMEOUT, PgConnection::connect_with(connect)).await {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
        Ok(Err(error)) if error.lost_connection() => {
            Err(super::error::describe_connect_error(&error))
        }
        // The server answered (too many clients, a refused login): it is
        // there, and the pool's own error says what is wrong.
        Ok(Err(_)) => Ok(()),
        Err(_) => Err(format!("no connection within {PROBE_TIMEOUT:?}")),
    }
}

impl Guarded for sqlx::Error {
    fn down() -> Self {
        sqlx::Error::Io(io::Error::new(
            io::ErrorKind::NotConnected,
            "the database did not answer the last probe",
        ))
    }

    fn lost_connection(&self) -> bool {
        match self {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::WorkerCrashed => true,
            // Class 08 (connection exception) and 57P01-57P03 (the server
            // shutting down, crashed, starting up).
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
            _ => false,
        }
    }
}

impl Guarded for StoreError {
    fn down() -> Self {
        StoreError::Unavailable(Arc::new(sqlx::Error::down()))
    }

    fn lost_connection(&self) -> bool {
        matches!(self, StoreError::Unavailable(error) if error.lost_connection())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port nothing listens on: bound, then released.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    fn breaker_for(port: u16) -> Breaker {
        Breaker::new(
            PgConnectOptions::new()
                .host("127.0.0.1")
                .port(port)
                .username("nobody"),
        )
    }

    #[tokio::test]
    async fn a_confirmed_suspicion_gives_up_waiting_operations_and_fails_fast() {
        // Nothing listens on the port: the probe is refused, so the
        // operation already waiting is given up and the next one refused.
        let breaker = breaker_for(closed_port());
        assert!(!breaker.is_down());
        let started = Instant::now();
        let slow = breaker.run(async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, sqlx::Error>(())
        });
        let suspect = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            breaker.suspect();
        };
        let (result, ()) = tokio::join!(slow, suspect);
        assert!(
            matches!(result, Err(sqlx::Error::Io(ref e)) if e.kind() == io::ErrorKind::NotConnected),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(breaker.is_down());
        let refused: Result<(), StoreError> = breaker.run(async { Ok(()) }).await;
        assert!(matches!(refused, Err(StoreError::Unavailable(_))));
    }

    /// A suspicion the probe does not confirm (here a pool timing out on
    /// a server that answers) leaves the breaker closed.
    #[cfg(feature = "service-tests")]
    #[tokio::test]
    async fn an_unconfirmed_suspicion_changes_nothing() {
        use std::str::FromStr;
        let url = proofline_testkit::admin_database_url();
        let breaker = Breaker::new(PgConnectOptions::from_str(&url).unwrap());
        let result: Result<(), _> = breaker.run(async { Err(sqlx::Error::PoolTimedOut) }).await;
        assert!(matches!(result, Err(sqlx::Error::PoolTimedOut)));
        assert!(breaker.inner.probing.load(Ordering::Acquire));
        let deadline = Instant::now() + Duration::from_secs(10);
        while breaker.inner.probing.load(Ordering::Acquire) {
            assert!(Instant::now() < deadline, "the probe ends");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!breaker.is_down());
        assert_eq!(
            breaker.run(async { Ok::<_, StoreError>(7) }).await.unwrap(),
            7
        );
    }

    #[test]
    fn only_connection_failures_are_suspicious() {
        assert!(sqlx::Error::PoolTimedOut.lost_connection());
        assert!(sqlx::Error::down().lost_connection());
        assert!(!sqlx::Error::RowNotFound.lost_connection());
        assert!(!sqlx::Error::PoolClosed.lost_connection());
        assert!(!StoreError::InvalidAppend("x".into()).lost_connection());
        assert!(!StoreError::Closed.lost_connection());
    }
}
