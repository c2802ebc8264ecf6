//! The routes of the HTTP contract, grouped by resource.

pub mod api_keys;
pub mod auditors;
pub mod events;
pub mod issuers;
pub mod lenders;
pub mod log;
pub mod verifications;
pub mod webhooks;

/// The largest log position a query may name: the largest integer JSON
/// carries exactly, which positions never exceed.
pub const MAX_POSITION: u64 = (1 << 53) - 1;

/// Deserializes an optional position, refusing one past [`MAX_POSITION`]
/// (so that what `/openapi.json` says and what is accepted are the same).
pub fn position<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    let value = <Option<u64> as serde::Deserialize>::deserialize(deserializer)?;
    match value {
        Some(n) if n > MAX_POSITION => Err(serde::de::Error::custom(format!(
            "a position is at most {MAX_POSITION}"
        ))),
        other => Ok(other),
    }
}
