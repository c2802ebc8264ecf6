//! The cases of the HTTP contract for what every request gets: its request
//! id (answered and recorded on its events), the security headers, and CORS
//! (off unless configured).

use std::future::Future;

use proofline_api::ApiSettings;
use reqwest::Method;
use serde_json::json;

use crate::cases::{defaults, email};
use crate::support::TestApp;

pub async fn request_ids_reach_events_and_headers_are_set<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(defaults()).await;
    let body = json!({"name": "Acme Lending", "contact_email": email()});
    let answer = app
        .call(
            Method::POST,
            "/v1/lenders",
            Some(&app.operator_key),
            Some(&body),
            &[("x-request-id", "req-42.test")],
        )
        .await;
    assert_eq!(answer.status, 201);
    assert_eq!(answer.headers["x-request-id"], "req-42.test");
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(answer.headers[name], value, "{name}");
    }
    assert!(answer.headers.contains_key("content-security-policy"));
    assert!(
        !answer.headers.contains_key("access-control-allow-origin"),
        "CORS is off by default"
    );
    let events = app.all_events().await;
    let registered = events
        .iter()
        .find(|e| e.event_type == "LenderRegistered")
        .unwrap();
    assert_eq!(
        registered.metadata.correlation_id.as_deref(),
        Some("req-42.test")
    );
    assert_eq!(registered.metadata.actor.as_deref(), Some("operator"));
    assert_eq!(
        answer.body["position"].as_u64(),
        Some(events.last().unwrap().position)
    );
    // A request without an id, or with a bad one, gets a fresh one.
    let fresh = app
        .call(
            Method::GET,
            "/health/live",
            None,
            None,
            &[("x-request-id", "bad id\twith tab")],
        )
        .await;
    let id = fresh.headers["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

pub async fn cors_is_off_unless_configured<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let preflight = |app: &TestApp, origin: &'static str| {
        app.client
            .request(Method::OPTIONS, format!("{}/v1/lenders/me", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let closed = open(defaults()).await;
    let answer = preflight(&closed, "https://app.example").await.unwrap();
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let open_app = open(ApiSettings {
        cors_allowed_origins: vec!["https://app.example".into()],
        ..defaults()
    })
    .await;
    let allowed = preflight(&open_app, "https://app.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = preflight(&open_app, "https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}
