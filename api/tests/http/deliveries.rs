//! The cases of the HTTP contract for webhook deliveries, against real local
//! receivers: signing, retries, timeouts, the retry budget, manual retries
//! and the address checked again at each delivery.

use std::future::Future;
use std::time::Duration;

use proofline_api::ApiSettings;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, captured_logs};
use crate::webhook_support::{
    Mode, Received, Receiver, delivery_events, lender, lender_with_webhook, local_settings,
    options, signature_holds, until, verifications,
};

pub async fn deliveries_are_signed_and_survive_a_receiver_that_is_down<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(local_settings()).await;
    let (url, port) = Receiver::down().await;
    let (key, secret) = lender_with_webhook(&app, &url).await;
    let consumer = app.start_webhooks(options(
        &[150, 150, 150, 150, 150, 150, 150, 150],
        Duration::from_secs(5),
    ));
    let ids = verifications(&app, &key, 5).await;

    // Down: every delivery fails at least once (connection refused).
    until("a failed attempt of each delivery", || async {
        let failed = delivery_events(&app, "WebhookDeliveryAttemptFailed").await;
        ids.iter()
            .all(|id| {
                failed
                    .iter()
                    .any(|e| e.stream_id.as_str() == format!("webhook-{id}"))
            })
            .then_some(())
    })
    .await;
    let listed = until("the read model to show each failed attempt", || async {
        let listed = app
            .get("/v1/webhooks/deliveries?status=pending", Some(&key))
            .await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        let items = listed.body["items"].as_array().cloned().unwrap_or_default();
        (items.len() == 5 && items.iter().all(|i| i["attempts"].as_u64() >= Some(1)))
            .then_some(items)
    })
    .await;
    assert!(
        listed.iter().all(|i| i["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("connect"))),
        "{listed:?}"
    );

    // Up: every delivery arrives, once accepted, with its event's id.
    let receiver = Receiver::up_on(port, Mode::Accept).await;
    until("every delivery", || async {
        let got: std::collections::BTreeSet<String> =
            receiver.requests().into_iter().map(|r| r.id).collect();
        ids.iter().all(|id| got.contains(id)).then_some(())
    })
    .await;
    for request in receiver.requests() {
        assert!(ids.contains(&request.id), "only this lender's events");
        assert!(
            signature_holds(&secret, &request),
            "the signature verifies: {request:?}"
        );
        let body: Value = serde_json::from_str(&request.body).unwrap();
        assert_eq!(body["id"], request.id.as_str());
        assert_eq!(body["type"], "verification.rejected");
        assert_eq!(body["data"]["failed_step"], "DECODE");
        let age = chrono::Utc::now().timestamp() - request.timestamp.parse::<i64>().unwrap();
        assert!((0..=300).contains(&age), "a current timestamp");
    }
    // The retries were of the same webhook-id: the failed attempts are on
    // the stream named after the id that finally arrived.
    let delivered = until("WebhookDelivered of each", || async {
        let delivered = delivery_events(&app, "WebhookDelivered").await;
        (delivered.len() >= ids.len()).then_some(delivered)
    })
    .await;
    for event in &delivered {
        assert!(
            event.data["attempt"].as_u64() > Some(1),
            "delivered after a retry"
        );
    }
    let page = until("the read model to show them delivered", || async {
        let page = app
            .get("/v1/webhooks/deliveries?status=delivered", Some(&key))
            .await;
        (page.body["items"].as_array().map(Vec::len) == Some(5)).then_some(page)
    })
    .await;
    assert!(page.body["items"][0]["last_status"] == 204, "{}", page.text);

    // The secret is in no event and no log line.
    let part = secret.trim_start_matches("whsec_");
    assert!(
        !serde_json::to_string(&app.all_events().await)
            .unwrap()
            .contains(part)
    );
    assert!(!captured_logs().contains(part));

    // Another lender sees none of these, and cannot retry them.
    let other = lender(&app).await;
    let theirs = app.get("/v1/webhooks/deliveries", Some(&other)).await;
    assert_eq!(theirs.body["items"], json!([]));
    let retry = app
        .post(
            &format!("/v1/webhooks/deliveries/{}/retry", ids[0]),
            Some(&other),
            &json!({}),
        )
        .await;
    assert_eq!((retry.status, retry.code()), (404, "NOT_FOUND"));
    consumer.stop().await;
}

pub async fn a_hanging_receiver_is_cut_at_the_timeout_and_delays_no_other_lender<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(local_settings()).await;
    let hanging = Receiver::start(Mode::Hang).await;
    let healthy = Receiver::start(Mode::Accept).await;
    let (slow_key, _) = lender_with_webhook(&app, &hanging.url).await;
    let (key, _) = lender_with_webhook(&app, &healthy.url).await;
    let timeout = Duration::from_secs(4);
    let consumer = app.start_webhooks(options(&[60_000], timeout));

    let latency = |requests: &[Received], ids: &[String], sent: std::time::SystemTime| {
        requests
            .iter()
            .filter(|r| ids.contains(&r.id))
            .map(|r| r.at.duration_since(sent).unwrap_or_default())
            .max()
            .unwrap_or_default()
    };
    // Alone: the healthy lender's latency.
    let sent = std::time::SystemTime::now();
    let alone = verifications(&app, &key, 10).await;
    until("the healthy lender's deliveries", || async {
        (healthy.requests().len() >= 10).then_some(())
    })
    .await;
    let alone_latency = latency(&healthy.requests(), &alone, sent);

    // The slow lender's receiver holds its lane.
    let started = std::time::SystemTime::now();
    verifications(&app, &slow_key, 10).await;
    until("the hanging receiver to hold two requests", || async {
        (hanging.requests().len() >= 2).then_some(())
    })
    .await;
    let sent = std::time::SystemTime::now();
    let busy = verifications(&app, &key, 10).await;
    until("the healthy lender's deliveries meanwhile", || async {
        (healthy.requests().len() >= 20).then_some(())
    })
    .await;
    let busy_latency = latency(&healthy.requests(), &busy, sent);
    let cut = delivery_events(&app, "WebhookDeliveryAttemptFailed").await;
    assert!(
        cut.is_empty() || started.elapsed().unwrap() >= timeout,
        "the healthy lender was served while the hanging requests were still open"
    );
    println!(
        "healthy lender's slowest delivery: alone {alone_latency:?}, beside a hanging receiver {busy_latency:?}"
    );
    assert!(
        busy_latency < timeout,
        "the healthy lender never waits for the hanging lender's timeout ({busy_latency:?})"
    );

    // The hanging requests are cut at the timeout and recorded as failed
    // attempts, while the receiver still holds them open.
    let cut = until("the hanging attempts to be cut", || async {
        let cut = delivery_events(&app, "WebhookDeliveryAttemptFailed").await;
        (!cut.is_empty()).then_some(cut)
    })
    .await;
    for event in &cut {
        let error = event.data["error"].as_str().unwrap();
        assert!(error.contains("timed out"), "{error}");
    }
    assert!(
        started.elapsed().unwrap() >= timeout,
        "not before the timeout"
    );
    consumer.stop().await;
}

