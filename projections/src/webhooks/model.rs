//! The deliveries read model: one row per event a lender is told about,
//! with its state, attempts and last error. It is also the consumer's
//! queue: a pending row whose `next_attempt_ms` has come is due.
//!
//! Everything here comes from the log: the row appears with the event told
//! about (when the lender had a webhook at that point of the log), and the
//! WebhookDelivery events move it. So a rebuild gives the same rows, and
//! the consumer keeps no state of its own that a crash could lose.

use async_trait::async_trait;
use proofline_domain::ids::Category;
use proofline_domain::lender::{LenderEvent, LenderId};
use proofline_domain::log::{Envelope, Timestamp};
use proofline_domain::verification_record::VerificationEvent;
use proofline_domain::webhook_delivery::{self, DeliveryId, WebhookDeliveryEvent};

use crate::db::{Kind, Param, ReadError, ReadTx};
use crate::models::{Projection, ROWS_PER_INSERT, decode};

pub struct WebhookDeliveries;

pub(crate) fn millis(at: &Timestamp) -> i64 {
    at.as_datetime().timestamp_millis()
}

impl WebhookDeliveries {
    async fn schedule(&self, tx: &mut ReadTx, envelope: &Envelope) -> Result<(), ReadError> {
        let Some(notice) = webhook_delivery::notice_of(envelope) else {
            return Ok(());
        };
        // Only when the lender has a webhook at this point of the log.
        tx.execute(
            "INSERT INTO webhook_deliveries (delivery_id, lender_id, event_type, event_position, \
             body, status, attempts, round_attempts, next_attempt_ms, created_at, created_ms, \
             version, position) \
             SELECT $1, $2, $3, $4, $5, 'pending', 0, 0, $6, $7, $6, 0, $4 \
             WHERE EXISTS (SELECT 1 FROM webhook_targets WHERE lender_id = $2) \
             ON CONFLICT (delivery_id) DO NOTHING",
            &[
                Param::text(notice.delivery_id.to_string()),
                Param::text(notice.lender_id.to_string()),
                Param::text(notice.kind),
                Param::int(envelope.position as i64),
                Param::text(notice.body),
                Param::int(millis(&envelope.recorded_at)),
                Param::text(envelope.recorded_at.to_rfc3339()),
            ],
        )
        .await?;
        Ok(())
    }

