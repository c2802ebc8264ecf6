//! Cases from an outside security review: each proves one finding closed,
//! on both backends.

use std::future::Future;

use proofline_api::ApiSettings;
use proofline_domain::jose::testing::TestKey;
use proofline_domain::sd_jwt::Issuance;
use proofline_domain::status_list::TOKEN_TYPE;
use proofline_domain::status_list::testing::lst;
use serde_json::{Value, json};

use crate::support::{Answer, TestApp};
use crate::world::{VCT, World, fresh_nonce, jwk, now, world};

/// A credential of `world`'s issuer with `payload` over the usual claims,
/// concealing `names` (top level).
fn issue_with(world: &World, changes: Value, names: &[String]) -> (String, Vec<String>) {
    let mut payload = json!({
        "iss": world.did, "iat": now() - 600, "exp": now() + 3600, "vct": VCT,
        "given_name": "Erika", "cnf": {"jwk": jwk(&world.holder)},
    });
    for (name, value) in changes.as_object().unwrap() {
        payload[name] = value.clone();
    }
    let mut n = 0u32;
    let mut issuance = Issuance::new(payload.as_object().unwrap().clone(), || {
        n += 1;
        format!("salt-{n}-{}", uuid::Uuid::now_v7().simple())
    });
    for name in names {
        issuance.conceal(name).unwrap();
    }
    let key = TestKey::ed25519(1);
    issuance.sign(
        &json!({"alg": "EdDSA", "typ": "dc+sd-jwt", "kid": "key-1"}),
        |input| key.sign_raw(input),
    )
}

fn present_for(
    world: &World,
    issued: &str,
    disclosures: &[String],
    nonce: &str,
    aud: &str,
) -> String {
    world.present_for(issued, disclosures, nonce, aud)
}

async fn verify_as(world: &World, key: &str, body: Value) -> Answer {
    world.app.post("/v1/verifications", Some(key), &body).await
}

/// The verification events of the log whose nonce digest is `nonce`'s.
async fn recorded_for(app: &TestApp, nonce: &str) -> Vec<Value> {
    let digest = proofline_domain::verification_record::sha256_hex(nonce);
    app.all_events()
        .await
        .into_iter()
        .filter(|e| e.stream_id.category() == "verification" && e.data["nonce_sha256"] == digest)
        .map(|e| e.data)
        .collect()
}

