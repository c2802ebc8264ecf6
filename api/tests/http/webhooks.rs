//! The cases of the HTTP contract for a lender's webhook configuration.

use std::future::Future;
use std::time::Duration;

use proofline_api::ApiSettings;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, captured_logs};
use crate::webhook_support::{
    Mode, Receiver, lender, lender_with_webhook, local_settings, options, signature_holds, until,
    verifications,
};

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

/// A second PUT replaces the URL and rotates the secret in one command;
/// the new secret is shown once, and deliveries still pending go to the new
/// URL signed with the new secret.
pub async fn configuring_again_replaces_the_url_and_rotates_the_secret<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(local_settings()).await;
    let old = Receiver::start(Mode::Fail(503)).await;
    let (key, old_secret) = lender_with_webhook(&app, &old.url).await;
    let consumer = app.start_webhooks(options(&[300; 20], Duration::from_secs(5)));
    let ids = verifications(&app, &key, 2).await;
    until("a failed attempt at the old URL", || async {
        (old.requests().len() >= 2).then_some(())
    })
    .await;

    let new = Receiver::start(Mode::Accept).await;
    let replaced = app
        .call(
            Method::PUT,
            "/v1/lenders/me/webhook",
            Some(&key),
            Some(&json!({"url": new.url})),
            &[],
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    let new_secret = replaced.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret, "a new secret");
    assert_eq!(replaced.body["url"], new.url.as_str());
    let me = app.get("/v1/lenders/me", Some(&key)).await;
    assert_eq!(me.body["webhook"]["url"], new.url.as_str());
    assert_eq!(
        app.raw_secrets()
            .await
            .iter()
            .filter(|row| row.contains("webhook_secret"))
            .count(),
        1,
        "one sealed secret, replaced"
    );

    until("both pending deliveries at the new URL", || async {
        let got: std::collections::BTreeSet<String> =
            new.requests().into_iter().map(|r| r.id).collect();
        ids.iter().all(|id| got.contains(id)).then_some(())
    })
    .await;
    for request in new.requests() {
        assert!(signature_holds(&new_secret, &request), "{request:?}");
        assert!(!signature_holds(&old_secret, &request));
    }
    consumer.stop().await;
}
