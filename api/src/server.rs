//! The router and the server loop.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use proofline_commands::store::EventStore;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, ErrorCode};
use crate::health;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn EventStore>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no route for this path") })
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves until `shutdown` resolves, then stops accepting connections and
/// lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