pub async fn a_lender_verifies_only_for_its_own_audiences<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let world = world(open).await;
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let (mine, second) = (
        format!("https://verifier-{suffix}.example"),
        format!("urn:lender:{suffix}:branch"),
    );
    let registered = world
        .app
        .post(
            "/v1/lenders",
            Some(&world.app.operator_key),
            &json!({"name": "Two Audiences Ltd", "contact_email": format!("two-{suffix}@acme.example"), "audiences": [mine, second]}),
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    assert_eq!(registered.body["audience"], mine.as_str());
    assert_eq!(registered.body["audiences"], json!([mine, second]));
    let key = registered.body["api_key"].as_str().unwrap().to_owned();
    let me = world.app.get("/v1/lenders/me", Some(&key)).await;
    assert_eq!(me.body["audiences"], json!([mine, second]), "{}", me.text);
    // The first lender's own answer lists its one default audience.
    let first = world
        .app
        .get("/v1/lenders/me", Some(&world.lender_key))
        .await;
    assert_eq!(first.body["audiences"], json!([world.audience]));

    let (issued, disclosures) = issue_with(&world, json!({}), &[]);
    // Its second audience, named: verified.
    let nonce = fresh_nonce();
    let presentation = present_for(&world, &issued, &disclosures, &nonce, &second);
    let answer = verify_as(
        &world,
        &key,
        json!({"presentation": presentation, "nonce": nonce, "audience": second}),
    )
    .await;
    assert_eq!(answer.body["verified"], true, "{}", answer.text);
    // Not named: its first, which the Key Binding JWT does not name.
    let nonce = fresh_nonce();
    let presentation = present_for(&world, &issued, &disclosures, &nonce, &second);
    let answer = verify_as(
        &world,
        &key,
        json!({"presentation": presentation, "nonce": nonce}),
    )
    .await;
    assert_eq!(answer.body["reason"], "aud_mismatch", "{}", answer.text);
    // Another lender's audience, named by a lender that has it not: 422,
    // and nothing recorded, the nonce unspent.
    let nonce = fresh_nonce();
    let stolen = present_for(&world, &issued, &disclosures, &nonce, &world.audience);
    let answer = verify_as(
        &world,
        &key,
        json!({"presentation": stolen, "nonce": nonce, "audience": world.audience}),
    )
    .await;
    assert_eq!(
        (answer.status, answer.code()),
        (422, "VALIDATION_FAILED"),
        "{}",
        answer.text
    );
    assert!(answer.is_problem());
    assert!(recorded_for(&world.app, &nonce).await.is_empty());
    // The lender it was made for verifies it.
    let answer = verify_as(
        &world,
        &world.lender_key,
        json!({"presentation": stolen, "nonce": nonce}),
    )
    .await;
    assert_eq!(answer.body["verified"], true, "{}", answer.text);

    for bad in [
        json!({"audiences": []}),
        json!({"audiences": ["urn:x", "urn:x"]}),
        json!({"audience": "urn:y", "audiences": ["urn:x", "urn:y"]}),
        json!({"audiences": ["has space"]}),
        json!({"audiences": (0..17).map(|i| format!("urn:{i}")).collect::<Vec<_>>()}),
    ] {
        let mut body = json!({"name": "Bad", "contact_email": format!("bad-{}@acme.example", uuid::Uuid::now_v7().simple())});
        for (k, v) in bad.as_object().unwrap() {
            body[k] = v.clone();
        }
        let answer = world
            .app
            .post("/v1/lenders", Some(&world.app.operator_key), &body)
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (422, "VALIDATION_FAILED"),
            "{bad}: {}",
            answer.text
        );
    }
}

pub async fn oversized_presentations_are_recorded_rejections_that_spend_their_nonce<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let world = world(open).await;
    let wide = "\u{1}".repeat(11_000);
    let long = "i".repeat(70_000);
    for changes in [
        json!({"iss": long}),
        json!({"iss": wide}),
        json!({"vct": wide}),
    ] {
        let (issued, disclosures) = issue_with(&world, changes.clone(), &[]);
        let nonce = fresh_nonce();
        let presentation = present_for(&world, &issued, &disclosures, &nonce, &world.audience);
        let body = json!({"presentation": presentation, "nonce": nonce});
        let answer = verify_as(&world, &world.lender_key, body.clone()).await;
        assert_eq!(
            answer.status,
            201,
            "{}",
            &answer.text[..answer.text.len().min(300)]
        );
        assert_eq!(answer.body["verified"], false);
        assert!(answer.text.len() < 8 * 1024, "the answer is bounded too");
        assert_eq!(recorded_for(&world.app, &nonce).await.len(), 1, "recorded");
        let again = verify_as(&world, &world.lender_key, body).await;
        assert_eq!(again.body["reason"], "nonce_replayed", "the nonce is spent");
    }

    // A presentation whose record would still be too large after bounding:
    // 300 claims with 250-byte names. Recorded all the same, at DECODE, with
    // a reason of its own.
    let names: Vec<String> = (0..300)
        .map(|i| format!("{i:03}{}", "n".repeat(247)))
        .collect();
    let mut changes = json!({});
    for name in &names {
        changes[name] = json!(1);
    }
    let (issued, disclosures) = issue_with(&world, changes, &names);
    let nonce = fresh_nonce();
    let presentation = present_for(&world, &issued, &disclosures, &nonce, &world.audience);
    let body = json!({"presentation": presentation, "nonce": nonce});
    let answer = verify_as(&world, &world.lender_key, body.clone()).await;
    assert_eq!(
        answer.status,
        201,
        "{}",
        &answer.text[..answer.text.len().min(300)]
    );
    assert_eq!(
        (&answer.body["failed_step"], &answer.body["reason"]),
        (&json!("DECODE"), &json!("record_too_large")),
    );
    assert_eq!(answer.body["disclosed_claims"], Value::Null);
    let recorded = recorded_for(&world.app, &nonce).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["reason"], "record_too_large");
    let again = verify_as(&world, &world.lender_key, body).await;
    assert_eq!(again.body["reason"], "nonce_replayed");
}

