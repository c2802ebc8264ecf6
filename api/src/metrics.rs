//! `/metrics` in the Prometheus text format.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .expect("the buckets are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "a metrics recorder was installed already; /metrics shows only its own view"
            );
        }
        handle
    })
}

pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    metrics::gauge!("proofline_auth_cached_keys").set(state.auth.cached_keys() as f64);
    metrics::gauge!("proofline_auth_argon2_verifications")
        .set(state.auth.argon2_verifications() as f64);
    let head = *state.store.watch_head().borrow();
    for (name, value) in &state.gauges {
        metrics::gauge!(*name).set(value.load(std::sync::atomic::Ordering::Relaxed) as f64);
    }
    metrics::gauge!("proofline_store_head_position").set(head as f64);
    if let Some(read) = &state.read
        && let Ok(checkpoints) = proofline_projections::queries::checkpoints(read).await
    {
        for (name, position) in checkpoints {
            metrics::gauge!("proofline_projector_position", "projector" => name.clone())
                .set(position as f64);
            metrics::gauge!("proofline_projector_lag_events", "projector" => name)
                .set(head.saturating_sub(position) as f64);
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle().render(),
    )
}
