//! Status lists as the log last holds them: who published each, its
//! `iat`, `exp` and `ttl`, and whether the operator posted it or Proofline
//! fetched it (and when). The operator's console shows their age.

use async_trait::async_trait;
use proofline_domain::ids::Category;
use proofline_domain::log::Envelope;
use proofline_domain::status_list::StatusListEvent;

use super::{Projection, decode};
use crate::db::{Kind, Param, ReadError, ReadTx};

pub struct StatusLists;

#[async_trait]
impl Projection for StatusLists {
    fn name(&self) -> &'static str {
        "status_lists"
    }

    fn schema(&self) -> &'static [&'static str] {
        &["CREATE TABLE IF NOT EXISTS status_lists (
                uri TEXT PRIMARY KEY,
                issuer TEXT NOT NULL,
                kid TEXT NOT NULL,
                iat BIGINT NOT NULL,
                exp BIGINT,
                ttl BIGINT,
                bits BIGINT NOT NULL,
                source TEXT NOT NULL,
                fetched_at TEXT,
                recorded_at TEXT NOT NULL,
                position BIGINT NOT NULL
            )"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["status_lists"]
    }

    fn columns(&self) -> &'static [(&'static str, Kind)] {
        &[
            ("uri", Kind::Text),
            ("issuer", Kind::Text),
            ("kid", Kind::Text),
            ("iat", Kind::Int),
            ("exp", Kind::Int),
            ("ttl", Kind::Int),
            ("bits", Kind::Int),
            ("source", Kind::Text),
            ("fetched_at", Kind::Text),
            ("recorded_at", Kind::Text),
            ("position", Kind::Int),
        ]
    }

    fn categories(&self) -> &'static [Category] {
        &[Category::StatusList]
    }

    async fn apply(&self, tx: &mut ReadTx, envelope: &Envelope) -> Result<(), ReadError> {
        if envelope.stream_id.kind() != Some(Category::StatusList) {
            return Ok(());
        }
        let (uri, issuer, kid, iat, exp, ttl, bits, source, fetched_at) =
            match decode::<StatusListEvent>(envelope)? {
                StatusListEvent::StatusListPublished {
                    uri,
                    issuer,
                    kid,
                    iat,
                    exp,
                    ttl,
                    bits,
                    ..
                } => (uri, issuer, kid, iat, exp, ttl, bits, "posted", None),
                StatusListEvent::StatusListFetched {
                    uri,
                    issuer,
                    kid,
                    iat,
                    exp,
                    ttl,
                    bits,
                    fetched_at,
                    ..
                } => (
                    uri,
                    issuer,
                    kid,
                    iat,
                    exp,
                    ttl,
                    bits,
                    "fetched",
                    Some(fetched_at.to_rfc3339()),
                ),
            };
        tx.execute(
            "INSERT INTO status_lists (uri, issuer, kid, iat, exp, ttl, bits, source, fetched_at, recorded_at, position) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (uri) DO UPDATE SET issuer = excluded.issuer, kid = excluded.kid, iat = excluded.iat, \
             exp = excluded.exp, ttl = excluded.ttl, bits = excluded.bits, source = excluded.source, \
             fetched_at = excluded.fetched_at, recorded_at = excluded.recorded_at, position = excluded.position",
            &[
                Param::text(uri.as_str()),
                Param::text(issuer.as_str()),
                Param::text(kid.as_str()),
                Param::int(iat),
                Param::Int(exp),
                Param::Int(ttl.map(|t| i64::try_from(t).unwrap_or(i64::MAX))),
                Param::int(i64::from(bits)),
                Param::text(source),
                Param::Text(fetched_at),
                Param::text(envelope.recorded_at.to_rfc3339()),
                Param::int(envelope.position as i64),
            ],
        )
        .await?;
        Ok(())
    }
}