pub async fn a_revoked_issuer_key_verifies_nothing_and_lists_say_why<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let world = world(open).await;
    let path = format!("/v1/issuers/{}/keys/key-1/revoke", world.did);
    let lender = world
        .app
        .post(&path, Some(&world.lender_key), &json!({}))
        .await;
    assert_eq!(lender.status, 403);
    let revoked = world
        .app
        .post(&path, Some(&world.app.operator_key), &json!({}))
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(revoked.body["revoked"], true);
    assert!(revoked.body["position"].is_u64());
    let again = world
        .app
        .post(&path, Some(&world.app.operator_key), &json!({}))
        .await;
    assert_eq!((again.status, again.code()), (409, "CONFLICT"));
    let unknown = world
        .app
        .post(
            &format!("/v1/issuers/{}/keys/key-9/revoke", world.did),
            Some(&world.app.operator_key),
            &json!({}),
        )
        .await;
    assert_eq!(unknown.status, 404);
    // A credential dated long before (a thief picks its iat): refused.
    let (issued, disclosures) = issue_with(&world, json!({"iat": now() - 86_400 * 365}), &[]);
    let nonce = fresh_nonce();
    let presentation = present_for(&world, &issued, &disclosures, &nonce, &world.audience);
    let answer = verify_as(
        &world,
        &world.lender_key,
        json!({"presentation": presentation, "nonce": nonce}),
    )
    .await;
    assert_eq!(
        (&answer.body["failed_step"], &answer.body["reason"]),
        (&json!("ISSUER_AUTH"), &json!("key_revoked")),
        "{}",
        answer.text
    );
    let listed = world
        .app
        .get_current("/v1/issuers", Some(&world.lender_key))
        .await;
    let issuer = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["did"] == world.did.as_str())
        .unwrap()
        .clone();
    assert!(issuer["keys"][0]["revoked_at"].is_string(), "{issuer}");
    assert!(issuer["keys"][1]["revoked_at"].is_null());
    // A status list signed with the revoked key is refused.
    let key = TestKey::ed25519(1);
    let token = key.sign(
        &json!({"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": "key-1"}),
        &json!({"iss": world.did, "sub": world.uri, "iat": now(), "status_list": {"bits": 1, "lst": lst(&[0], 1)}}),
    );
    let published = world
        .app
        .post(
            "/v1/status-lists",
            Some(&world.app.operator_key),
            &json!({"uri": world.uri, "token": token}),
        )
        .await;
    assert_eq!(published.status, 422, "{}", published.text);
}

pub async fn status_lists_with_numbers_the_log_cannot_hold_are_refused_plainly<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let world = world(open).await;
    let key = TestKey::ed25519(1);
    for (name, value) in [
        ("exp", json!(i64::MAX)),
        ("ttl", json!(u64::MAX)),
        ("iat", json!(1e300)),
    ] {
        let mut payload = json!({"iss": world.did, "sub": world.uri, "iat": now(), "status_list": {"bits": 2, "lst": lst(&[0; 8], 2)}});
        payload[name] = value;
        let token = key.sign(
            &json!({"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": "key-1"}),
            &payload,
        );
        let published = world
            .app
            .post(
                "/v1/status-lists",
                Some(&world.app.operator_key),
                &json!({"uri": world.uri, "token": token}),
            )
            .await;
        assert_eq!(
            (published.status, published.code()),
            (422, "VALIDATION_FAILED"),
            "{name}: {}",
            published.text
        );
        assert!(
            published.body["detail"].as_str().unwrap().contains(name),
            "{}",
            published.text
        );
    }
    // The list in place is the one the operator sees; a lender may not look.
    let operator = Some(world.app.operator_key.as_str());
    let lists = world.app.get_current("/v1/status-lists", operator).await;
    let items = lists.body["items"].as_array().cloned().unwrap_or_default();
    let list = items.iter().find(|l| l["uri"] == world.uri.as_str());
    let list = list.unwrap_or_else(|| panic!("{}", lists.text));
    assert_eq!(
        (&list["source"], &list["issuer"]),
        (&json!("posted"), &json!(world.did))
    );
    assert!(
        list["iat"].is_i64() && list["fetched_at"].is_null(),
        "{list}"
    );
    let lender = Some(world.lender_key.as_str());
    assert_eq!(world.app.get("/v1/status-lists", lender).await.status, 403);
    // The list in place still answers: no verification is stuck on a 500.
    let (issued, disclosures) = world.issue(&key, "key-1", now() - 600, 3);
    let nonce = fresh_nonce();
    let answer = world
        .verify(&world.present(&issued, &disclosures, &nonce), &nonce)
        .await;
    assert_eq!(answer.body["verified"], true, "{}", answer.text);
}

