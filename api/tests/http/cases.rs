//! The cases of the HTTP contract for lenders, auditors and keys.

use std::future::Future;
use std::time::{Duration, Instant};

use proofline_api::ApiSettings;
use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, captured_logs};

fn defaults() -> ApiSettings {
    ApiSettings::default()
}

fn email() -> String {
    format!("risk-{}@acme.example", uuid::Uuid::now_v7().simple())
}

/// Bounds waits for something that must happen by a deadline.
const PATIENCE: Duration = Duration::from_secs(20);

pub async fn key_lifecycle_register_rotate_grace_revoke<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(defaults()).await;
    let (lender_id, first) = app.register_lender(&email()).await;

    // The key works at once: auth reads the write side, not a projection.
    let me = app.get("/v1/lenders/me", Some(&first)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["lender_id"], lender_id.as_str());
    assert_eq!(me.body["status"], "active");
    assert_eq!(me.body["keys"].as_array().unwrap().len(), 1);
    assert_eq!(
        me.body["audience"],
        format!("urn:proofline:lender:{lender_id}")
    );

    // Rotate with a 1 s grace: both keys work, then only the new one.
    let rotated_at = Instant::now();
    let rotated = app
        .post(
            "/v1/lenders/me/api-keys/rotate",
            Some(&first),
            &json!({"grace_period_seconds": 1}),
        )
        .await;
    assert_eq!(rotated.status, 201, "{}", rotated.text);
    let second = rotated.body["api_key"].as_str().unwrap().to_owned();
    assert!(rotated.body["previous_key_valid_until"].is_string());
    assert!(rotated.body["position"].as_u64().unwrap() > 0);
    assert_ne!(second, first);
    let both = app.get("/v1/lenders/me", Some(&second)).await;
    assert_eq!(both.status, 200);
    let keys = both.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys.iter().filter(|k| k["current"] == true).count(), 1);

    // The old key works until its grace ends, and only then is refused.
    let refused_after = loop {
        let answer = app.get("/v1/lenders/me", Some(&first)).await;
        if answer.status == 401 {
            assert_eq!(answer.code(), "BAD_CREDENTIALS");
            break rotated_at.elapsed();
        }
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert!(
            rotated_at.elapsed() < PATIENCE,
            "the old key was never refused"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        refused_after >= Duration::from_millis(900),
        "refused after {refused_after:?}, before its grace ended"
    );
    assert_eq!(app.get("/v1/lenders/me", Some(&second)).await.status, 200);

    // The old key may not rotate any more; the new one may. Revoke then ends
    // the grace of the key it replaced, at once.
    let third_answer = app
        .post("/v1/lenders/me/api-keys/rotate", Some(&second), &json!({}))
        .await;
    assert_eq!(third_answer.status, 201, "{}", third_answer.text);
    let third = third_answer.body["api_key"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/v1/lenders/me", Some(&second)).await.status,
        200,
        "default grace is a day"
    );
    let second_prefix = &second[3..19];
    let revoked = app
        .call(
            Method::DELETE,
            &format!("/v1/lenders/me/api-keys/{second_prefix}"),
            Some(&third),
            None,
            &[],
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(app.get("/v1/lenders/me", Some(&second)).await.status, 401);
    assert_eq!(app.get("/v1/lenders/me", Some(&third)).await.status, 200);
    // The current key cannot be revoked; an unknown one is not found.
    let third_prefix = &third[3..19];
    let current = app
        .call(
            Method::DELETE,
            &format!("/v1/lenders/me/api-keys/{third_prefix}"),
            Some(&third),
            None,
            &[],
        )
        .await;
    assert_eq!((current.status, current.code()), (409, "CONFLICT"));
    let unknown = app
        .call(
            Method::DELETE,
            "/v1/lenders/me/api-keys/0000000000000000",
            Some(&third),
            None,
            &[],
        )
        .await;
    assert_eq!((unknown.status, unknown.code()), (404, "NOT_FOUND"));
    // Grace periods are bounded.
    let too_long = app
        .post(
            "/v1/lenders/me/api-keys/rotate",
            Some(&third),
            &json!({"grace_period_seconds": 604_801}),
        )
        .await;
    assert_eq!(
        (too_long.status, too_long.code()),
        (422, "VALIDATION_FAILED")
    );
}

pub async fn deactivation_refuses_the_lenders_keys<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(defaults()).await;
    let (lender_id, key) = app.register_lender(&email()).await;
    assert_eq!(app.get("/v1/lenders/me", Some(&key)).await.status, 200);
    let deactivated = app
        .post(
            &format!("/v1/lenders/{lender_id}/deactivate"),
            Some(&app.operator_key),
            &json!({}),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.text);
    assert_eq!(deactivated.body["status"], "deactivated");
    let refused = app.get("/v1/lenders/me", Some(&key)).await;
    assert_eq!((refused.status, refused.code()), (401, "BAD_CREDENTIALS"));
    let again = app
        .post(
            &format!("/v1/lenders/{lender_id}/deactivate"),
            Some(&app.operator_key),
            &json!({}),
        )
        .await;
    assert_eq!((again.status, again.code()), (409, "CONFLICT"));
    let reactivated = app
        .post(
            &format!("/v1/lenders/{lender_id}/reactivate"),
            Some(&app.operator_key),
            &json!({}),
        )
        .await;
    assert_eq!(reactivated.status, 200, "{}", reactivated.text);
    assert_eq!(app.get("/v1/lenders/me", Some(&key)).await.status, 200);
    let unknown = app
        .post(
            &format!("/v1/lenders/{}/deactivate", uuid::Uuid::now_v7()),
            Some(&app.operator_key),
            &json!({}),
        )
        .await;
    assert_eq!((unknown.status, unknown.code()), (404, "NOT_FOUND"));
}

