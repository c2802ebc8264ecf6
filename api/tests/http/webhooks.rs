//! The cases of the HTTP contract for a lender's webhook configuration.

use std::future::Future;

use proofline_api::ApiSettings;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, captured_logs};

async fn lender(app: &TestApp) -> String {
    app.register_lender(&format!("w-{}@acme.example", uuid::Uuid::now_v7().simple()))
        .await
        .1
}

pub async fn webhooks_are_vetted_against_ssrf_and_their_secret_is_shown_once<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    // Nothing allowed: every internal address is refused, also behind a name.
    let strict = open(ApiSettings::default()).await;
    let key = lender(&strict).await;
    for url in [
        "http://169.254.169.254/",
        "http://10.0.0.1/",
        "http://[::1]/",
        "http://localhost:9/hook",
        "https://localhost:9/hook",
    ] {
        let answer = strict
            .call(
                Method::PUT,
                "/v1/lenders/me/webhook",
                Some(&key),
                Some(&json!({"url": url})),
                &[],
            )
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (422, "VALIDATION_FAILED"),
            "{url}: {}",
            answer.text
        );
    }
    let operator = strict
        .call(
            Method::PUT,
            "/v1/lenders/me/webhook",
            Some(&strict.operator_key),
            Some(&json!({"url": "https://hooks.acme.example/"})),
            &[],
        )
        .await;
    assert_eq!(operator.status, 403);
    assert!(
        strict
            .all_events()
            .await
            .iter()
            .all(|e| e.event_type != "WebhookConfigured"),
        "nothing refused was recorded"
    );

    // Loopback allowed by the operator (as for a local receiver).
    let app = open(ApiSettings {
        webhook_allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
        ..ApiSettings::default()
    })
    .await;
    let key = lender(&app).await;
    for url in [
        "http://169.254.169.254/",
        "http://10.0.0.1/",
        "http://[::1]/",
    ] {
        let answer = app
            .call(
                Method::PUT,
                "/v1/lenders/me/webhook",
                Some(&key),
                Some(&json!({"url": url})),
                &[],
            )
            .await;
        assert_eq!(answer.status, 422, "{url} stays refused: {}", answer.text);
    }
    let configured = app
        .call(
            Method::PUT,
            "/v1/lenders/me/webhook",
            Some(&key),
            Some(&json!({"url": "http://localhost:9/hook"})),
            &[],
        )
        .await;
    assert_eq!(configured.status, 200, "{}", configured.text);
    let secret = configured.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 40);
    assert!(configured.body["position"].is_u64());
    let me = app.get("/v1/lenders/me", Some(&key)).await;
    assert_eq!(me.body["webhook"]["url"], "http://localhost:9/hook");
    assert!(!me.text.contains(&secret), "shown once");

    // The secret is in no event, no secrets row in the clear, no log line.
    let events = serde_json::to_string(&app.all_events().await).unwrap();
    assert!(events.contains("WebhookConfigured"));
    let secret_key_part = secret.trim_start_matches("whsec_");
    assert!(!events.contains(secret_key_part));
    assert!(!app.raw_secrets().await.join("\n").contains(secret_key_part));
    assert!(!captured_logs().contains(secret_key_part));

    let removed = app
        .call(
            Method::DELETE,
            "/v1/lenders/me/webhook",
            Some(&key),
            None,
            &[],
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    assert_eq!(
        app.get("/v1/lenders/me", Some(&key)).await.body["webhook"],
        Value::Null
    );
    let again = app
        .call(
            Method::DELETE,
            "/v1/lenders/me/webhook",
            Some(&key),
            None,
            &[],
        )
        .await;
    assert_eq!((again.status, again.code()), (404, "NOT_FOUND"));
    assert!(
        app.raw_secrets()
            .await
            .iter()
            .all(|row| !row.contains("webhook_secret")),
        "the sealed secret is forgotten"
    );
}