    /// [`Self::schedule`] for a run of verification events: which of
    /// their lenders have a webhook asked once (no event of the run can
    /// change it), then one INSERT per [`ROWS_PER_INSERT`] deliveries.
    async fn schedule_verifications(
        &self,
        tx: &mut ReadTx,
        run: &[Envelope],
    ) -> Result<(), ReadError> {
        let mut lenders = std::collections::BTreeMap::new();
        for envelope in run {
            // As `schedule`: an event that says nothing to a lender is skipped.
            let Ok(event) = envelope.decode::<VerificationEvent>() else {
                continue;
            };
            lenders
                .entry(event.record().lender_id.to_string())
                .or_insert_with(Vec::new)
                .push(envelope);
        }
        if lenders.is_empty() {
            return Ok(());
        }
        let asked: Vec<Param> = lenders.keys().map(|l| Param::text(l.as_str())).collect();
        let list = (1..=asked.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let with_webhook = tx
            .fetch(
                &format!("SELECT lender_id FROM webhook_targets WHERE lender_id IN ({list})"),
                &asked,
                &[Kind::Text],
            )
            .await?;
        let mut told: Vec<&Envelope> = with_webhook
            .iter()
            .filter_map(|row| row[0].as_text())
            .filter_map(|lender| lenders.get(lender))
            .flatten()
            .copied()
            .collect();
        told.sort_by_key(|e| e.position);
        for chunk in told.chunks(ROWS_PER_INSERT) {
            let mut values = Vec::with_capacity(chunk.len());
            let mut params = Vec::with_capacity(chunk.len() * 7);
            for envelope in chunk {
                let Some(notice) = webhook_delivery::notice_of(envelope) else {
                    continue;
                };
                let n = params.len();
                values.push(format!(
                    "(${}, ${}, ${}, ${}, ${}, 'pending', 0, 0, ${}, ${}, ${}, 0, ${})",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5,
                    n + 6,
                    n + 7,
                    n + 6,
                    n + 4
                ));
                params.extend([
                    Param::text(notice.delivery_id.to_string()),
                    Param::text(notice.lender_id.to_string()),
                    Param::text(notice.kind),
                    Param::int(envelope.position as i64),
                    Param::text(notice.body),
                    Param::int(millis(&envelope.recorded_at)),
                    Param::text(envelope.recorded_at.to_rfc3339()),
                ]);
            }
            if values.is_empty() {
                continue;
            }
            tx.execute(
                &format!(
                    "INSERT INTO webhook_deliveries (delivery_id, lender_id, event_type, \
                     event_position, body, status, attempts, round_attempts, next_attempt_ms, \
                     created_at, created_ms, version, position) VALUES {} \
                     ON CONFLICT (delivery_id) DO NOTHING",
                    values.join(", ")
                ),
                &params,
            )
            .await?;
        }
        Ok(())
    }

    async fn target(
        &self,
        tx: &mut ReadTx,
        lender: LenderId,
        event: &LenderEvent,
    ) -> Result<(), ReadError> {
        match event {
            LenderEvent::WebhookConfigured { url, .. } => {
                tx.execute(
                    "INSERT INTO webhook_targets (lender_id, url) VALUES ($1, $2) \
                     ON CONFLICT (lender_id) DO UPDATE SET url = excluded.url",
                    &[Param::text(lender.to_string()), Param::text(url.as_str())],
                )
                .await?;
            }
            LenderEvent::WebhookRemoved { .. } => {
                tx.execute(
                    "DELETE FROM webhook_targets WHERE lender_id = $1",
                    &[Param::text(lender.to_string())],
                )
                .await?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn outcome(&self, tx: &mut ReadTx, envelope: &Envelope) -> Result<(), ReadError> {
        let Some(id) = DeliveryId::from_stream(&envelope.stream_id) else {
            return Ok(());
        };
        let id = Param::text(id.to_string());
        let version = Param::int(envelope.stream_version as i64);
        let position = Param::int(envelope.position as i64);
        let status = |s: &Option<u16>| Param::Int(s.map(i64::from));
        match decode::<WebhookDeliveryEvent>(envelope)? {
            WebhookDeliveryEvent::WebhookDeliveryAttemptFailed {
                attempt,
                error,
                status: code,
                next_attempt_at,
                ..
            } => {
                tx.execute(
                    "UPDATE webhook_deliveries SET attempts = $1, round_attempts = round_attempts + 1, \
                     last_error = $2, last_status = $3, next_attempt_ms = $4, version = $5, position = $6 \
                     WHERE delivery_id = $7",
                    &[
                        Param::int(i64::from(attempt)),
                        Param::text(error),
                        status(&code),
                        Param::int(millis(&next_attempt_at)),
                        version,
                        position,
                        id,
                    ],
                )
                .await?;
            }
            WebhookDeliveryEvent::WebhookDelivered {
                attempt,
                status: code,
                delivered_at,
                ..
            } => {
                tx.execute(
                    "UPDATE webhook_deliveries SET status = 'delivered', attempts = $1, \
                     last_status = $2, next_attempt_ms = NULL, settled_at = $3, version = $4, \
                     position = $5 WHERE delivery_id = $6",
                    &[
                        Param::int(i64::from(attempt)),
                        Param::int(i64::from(code)),
                        Param::text(delivered_at.to_rfc3339()),
                        version,
                        position,
                        id,
                    ],
                )
                .await?;
            }
            WebhookDeliveryEvent::WebhookDeliveryFailed {
                attempt,
                error,
                status: code,
                failed_at,
                ..
            } => {
                tx.execute(
                    "UPDATE webhook_deliveries SET status = 'failed', attempts = $1, \
                     round_attempts = round_attempts + 1, last_error = $2, last_status = $3, \
                     next_attempt_ms = NULL, settled_at = $4, version = $5, position = $6 \
                     WHERE delivery_id = $7",
                    &[
                        Param::int(i64::from(attempt)),
                        Param::text(error),
                        status(&code),
                        Param::text(failed_at.to_rfc3339()),
                        version,
                        position,
                        id,
                    ],
                )
                .await?;
            }
            WebhookDeliveryEvent::WebhookRedeliveryRequested { requested_at, .. } => {
                tx.execute(
                    "UPDATE webhook_deliveries SET status = 'pending', round_attempts = 0, \
                     next_attempt_ms = $1, settled_at = NULL, version = $2, position = $3 \
                     WHERE delivery_id = $4",
                    &[Param::int(millis(&requested_at)), version, position, id],
                )
                .await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Projection for WebhookDeliveries {
    fn name(&self) -> &'static str {
        "webhook_deliveries"
    }

    fn schema(&self) -> &'static [&'static str] {
        &[
            "CREATE TABLE IF NOT EXISTS webhook_deliveries (
                delivery_id TEXT PRIMARY KEY,
                lender_id TEXT NOT NULL,
                event_type TEXT NOT NULL,
                event_position BIGINT NOT NULL,
                body TEXT NOT NULL,
                status TEXT NOT NULL,
                attempts BIGINT NOT NULL,
                round_attempts BIGINT NOT NULL,
                next_attempt_ms BIGINT,
                last_error TEXT,
                last_status BIGINT,
                created_at TEXT NOT NULL,
                created_ms BIGINT NOT NULL,
                settled_at TEXT,
                version BIGINT NOT NULL,
                position BIGINT NOT NULL
            )",
            "CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_attempt_ms) \
             WHERE status = 'pending'",
            "CREATE INDEX IF NOT EXISTS webhook_deliveries_by_lender ON webhook_deliveries \
             (lender_id, event_position)",
            "CREATE TABLE IF NOT EXISTS webhook_targets (
                lender_id TEXT PRIMARY KEY,
                url TEXT NOT NULL
            )",
        ]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["webhook_deliveries", "webhook_targets"]
    }

    fn columns(&self) -> &'static [(&'static str, Kind)] {
        &[
            ("delivery_id", Kind::Text),
            ("lender_id", Kind::Text),
            ("event_type", Kind::Text),
            ("event_position", Kind::Int),
            ("body", Kind::Text),
            ("status", Kind::Text),
            ("attempts", Kind::Int),
            ("round_attempts", Kind::Int),
            ("next_attempt_ms", Kind::Int),
            ("last_error", Kind::Text),
            ("last_status", Kind::Int),
            ("created_at", Kind::Text),
            ("created_ms", Kind::Int),
            ("settled_at", Kind::Text),
            ("version", Kind::Int),
            ("position", Kind::Int),
        ]
    }

    fn categories(&self) -> &'static [Category] {
        &[Category::Lender, Category::Verification, Category::Webhook]
    }

    async fn apply(&self, tx: &mut ReadTx, envelope: &Envelope) -> Result<(), ReadError> {
        match envelope.stream_id.kind() {
            Some(Category::Lender) => {
                if let Some(lender) = LenderId::from_stream(&envelope.stream_id) {
                    let event = decode::<LenderEvent>(envelope)?;
                    self.target(tx, lender, &event).await?;
                }
                self.schedule(tx, envelope).await
            }
            Some(Category::Verification) => self.schedule(tx, envelope).await,
            Some(Category::Webhook) => self.outcome(tx, envelope).await,
            _ => Ok(()),
        }
    }

    /// Runs of verification events scheduled together; anything else
    /// (which may change a lender's webhook) one by one, in order.
    async fn apply_batch(&self, tx: &mut ReadTx, envelopes: &[Envelope]) -> Result<(), ReadError> {
        let mut start = 0;
        for (i, envelope) in envelopes.iter().enumerate() {
            if envelope.stream_id.kind() == Some(Category::Verification) {
                continue;
            }
            self.schedule_verifications(tx, &envelopes[start..i])
                .await?;
            self.apply(tx, envelope).await?;
            start = i + 1;
        }
        self.schedule_verifications(tx, &envelopes[start..]).await
    }
}
