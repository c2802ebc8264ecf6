//! Lenders as they stand, for the operator's `GET /v1/lenders`: no key
//! material, only the current key's public prefix.

use async_trait::async_trait;
use proofline_domain::ids::Category;
use proofline_domain::lender::LenderEvent;
use proofline_domain::log::Envelope;
use serde_json::json;

use super::{Projection, decode};
use crate::db::{Kind, Param, ReadError, ReadTx};

pub struct Lenders;

#[async_trait]
impl Projection for Lenders {
    fn name(&self) -> &'static str {
        "lenders"
    }

    /// 2: every audience and the suspension.
    fn version(&self) -> u32 {
        2
    }

    fn schema(&self) -> &'static [&'static str] {
        &["CREATE TABLE IF NOT EXISTS lenders (
                lender_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                contact_email TEXT NOT NULL,
                audiences TEXT NOT NULL,
                active BOOLEAN NOT NULL,
                suspended BOOLEAN NOT NULL,
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
            ("audiences", Kind::Text),
            ("active", Kind::Bool),
            ("suspended", Kind::Bool),
            ("key_prefix", Kind::Text),
            ("webhook_url", Kind::Text),
            ("registered_at", Kind::Text),
            ("position", Kind::Int),
        ]
    }

    fn categories(&self) -> &'static [Category] {
        &[Category::Lender]
    }

    async fn apply(&self, tx: &mut ReadTx, envelope: &Envelope) -> Result<(), ReadError> {
        let Some(id) = envelope.stream_id.uuid_of(Category::Lender) else {
            return Ok(());
        };
        let id = id.to_string();
        let position = Param::int(envelope.position as i64);
        let set = |column: &str| {
            format!("UPDATE lenders SET {column} = $1, position = $2 WHERE lender_id = $3")
        };
        let flag = |on: bool| Param::Bool(Some(on));
        let (sql, value) = match decode::<LenderEvent>(envelope)? {
            LenderEvent::LenderRegistered {
                name,
                contact_email,
                audience,
                audiences,
                ..
            } => {
                // Registrations before lenders had several audiences carry
                // `audience` alone.
                let audiences: Vec<&str> = if audiences.is_empty() {
                    vec![audience.as_str()]
                } else {
                    audiences.iter().map(|a| a.as_str()).collect()
                };
                tx.execute(
                    "INSERT INTO lenders (lender_id, name, contact_email, audiences, active, \
                     suspended, registered_at, position) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (lender_id) DO NOTHING",
                    &[
                        Param::text(id),
                        Param::text(name.as_str()),
                        Param::text(contact_email.as_str()),
                        Param::text(json!(audiences).to_string()),
                        flag(true),
                        flag(false),
                        Param::text(envelope.recorded_at.to_rfc3339()),
                        position,
                    ],
                )
                .await?;
                return Ok(());
            }
            LenderEvent::ApiKeyIssued { key_prefix, .. } => {
                (set("key_prefix"), Param::text(key_prefix.to_string()))
            }
            LenderEvent::ApiKeyRotated { new_prefix, .. } => {
                (set("key_prefix"), Param::text(new_prefix.to_string()))
            }
            LenderEvent::LenderDeactivated { .. } => (set("active"), flag(false)),
            LenderEvent::LenderReactivated { .. } => (set("active"), flag(true)),
            LenderEvent::LenderSuspended { .. } => (set("suspended"), flag(true)),
            LenderEvent::LenderUnsuspended { .. } => (set("suspended"), flag(false)),
            LenderEvent::WebhookConfigured { url, .. } => {
                (set("webhook_url"), Param::text(url.as_str()))
            }
            LenderEvent::WebhookRemoved { .. } => (set("webhook_url"), Param::Text(None)),
            // The current key is unchanged: only a key in its grace ends.
            LenderEvent::ApiKeyRevoked { .. } => return Ok(()),
        };
        tx.execute(&sql, &[value, position, Param::text(id)])
            .await?;
        Ok(())
    }
}
