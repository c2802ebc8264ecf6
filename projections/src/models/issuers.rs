//! The trust registry as it stands: issuers, their keys and status.

use async_trait::async_trait;
use proofline_domain::ids::Category;
use proofline_domain::issuer::IssuerEvent;
use proofline_domain::log::Envelope;
use serde_json::{Value, json};

use super::{Projection, decode, stream_uuid};
use crate::db::{Kind, Param, ReadError, ReadTx};

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
        if envelope.stream_id.kind() != Some(Category::Issuer) {
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