pub async fn roles_are_enforced<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(defaults()).await;
    let (lender_id, lender) = app.register_lender(&email()).await;
    let auditor = app
        .post(
            "/v1/auditors",
            Some(&app.operator_key),
            &json!({"name": "Ledger Audit"}),
        )
        .await;
    let auditor = auditor.body["api_key"].as_str().unwrap().to_owned();
    let operator_routes = [
        (
            "/v1/lenders".to_owned(),
            json!({"name": "Other", "contact_email": email()}),
        ),
        ("/v1/auditors".to_owned(), json!({"name": "Other"})),
        (format!("/v1/lenders/{lender_id}/deactivate"), json!({})),
        (format!("/v1/lenders/{lender_id}/reactivate"), json!({})),
    ];
    for (path, body) in &operator_routes {
        for key in [&lender, &auditor] {
            let answer = app.post(path, Some(key), body).await;
            assert_eq!(
                (answer.status, answer.code()),
                (403, "FORBIDDEN"),
                "{path}: {}",
                answer.text
            );
            assert!(answer.is_problem());
        }
    }
    for key in [&app.operator_key, &auditor] {
        let answer = app.get("/v1/lenders/me", Some(key)).await;
        assert_eq!((answer.status, answer.code()), (403, "FORBIDDEN"));
        let rotate = app
            .post("/v1/lenders/me/api-keys/rotate", Some(key), &json!({}))
            .await;
        assert_eq!(rotate.status, 403);
    }
    // The lender was not deactivated by any of that.
    assert_eq!(app.get("/v1/lenders/me", Some(&lender)).await.status, 200);
}

