//! The cases of the HTTP contract for verifying presentations.

use std::future::Future;

use proofline_api::ApiSettings;
use proofline_domain::jose::testing::TestKey;
use serde_json::{Value, json};

use crate::support::TestApp;
use crate::world::{VCT, World, fresh_nonce, now, open_receipt, world};

pub async fn a_valid_presentation_verifies_once_with_a_receipt<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let world = world(open).await;
    let (issued, disclosures) = world.issue(&TestKey::ed25519(1), "key-1", now() - 600, 3);
    let nonce = fresh_nonce();
    let presentation = world.present(&issued, &disclosures, &nonce);
    let answer = world.verify(&presentation, &nonce).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    let body = &answer.body;
    assert_eq!(body["verified"], true, "{}", answer.text);
    assert_eq!(body["failed_step"], Value::Null);
    let steps: Vec<(&str, bool)> = body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["passed"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("DECODE", true),
            ("FRESHNESS", true),
            ("ISSUER_AUTH", true),
            ("SIGNATURE", true),
            ("REVOCATION", true),
            ("HOLDER_BINDING", true),
            ("CLAIMS", true)
        ]
    );
    assert_eq!(body["issuer"], world.did.as_str());
    assert_eq!(body["vct"], VCT);
    assert_eq!(body["disclosed_claims"]["given_name"], "Erika");
    assert_eq!(body["disclosed_claims"]["address"]["country"], "DE");
    assert_eq!(
        body["disclosed_claims"]["nationalities"],
        json!(["DE", "FR"])
    );
    assert!(body["disclosed_claims"].get("cnf").is_none());
    let position = body["position"].as_u64().unwrap();

    let keys = world.app.get("/v1/log/public-key", None).await;
    assert_eq!(keys.status, 200, "{}", keys.text);
    assert!(keys.body["since"].is_string(), "{}", keys.text);
    let claims = open_receipt(body["receipt"].as_str().unwrap(), &keys.body);
    assert_eq!(claims["verification_id"], body["verification_id"]);
    assert_eq!(claims["lender_id"], world.lender_id.as_str());
    assert_eq!(claims["verified"], true);
    assert_eq!(claims["failed_step"], Value::Null);
    assert_eq!(claims["position"], position);
    assert_eq!(
        claims["presentation_sha256"],
        proofline_domain::verification_record::presentation_digest(&nonce, &presentation)
    );
    assert!((claims["iat"].as_i64().unwrap() - now()).abs() < 60);

    // Read back by its lender, with the same receipt; not by another.
    let id = body["verification_id"].as_str().unwrap();
    let read = world
        .app
        .get(&format!("/v1/verifications/{id}"), Some(&world.lender_key))
        .await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.body["receipt"], body["receipt"]);
    assert_eq!(read.body["verified"], true);
    assert_eq!(read.body["disclosed_claims"], Value::Null);
    let (_, other) = world
        .app
        .register_lender(&format!("o-{}@acme.example", uuid::Uuid::now_v7().simple()))
        .await;
    let foreign = world
        .app
        .get(&format!("/v1/verifications/{id}"), Some(&other))
        .await;
    assert_eq!((foreign.status, foreign.code()), (404, "NOT_FOUND"));
    let operator = world
        .app
        .get(
            &format!("/v1/verifications/{id}"),
            Some(&world.app.operator_key),
        )
        .await;
    assert_eq!(operator.status, 403);

    // The same nonce again: recorded, failed at FRESHNESS.
    let again = world.verify(&presentation, &nonce).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.body["verified"], false);
    assert_eq!(again.body["failed_step"], "FRESHNESS");
    assert_eq!(again.body["reason"], "nonce_replayed");
    assert_ne!(again.body["verification_id"], body["verification_id"]);
    assert_eq!(again.body["disclosed_claims"], Value::Null);

    // The log has both, with digests and claim names, and no claim value.
    let events = world.app.all_events().await;
    let recorded: Vec<&str> = events
        .iter()
        .filter(|e| e.stream_id.category() == "verification")
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(recorded, ["PresentationVerified", "PresentationRejected"]);
    let verified = events
        .iter()
        .find(|e| e.event_type == "PresentationVerified")
        .unwrap();
    assert_eq!(
        verified.data["nonce_sha256"],
        proofline_domain::verification_record::sha256_hex(&nonce)
    );
    assert_eq!(
        verified.data["status"],
        json!({"uri": world.uri, "list_version": 1, "status": 0}),
        "the list and what it said, never the entry's index"
    );
    assert!(
        verified.data["disclosed_claims"]
            .as_array()
            .unwrap()
            .contains(&json!("address.country"))
    );
    let stored = format!(
        "{}\n{}",
        serde_json::to_string(&events).unwrap(),
        world.app.raw_secrets().await.join("\n")
    );
    let signature = presentation.rsplit('.').next().unwrap();
    for value in ["Erika", "Mustermann", "Köln", &nonce, signature]
        .into_iter()
        .chain(disclosures.iter().map(String::as_str))
    {
        assert!(!stored.contains(value), "{value} is in the store");
    }
}

