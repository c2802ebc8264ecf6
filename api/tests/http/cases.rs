//! The cases of the HTTP contract every route shares: roles, credentials,
//! input validation, idempotency, secrets shown once and the OpenAPI
//! document (request ids, headers and CORS are in `requests.rs`).

use std::future::Future;
use std::time::Duration;

use proofline_api::ApiSettings;
use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, captured_logs};

pub(crate) fn defaults() -> ApiSettings {
    ApiSettings::default()
}

pub(crate) fn email() -> String {
    format!("risk-{}@acme.example", uuid::Uuid::now_v7().simple())
}

/// Bounds waits for something that must happen by a deadline.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

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
        ("post", "/v1/lenders/{id}/suspend"),
        ("post", "/v1/lenders/{id}/unsuspend"),
        ("get", "/v1/lenders"),
        ("post", "/v1/auditors"),
        ("post", "/v1/issuers"),
        ("get", "/v1/issuers"),
        ("get", "/v1/status-lists"),
        ("get", "/v1/webhooks/health"),
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
    // A shared answer is a reference to `components.responses`.
    let unauthorized = register["responses"]["401"]["$ref"]
        .as_str()
        .and_then(|r| document.body.pointer(r.trim_start_matches('#')))
        .unwrap_or(&register["responses"]["401"]);
    assert_eq!(
        unauthorized["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    assert!(document.body["components"]["securitySchemes"]["api_key"].is_object());
    // `reason` is one of the closed set of codes, every one of them listed.
    let reason =
        &document.body["components"]["schemas"]["VerificationView"]["properties"]["reason"];
    let listed: Vec<&str> = reason["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("reason lists its codes: {reason}"))
        .iter()
        .filter_map(|code| code.as_str())
        .collect();
    let codes: Vec<&str> = proofline_domain::verification::Reason::ALL
        .iter()
        .map(|r| r.as_str())
        .collect();
    assert_eq!(listed, codes);
    // Every operation documents what the layers around it answer: 503 (the
    // time limit) always; 401, 403 and 429 where a key is checked; 400,
    // 413, 415 and 422 where there is a body (400 and 413 for a wallet's). And no query or header
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
            // The wallet endpoints take forms and answer OAuth errors: a
            // body that is not a form is their 400, never a 415 or 422.
            let body_statuses: &[&str] = if path.starts_with("/oid4vp/") {
                &["400", "413"]
            } else {
                &["400", "413", "415", "422"]
            };
            if operation.get("requestBody").is_some() {
                for status in body_statuses {
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