pub async fn bad_credentials_are_401_problems<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(defaults()).await;
    let (_, key) = app.register_lender(&email()).await;
    let wrong_secret = format!("{}{}", &key[..20], "A".repeat(key.len() - 20));
    let unknown_prefix = format!("pl_ffffffffffffffff_{}", &key[20..]);
    type Case<'a> = (&'a str, Option<String>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        ("missing", None, vec![]),
        ("malformed", Some("not-a-key".into()), vec![]),
        ("unknown prefix", Some(unknown_prefix), vec![]),
        ("wrong secret", Some(wrong_secret), vec![]),
        (
            "basic scheme",
            None,
            vec![("authorization", "Basic dXNlcjpwYXNz")],
        ),
    ];
    for (what, key, headers) in cases {
        let answer = app
            .call(
                Method::GET,
                "/v1/lenders/me",
                key.as_deref(),
                None,
                &headers,
            )
            .await;
        assert_eq!(answer.status, 401, "{what}: {}", answer.text);
        assert_eq!(answer.code(), "BAD_CREDENTIALS", "{what}");
        assert!(answer.is_problem(), "{what}");
        assert_eq!(answer.body["status"], 401);
        assert!(
            answer.body["type"].is_string()
                && answer.body["title"].is_string()
                && answer.body["detail"].is_string()
        );
        assert_eq!(answer.headers["www-authenticate"], "Bearer");
    }
    // X-Api-Key works as well as a bearer token.
    assert_eq!(
        app.call(
            Method::GET,
            "/v1/lenders/me",
            None,
            None,
            &[("x-api-key", &key)]
        )
        .await
        .status,
        200
    );
}

pub async fn invalid_input_is_rejected<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(defaults()).await;
    let operator = Some(app.operator_key.as_str());
    let ten_kb = "x".repeat(10 * 1024);
    let invalid = [
        json!({"name": "Acme", "contact_email": "not-an-email"}),
        json!({"name": "", "contact_email": email()}),
        json!({"name": "   ", "contact_email": email()}),
        json!({"name": ten_kb, "contact_email": email()}),
        json!({"name": "Acme", "contact_email": email(), "audience": "has space"}),
        json!({"name": "Acme"}),
        json!({"name": "Acme", "contact_email": email(), "unexpected": true}),
        json!({"name": 5, "contact_email": email()}),
        json!([1, 2]),
    ];
    for body in &invalid {
        let answer = app.post("/v1/lenders", operator, body).await;
        assert_eq!(
            (answer.status, answer.code()),
            (422, "VALIDATION_FAILED"),
            "{body}: {}",
            answer.text
        );
        assert!(answer.is_problem());
    }
    let not_json = app
        .call(
            Method::POST,
            "/v1/lenders",
            operator,
            None,
            &[("content-type", "application/json")],
        )
        .await;
    // An empty body reads as {} and is then missing its members.
    assert_eq!(not_json.status, 422);
    let syntax = app
        .client
        .post(format!("{}/v1/lenders", app.base))
        .bearer_auth(&app.operator_key)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(syntax.status().as_u16(), 400);
    let form = app
        .client
        .post(format!("{}/v1/lenders", app.base))
        .bearer_auth(&app.operator_key)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=Acme")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status().as_u16(), 415);
    // The server answers 413 without reading the rest and closes that
    // connection; a client of its own keeps the shared pool clean.
    let huge =
        json!({"name": "Acme", "contact_email": email(), "audience": "x".repeat(2 * 1024 * 1024)});
    proofline_projections::webhooks::client::install_crypto_provider();
    let too_large = reqwest::Client::new()
        .post(format!("{}/v1/lenders", app.base))
        .bearer_auth(&app.operator_key)
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status().as_u16(), 413);
    let problem: serde_json::Value = too_large.json().await.unwrap();
    assert_eq!(problem["code"], "PAYLOAD_TOO_LARGE");
    // Unknown routes and methods are problems too.
    let missing = app.get("/v1/nothing-here", operator).await;
    assert_eq!((missing.status, missing.code()), (404, "NOT_FOUND"));
    let method = app
        .call(
            Method::PATCH,
            "/v1/lenders",
            operator,
            Some(&json!({})),
            &[],
        )
        .await;
    assert_eq!((method.status, method.code()), (405, "METHOD_NOT_ALLOWED"));
    // Nothing of that was stored: only the events of the start exist.
    let types: Vec<String> = app
        .all_events()
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(types, ["OperatorKeyIssued", "ServiceKeyActivated"]);
}

