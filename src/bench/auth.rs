//! `bench auth`: authentication once a key is cached, in process: the
//! cache itself, authentication as a request sees it, whole requests, and
//! the argon2 verifications they cost.

use std::time::Instant;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::Request;
use proofline_api::caller::Caller;
use proofline_api::router;
use tower::ServiceExt;

use super::{Latencies, Scratch, api_state};
use crate::config::Config;

/// `bench auth`: what authentication costs once a key is cached.
pub async fn auth(config: &Config, requests: u64) -> anyhow::Result<()> {
    anyhow::ensure!(requests >= 10, "--requests must be at least 10");
    Scratch::run(config, false, async |scratch| run(scratch, requests).await).await
}

async fn run(scratch: &Scratch, requests: u64) -> anyhow::Result<()> {
    let store = scratch.store("log").await?;
    let (state, operator) = api_state(store.clone()).await?;
    let app = router(state.clone());
    let before = state.auth.argon2_verifications();

    let registered = app
        .clone()
        .oneshot(
            Request::post("/v1/lenders")
                .header("authorization", format!("Bearer {operator}"))
                .header("content-type", "application/json")
                .body(Body::from(
                    r#"{"name":"Bench Lending","contact_email":"bench@lender.example"}"#,
                ))?,
        )
        .await?;
    anyhow::ensure!(
        registered.status() == 201,
        "registering the bench lender answered {}",
        registered.status()
    );
    let body = axum::body::to_bytes(registered.into_body(), 1 << 16).await?;
    let key = serde_json::from_slice::<serde_json::Value>(&body)?["api_key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let after_registration = state.auth.argon2_verifications();
    super::report::line(format!(
        "bench auth: {requests} authentications with one key ({})",
        scratch.describe()
    ));

    let me = || {
        Request::get("/v1/lenders/me")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
    };
    // The first request with the key pays the one argon2 verification.
    let first = Instant::now();
    let answer = app.clone().oneshot(me()?).await?;
    anyhow::ensure!(
        answer.status() == 200,
        "GET /v1/lenders/me answered {}",
        answer.status()
    );
    let first = first.elapsed();

    // The cache itself.
    let now = proofline_domain::log::Timestamp::from_datetime(chrono::Utc::now());
    let started = Instant::now();
    for _ in 0..requests {
        let hit = state.auth.cached(&key, now);
        anyhow::ensure!(hit.is_some(), "the key fell out of the cache");
    }
    let cache = started.elapsed().as_secs_f64() / requests as f64;

    // Everything a request does to know its caller: read the header, hash
    // the key, look it up, check expiry, spend from the key's rate budget.
    let (mut parts, ()) = me()?.map(|_| ()).into_parts();
    let started = Instant::now();
    for _ in 0..requests {
        let caller = Caller::from_request_parts(&mut parts, &state).await;
        anyhow::ensure!(caller.is_ok(), "authentication failed in the loop");
    }
    let extraction = started.elapsed().as_secs_f64() / requests as f64;

    // Whole requests, in process: routing, middleware, auth, the handler
    // (which reads the lender's stream), the JSON answer.
    let whole = (requests / 10).max(10);
    let mut latencies = Vec::with_capacity(whole as usize);
    for _ in 0..whole {
        let sent = Instant::now();
        let answer = app.clone().oneshot(me()?).await?;
        let _ = axum::body::to_bytes(answer.into_body(), 1 << 16).await?;
        latencies.push(sent.elapsed());
    }
    let latencies = Latencies::new(latencies);
    let verifications = state.auth.argon2_verifications() - after_registration;
    super::report::line(format!(
        "first request with the key (one argon2 verification): {:.1} ms",
        first.as_secs_f64() * 1e3
    ));
    super::report::line(format!(
        "auth cache hit (SHA-256 of the key, lookup, expiry): {:.2} µs",
        cache * 1e6
    ));
    super::report::line(format!(
        "auth as a request sees it (header, cache, rate budget): {:.2} µs",
        extraction * 1e6
    ));
    super::report::line(format!(
        "GET /v1/lenders/me in process: p50 {:.1} µs, p99 {:.1} µs over {whole} requests; auth is {:.1}% of the median",
        latencies.us(0.5),
        latencies.us(0.99),
        100.0 * extraction * 1e6 / latencies.us(0.5)
    ));
    super::report::line(format!(
        "argon2 verifications: {verifications} for {} requests with one key ({} in all, registration included)",
        requests * 2 + whole + 1,
        state.auth.argon2_verifications() - before
    ));
    super::report::set("store", scratch.kind());
    super::report::set("first_request_ms", first.as_secs_f64() * 1e3);
    super::report::set("cache_hit_us", cache * 1e6);
    super::report::set("auth_in_request_us", extraction * 1e6);
    super::report::set("request_p50_us", latencies.us(0.5));
    super::report::set("request_p99_us", latencies.us(0.99));
    super::report::set("argon2_verifications", verifications);
    store.close().await;
    Ok(())
}
