//! Liveness and readiness.
//!
//! Live answers as long as the process serves HTTP. Ready answers 200 only
//! when the service can do its work: the event store answers a round trip
//! within two seconds (later also the bus and projector lag).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::error::{ApiError, ErrorCode, Problem};
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
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(Json(json!({
            "status": "ready",
            "checks": {"store": {"status": "ok", "backend": state.store.backend().to_string()}},
        }))),
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
