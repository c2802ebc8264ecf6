//! The read models and how each event changes them.
//!
//! Every model keeps what queries need and nothing secret: verification
//! records (claim names and digests, as in the log), daily counts, lenders
//! and issuers as they stand. Applying is idempotent only together with
//! the checkpoint (see [`crate::projector`]), which is why each event is
//! applied and the checkpoint moved in one transaction.
//!
//! # Layout
//!
//! - `verifications.rs`: verifications by lender and time, and daily
//!   counts.
//! - `lenders.rs`: lenders as they stand (`GET /v1/lenders`).
//! - `issuers.rs`: the trust registry as it stands (`GET /v1/issuers`).
//! - `status_lists.rs`: status lists as the log last holds them
//!   (`GET /v1/status-lists`).
//! - `presentation_requests.rs`: OpenID4VP flows as they stand
//!   (`GET /v1/presentation-requests`).
//! - [`crate::webhooks`]: deliveries, which are also the webhook queue.

mod issuers;
mod lenders;
mod presentation_requests;
mod status_lists;
mod verifications;

pub use issuers::Issuers;
pub use lenders::Lenders;
pub use presentation_requests::PresentationRequests;
pub use status_lists::StatusLists;
pub use verifications::{DailyStats, Verifications};

use async_trait::async_trait;
use proofline_domain::decider::EventSchema;
use proofline_domain::ids::Category;
use proofline_domain::log::Envelope;

use crate::db::{Kind, ReadError, ReadTx};

/// The checkpoints of every projector, and the version of the shape of
/// each read model, in the read models' database.
pub const CHECKPOINTS: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS read_model_versions (name TEXT PRIMARY KEY, version BIGINT NOT NULL)",
];

#[async_trait]
pub trait Projection: Send + Sync {
    /// The projector's name: its checkpoint and its tables' prefix.
    fn name(&self) -> &'static str;
    /// The version of its tables' shape. A release that changes the shape
    /// raises it; a projector that finds another version stored drops the
    /// tables and builds them again from the log (see
    /// [`crate::projector::prepare`]). Models from before versions were
    /// kept are version 1.
    fn version(&self) -> u32 {
        1
    }
    /// `CREATE TABLE IF NOT EXISTS` statements of its tables.
    fn schema(&self) -> &'static [&'static str];
    /// The tables it owns, emptied by a rebuild.
    fn tables(&self) -> &'static [&'static str];
    /// Its table's columns, key first: what a rebuild copies and checksums.
    fn columns(&self) -> &'static [(&'static str, Kind)];
    /// The categories of the streams whose events it reads: a batch with
    /// none of them costs the model no transaction (its checkpoint moves
    /// in memory and is stored a little later).
    fn categories(&self) -> &'static [Category];
    /// Applies one event (every event is offered; most are ignored).
    async fn apply(&self, tx: &mut ReadTx, envelope: &Envelope) -> Result<(), ReadError>;
    /// Applies consecutive events; the same effect as one `apply` each, in
    /// fewer statements where a model can (rebuilds use it).
    async fn apply_batch(&self, tx: &mut ReadTx, envelopes: &[Envelope]) -> Result<(), ReadError> {
        for envelope in envelopes {
            self.apply(tx, envelope).await?;
        }
        Ok(())
    }
}

/// Rows per multi-row INSERT (parameters stay far below both databases'
/// limits).
pub(crate) const ROWS_PER_INSERT: usize = 50;

pub(crate) fn values_clause(rows: usize, columns: usize) -> String {
    let mut sql = String::new();
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * columns + column + 1));
        }
        sql.push(')');
    }
    sql
}

pub(crate) fn decode<E: EventSchema>(envelope: &Envelope) -> Result<E, ReadError> {
    envelope
        .decode::<E>()
        .map_err(|e| ReadError::Data(e.to_string()))
}

/// Every read model, in the order projectors start.
pub fn all() -> Vec<std::sync::Arc<dyn Projection>> {
    vec![
        std::sync::Arc::new(Verifications),
        std::sync::Arc::new(DailyStats),
        std::sync::Arc::new(Lenders),
        std::sync::Arc::new(Issuers),
        std::sync::Arc::new(PresentationRequests),
        std::sync::Arc::new(crate::webhooks::WebhookDeliveries),
        std::sync::Arc::new(StatusLists),
    ]
}
