//! The errors of the store boundary.

use std::sync::Arc;

use proofline_domain::ids::StreamId;
use uuid::Uuid;

use super::ExpectedVersion;

/// Why an append or a read failed. Cheap to clone, so a group commit can hand
/// one failure to every command in the batch.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Optimistic concurrency: the stream is not at the expected version.
    /// The caller reloads and decides again.
    #[error("stream {stream_id} is at version {actual}, expected {expected}")]
    Conflict {
        stream_id: StreamId,
        expected: ExpectedVersion,
        actual: u64,
    },
    /// An event id of this append is stored already, in another append.
    #[error("event id {event_id} is already stored in another append")]
    DuplicateEventId { event_id: Uuid },
    /// A secret id of this append is taken by an earlier append.
    #[error("secret id {id} is already taken")]
    SecretIdTaken { id: String },
    /// The request itself is not acceptable (empty, too large, bad names).
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    /// The database could not be reached or failed.
    #[error("the event store is unavailable")]
    Unavailable(#[source] Arc<sqlx::Error>),
    /// A stored row cannot be read back into an envelope.
    #[error("stored data is unreadable ({what}): {reason}")]
    Corrupt { what: String, reason: String },
    /// The store was closed (the service is shutting down).
    #[error("the event store is closed")]
    Closed,
}

impl StoreError {
    pub fn corrupt(what: impl Into<String>, reason: impl ToString) -> Self {
        StoreError::Corrupt {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::Unavailable(Arc::new(error))
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot reach the database at {target}: {reason}")]
    Unreachable { target: String, reason: String },
    #[error("cannot open the data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "the database schema is behind this binary ({pending} pending migration(s)); run `proofline migrate` or start without --no-migrate"
    )]
    SchemaBehind { pending: usize },
    #[error("the database schema was migrated by a newer Proofline (unknown migration {version})")]
    SchemaAhead { version: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Turns a sqlx connection failure into one line without the URL's password.
pub(crate) fn describe_connect_error(error: &sqlx::Error) -> String {
    let text = match error {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::PoolTimedOut => "timed out".to_owned(),
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    };
    let line = text.lines().next().unwrap_or_default();
    if matches!(error, sqlx::Error::Tls(_)) || line.contains("certificate") {
        format!(
            "{line} (TLS: the server's certificate must name the host of DATABASE_URL and, \
             with sslmode=verify-ca or verify-full, chain to the CA file named by sslrootcert)"
        )
    } else {
        line.to_owned()
    }
}
