//! The trust registry as it stands: issuers, their keys and status.

use async_trait::async_trait;
use proofline_domain::ids::Category;
use proofline_domain::issuer::IssuerEvent;
use proofline_domain::log::{Envelope, Timestamp};
use serde_json::{Value, json};

use super::{Projection, decode};
use crate::db::{Kind, Param, ReadError, ReadTx};

/// Issuers as they stand, with their keys.
pub struct Issuers;

#[async_trait]
impl Projection for Issuers {
    fn name(&self) -> &'static str {
        "issuers"
    }

    /// 2: keys name their source (registered, or resolved from a DID
    /// document or issuer metadata, with when and from where), and the
    /// issuer its allowed `key_sources`.
    fn version(&self) -> u32 {
        2
    }

    fn schema(&self) -> &'static [&'static str] {
        &["CREATE TABLE IF NOT EXISTS issuers (
                issuer_id TEXT PRIMARY KEY,
                did TEXT NOT NULL,
                name TEXT NOT NULL,
                suspended BOOLEAN NOT NULL,
                credential_types TEXT,
                keys TEXT NOT NULL,
                key_sources TEXT NOT NULL,
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
            ("key_sources", Kind::Text),
            ("registered_at", Kind::Text),
            ("position", Kind::Int),
        ]
    }

    fn categories(&self) -> &'static [Category] {
        &[Category::Issuer]
    }

    async fn apply(&self, tx: &mut ReadTx, envelope: &Envelope) -> Result<(), ReadError> {
        let Some(id) = envelope.stream_id.uuid_of(Category::Issuer) else {
            return Ok(());
        };
        let id = id.to_string();
        let position = Param::int(envelope.position as i64);
        match decode::<IssuerEvent>(envelope)? {
            IssuerEvent::IssuerRegistered {
                did,
                name,
                keys,
                credential_types,
                key_sources,
                registered_at,
                ..
            } => {
                let key_sources = proofline_domain::issuer::sources_of(key_sources.as_deref());
                let keys: Vec<Value> = keys
                    .iter()
                    .map(|k| key_json(k.kid.as_str(), &k.jwk, &registered_at))
                    .collect();
                tx.execute(
                    "INSERT INTO issuers (issuer_id, did, name, suspended, credential_types, keys, key_sources, registered_at, position) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (issuer_id) DO NOTHING",
                    &[
                        Param::text(id),
                        Param::text(did.as_str()),
                        Param::text(name.as_str()),
                        Param::Bool(Some(false)),
                        Param::Text(credential_types.map(|t| json!(t.iter().map(|v| v.as_str()).collect::<Vec<_>>()).to_string())),
                        Param::text(Value::from(keys).to_string()),
                        Param::text(json!(key_sources).to_string()),
                        Param::text(registered_at.to_rfc3339()),
                        position,
                    ],
                )
                .await?;
            }
            IssuerEvent::IssuerKeyAdded { kid, jwk, added_at } => {
                change_keys(tx, id, position, |keys| {
                    keys.push(key_json(kid.as_str(), &jwk, &added_at));
                })
                .await?;
            }
            IssuerEvent::IssuerKeyRetired { kid, retired_at } => {
                change_keys(tx, id, position, |keys| {
                    set_time(keys, kid.as_str(), "retired_at", &retired_at)
                })
                .await?;
            }
            IssuerEvent::IssuerKeyRevoked { kid, revoked_at } => {
                change_keys(tx, id, position, |keys| {
                    set_time(keys, kid.as_str(), "revoked_at", &revoked_at)
                })
                .await?;
            }
            event
            @ (IssuerEvent::IssuerSuspended { .. } | IssuerEvent::IssuerReinstated { .. }) => {
                let suspended = matches!(event, IssuerEvent::IssuerSuspended { .. });
                tx.execute(
                    "UPDATE issuers SET suspended = $1, position = $2 WHERE issuer_id = $3",
                    &[Param::Bool(Some(suspended)), position, Param::text(id)],
                )
                .await?;
            }
            IssuerEvent::IssuerKeysResolved {
                source,
                source_url,
                document_sha256,
                keys,
                resolved_at,
                ..
            } => {
                let at = envelope.position;
                change_keys(tx, id, position, |current| {
                    current.retain(|k| k["source"] != source.as_str());
                    current.extend(keys.iter().map(|k| {
                        let mut key = key_json(k.kid.as_str(), &k.jwk, &resolved_at);
                        key["source"] = source.as_str().into();
                        key["resolution"] = json!({
                            "source_url": source_url,
                            "document_sha256": document_sha256,
                            "resolved_at": resolved_at.to_rfc3339(),
                            "position": at,
                        });
                        key
                    }));
                })
                .await?;
            }
        }
        Ok(())
    }
}

/// A key as the row keeps it (registered, unless said otherwise).
fn key_json(kid: &str, jwk: &proofline_domain::jose::Jwk, added_at: &Timestamp) -> Value {
    json!({"kid": kid, "jwk": jwk, "source": "registered", "added_at": added_at.to_rfc3339(), "retired_at": null})
}

/// Sets `field` (`retired_at`, `revoked_at`) of the key `kid`.
fn set_time(keys: &mut [Value], kid: &str, field: &str, at: &Timestamp) {
    for key in keys.iter_mut().filter(|k| k["kid"] == kid) {
        key[field] = at.to_rfc3339().into();
    }
}

/// Reads an issuer's keys, changes them, writes them back.
async fn change_keys(
    tx: &mut ReadTx,
    id: String,
    position: Param,
    change: impl FnOnce(&mut Vec<Value>),
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
    change(&mut keys);
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