pub async fn a_spent_retry_budget_is_recorded_and_a_manual_retry_delivers<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(local_settings()).await;
    let receiver = Receiver::start(Mode::Fail(500)).await;
    let (key, secret) = lender_with_webhook(&app, &receiver.url).await;
    let consumer = app.start_webhooks(options(&[100, 100], Duration::from_secs(5)));
    let ids = verifications(&app, &key, 1).await;
    let id = &ids[0];

    // Three attempts (the first and two retries), then WebhookDeliveryFailed.
    let failed = until("WebhookDeliveryFailed", || async {
        delivery_events(&app, "WebhookDeliveryFailed").await.pop()
    })
    .await;
    assert_eq!(failed.stream_id.as_str(), format!("webhook-{id}"));
    assert_eq!(failed.data["attempt"], 3);
    assert_eq!(failed.data["status"], 500);
    assert_eq!(receiver.requests().len(), 3);
    assert!(
        receiver.requests().iter().all(|r| &r.id == id),
        "the same webhook-id each time"
    );
    let item = until("the read model to show it failed", || async {
        let page = app
            .get("/v1/webhooks/deliveries?status=failed", Some(&key))
            .await;
        page.body["items"]
            .as_array()
            .and_then(|i| i.first().cloned())
    })
    .await;
    assert_eq!(item["delivery_id"], id.as_str());
    assert_eq!(item["attempts"], 3);
    assert_eq!(item["last_status"], 500);
    assert!(item["last_error"].as_str().unwrap().contains("500"));
    assert_eq!(item["event_type"], "verification.rejected");
    // The operator sees the failure in the lender's health; a lender may
    // not look.
    let health = app
        .get("/v1/webhooks/health", Some(&app.operator_key))
        .await;
    assert_eq!(health.status, 200, "{}", health.text);
    let mine = app.get("/v1/lenders/me", Some(&key)).await;
    let row = health.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["lender_id"] == mine.body["lender_id"])
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (row["failed"].clone(), row["delivered"].clone()),
        (1.into(), 0.into()),
        "{row}"
    );
    assert!(row["last_failed_at"].is_string(), "{row}");
    assert_eq!(app.get("/v1/webhooks/health", Some(&key)).await.status, 403);

    // A manual retry delivers it once the receiver is fixed.
    receiver.set(Mode::Accept);
    let retried = app
        .call(
            Method::POST,
            &format!("/v1/webhooks/deliveries/{id}/retry"),
            Some(&key),
            None,
            &[("idempotency-key", "retry-1")],
        )
        .await;
    assert_eq!(retried.status, 202, "{}", retried.text);
    assert_eq!(retried.body["status"], "pending");
    let again = app
        .call(
            Method::POST,
            &format!("/v1/webhooks/deliveries/{id}/retry"),
            Some(&key),
            None,
            &[("idempotency-key", "retry-1")],
        )
        .await;
    assert_eq!(again.status, 202, "the same answer: {}", again.text);
    assert_eq!(again.body["position"], retried.body["position"]);
    let delivered = until("the redelivery", || async {
        delivery_events(&app, "WebhookDelivered").await.pop()
    })
    .await;
    assert_eq!(delivered.data["attempt"], 4);
    let last = receiver.requests().pop().unwrap();
    assert_eq!(&last.id, id);
    assert!(signature_holds(&secret, &last));
    let unknown = app
        .post(
            &format!("/v1/webhooks/deliveries/{}/retry", uuid::Uuid::now_v7()),
            Some(&key),
            &json!({}),
        )
        .await;
    assert_eq!(unknown.status, 404);
    let bad_status = app
        .get("/v1/webhooks/deliveries?status=lost", Some(&key))
        .await;
    assert_eq!(
        (bad_status.status, bad_status.code()),
        (422, "VALIDATION_FAILED")
    );
    consumer.stop().await;
}

