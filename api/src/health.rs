//! Liveness and readiness.
//!
//! Live answers as long as the process serves HTTP. Ready answers 200 only
//! when the service can do its work: the event store answers a round trip
//! within two seconds (later also the bus and projector lag).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, body = inline(Value))))]
pub async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

/// The service can do its work now.
#[utoipa::path(
    get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, body = inline(Value)),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => {
            let mut checks =
                json!({"store": {"status": "ok", "backend": state.store.backend().to_string()}});
            if state.read.is_some() {
                checks["projectors"] = projectors_ready(&state).await?;
            }
            for (name, probe) in &state.probes {
                match tokio::time::timeout(READY_TIMEOUT, probe()).await {
                    Ok(Ok(detail)) => checks[*name] = detail,
                    Ok(Err(why)) => {
                        return Err(ApiError::new(
                            ErrorCode::Unavailable,
                            format!("{name}: {why}"),
                        ));
                    }
                    Err(_) => {
                        return Err(ApiError::new(
                            ErrorCode::Unavailable,
                            format!("{name} did not answer in time"),
                        ));
                    }
                }
            }
            Ok(Json(json!({"status": "ready", "checks": checks})))
        }
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "readiness: the event store failed");
            Err(ApiError::new(
                ErrorCode::Unavailable,
                "the event store is unavailable",
            ))
        }
        Err(_) => Err(ApiError::new(
            ErrorCode::Unavailable,
            "the event store did not answer in time",
        )),
    }
}

/// Each projector's position and lag; an error when one trails the log by
/// more than the configured events, or the read models do not answer.
async fn projectors_ready(state: &AppState) -> Result<Value, ApiError> {
    let Some(read) = &state.read else {
        return Ok(Value::Null);
    };
    let head = *state.store.watch_head().borrow();
    let checkpoints = tokio::time::timeout(
        READY_TIMEOUT,
        proofline_projections::queries::checkpoints(read),
    )
    .await
    .map_err(|_| {
        ApiError::new(
            ErrorCode::Unavailable,
            "the read models did not answer in time",
        )
    })??;
    let mut report = serde_json::Map::new();
    for (name, position) in checkpoints {
        let lag = head.saturating_sub(position);
        if lag > state.settings.projector_max_lag {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                format!(
                    "projector {name} trails the log by {lag} events (more than {})",
                    state.settings.projector_max_lag
                ),
            ));
        }
        report.insert(name, json!({"position": position, "lag": lag}));
    }
    Ok(Value::Object(report))
}
