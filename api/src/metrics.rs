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

/// Events per group commit.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("proofline_store_append_batch_events".into()),
                    BATCH_BUCKETS,
                )
            })
            .expect("the buckets are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "a metrics recorder was installed already; /metrics shows only its own view"
            );
        }
        register_series();
        handle
    })
}

/// The series of closed label sets, at zero from the start: a rate over a
/// series that does not exist yet is no rate at all, and the dashboards
/// and alerts under `deploy/` name these (a test checks every name they
/// use against `/metrics`).
fn register_series() {
    use proofline_commands::fetch::FetchKind;
    use proofline_domain::verification::Step;
    metrics::counter!("proofline_verifications_total",
        "outcome" => "verified", "failed_step" => "none")
    .increment(0);
    for step in Step::ALL {
        metrics::counter!("proofline_verifications_total",
            "outcome" => "failed", "failed_step" => step.name())
        .increment(0);
    }
    for outcome in ["cosigned", "unreachable", "refused"] {
        metrics::counter!("proofline_witness_submissions_total", "outcome" => outcome).increment(0);
    }
    for result in ["accepted", "refused"] {
        metrics::counter!("proofline_webhook_attempts_total", "result" => result).increment(0);
    }
    for outcome in ["delivered", "retrying", "failed"] {
        metrics::counter!("proofline_webhook_deliveries_total", "outcome" => outcome).increment(0);
    }
    for kind in FetchKind::ALL {
        metrics::counter!("proofline_fetch_total", "kind" => kind.as_str(), "outcome" => "ok")
            .increment(0);
        metrics::counter!("proofline_fetch_joined_total", "kind" => kind.as_str()).increment(0);
        let _ = metrics::histogram!("proofline_fetch_duration_seconds", "kind" => kind.as_str());
    }
    for name in [
        "proofline_store_append_batch_events",
        "proofline_store_append_duration_seconds",
        "proofline_webhook_attempt_duration_seconds",
        "proofline_webhook_delivery_latency_seconds",
    ] {
        let _ = metrics::histogram!(name);
    }
}

pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    metrics::gauge!("proofline_auth_cached_keys").set(state.auth.cached_keys() as f64);
    metrics::gauge!("proofline_auth_argon2_verifications")
        .set(state.auth.argon2_verifications() as f64);
    let head = *state.store.watch_head().borrow();
    for (name, value) in &state.gauges {
        let value = value.load(std::sync::atomic::Ordering::Relaxed);
        metrics::gauge!(*name).set(value as f64);
        if *name == "proofline_relay_position" {
            metrics::gauge!("proofline_relay_lag_events").set(head.saturating_sub(value) as f64);
        }
    }
    metrics::gauge!("proofline_store_head_position").set(head as f64);
    // The newest signed checkpoint, whoever signed it: its age and what it
    // covers (an alert compares them with the head).
    if let Ok(Some(latest)) = proofline_commands::checkpoints::latest(state.store.as_ref()).await {
        let (size, at) = latest.covered();
        metrics::gauge!("proofline_checkpoint_size").set(size as f64);
        metrics::gauge!("proofline_checkpoint_timestamp_seconds")
            .set(at.as_datetime().timestamp_millis() as f64 / 1000.0);
    }
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
