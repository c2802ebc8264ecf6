//! What the webhook cases share: real local receivers (deliveries are made
//! against them), the Standard Webhooks signature check, consumer settings,
//! and helpers that configure a lender's webhook, record verifications and
//! wait for deliveries.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proofline_api::ApiSettings;
use proofline_projections::webhooks::ConsumerOptions;
use proofline_projections::webhooks::client::ClientOptions;
use reqwest::Method;
use serde_json::json;

use crate::support::TestApp;

pub(crate) async fn lender(app: &TestApp) -> String {
    app.register_lender(&format!("w-{}@acme.example", uuid::Uuid::now_v7().simple()))
        .await
        .1
}

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
pub(crate) fn signature_holds(secret: &str, received: &Received) -> bool {
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

pub(crate) fn local_settings() -> ApiSettings {
    ApiSettings {
        webhook_allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
        ..ApiSettings::default()
    }
}

pub(crate) fn options(schedule_ms: &[u64], timeout: Duration) -> ConsumerOptions {
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
pub(crate) async fn lender_with_webhook(app: &TestApp, url: &str) -> (String, String) {
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
pub(crate) async fn verifications(app: &TestApp, key: &str, n: usize) -> Vec<String> {
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
pub(crate) async fn until<T, F, Fut>(what: &str, mut check: F) -> T
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

pub(crate) async fn delivery_events(
    app: &TestApp,
    event_type: &str,
) -> Vec<proofline_domain::log::Envelope> {
    app.all_events()
        .await
        .into_iter()
        .filter(|e| e.event_type == event_type)
        .collect()
}
