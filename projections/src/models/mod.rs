//! The read models and how each event changes them.
//!
//! Every model keeps what queries need and nothing secret: verification
//! records (claim names and digests, as in the log), daily counts, lenders
//! and issuers as they stand. Applying is idempotent only together with
//! the checkpoint (see [`crate::projector`]), which is why each event is
//! applied and the checkpoint moved in one transaction.

use async_trait::async_trait;
use proofline_domain::decider::EventSchema;
use proofline_domain::issuer::IssuerEvent;
use proofline_domain::lender::LenderEvent;
use proofline_domain::log::Envelope;
use proofline_domain::verification_record::VerificationEvent;
use serde_json::{Value, json};

use crate::db::{Kind, Param, ReadError, ReadTx};

/// The checkpoints of every projector, in the read models' database.
pub const CHECKPOINTS: &[&str] =
    &["CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY, position BIGINT NOT NULL)"];

#[async_trait]
pub trait Projection: Send + Sync {
    /// The projector's name: its checkpoint and its tables' prefix.
    fn name(&self) -> &'static str;
    /// `CREATE TABLE IF NOT EXISTS` statements of its tables.
    fn schema(&self) -> &'static [&'static str];
    /// The tables it owns, emptied by a rebuild.
    fn tables(&self) -> &'static [&'static str];
    /// Its table's columns, key first: what a rebuild copies and checksums.
    fn columns(&self) -> &'static [(&'static str, Kind)];
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
const ROWS_PER_INSERT: usize = 50;