pub async fn revoked_entries_and_retired_keys_fail_at_their_step<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let world = world(open).await;
    let ed = TestKey::ed25519(1);
    for (idx, reason) in [(5, "status_revoked"), (6, "status_suspended")] {
        let (issued, disclosures) = world.issue(&ed, "key-1", now() - 600, idx);
        let nonce = fresh_nonce();
        let answer = world
            .verify(&world.present(&issued, &disclosures, &nonce), &nonce)
            .await;
        assert_eq!(answer.status, 201, "{}", answer.text);
        assert_eq!(
            (&answer.body["failed_step"], &answer.body["reason"]),
            (&json!("REVOCATION"), &json!(reason)),
            "{}",
            answer.text
        );
        assert!(
            answer.body["status"].get("idx").is_none(),
            "{}",
            answer.text
        );
    }

    // key-2 (P-256) verifies until it is retired; a credential signed after
    // that fails at ISSUER_AUTH.
    let p256 = TestKey::p256(2);
    let (issued, disclosures) = world.issue(&p256, "key-2", now() - 600, 3);
    let nonce_before = fresh_nonce();
    let before = world
        .verify(
            &world.present(&issued, &disclosures, &nonce_before),
            &nonce_before,
        )
        .await;
    assert_eq!(before.body["verified"], true, "{}", before.text);
    let retired = world
        .app
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/issuers/{}/keys/key-2", world.did),
            Some(&world.app.operator_key),
            None,
            &[],
        )
        .await;
    assert_eq!(retired.status, 200, "{}", retired.text);
    let (issued, disclosures) = world.issue(&p256, "key-2", now() + 2, 3);
    let nonce = fresh_nonce();
    let after = world
        .verify(&world.present(&issued, &disclosures, &nonce), &nonce)
        .await;
    assert_eq!(
        (&after.body["failed_step"], &after.body["reason"]),
        (&json!("ISSUER_AUTH"), &json!("key_retired")),
        "{}",
        after.text
    );

    // A list nobody published, at a URI Proofline does not fetch (plain
    // http), fails closed. (An https list is fetched: see the CLI's
    // `fetched` suite.)
    let mut unknown = World {
        uri: "http://nowhere.example/status/9".into(),
        ..world
    };
    unknown.holder = TestKey::ed25519(9);
    let (issued, disclosures) = unknown.issue(&ed, "key-1", now() - 600, 0);
    let nonce = fresh_nonce();
    let answer = unknown
        .verify(&unknown.present(&issued, &disclosures, &nonce), &nonce)
        .await;
    assert_eq!(
        answer.body["reason"], "status_list_unknown",
        "{}",
        answer.text
    );
}

pub async fn malformed_input_is_recorded_and_bad_shapes_are_refused<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let world = world(open).await;
    for garbage in ["", "not an sd-jwt", "a.b.c~", "~~~", &"x~".repeat(10_000)] {
        let nonce = fresh_nonce();
        let answer = world.verify(garbage, &nonce).await;
        assert_eq!(answer.status, 201, "{garbage:.20}: {}", answer.text);
        assert_eq!(answer.body["verified"], false);
        assert_eq!(answer.body["failed_step"], "DECODE", "{}", answer.text);
        assert!(answer.body["reason"].is_string());
        assert!(answer.body["receipt"].is_string());
    }
    let key = Some(world.lender_key.as_str());
    let refused = [
        json!({"presentation": 5, "nonce": "n"}),
        json!({"presentation": "x~"}),
        json!({"presentation": "x~", "nonce": ""}),
        json!({"presentation": "x~", "nonce": "n".repeat(513)}),
        json!({"presentation": "x~", "nonce": "n", "required_claims": ["a..b"]}),
        json!({"presentation": "x~", "nonce": "n", "unknown": true}),
    ];
    for body in refused {
        let answer = world.app.post("/v1/verifications", key, &body).await;
        assert_eq!(
            (answer.status, answer.code()),
            (422, "VALIDATION_FAILED"),
            "{body}: {}",
            answer.text
        );
        assert!(answer.is_problem());
    }
    let not_json = world
        .app
        .call(
            reqwest::Method::POST,
            "/v1/verifications",
            key,
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert!(matches!(not_json.status, 400 | 422), "{}", not_json.text);
    let operator = world
        .app
        .post(
            "/v1/verifications",
            Some(&world.app.operator_key),
            &json!({"presentation": "x~", "nonce": "n"}),
        )
        .await;
    assert_eq!(operator.status, 403);
}

