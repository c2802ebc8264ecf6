//! Conversions shared by the adapters: database integers and text to the
//! domain's types, and stored envelopes back to insertable rows.

use proofline_domain::ids::StreamId;
use proofline_domain::log::{Envelope, EventHash, Timestamp, canonical_json};
use uuid::Uuid;

use super::StoreError;
use super::plan::EventRow;

/// Positions and versions are `u64` in the domain and `BIGINT` in SQL; they
/// never come near `i64::MAX`.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|e| StoreError::corrupt(what, e))
}

pub(crate) fn parse_stream(value: String) -> Result<StreamId, StoreError> {
    StreamId::parse(value).map_err(|e| StoreError::corrupt("stream_id", e))
}

pub(crate) fn parse_hash(value: String, what: &str) -> Result<EventHash, StoreError> {
    value.parse().map_err(|e| StoreError::corrupt(what, e))
}

pub(crate) fn parse_time(value: String, what: &str) -> Result<Timestamp, StoreError> {
    Timestamp::parse(&value).map_err(|e| StoreError::corrupt(what, e))
}

pub(crate) fn parse_uuid(value: String) -> Result<Uuid, StoreError> {
    value
        .parse()
        .map_err(|e| StoreError::corrupt("event_id", e))
}

/// The canonical texts of stored envelopes, as the writer would have stored
/// them (for the benchmark's raw inserts).
pub(crate) fn canonical_texts(envelopes: &[Envelope]) -> Result<Vec<(String, String)>, StoreError> {
    envelopes
        .iter()
        .map(|e| {
            let data = canonical_json(&e.data).map_err(|err| StoreError::corrupt("data", err))?;
            let metadata =
                canonical_json(&e.metadata).map_err(|err| StoreError::corrupt("metadata", err))?;
            Ok((data, metadata))
        })
        .collect()
}

/// Stored envelopes as insertable rows, borrowing the texts.
pub(crate) fn rows_of<'a>(
    envelopes: &'a [Envelope],
    texts: &'a [(String, String)],
) -> Vec<EventRow<'a>> {
    envelopes
        .iter()
        .zip(texts)
        .map(|(e, (data, metadata))| EventRow {
            position: e.position,
            event_id: e.event_id,
            stream_id: &e.stream_id,
            stream_version: e.stream_version,
            event_type: &e.event_type,
            schema_version: e.schema_version,
            data,
            metadata,
            recorded_at: e.recorded_at,
            prev_hash: e.prev_hash,
            hash: e.hash,
        })
        .collect()
}
