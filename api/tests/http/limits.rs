//! What keeps one caller from costing everyone: failed-authentication
//! budgets, the per-key request rate, and argon2 paid once per key.

use std::future::Future;

use proofline_api::ApiSettings;

use crate::support::TestApp;

use crate::cases::{defaults, email};

pub async fn failed_auth_is_rate_limited_per_address<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(defaults()).await;
    let (_, key) = app.register_lender(&email()).await;
    assert_eq!(
        app.get("/v1/lenders/me", Some(&key)).await.status,
        200,
        "cached now"
    );
    let mut first_429 = None;
    // After the budget is spent, the limiter refills one failure every 2 s
    // (30 a minute): a slow machine may see that many 401s again, no more.
    let mut since_429: Option<std::time::Instant> = None;
    let mut refilled = 0u64;
    for attempt in 0..200 {
        let answer = app
            .get(
                "/v1/lenders/me",
                Some("pl_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            )
            .await;
        match answer.status {
            401 => {
                if let Some(since) = since_429 {
                    refilled += 1;
                    let allowed = since.elapsed().as_secs() / 2 + 1;
                    assert!(
                        refilled <= allowed,
                        "{refilled} 401s after a 429 at attempt {attempt}, within {:?}",
                        since.elapsed()
                    );
                }
            }
            429 => {
                assert_eq!(answer.code(), "RATE_LIMITED");
                let retry: u64 = answer.headers["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(retry >= 1);
                first_429.get_or_insert(attempt);
                since_429.get_or_insert_with(std::time::Instant::now);
            }
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    let first = first_429.expect("200 failures from one address reach 429");
    assert!(
        first <= 31,
        "the budget is 30 a minute; first 429 at {first}"
    );
    // A caller whose key is already known is not held back.
    assert_eq!(app.get("/v1/lenders/me", Some(&key)).await.status, 200);
    // Nor is a request with no key or a key of no Proofline shape: it costs
    // nothing to refuse, and is told so (401), not to wait.
    assert_eq!(app.get("/v1/lenders/me", None).await.status, 401);
    assert_eq!(
        app.get("/v1/lenders/me", Some("not-a-key")).await.status,
        401
    );
}

pub async fn each_key_has_a_request_budget<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(ApiSettings {
        requests_per_key_per_second: 5,
        ..defaults()
    })
    .await;
    let (_, key) = app.register_lender(&email()).await;
    let (_, other) = app.register_lender(&email()).await;
    let mut limited = None;
    for _ in 0..40 {
        let answer = app.get("/v1/lenders/me", Some(&key)).await;
        if answer.status == 429 {
            limited = Some(answer);
            break;
        }
        assert_eq!(answer.status, 200);
    }
    let limited = limited.expect("40 rapid requests exceed 5/s with a burst of 10");
    assert_eq!(limited.code(), "RATE_LIMITED");
    assert!(limited.headers.contains_key("retry-after"));
    assert_eq!(
        app.get("/v1/lenders/me", Some(&other)).await.status,
        200,
        "other keys keep their budget"
    );
}

/// Steady-state authentication is the cache: N requests with one key cost
/// one argon2 verification.
pub async fn n_requests_with_one_key_cost_one_argon2_verification<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(ApiSettings {
        requests_per_key_per_second: 0,
        ..defaults()
    })
    .await;
    let (_, key) = app.register_lender(&email()).await;
    let before = app.state.auth.argon2_verifications();
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (app, key) = (app.clone(), key.clone());
            tokio::spawn(async move {
                for _ in 0..25 {
                    assert_eq!(app.get("/v1/lenders/me", Some(&key)).await.status, 200);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        app.state.auth.argon2_verifications() - before,
        1,
        "200 requests, 8 at a time, one verification"
    );
}
