//! Middleware every route gets: a request id, security headers, a time
//! limit, and metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorCode};

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served; events it causes carry it as their
/// correlation id.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn acceptable_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Keeps a well-formed `X-Request-Id` from the client, otherwise makes one,
/// and sends it back.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable_request_id(v))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    request.extensions_mut().insert(RequestId(id.clone()));
    // A command's events carry the request id as their correlation id.
    let span = tracing::info_span!("request", request_id = %id, correlation_id = %id, method = %request.method(), path = %request.uri().path());
    let started = std::time::Instant::now();
    let answered = async move {
        let response = next.run(request).await;
        let (status, ms) = (response.status().as_u16(), started.elapsed().as_millis());
        // One line per request, in its span: at debug level (a busy API
        // answers thousands a second), a server error as a warning.
        if status >= 500 {
            tracing::warn!(status, ms, "answered");
        } else {
            tracing::debug!(status, ms, "answered");
        }
        response
    };
    let mut response = tracing::Instrument::instrument(answered, span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

/// Headers that cost nothing and close doors: no sniffing, no framing, no
/// referrers, no caching of answers that may hold a key shown once.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::CACHE_CONTROL, "no-store");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'",
    );
    set(
        headers,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000",
    );
    response
}

/// How much longer than the time limit a request whose command has started
/// may take to be answered with its result.
pub const COMMIT_GRACE: Duration = Duration::from_secs(60);

/// Set by a handler when it starts a command (see
/// [`crate::caller::Caller::command_context`]): from then on the request is
/// answered with the command's result, even past the time limit, since the
/// command may commit however late the caller is told.
#[derive(Debug, Clone, Default)]
pub struct Committing(Arc<AtomicBool>);

impl Committing {
    pub fn begin(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn started(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Answers 503 when a request takes longer than `limit`, unless it has
/// started a command: that one is answered with its result (for at most
/// [`COMMIT_GRACE`] more), never with a 503 for something that committed.
pub async fn time_limit(
    State(limit): State<Duration>,
    mut request: Request,
    next: Next,
) -> Response {
    let committing = Committing::default();
    request.extensions_mut().insert(committing.clone());
    let run = next.run(request);
    tokio::pin!(run);
    let too_slow = |after: Duration| {
        ApiError::new(
            ErrorCode::Unavailable,
            format!("the request took longer than {} s", after.as_secs()),
        )
        .with_retry_after(1)
        .into_response()
    };
    match tokio::time::timeout(limit, &mut run).await {
        Ok(response) => response,
        Err(_) if committing.started() => {
            tracing::warn!(limit = ?limit, "a command outlived the time limit; answering with its result");
            match tokio::time::timeout(COMMIT_GRACE, run).await {
                Ok(response) => response,
                Err(_) => too_slow(limit + COMMIT_GRACE),
            }
        }
        Err(_) => too_slow(limit),
    }
}

/// Counts requests and times them, by route (the matched pattern, not the
/// path, so ids do not explode the label set), method and status.
pub async fn metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::middleware::from_fn_with_state;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_request_over_the_time_limit_is_a_503_problem() {
        let app = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route("/fast", get(|| async { "ok" }))
            .layer(from_fn_with_state(Duration::from_millis(50), time_limit));
        let slow = app
            .clone()
            .oneshot(Request::get("/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(slow.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            slow.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let fast = app
            .oneshot(Request::get("/fast").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(fast.status(), axum::http::StatusCode::OK);
    }

    #[test]
    fn request_ids_from_clients_are_bounded_and_plain() {
        assert!(acceptable_request_id(
            "0193b2d4-5b7e-7c3a-9f00-1234567890ab"
        ));
        assert!(acceptable_request_id("req_1:a.b"));
        assert!(!acceptable_request_id(""));
        assert!(!acceptable_request_id(&"a".repeat(129)));
        assert!(!acceptable_request_id("with space"));
        assert!(!acceptable_request_id("line\nbreak"));
    }
}