pub async fn duplicate_emails_conflict_even_when_racing<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(defaults()).await;
    let address = email();
    app.register_lender(&address).await;
    let again = app
        .post(
            "/v1/lenders",
            Some(&app.operator_key),
            &json!({"name": "Copy", "contact_email": address.to_uppercase()}),
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (409, "CONFLICT"),
        "{}",
        again.text
    );

    let contested = email();
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let (app, contested) = (app.clone(), contested.clone());
            tokio::spawn(async move {
                app.post(
                    "/v1/lenders",
                    Some(&app.operator_key),
                    &json!({"name": format!("Racer {n}"), "contact_email": contested}),
                )
                .await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        let answer = task.await.unwrap();
        if answer.status == 409 {
            assert_eq!(answer.code(), "CONFLICT");
        }
        statuses.push(answer.status);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [vec![201], vec![409; 9]].concat());
    let registered = app
        .all_events()
        .await
        .iter()
        .filter(|e| e.event_type == "LenderRegistered")
        .count();
    assert_eq!(registered, 2, "one lender per email");
}

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

pub async fn idempotent_retries_return_the_first_answer<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(defaults()).await;
    let body = json!({"name": "Acme Lending", "contact_email": email()});
    let headers = [("idempotency-key", "0193b2d4-register-acme")];
    let first = app
        .call(
            Method::POST,
            "/v1/lenders",
            Some(&app.operator_key),
            Some(&body),
            &headers,
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let retry = app
        .call(
            Method::POST,
            "/v1/lenders",
            Some(&app.operator_key),
            Some(&body),
            &headers,
        )
        .await;
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(
        retry.body, first.body,
        "the same lender id, the same key, the same position"
    );
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    let issued = app
        .all_events()
        .await
        .iter()
        .filter(|e| e.event_type == "ApiKeyIssued")
        .count();
    assert_eq!(issued, 1, "the key was not re-issued");
    let key = first.body["api_key"].as_str().unwrap();
    assert_eq!(app.get("/v1/lenders/me", Some(key)).await.status, 200);

    let other_body = json!({"name": "Acme Lending", "contact_email": email()});
    let mismatch = app
        .call(
            Method::POST,
            "/v1/lenders",
            Some(&app.operator_key),
            Some(&other_body),
            &headers,
        )
        .await;
    assert_eq!(
        (mismatch.status, mismatch.code()),
        (422, "VALIDATION_FAILED"),
        "{}",
        mismatch.text
    );

    // Keys are scoped to their caller: the same key from a lender is new.
    let rotate_headers = [("idempotency-key", "0193b2d4-register-acme")];
    let rotated = app
        .call(
            Method::POST,
            "/v1/lenders/me/api-keys/rotate",
            Some(key),
            Some(&json!({})),
            &rotate_headers,
        )
        .await;
    assert_eq!(rotated.status, 201, "{}", rotated.text);
    let rotated_again = app
        .call(
            Method::POST,
            "/v1/lenders/me/api-keys/rotate",
            Some(key),
            Some(&json!({})),
            &rotate_headers,
        )
        .await;
    assert_eq!(
        rotated_again.body, rotated.body,
        "a retried rotation returns the same new key"
    );
    let rotations = app
        .all_events()
        .await
        .iter()
        .filter(|e| e.event_type == "ApiKeyRotated")
        .count();
    assert_eq!(rotations, 1);
    let bad_key = app
        .call(
            Method::POST,
            "/v1/lenders",
            Some(&app.operator_key),
            Some(&body),
            &[("idempotency-key", "has space")],
        )
        .await;
    assert_eq!(bad_key.status, 422);
}

