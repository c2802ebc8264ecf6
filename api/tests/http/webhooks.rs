//! The cases of the HTTP contract for a lender's webhook configuration.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proofline_api::ApiSettings;
use proofline_projections::webhooks::ConsumerOptions;
use proofline_projections::webhooks::client::ClientOptions;
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

// ---------------------------------------------------------------------------
// Deliveries, against real local receivers.

/// What a receiver does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    Fail(u16),
    /// Never answers.
    Hang,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    pub at: std::time::SystemTime,
}

/// A real HTTP receiver on 127.0.0.1.
pub struct Receiver {
    pub url: String,
    pub mode: Arc<Mutex<Mode>>,
    /// Every request, answered or not.
    pub received: Arc<Mutex<Vec<Received>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Receiver {
    pub async fn start(mode: Mode) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, mode, Arc::new(Mutex::new(Vec::new())))
    }

    /// A URL whose port nothing listens on (yet): connections are refused.
    pub async fn down() -> (String, u16) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        (format!("http://127.0.0.1:{port}/hook"), port)
    }

    /// Starts listening on `port` (the receiver comes up).
    pub async fn up_on(port: u16, mode: Mode) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        Self::serve(listener, mode, Arc::new(Mutex::new(Vec::new())))
    }

    fn serve(
        listener: tokio::net::TcpListener,
        mode: Mode,
        received: Arc<Mutex<Vec<Received>>>,
    ) -> Receiver {
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(Mutex::new(mode));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (m, r) = (mode.clone(), received.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let (mode, received) = (m.clone(), r.clone());
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    received.lock().unwrap().push(Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body,
                        at: std::time::SystemTime::now(),
                    });
                    let mode = *mode.lock().unwrap();
                    match mode {
                        Mode::Accept => axum::http::StatusCode::NO_CONTENT,
                        Mode::Fail(code) => axum::http::StatusCode::from_u16(code).unwrap(),
                        Mode::Hang => {
                            std::future::pending::<()>().await;
                            unreachable!()
                        }
                    }
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            mode,
            received,
            stop: Some(stop),
        }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The Standard Webhooks check, written here from the specification (not
/// with the service's signer): HMAC-SHA256 over `id.timestamp.body` with the
/// base64-decoded part of the secret after `whsec_`, base64, prefixed `v1,`.
fn signature_holds(secret: &str, received: &Received) -> bool {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", received.id, received.timestamp, received.body).as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    received
        .signature
        .split(' ')
        .any(|s| s == format!("v1,{expected}"))
}

fn local_settings() -> ApiSettings {
    ApiSettings {
        webhook_allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
        ..ApiSettings::default()
    }
}

fn options(schedule_ms: &[u64], timeout: Duration) -> ConsumerOptions {
    ConsumerOptions {
        client: ClientOptions {
            connect_timeout: Duration::from_secs(2),
            timeout,
            allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
        },
        schedule: schedule_ms
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect(),
        per_lender: 2,
        ..ConsumerOptions::default()
    }
}

/// A lender with its webhook at `url`: its key and the secret.
async fn lender_with_webhook(app: &TestApp, url: &str) -> (String, String) {
    let key = lender(app).await;
    let configured = app
        .call(
            Method::PUT,
            "/v1/lenders/me/webhook",
            Some(&key),
            Some(&json!({"url": url})),
            &[],
        )
        .await;
    assert_eq!(configured.status, 200, "{}", configured.text);
    let secret = configured.body["secret"].as_str().unwrap().to_owned();
    (key, secret)
}

/// Records `n` (rejected) verifications for the lender; their event ids.
async fn verifications(app: &TestApp, key: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let nonce = format!("n-{}", uuid::Uuid::now_v7().simple());
        let answer = app
            .post(
                "/v1/verifications",
                Some(key),
                &json!({"presentation": "not an sd-jwt", "nonce": nonce}),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.text);
        let position = answer.body["position"].as_u64().unwrap();
        let event = app
            .store
            .read_all(position - 1, 1)
            .await
            .unwrap()
            .pop()
            .unwrap();
        ids.push(event.event_id.to_string());
    }
    ids
}

/// Polls `check` until it gives a value (30 s at most).
async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn delivery_events(app: &TestApp, event_type: &str) -> Vec<proofline_domain::log::Envelope> {
    app.all_events()
        .await
        .into_iter()
        .filter(|e| e.event_type == event_type)
        .collect()
}

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