fn values_clause(rows: usize, columns: usize) -> String {
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

fn stream_uuid(envelope: &Envelope) -> String {
    envelope
        .stream_id
        .as_str()
        .split_once('-')
        .map_or("", |(_, id)| id)
        .to_owned()
}

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

    async fn apply(&self, tx: &mut ReadTx, envelope: &Envelope) -> Result<(), ReadError> {
        if envelope.stream_id.category() != "verification" {
            return Ok(());
        }
        self.apply_batch(tx, std::slice::from_ref(envelope)).await
    }

    async fn apply_batch(&self, tx: &mut ReadTx, envelopes: &[Envelope]) -> Result<(), ReadError> {
        let mut rows = Vec::new();
        for envelope in envelopes {
            if envelope.stream_id.category() != "verification" {
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
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO verifications (verification_id, lender_id, verified, failed_step, reason, \
                 issuer, vct, verified_at, position, record) VALUES {} \
                 ON CONFLICT (verification_id) DO NOTHING",
                values_clause(chunk.len(), 10)
            );
            let params: Vec<Param> = chunk.iter().flatten().cloned().collect();
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

    async fn apply(&self, tx: &mut ReadTx, envelope: &Envelope) -> Result<(), ReadError> {
        if envelope.stream_id.category() != "verification" {
            return Ok(());
        }
        self.apply_batch(tx, std::slice::from_ref(envelope)).await
    }

    async fn apply_batch(&self, tx: &mut ReadTx, envelopes: &[Envelope]) -> Result<(), ReadError> {
        // Counted in memory first: one upsert per key of the batch.
        let mut counts: std::collections::BTreeMap<(String, String, bool, &'static str), i64> =
            std::collections::BTreeMap::new();
        for envelope in envelopes {
            if envelope.stream_id.category() != "verification" {
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

/// Lenders as they stand (no key material: the current key's public
/// prefix only).
pub struct Lenders;

#[async_trait]
impl Projection for Lenders {
    fn name(&self) -> &'static str {
        "lenders"
    }

    fn schema(&self) -> &'static [&'static str] {
        &["CREATE TABLE IF NOT EXISTS lenders (
                lender_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                contact_email TEXT NOT NULL,
                audience TEXT NOT NULL,
                active BOOLEAN NOT NULL,
                key_prefix TEXT,
                webhook_url TEXT,
                registered_at TEXT NOT NULL,
                position BIGINT NOT NULL
            )"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["lenders"]
    }

    fn columns(&self) -> &'static [(&'static str, Kind)] {
        &[
            ("lender_id", Kind::Text),
            ("name", Kind::Text),
            ("contact_email", Kind::Text),
            ("audience", Kind::Text),
            ("active", Kind::Bool),
            ("key_prefix", Kind::Text),
            ("webhook_url", Kind::Text),
            ("registered_at", Kind::Text),
            ("position", Kind::Int),
        ]
    }

    async fn apply(&self, tx: &mut ReadTx, envelope: &Envelope) -> Result<(), ReadError> {
        if envelope.stream_id.category() != "lender" {
            return Ok(());
        }
        let id = stream_uuid(envelope);
        let position = Param::int(envelope.position as i64);
        match decode::<LenderEvent>(envelope)? {
            LenderEvent::LenderRegistered {
                name,
                contact_email,
                audience,
                ..
            } => {
                tx.execute(
                    "INSERT INTO lenders (lender_id, name, contact_email, audience, active, registered_at, position) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (lender_id) DO NOTHING",
                    &[
                        Param::text(id),
                        Param::text(name.as_str()),
                        Param::text(contact_email.as_str()),
                        Param::text(audience.as_str()),
                        Param::Bool(Some(true)),
                        Param::text(envelope.recorded_at.to_rfc3339()),
                        position,
                    ],
                )
                .await?;
            }
            LenderEvent::ApiKeyIssued { key_prefix, .. } => {
                tx.execute(
                    "UPDATE lenders SET key_prefix = $1, position = $2 WHERE lender_id = $3",
                    &[
                        Param::text(key_prefix.to_string()),
                        position,
                        Param::text(id),
                    ],
                )
                .await?;
            }
            LenderEvent::ApiKeyRotated { new_prefix, .. } => {
                tx.execute(
                    "UPDATE lenders SET key_prefix = $1, position = $2 WHERE lender_id = $3",
                    &[
                        Param::text(new_prefix.to_string()),
                        position,
                        Param::text(id),
                    ],
                )
                .await?;
            }
            LenderEvent::LenderDeactivated { .. } | LenderEvent::LenderReactivated { .. } => {
                let active = matches!(
                    decode::<LenderEvent>(envelope)?,
                    LenderEvent::LenderReactivated { .. }
                );
                tx.execute(
                    "UPDATE lenders SET active = $1, position = $2 WHERE lender_id = $3",
                    &[Param::Bool(Some(active)), position, Param::text(id)],
                )
                .await?;
            }
            LenderEvent::WebhookConfigured { url, .. } => {
                tx.execute(
                    "UPDATE lenders SET webhook_url = $1, position = $2 WHERE lender_id = $3",
                    &[Param::text(url.as_str()), position, Param::text(id)],
                )
                .await?;
            }
            LenderEvent::WebhookRemoved { .. } => {
                tx.execute(
                    "UPDATE lenders SET webhook_url = NULL, position = $1 WHERE lender_id = $2",
                    &[position, Param::text(id)],
                )
                .await?;
            }
            LenderEvent::ApiKeyRevoked { .. } => {}
        }
        Ok(())
    }
}

/// Issuers as they stand, with their keys.
pub struct Issuers;

#[async_trait]
impl Projection for Issuers {
    fn name(&self) -> &'static str {
        "issuers"
    }

    fn schema(&self) -> &'static [&'static str] {
        &["CREATE TABLE IF NOT EXISTS issuers (
                issuer_id TEXT PRIMARY KEY,
                did TEXT NOT NULL,
                name TEXT NOT NULL,
                suspended BOOLEAN NOT NULL,
                credential_types TEXT,
                keys TEXT NOT NULL,
                registered_at TEXT NOT NULL,
                position BIGINT NOT NULL
            )"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["issuers"]
    }

    fn columns(&self) -> &'static [(&'static str, Kind)] {
        &[
            ("issuer_id", Kind::Text),
            ("did", Kind::Text),
            ("name", Kind::Text),
            ("suspended", Kind::Bool),
            ("credential_types", Kind::Text),
            ("keys", Kind::Text),
            ("registered_at", Kind::Text),
            ("position", Kind::Int),
        ]
    }

    async fn apply(&self, tx: &mut ReadTx, envelope: &Envelope) -> Result<(), ReadError> {
        if envelope.stream_id.category() != "issuer" {
            return Ok(());
        }
        let id = stream_uuid(envelope);
        let position = Param::int(envelope.position as i64);
        let keys_of = |tx_keys: Option<&str>| -> Vec<Value> {
            tx_keys
                .and_then(|k| serde_json::from_str::<Vec<Value>>(k).ok())
                .unwrap_or_default()
        };
        match decode::<IssuerEvent>(envelope)? {
            IssuerEvent::IssuerRegistered {
                did,
                name,
                keys,
                credential_types,
                registered_at,
                ..
            } => {
                let keys: Vec<Value> = keys
                    .iter()
                    .map(|k| json!({"kid": k.kid.as_str(), "jwk": k.jwk, "added_at": registered_at.to_rfc3339(), "retired_at": null}))
                    .collect();
                tx.execute(
                    "INSERT INTO issuers (issuer_id, did, name, suspended, credential_types, keys, registered_at, position) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (issuer_id) DO NOTHING",
                    &[
                        Param::text(id),
                        Param::text(did.as_str()),
                        Param::text(name.as_str()),
                        Param::Bool(Some(false)),
                        Param::Text(credential_types.map(|t| json!(t.iter().map(|v| v.as_str()).collect::<Vec<_>>()).to_string())),
                        Param::text(Value::from(keys).to_string()),
                        Param::text(registered_at.to_rfc3339()),
                        position,
                    ],
                )
                .await?;
            }
            IssuerEvent::IssuerKeyAdded { kid, jwk, added_at } => {
                let current = tx
                    .fetch(
                        "SELECT keys FROM issuers WHERE issuer_id = $1",
                        &[Param::text(id.clone())],
                        &[Kind::Text],
                    )
                    .await?;
                let mut keys = keys_of(current.first().and_then(|r| r[0].as_text()));
                keys.push(json!({"kid": kid.as_str(), "jwk": jwk, "added_at": added_at.to_rfc3339(), "retired_at": null}));
                tx.execute(
                    "UPDATE issuers SET keys = $1, position = $2 WHERE issuer_id = $3",
                    &[
                        Param::text(Value::from(keys).to_string()),
                        position,
                        Param::text(id),
                    ],
                )
                .await?;
            }
            IssuerEvent::IssuerKeyRetired { kid, retired_at } => {
                set_key_time(tx, id, kid.as_str(), "retired_at", &retired_at, position).await?;
            }
            IssuerEvent::IssuerKeyRevoked { kid, revoked_at } => {
                set_key_time(tx, id, kid.as_str(), "revoked_at", &revoked_at, position).await?;
            }
            IssuerEvent::IssuerSuspended { .. } | IssuerEvent::IssuerReinstated { .. } => {
                let suspended = matches!(
                    decode::<IssuerEvent>(envelope)?,
                    IssuerEvent::IssuerSuspended { .. }
                );
                tx.execute(
                    "UPDATE issuers SET suspended = $1, position = $2 WHERE issuer_id = $3",
                    &[Param::Bool(Some(suspended)), position, Param::text(id)],
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// Every read model, in the order projectors start.
pub fn all() -> Vec<std::sync::Arc<dyn Projection>> {
    vec![
        std::sync::Arc::new(Verifications),
        std::sync::Arc::new(DailyStats),
        std::sync::Arc::new(Lenders),
        std::sync::Arc::new(Issuers),
        std::sync::Arc::new(crate::webhooks::WebhookDeliveries),
    ]
}

/// Sets `field` (`retired_at`, `revoked_at`) of one key in an issuer's row.
async fn set_key_time(
    tx: &mut ReadTx,
    id: String,
    kid: &str,
    field: &str,
    at: &proofline_domain::log::Timestamp,
    position: Param,
) -> Result<(), ReadError> {
    let current = tx
        .fetch(
            "SELECT keys FROM issuers WHERE issuer_id = $1",
            &[Param::text(id.clone())],
            &[Kind::Text],
        )
        .await?;
    let mut keys: Vec<Value> = current
        .first()
        .and_then(|r| r[0].as_text())
        .and_then(|k| serde_json::from_str(k).ok())
        .unwrap_or_default();
    for key in &mut keys {
        if key["kid"] == kid {
            key[field] = at.to_rfc3339().into();
        }
    }
    tx.execute(
        "UPDATE issuers SET keys = $1, position = $2 WHERE issuer_id = $3",
        &[
            Param::text(Value::from(keys).to_string()),
            position,
            Param::text(id),
        ],
    )
    .await?;
    Ok(())
}