pub async fn no_raw_key_leaks<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(defaults()).await;
    let (lender_id, first) = app.register_lender(&email()).await;
    let rotated = app
        .post(
            "/v1/lenders/me/api-keys/rotate",
            Some(&first),
            &json!({"grace_period_seconds": 60}),
        )
        .await;
    let second = rotated.body["api_key"].as_str().unwrap().to_owned();
    let auditor = app
        .post(
            "/v1/auditors",
            Some(&app.operator_key),
            &json!({"name": "Ledger Audit"}),
        )
        .await;
    let auditor_key = auditor.body["api_key"].as_str().unwrap().to_owned();
    let idempotent = app
        .call(
            Method::POST,
            "/v1/lenders",
            Some(&app.operator_key),
            Some(&json!({"name": "B", "contact_email": email()})),
            &[("idempotency-key", "k-1")],
        )
        .await;
    let idempotent_key = idempotent.body["api_key"].as_str().unwrap().to_owned();
    let mut answers = vec![
        app.get("/v1/lenders/me", Some(&first)).await.text,
        app.get("/v1/lenders/me", Some(&second)).await.text,
        app.post(
            &format!("/v1/lenders/{lender_id}/deactivate"),
            Some(&app.operator_key),
            &json!({}),
        )
        .await
        .text,
        app.get("/v1/lenders/me", Some(&second)).await.text,
        app.get("/openapi.json", None).await.text,
        app.get("/metrics", None).await.text,
    ];
    answers.push(
        app.post(
            &format!("/v1/lenders/{lender_id}/reactivate"),
            Some(&app.operator_key),
            &json!({}),
        )
        .await
        .text,
    );

    let secrets = [
        &app.operator_key,
        &first,
        &second,
        &auditor_key,
        &idempotent_key,
    ];
    let events = serde_json::to_string(&app.all_events().await).unwrap();
    let stored = app.raw_secrets().await.join("\n");
    let logs = captured_logs();
    for secret in secrets {
        let secret_part = &secret[20..];
        assert!(!events.contains(secret_part), "a key is in the events");
        assert!(
            !stored.contains(secret_part),
            "a key is in the secrets table in the clear"
        );
        assert!(!logs.contains(secret_part), "a key is in the logs");
        for answer in &answers {
            assert!(
                !answer.contains(secret_part),
                "a key is in another answer: {answer}"
            );
        }
    }
    // The key hashes are argon2id; the idempotent answer is sealed.
    assert!(stored.contains("$argon2id$"));
    assert!(stored.contains("idempotency"));
    assert!(!logs.is_empty(), "the logs were captured");
}

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

