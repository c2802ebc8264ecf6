//! Lenders and auditors as principals: registration, keys (rotation with
//! a grace, revocation), unique contact emails, and the operator's say over
//! a lender's standing (deactivation, suspension) on every instance.

use std::future::Future;
use std::time::{Duration, Instant};

use proofline_api::ApiSettings;
use reqwest::Method;
use serde_json::json;

use crate::support::TestApp;

use crate::cases::{PATIENCE, defaults, email};

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

pub async fn a_suspended_lender_authenticates_nothing_and_keeps_its_webhook<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(ApiSettings {
        webhook_allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
        ..defaults()
    })
    .await;
    let second = app.second_instance(defaults()).await;
    let operator = Some(app.operator_key.as_str());
    let (lender_id, key) = app.register_lender(&email()).await;
    let hook = app
        .call(
            Method::PUT,
            "/v1/lenders/me/webhook",
            Some(&key),
            Some(&json!({"url": "http://127.0.0.1:9/hook"})),
            &[],
        )
        .await;
    assert_eq!(hook.status, 200, "{}", hook.text);
    assert_eq!(
        second.get("/v1/lenders/me", Some(&key)).await.status,
        200,
        "cached by the second instance"
    );
    let by_lender = app
        .post(
            &format!("/v1/lenders/{lender_id}/suspend"),
            Some(&key),
            &json!({}),
        )
        .await;
    assert_eq!((by_lender.status, by_lender.code()), (403, "FORBIDDEN"));

    let suspended = app
        .post(
            &format!("/v1/lenders/{lender_id}/suspend"),
            operator,
            &json!({}),
        )
        .await;
    assert_eq!(suspended.status, 200, "{}", suspended.text);
    assert_eq!(suspended.body["status"], "suspended");
    let refused = app.get("/v1/lenders/me", Some(&key)).await;
    assert_eq!((refused.status, refused.code()), (401, "BAD_CREDENTIALS"));
    let started = Instant::now();
    while second.get("/v1/lenders/me", Some(&key)).await.status != 401 {
        assert!(
            started.elapsed() < PATIENCE,
            "the second instance kept accepting a suspended lender's key"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let twice = app
        .post(
            &format!("/v1/lenders/{lender_id}/suspend"),
            operator,
            &json!({}),
        )
        .await;
    assert_eq!((twice.status, twice.code()), (409, "CONFLICT"));
    // Its webhook and data stay: the operator sees both.
    let listed = app
        .get_current("/v1/lenders?status=suspended", operator)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", listed.text);
    assert_eq!(items[0]["lender_id"], lender_id.as_str());
    assert_eq!(items[0]["webhook_url"], "http://127.0.0.1:9/hook");

    let unsuspended = app
        .post(
            &format!("/v1/lenders/{lender_id}/unsuspend"),
            operator,
            &json!({}),
        )
        .await;
    assert_eq!(unsuspended.status, 200, "{}", unsuspended.text);
    assert_eq!(unsuspended.body["status"], "active");
    let me = app.get("/v1/lenders/me", Some(&key)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(
        (&me.body["status"], &me.body["webhook"]["url"]),
        (&json!("active"), &json!("http://127.0.0.1:9/hook"))
    );
    let again = app
        .post(
            &format!("/v1/lenders/{lender_id}/unsuspend"),
            operator,
            &json!({}),
        )
        .await;
    assert_eq!((again.status, again.code()), (409, "CONFLICT"));
    // Deactivation is the stronger state: a deactivated lender is not
    // suspended, and deactivation ends a suspension.
    app.post(
        &format!("/v1/lenders/{lender_id}/suspend"),
        operator,
        &json!({}),
    )
    .await;
    let deactivated = app
        .post(
            &format!("/v1/lenders/{lender_id}/deactivate"),
            operator,
            &json!({}),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.text);
    let not_suspended = app
        .post(
            &format!("/v1/lenders/{lender_id}/suspend"),
            operator,
            &json!({}),
        )
        .await;
    assert_eq!(
        (not_suspended.status, not_suspended.code()),
        (409, "CONFLICT")
    );
    let unknown = app
        .post(
            &format!("/v1/lenders/{}/suspend", uuid::Uuid::now_v7()),
            operator,
            &json!({}),
        )
        .await;
    assert_eq!((unknown.status, unknown.code()), (404, "NOT_FOUND"));
}

pub async fn the_operator_lists_lenders_by_standing_and_email<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(defaults()).await;
    let operator = Some(app.operator_key.as_str());
    let emails: Vec<String> = (0..3).map(|_| email()).collect();
    let mut ids = Vec::new();
    for address in &emails {
        ids.push(app.register_lender(address).await.0);
    }
    app.post(
        &format!("/v1/lenders/{}/suspend", ids[1]),
        operator,
        &json!({}),
    )
    .await;
    app.post(
        &format!("/v1/lenders/{}/deactivate", ids[2]),
        operator,
        &json!({}),
    )
    .await;

    // Pages of one, in registration order.
    let mut seen = Vec::new();
    let mut path = "/v1/lenders?limit=1".to_owned();
    loop {
        let page = app.get_current(&path, operator).await;
        assert_eq!(page.status, 200, "{}", page.text);
        for item in page.body["items"].as_array().unwrap() {
            assert!(item.get("api_key").is_none(), "no key material is listed");
            seen.push((
                item["lender_id"].as_str().unwrap().to_owned(),
                item["status"].as_str().unwrap().to_owned(),
            ));
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/lenders?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        vec![
            (ids[0].clone(), "active".to_owned()),
            (ids[1].clone(), "suspended".to_owned()),
            (ids[2].clone(), "deactivated".to_owned()),
        ]
    );
    for (status, expected) in [
        ("active", &ids[0]),
        ("suspended", &ids[1]),
        ("deactivated", &ids[2]),
    ] {
        let page = app
            .get_current(&format!("/v1/lenders?status={status}"), operator)
            .await;
        let items = page.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{status}: {}", page.text);
        assert_eq!(items[0]["lender_id"], expected.as_str());
    }
    let by_email = app
        .get_current(
            &format!("/v1/lenders?contact_email={}", emails[1].to_uppercase()),
            operator,
        )
        .await;
    assert_eq!(by_email.body["items"][0]["lender_id"], ids[1].as_str());
    assert_eq!(by_email.body["items"].as_array().unwrap().len(), 1);

    let bad = app.get("/v1/lenders?status=gone", operator).await;
    assert_eq!((bad.status, bad.code()), (422, "VALIDATION_FAILED"));
    let bad_limit = app.get("/v1/lenders?limit=0", operator).await;
    assert_eq!(
        (bad_limit.status, bad_limit.code()),
        (422, "VALIDATION_FAILED")
    );
    let lender_key = app.register_lender(&email()).await.1;
    let forbidden = app.get("/v1/lenders", Some(&lender_key)).await;
    assert_eq!((forbidden.status, forbidden.code()), (403, "FORBIDDEN"));
}
