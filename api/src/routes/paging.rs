//! What every list of a read model shares: the page size, the cursor,
//! positions in queries, and the bounded wait for `min_position` (read your
//! own writes).

use proofline_projections::db::ReadDb;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

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

/// Longest a query waits for `min_position`.
pub const MIN_POSITION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Longest a query waits for the replica to replay `min_position` before
/// it asks the primary instead.
pub const REPLICA_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The read model `name`, once it has applied `min_position` (read your
/// own writes); 503 with the position reached when it is still behind after
/// [`MIN_POSITION_WAIT`]. With a replica (`DATABASE_READ_URL`), queries go
/// there; one whose `min_position` the replica has not replayed within
/// [`REPLICA_WAIT`] goes to the primary.
pub async fn read_model<'s>(
    state: &'s AppState,
    name: &str,
    min_position: Option<u64>,
) -> Result<&'s ReadDb, ApiError> {
    if let Some(replica) = &state.read_replica {
        let Some(position) = min_position else {
            return Ok(replica);
        };
        match proofline_projections::queries::wait_for(replica, name, position, REPLICA_WAIT).await
        {
            Ok(Ok(())) => return Ok(replica),
            Ok(Err(_)) => {}
            Err(error) => tracing::warn!(%error, "the read replica failed; asking the primary"),
        }
    }
    let primary = read_models(state)?;
    let Some(position) = min_position else {
        return Ok(primary);
    };
    match proofline_projections::queries::wait_for(primary, name, position, MIN_POSITION_WAIT)
        .await?
    {
        Ok(()) => Ok(primary),
        Err(reached) => Err(ApiError::new(
            ErrorCode::Unavailable,
            format!("the read model reached position {reached}, not {position}, within 5 s"),
        )
        .with_position(reached)
        .with_retry_after(1)),
    }
}

/// The `limit` of a read-model list: 1 to 500, default 50.
pub fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(50);
    if (1..=500).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "limit: 1 to 500",
        ))
    }
}

/// The position a list's `cursor` stands for (the previous page's last).
pub fn cursor_position(cursor: Option<&str>) -> Result<Option<u64>, ApiError> {
    cursor
        .map(|c| {
            c.parse::<u64>()
                .ok()
                .filter(|p| c.len() <= 15 && *p <= MAX_POSITION)
                .ok_or_else(|| {
                    ApiError::new(ErrorCode::ValidationFailed, "cursor: not one of ours")
                })
        })
        .transpose()
}

/// The read models on the primary database; 503 at once when the store's
/// breaker knows that database gone (the read models live beside the log),
/// rather than after the pool's wait for a connection.
pub fn read_models(state: &AppState) -> Result<&ReadDb, ApiError> {
    let read = state.read.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unavailable,
            "this instance serves no read models (role)",
        )
    })?;
    if state.store.breaker().is_some_and(|b| b.is_down()) {
        return Err(
            ApiError::new(ErrorCode::Unavailable, "the database is unreachable")
                .with_retry_after(1),
        );
    }
    Ok(read)
}