pub async fn openapi_covers_every_route_and_metrics_count_requests<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(defaults()).await;
    let document = app.get("/openapi.json", None).await;
    assert_eq!(document.status, 200);
    let paths = &document.body["paths"];
    for (method, path) in [
        ("post", "/v1/lenders"),
        ("get", "/v1/lenders/me"),
        ("post", "/v1/lenders/me/api-keys/rotate"),
        ("delete", "/v1/lenders/me/api-keys/{prefix}"),
        ("post", "/v1/lenders/{id}/deactivate"),
        ("post", "/v1/lenders/{id}/reactivate"),
        ("post", "/v1/auditors"),
        ("post", "/v1/issuers"),
        ("get", "/v1/issuers"),
        ("post", "/v1/issuers/{did}/keys"),
        ("delete", "/v1/issuers/{did}/keys/{kid}"),
        ("post", "/v1/issuers/{did}/suspend"),
        ("post", "/v1/issuers/{did}/reinstate"),
        ("post", "/v1/status-lists"),
        ("get", "/health/live"),
        ("get", "/health/ready"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is documented"
        );
    }
    let register = &paths["/v1/lenders"]["post"];
    for status in ["201", "401", "403", "409", "413", "422", "429"] {
        assert!(
            register["responses"][status].is_object(),
            "POST /v1/lenders documents {status}"
        );
    }
    assert_eq!(
        register["responses"]["401"]["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    assert!(document.body["components"]["securitySchemes"]["api_key"].is_object());
    // Every operation documents what the layers around it answer: 503 (the
    // time limit) always; 401, 403 and 429 where a key is checked; 400,
    // 413, 415 and 422 where there is a body. And no query or header
    // parameter is nullable.
    for (path, item) in paths.as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let has = |status: &str| operation["responses"][status].is_object();
            let name = format!("{} {path}", method.to_uppercase());
            if path != "/openapi.json" {
                assert!(has("503"), "{name} documents 503");
            }
            if operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
            {
                for status in ["401", "403", "429"] {
                    assert!(has(status), "{name} documents {status}");
                }
            }
            if operation.get("requestBody").is_some() {
                for status in ["400", "413", "415", "422"] {
                    assert!(has(status), "{name} documents {status}");
                }
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let types = &parameter["schema"]["type"];
                assert!(
                    !types
                        .as_array()
                        .is_some_and(|t| t.contains(&serde_json::json!("null"))),
                    "{name}: {parameter} is not nullable"
                );
                if [
                    "after",
                    "limit",
                    "cursor",
                    "min_position",
                    "from",
                    "to",
                    "status",
                    "verified",
                ]
                .contains(&parameter["name"].as_str().unwrap_or_default())
                {
                    assert_eq!(parameter["in"], "query", "{name}: {parameter}");
                }
            }
        }
    }

    app.get("/v1/lenders/me", Some(&app.operator_key)).await;
    let metrics = app.get("/metrics", None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.text.contains("http_requests_total"),
        "{}",
        metrics.text
    );
    assert!(
        metrics.text.contains(r#"route="/v1/lenders/me""#),
        "{}",
        metrics.text
    );
    assert!(
        metrics
            .text
            .contains("http_request_duration_seconds_bucket"),
        "{}",
        metrics.text
    );
}

pub async fn auditors_register_and_authenticate<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(defaults()).await;
    let answer = app
        .post(
            "/v1/auditors",
            Some(&app.operator_key),
            &json!({"name": "Ledger Audit LLP"}),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    assert!(answer.body["auditor_id"].is_string());
    let key = answer.body["api_key"].as_str().unwrap();
    // The auditor is known (403 for a lender route, not 401).
    assert_eq!(app.get("/v1/lenders/me", Some(key)).await.status, 403);
    let empty = app
        .post(
            "/v1/auditors",
            Some(&app.operator_key),
            &json!({"name": ""}),
        )
        .await;
    assert_eq!(empty.status, 422);
    let events = app.all_events().await;
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "AuditorRegistered" && e.stream_id.category() == "auditor")
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

/// A key cached by one instance is dropped when another instance
/// deactivates its owner: the instances follow the log, so the cache is not
/// stale until its time to live.
pub async fn deactivation_reaches_other_instances<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let first = open(defaults()).await;
    let second = first.second_instance(defaults()).await;
    let (lender_id, key) = first.register_lender(&email()).await;
    assert_eq!(
        second.get("/v1/lenders/me", Some(&key)).await.status,
        200,
        "cached by the second instance"
    );
    let deactivated = first
        .post(
            &format!("/v1/lenders/{lender_id}/deactivate"),
            Some(&first.operator_key),
            &json!({}),
        )
        .await;
    assert_eq!(deactivated.status, 200);
    let started = Instant::now();
    loop {
        let answer = second.get("/v1/lenders/me", Some(&key)).await;
        if answer.status == 401 {
            break;
        }
        assert_eq!(answer.status, 200);
        assert!(
            started.elapsed() < PATIENCE,
            "the second instance kept accepting a deactivated lender's key"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