pub async fn the_address_is_checked_again_at_each_delivery<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    // Configured while loopback was allowed; the consumer allows nothing,
    // as after a DNS change or a tightened policy.
    let app = open(local_settings()).await;
    let receiver = Receiver::start(Mode::Accept).await;
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    let (named, _) = lender_with_webhook(&app, &by_name).await;
    let (literal, _) = lender_with_webhook(&app, &receiver.url).await;
    let mut strict = options(&[], Duration::from_secs(5));
    strict.client.allowed_networks.clear();
    let consumer = app.start_webhooks(strict);
    verifications(&app, &named, 1).await;
    verifications(&app, &literal, 1).await;
    let failed = until("both deliveries to fail", || async {
        let failed = delivery_events(&app, "WebhookDeliveryFailed").await;
        (failed.len() == 2).then_some(failed)
    })
    .await;
    for event in failed {
        let error = event.data["error"].as_str().unwrap();
        assert!(error.contains("loopback"), "{error}");
    }
    assert!(receiver.requests().is_empty(), "nothing was sent");
    consumer.stop().await;
}

pub async fn a_removed_webhook_fails_its_pending_deliveries<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(local_settings()).await;
    let receiver = Receiver::start(Mode::Accept).await;
    let (key, _) = lender_with_webhook(&app, &receiver.url).await;
    // Recorded while no consumer runs, then the webhook goes away.
    let ids = verifications(&app, &key, 2).await;
    until("the deliveries to be pending", || async {
        let page = app
            .get("/v1/webhooks/deliveries?status=pending", Some(&key))
            .await;
        (page.body["items"].as_array().map(Vec::len) == Some(2)).then_some(())
    })
    .await;
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
    let consumer = app.start_webhooks(options(&[100], Duration::from_secs(5)));
    let failed = until("both to fail", || async {
        let failed = delivery_events(&app, "WebhookDeliveryFailed").await;
        (failed.len() == 2).then_some(failed)
    })
    .await;
    for event in &failed {
        assert!(
            ids.iter()
                .any(|id| event.stream_id.as_str() == format!("webhook-{id}"))
        );
        assert!(
            event.data["error"]
                .as_str()
                .unwrap()
                .contains("no webhook configured"),
            "{}",
            event.data
        );
        assert_eq!(event.data["attempt"], 1, "not retried");
    }
    assert!(receiver.requests().is_empty(), "nothing was sent");
    // A redelivery without a webhook fails again, it is not sent.
    let retried = app
        .post(
            &format!("/v1/webhooks/deliveries/{}/retry", ids[0]),
            Some(&key),
            &json!({}),
        )
        .await;
    assert_eq!(retried.status, 202, "{}", retried.text);
    until("the redelivery to fail", || async {
        (delivery_events(&app, "WebhookDeliveryFailed").await.len() == 3).then_some(())
    })
    .await;
    assert!(receiver.requests().is_empty());
    consumer.stop().await;
}
