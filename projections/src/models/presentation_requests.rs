//! OpenID4VP presentation requests as they stand, for the lender's
//! `GET /v1/presentation-requests`: status and outcome, never a nonce, a
//! state or a claim value (the log has none of them either).

use async_trait::async_trait;
use proofline_domain::ids::Category;
use proofline_domain::log::Envelope;
use proofline_domain::presentation_request::{
    PresentationRequestEvent as E, PresentationRequestId,
};

use super::{Projection, decode};
use crate::db::{Kind, Param, ReadError, ReadTx};

pub struct PresentationRequests;

#[async_trait]
impl Projection for PresentationRequests {
    fn name(&self) -> &'static str {
        "presentation_requests"
    }

    fn schema(&self) -> &'static [&'static str] {
        &[
            "CREATE TABLE IF NOT EXISTS presentation_requests (
                request_id TEXT PRIMARY KEY,
                lender_id TEXT NOT NULL,
                status TEXT NOT NULL,
                dcql_satisfied BOOLEAN,
                client_id TEXT NOT NULL,
                response_mode TEXT NOT NULL,
                expires_at TEXT NOT NULL,
                created_at TEXT NOT NULL,
                completed_at TEXT,
                created_position BIGINT NOT NULL,
                position BIGINT NOT NULL
            )",
            "CREATE INDEX IF NOT EXISTS presentation_requests_by_lender \
             ON presentation_requests (lender_id, created_position)",
        ]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["presentation_requests"]
    }

    fn columns(&self) -> &'static [(&'static str, Kind)] {
        &[
            ("request_id", Kind::Text),
            ("lender_id", Kind::Text),
            ("status", Kind::Text),
            ("dcql_satisfied", Kind::Bool),
            ("client_id", Kind::Text),
            ("response_mode", Kind::Text),
            ("expires_at", Kind::Text),
            ("created_at", Kind::Text),
            ("completed_at", Kind::Text),
            ("created_position", Kind::Int),
            ("position", Kind::Int),
        ]
    }

    fn categories(&self) -> &'static [Category] {
        &[Category::PresentationRequest]
    }

    async fn apply(&self, tx: &mut ReadTx, envelope: &Envelope) -> Result<(), ReadError> {
        let Some(id) = PresentationRequestId::from_stream(&envelope.stream_id) else {
            return Ok(());
        };
        let id = id.to_string();
        let position = Param::int(envelope.position as i64);
        let (status, satisfied, at) = match decode::<E>(envelope)? {
            E::PresentationRequestCreated {
                request,
                created_at,
            } => {
                tx.execute(
                    "INSERT INTO presentation_requests (request_id, lender_id, status, \
                     client_id, response_mode, expires_at, created_at, created_position, \
                     position) VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $7) \
                     ON CONFLICT (request_id) DO NOTHING",
                    &[
                        Param::text(id),
                        Param::text(request.lender_id.to_string()),
                        Param::text(request.client_id.as_str()),
                        Param::text(request.response_mode.as_str()),
                        Param::text(request.expires_at.to_rfc3339()),
                        Param::text(created_at.to_rfc3339()),
                        position,
                    ],
                )
                .await?;
                return Ok(());
            }
            E::PresentationRequestRetrieved { .. } => {
                tx.execute(
                    "UPDATE presentation_requests SET status = 'retrieved', position = $1 \
                     WHERE request_id = $2 AND status = 'pending'",
                    &[position, Param::text(id)],
                )
                .await?;
                return Ok(());
            }
            E::PresentationResponseRefused { .. } => return Ok(()),
            E::PresentationResponseAccepted { received_at, .. } => {
                ("verified", Some(true), received_at)
            }
            E::PresentationResponseRejected { received_at, .. } => {
                ("rejected", Some(false), received_at)
            }
            E::WalletErrorReceived { received_at, .. } => ("wallet_error", None, received_at),
            E::PresentationRequestExpired { expired_at, .. } => ("expired", None, expired_at),
        };
        tx.execute(
            "UPDATE presentation_requests SET status = $1, dcql_satisfied = $2, \
             completed_at = $3, position = $4 WHERE request_id = $5",
            &[
                Param::text(status),
                Param::Bool(satisfied),
                Param::text(at.to_rfc3339()),
                position,
                Param::text(id),
            ],
        )
        .await?;
        Ok(())
    }
}
