//! Verifications by lender and time, and their daily counts.

use async_trait::async_trait;
use proofline_domain::ids::Category;
use proofline_domain::log::Envelope;
use proofline_domain::verification_record::VerificationEvent;

use super::{Projection, ROWS_PER_INSERT, decode, values_clause};
use crate::db::{Kind, Param, ReadError, ReadTx};

/// Verifications by lender and time.
pub struct Verifications;

#[async_trait]
impl Projection for Verifications {
    fn name(&self) -> &'static str {
        "verifications"
    }

    fn schema(&self) -> &'static [&'static str] {
        &[
            "CREATE TABLE IF NOT EXISTS verifications (
                verification_id TEXT PRIMARY KEY,
                lender_id TEXT NOT NULL,
                verified BOOLEAN NOT NULL,
                failed_step TEXT,
                reason TEXT,
                issuer TEXT,
                vct TEXT,
                verified_at TEXT NOT NULL,
                position BIGINT NOT NULL,
                record TEXT NOT NULL
            )",
            "CREATE INDEX IF NOT EXISTS verifications_by_lender ON verifications (lender_id, position)",
        ]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["verifications"]
    }

    fn columns(&self) -> &'static [(&'static str, Kind)] {
        &[
            ("verification_id", Kind::Text),
            ("lender_id", Kind::Text),
            ("verified", Kind::Bool),
            ("failed_step", Kind::Text),
            ("reason", Kind::Text),
            ("issuer", Kind::Text),
            ("vct", Kind::Text),
            ("verified_at", Kind::Text),
            ("position", Kind::Int),
            ("record", Kind::Text),
        ]
    }

    fn categories(&self) -> &'static [Category] {
        &[Category::Verification]
    }

    async fn apply(&self, tx: &mut ReadTx, envelope: &Envelope) -> Result<(), ReadError> {
        if envelope.stream_id.kind() != Some(Category::Verification) {
            return Ok(());
        }
        self.apply_batch(tx, std::slice::from_ref(envelope)).await
    }

    async fn apply_batch(&self, tx: &mut ReadTx, envelopes: &[Envelope]) -> Result<(), ReadError> {
        let mut rows = Vec::new();
        for envelope in envelopes {
            if envelope.stream_id.kind() != Some(Category::Verification) {
                continue;
            }
            let event: VerificationEvent = decode(envelope)?;
            let record = event.record();
            rows.push([
                Param::text(record.verification_id.to_string()),
                Param::text(record.lender_id.to_string()),
                Param::Bool(Some(record.verified)),
                Param::Text(record.failed_step.map(|s| s.name().to_owned())),
                Param::Text(record.reason.map(|r| r.as_str().to_owned())),
                Param::Text(record.issuer.clone()),
                Param::Text(record.vct.clone()),
                Param::text(record.verified_at.to_rfc3339()),
                Param::int(envelope.position as i64),
                Param::text(envelope.data.to_string()),
            ]);
        }
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let params: Vec<Param> = rows.by_ref().take(ROWS_PER_INSERT).flatten().collect();
            let sql = format!(
                "INSERT INTO verifications (verification_id, lender_id, verified, failed_step, reason, \
                 issuer, vct, verified_at, position, record) VALUES {} \
                 ON CONFLICT (verification_id) DO NOTHING",
                values_clause(params.len() / 10, 10)
            );
            tx.execute(&sql, &params).await?;
        }
        Ok(())
    }
}

/// Verifications counted per lender, UTC day, outcome and failed step.
pub struct DailyStats;

#[async_trait]
impl Projection for DailyStats {
    fn name(&self) -> &'static str {
        "daily_stats"
    }

    fn schema(&self) -> &'static [&'static str] {
        &["CREATE TABLE IF NOT EXISTS daily_stats (
                lender_id TEXT NOT NULL,
                day TEXT NOT NULL,
                verified BOOLEAN NOT NULL,
                failed_step TEXT NOT NULL,
                count BIGINT NOT NULL,
                PRIMARY KEY (lender_id, day, verified, failed_step)
            )"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["daily_stats"]
    }

    fn columns(&self) -> &'static [(&'static str, Kind)] {
        &[
            ("lender_id", Kind::Text),
            ("day", Kind::Text),
            ("verified", Kind::Bool),
            ("failed_step", Kind::Text),
            ("count", Kind::Int),
        ]
    }

    fn categories(&self) -> &'static [Category] {
        &[Category::Verification]
    }

    async fn apply(&self, tx: &mut ReadTx, envelope: &Envelope) -> Result<(), ReadError> {
        if envelope.stream_id.kind() != Some(Category::Verification) {
            return Ok(());
        }
        self.apply_batch(tx, std::slice::from_ref(envelope)).await
    }

    async fn apply_batch(&self, tx: &mut ReadTx, envelopes: &[Envelope]) -> Result<(), ReadError> {
        // Counted in memory first: one upsert per key of the batch.
        let mut counts: std::collections::BTreeMap<(String, String, bool, &'static str), i64> =
            std::collections::BTreeMap::new();
        for envelope in envelopes {
            if envelope.stream_id.kind() != Some(Category::Verification) {
                continue;
            }
            let event: VerificationEvent = decode(envelope)?;
            let record = event.record();
            let key = (
                record.lender_id.to_string(),
                record.verified_at.to_rfc3339()[..10].to_owned(),
                record.verified,
                record.failed_step.map_or("", |s| s.name()),
            );
            *counts.entry(key).or_default() += 1;
        }
        for ((lender, day, verified, step), count) in counts {
            tx.execute(
                "INSERT INTO daily_stats (lender_id, day, verified, failed_step, count) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (lender_id, day, verified, failed_step) \
                 DO UPDATE SET count = daily_stats.count + excluded.count",
                &[
                    Param::text(lender),
                    Param::text(day),
                    Param::Bool(Some(verified)),
                    Param::text(step),
                    Param::int(count),
                ],
            )
            .await?;
        }
        Ok(())
    }
}