pub async fn a_flood_of_wrong_secrets_costs_at_most_the_failure_budget<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(ApiSettings {
        failed_auth_per_minute: 10,
        ..ApiSettings::default()
    })
    .await;
    let (_, key) = app
        .register_lender(&format!(
            "flood-{}@acme.example",
            uuid::Uuid::now_v7().simple()
        ))
        .await;
    assert_eq!(
        app.get("/v1/lenders/me", Some(&key)).await.status,
        200,
        "cached"
    );
    let before = app.state.auth.argon2_verifications();
    // The prefix is public (it is in the log); 100 wrong secrets at once.
    let (head, _) = key.split_at(3 + 16 + 1);
    let attempts = (0..100).map(|n| {
        let forged = format!("{head}{n:043}");
        let app = &app;
        async move { app.get("/v1/lenders/me", Some(&forged)).await.status }
    });
    let statuses = futures::future::join_all(attempts).await;
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 429 | 503)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
    let spent = app.state.auth.argon2_verifications() - before;
    assert!(
        spent <= 10,
        "{spent} argon2 verifications for a budget of 10"
    );
    // The lender's own key, known as valid, is not held back.
    assert_eq!(app.get("/v1/lenders/me", Some(&key)).await.status, 200);
}

pub async fn auditors_rotate_and_revoke_their_keys_like_lenders<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(ApiSettings::default()).await;
    let registered = app
        .post(
            "/v1/auditors",
            Some(&app.operator_key),
            &json!({"name": "Ledger Audit"}),
        )
        .await;
    let old = registered.body["api_key"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/v1/events?limit=1", Some(&old)).await.status, 200);
    let rotated = app
        .post(
            "/v1/auditors/me/api-keys/rotate",
            Some(&old),
            &json!({"grace_period_seconds": 3600}),
        )
        .await;
    assert_eq!(rotated.status, 201, "{}", rotated.text);
    let new = rotated.body["api_key"].as_str().unwrap().to_owned();
    assert!(rotated.body["previous_key_valid_until"].is_string());
    for key in [&old, &new] {
        assert_eq!(
            app.get("/v1/events?limit=1", Some(key)).await.status,
            200,
            "in its grace"
        );
    }
    // Only the current key rotates or revokes; the current one is not revoked.
    let by_old = app
        .post("/v1/auditors/me/api-keys/rotate", Some(&old), &json!({}))
        .await;
    assert_eq!(by_old.status, 403, "{}", by_old.text);
    let prefix = |k: &str| k.split('_').nth(1).unwrap().to_owned();
    let current = app
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/auditors/me/api-keys/{}", prefix(&new)),
            Some(&new),
            None,
            &[],
        )
        .await;
    assert_eq!(current.status, 409, "{}", current.text);
    let revoked = app
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/auditors/me/api-keys/{}", prefix(&old)),
            Some(&new),
            None,
            &[],
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(
        app.get("/v1/events?limit=1", Some(&old)).await.status,
        401,
        "revoked at once"
    );
    assert_eq!(app.get("/v1/events?limit=1", Some(&new)).await.status, 200);
    let too_long = app
        .post(
            "/v1/auditors/me/api-keys/rotate",
            Some(&new),
            &json!({"grace_period_seconds": 604_801}),
        )
        .await;
    assert_eq!(too_long.status, 422);
    // Lenders and the operator have no auditor keys to rotate.
    let (_, lender) = app
        .register_lender(&format!("a-{}@acme.example", uuid::Uuid::now_v7().simple()))
        .await;
    for key in [&lender, &app.operator_key] {
        let answer = app
            .post("/v1/auditors/me/api-keys/rotate", Some(key), &json!({}))
            .await;
        assert_eq!(answer.status, 403);
    }
}