pub async fn verifications_are_listed_from_the_read_model_right_after_their_position<F, Fut>(
    open: F,
) where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let world = world(open).await;
    let ed = TestKey::ed25519(1);
    let mut ids = Vec::new();
    for idx in [3, 5, 3] {
        let (issued, disclosures) = world.issue(&ed, "key-1", now() - 600, idx);
        let nonce = fresh_nonce();
        let answer = world
            .verify(&world.present(&issued, &disclosures, &nonce), &nonce)
            .await;
        assert_eq!(answer.status, 201, "{}", answer.text);
        let position = answer.body["position"].as_u64().unwrap();
        // Read your write: the list has it as soon as the command answered.
        let listed = world
            .app
            .get(
                &format!("/v1/verifications?min_position={position}"),
                Some(&world.lender_key),
            )
            .await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        assert_eq!(
            listed.body["items"][0]["verification_id"], answer.body["verification_id"],
            "the newest first"
        );
        assert_eq!(listed.body["items"][0]["position"], position);
        ids.push(answer.body["verification_id"].clone());
    }
    let key = Some(world.lender_key.as_str());
    let verified = world.app.get("/v1/verifications?verified=true", key).await;
    let verified_ids: Vec<&Value> = verified.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["verification_id"])
        .collect();
    assert_eq!(verified_ids, [&ids[2], &ids[0]]);
    // Paging one at a time walks all three, newest first, then stops.
    let mut walked = Vec::new();
    let mut path = "/v1/verifications?limit=1".to_owned();
    loop {
        let page = world.app.get(&path, key).await;
        assert_eq!(page.status, 200, "{}", page.text);
        walked.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["verification_id"].clone()),
        );
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/verifications?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(walked, [ids[2].clone(), ids[1].clone(), ids[0].clone()]);
    let future = world
        .app
        .get("/v1/verifications?from=2999-01-01T00:00:00Z", key)
        .await;
    assert_eq!(future.body["items"], json!([]));

    // Another lender sees none of them.
    let (_, other) = world
        .app
        .register_lender(&format!("o-{}@acme.example", uuid::Uuid::now_v7().simple()))
        .await;
    let theirs = world
        .app
        .get(
            &format!(
                "/v1/verifications?min_position={}",
                verified.body["items"][0]["position"]
            ),
            Some(&other),
        )
        .await;
    assert_eq!(theirs.body["items"], json!([]), "{}", theirs.text);

    // Daily stats: two verified, one revoked, today.
    let stats = world.app.get("/v1/stats/daily", key).await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(
        stats.body["items"],
        json!([
            {"day": today, "verified": true, "failed_step": null, "count": 2},
            {"day": today, "verified": false, "failed_step": "REVOCATION", "count": 1},
        ])
    );

    // The operator sees every lender's counts summed (here one lender's);
    // an auditor sees none.
    let all = world
        .app
        .get("/v1/stats/daily", Some(&world.app.operator_key))
        .await;
    assert_eq!(all.body["items"], stats.body["items"], "{}", all.text);

    for bad in [
        "/v1/verifications?limit=0",
        "/v1/verifications?limit=501",
        "/v1/verifications?from=yesterday",
        "/v1/verifications?cursor=abc",
        "/v1/verifications?verified=maybe",
        "/v1/stats/daily?from=2026-13-01",
    ] {
        let answer = world.app.get(bad, key).await;
        assert_eq!(
            (answer.status, answer.code()),
            (422, "VALIDATION_FAILED"),
            "{bad}: {}",
            answer.text
        );
    }
    assert_eq!(
        world
            .app
            .get("/v1/verifications", Some(&world.app.operator_key))
            .await
            .status,
        403
    );
    // Readiness and metrics report each projector.
    let ready = world.app.get("/health/ready", None).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert!(
        ready.body["checks"]["projectors"]["verifications"]["position"].is_u64(),
        "{}",
        ready.text
    );
    let metrics = world.app.get("/metrics", None).await;
    assert!(
        metrics
            .text
            .contains("proofline_projector_lag_events{projector=\"verifications\"}"),
        "{}",
        metrics.text
    );
    // A position the log never reaches: 503 after the bounded wait, saying
    // where the read model is.
    let head = world.app.all_events().await.last().unwrap().position;
    let waited = world
        .app
        .get(
            &format!("/v1/verifications?min_position={}", head + 1_000),
            key,
        )
        .await;
    assert_eq!(
        (waited.status, waited.code()),
        (503, "UNAVAILABLE"),
        "{}",
        waited.text
    );
    assert!(
        waited.body["position"].as_u64().unwrap()
            >= verified.body["items"][0]["position"].as_u64().unwrap()
    );
}