pub async fn a_command_past_the_time_limit_is_answered_with_its_result<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    // 3 s: the lender's registration (an argon2 hash, in a debug build, on a
    // machine busy with other suites) must fit in the limit too; at 1 s it
    // did not, once, in CI.
    let app = open(ApiSettings {
        request_timeout: std::time::Duration::from_secs(3),
        ..ApiSettings::default()
    })
    .await;
    let (_, key) = app
        .register_lender(&format!(
            "late-{}@acme.example",
            uuid::Uuid::now_v7().simple()
        ))
        .await;
    assert_eq!(
        app.get("/v1/lenders/me", Some(&key)).await.status,
        200,
        "cached"
    );
    // The writer is held for 5 s: the verification's append waits past
    // the 3 s limit, then commits. The lender is answered with the result,
    // not a 503 for something recorded (its nonce is spent either way).
    let held = app
        .hold_writer_lock(std::time::Duration::from_millis(5_000))
        .await;
    let started = std::time::Instant::now();
    let nonce = fresh_nonce();
    let answer = app
        .post(
            "/v1/verifications",
            Some(&key),
            &json!({"presentation": "not an sd-jwt", "nonce": nonce}),
        )
        .await;
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(3),
        "it outlived the limit"
    );
    assert_eq!(answer.status, 201, "{}", answer.text);
    assert_eq!(answer.body["failed_step"], "DECODE");
    assert!(answer.body["receipt"].is_string());
    held.await.unwrap();
    assert_eq!(recorded_for(&app, &nonce).await.len(), 1);
    // A request that starts no command is still cut at the limit.
    let waited = app
        .get("/v1/verifications?min_position=99999999", Some(&key))
        .await;
    assert_eq!(
        (waited.status, waited.code()),
        (503, "UNAVAILABLE"),
        "{}",
        waited.text
    );
    assert!(
        waited.body["detail"]
            .as_str()
            .unwrap()
            .contains("took longer"),
        "{}",
        waited.text
    );
}

pub async fn live_tails_are_bounded_and_end_when_their_key_does<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(ApiSettings {
        tails_per_key: 2,
        tails_total: 3,
        tail_recheck: std::time::Duration::from_millis(200),
        ..ApiSettings::default()
    })
    .await;
    let auditor = |name: &'static str| {
        let app = &app;
        async move {
            app.post(
                "/v1/auditors",
                Some(&app.operator_key),
                &json!({"name": name}),
            )
            .await
            .body["api_key"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (first, second) = (auditor("First Audit").await, auditor("Second Audit").await);
    let open_tail = |key: &str| {
        app.client
            .get(format!("{}/v1/events/stream", app.base))
            .bearer_auth(key)
            .send()
    };
    let a = open_tail(&first).await.unwrap();
    let b = open_tail(&first).await.unwrap();
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let over_key = open_tail(&first).await.unwrap();
    assert_eq!(over_key.status(), 429, "a key's share");
    assert!(over_key.headers().contains_key("retry-after"));
    let c = open_tail(&second).await.unwrap();
    assert_eq!(c.status(), 200);
    let over_all = open_tail(&app.operator_key).await.unwrap();
    assert_eq!(over_all.status(), 503, "the service's total");
    // A tail that ends gives its place back.
    drop(b);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let d = loop {
        let d = open_tail(&first).await.unwrap();
        if d.status() == 200 {
            break d;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the place is given back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };

    // The second auditor rotates with no grace: its old key's tail ends.
    let rotated = app
        .post(
            "/v1/auditors/me/api-keys/rotate",
            Some(&second),
            &json!({"grace_period_seconds": 0}),
        )
        .await;
    assert_eq!(rotated.status, 201, "{}", rotated.text);
    let mut c = c;
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        // Read until the server closes the stream.
        while let Ok(Some(_)) = c.chunk().await {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "a revoked key's tail ends within its recheck"
    );
    drop((a, d));
}
