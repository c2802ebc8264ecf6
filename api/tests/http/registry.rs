//! The cases of the HTTP contract for the trust registry: issuers, their
//! keys, and status lists.

use std::future::Future;

use proofline_api::ApiSettings;
use proofline_domain::did::Did;
use proofline_domain::jose::PublicKey;
use proofline_domain::jose::testing::TestKey;
use proofline_domain::status_list::testing::lst;
use proofline_domain::status_list::{ListUri, TOKEN_TYPE};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TestApp;

fn did_key_of(key: &TestKey) -> Did {
    match key.public() {
        PublicKey::Ed25519(public) => Did::from_ed25519(&public),
        PublicKey::P256(_) => panic!("did:key here is Ed25519"),
    }
}

fn web_did() -> String {
    format!("did:web:issuer-{}.example", uuid::Uuid::now_v7().simple())
}

fn jwk(key: &TestKey) -> Value {
    serde_json::to_value(key.public().to_jwk()).unwrap()
}

async fn register_web_issuer(app: &TestApp, did: &str) -> crate::support::Answer {
    app.post(
        "/v1/issuers",
        Some(&app.operator_key),
        &json!({
            "did": did,
            "name": "State ID Office",
            "keys": [{"kid": "key-1", "jwk": jwk(&TestKey::ed25519(1))}, {"kid": "key-2", "jwk": jwk(&TestKey::p256(2))}],
            "credential_types": ["https://credentials.example/identity"],
        }),
    )
    .await
}

pub async fn issuers_register_and_are_listed_to_every_role<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(ApiSettings::default()).await;
    let did_key = did_key_of(&TestKey::ed25519(7));
    let first = app
        .post(
            "/v1/issuers",
            Some(&app.operator_key),
            &json!({"did": did_key.as_str(), "name": "Wallet Issuer"}),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.body["did"], did_key.as_str());
    assert!(first.body["issuer_id"].is_string() && first.body["position"].is_u64());
    let web = web_did();
    let second = register_web_issuer(&app, &web).await;
    assert_eq!(second.status, 201, "{}", second.text);

    let (_, lender) = app
        .register_lender(&format!("l-{}@acme.example", uuid::Uuid::now_v7().simple()))
        .await;
    let auditor = app
        .post(
            "/v1/auditors",
            Some(&app.operator_key),
            &json!({"name": "Audit"}),
        )
        .await;
    let auditor = auditor.body["api_key"].as_str().unwrap().to_owned();
    for key in [&app.operator_key, &lender, &auditor] {
        let listed = app.get_current("/v1/issuers", Some(key)).await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        let items = listed.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["did"], did_key.as_str());
        assert_eq!(
            items[0]["keys"].as_array().unwrap().len(),
            1,
            "a did:key carries one key"
        );
        assert_eq!(items[1]["keys"][1]["jwk"]["crv"], "P-256");
        assert_eq!(
            items[1]["credential_types"][0],
            "https://credentials.example/identity"
        );
        assert_eq!(items[1]["status"], "active");
    }
    assert_eq!(app.get("/v1/issuers", None).await.status, 401);

    let duplicate = register_web_issuer(&app, &web).await;
    assert_eq!((duplicate.status, duplicate.code()), (409, "CONFLICT"));
    let private = {
        let mut jwk = jwk(&TestKey::ed25519(3));
        jwk["d"] = json!("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
        json!({"did": web_did(), "name": "X", "keys": [{"kid": "k", "jwk": jwk}]})
    };
    let invalid = [
        json!({"did": "not-a-did", "name": "X", "keys": [{"kid": "k", "jwk": jwk(&TestKey::ed25519(3))}]}),
        json!({"did": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta20OIl", "name": "X"}),
        json!({"did": did_key_of(&TestKey::ed25519(8)).as_str(), "name": "X", "keys": [{"kid": "k", "jwk": jwk(&TestKey::ed25519(3))}]}),
        // No keys, and no source that would give a did:web any.
        json!({"did": web_did(), "name": "X", "key_sources": ["registered"]}),
        json!({"did": web_did(), "name": "X", "key_sources": ["oracle"]}),
        json!({"did": "https://issuer.example", "name": "X", "key_sources": ["did"]}),
        json!({"did": web_did(), "name": "X", "key_sources": ["did"], "keys": [{"kid": "k", "jwk": jwk(&TestKey::ed25519(3))}]}),
        json!({"did": web_did(), "name": "X", "keys": [{"kid": "k", "jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}]}),
        private,
    ];
    for body in invalid {
        let answer = app
            .post("/v1/issuers", Some(&app.operator_key), &body)
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (422, "VALIDATION_FAILED"),
            "{body}: {}",
            answer.text
        );
    }
    assert!(
        !app.all_events()
            .await
            .iter()
            .any(|e| e.data.to_string().contains("nWGxne_9WmC6hEr0")),
        "a private key never reaches the log"
    );
}

pub async fn issuer_keys_are_added_and_retired<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(ApiSettings::default()).await;
    let did = web_did();
    register_web_issuer(&app, &did).await;
    let operator = Some(app.operator_key.as_str());
    let added = app
        .post(
            &format!("/v1/issuers/{did}/keys"),
            operator,
            &json!({"kid": "did-url#key-3", "jwk": jwk(&TestKey::ed25519(3))}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.text);
    let again = app
        .post(
            &format!("/v1/issuers/{did}/keys"),
            operator,
            &json!({"kid": "did-url#key-3", "jwk": jwk(&TestKey::ed25519(4))}),
        )
        .await;
    assert_eq!((again.status, again.code()), (409, "CONFLICT"));
    let unknown_issuer = app
        .post(
            &format!("/v1/issuers/{}/keys", web_did()),
            operator,
            &json!({"kid": "k", "jwk": jwk(&TestKey::ed25519(4))}),
        )
        .await;
    assert_eq!(
        (unknown_issuer.status, unknown_issuer.code()),
        (404, "NOT_FOUND")
    );

    // A kid with a '#' travels percent-encoded.
    let retired = app
        .call(
            Method::DELETE,
            &format!("/v1/issuers/{did}/keys/did-url%23key-3"),
            operator,
            None,
            &[],
        )
        .await;
    assert_eq!(retired.status, 200, "{}", retired.text);
    let twice = app
        .call(
            Method::DELETE,
            &format!("/v1/issuers/{did}/keys/did-url%23key-3"),
            operator,
            None,
            &[],
        )
        .await;
    assert_eq!((twice.status, twice.code()), (409, "CONFLICT"));
    let missing = app
        .call(
            Method::DELETE,
            &format!("/v1/issuers/{did}/keys/nope"),
            operator,
            None,
            &[],
        )
        .await;
    assert_eq!((missing.status, missing.code()), (404, "NOT_FOUND"));
    let listed = app.get_current("/v1/issuers", operator).await;
    let keys = listed.body["items"][0]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    assert!(keys[2]["retired_at"].is_string());
    assert!(keys[0]["retired_at"].is_null());
    // did:key issuers take no extra keys.
    let did_key = did_key_of(&TestKey::ed25519(9));
    app.post(
        "/v1/issuers",
        operator,
        &json!({"did": did_key.as_str(), "name": "W"}),
    )
    .await;
    let refused = app
        .post(
            &format!("/v1/issuers/{did_key}/keys"),
            operator,
            &json!({"kid": "k", "jwk": jwk(&TestKey::ed25519(4))}),
        )
        .await;
    assert_eq!((refused.status, refused.code()), (422, "VALIDATION_FAILED"));
}

pub async fn issuers_are_suspended_and_reinstated<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(ApiSettings::default()).await;
    let did = web_did();
    register_web_issuer(&app, &did).await;
    let operator = Some(app.operator_key.as_str());
    let suspended = app
        .post(&format!("/v1/issuers/{did}/suspend"), operator, &json!({}))
        .await;
    assert_eq!(
        (suspended.status, suspended.body["status"].as_str()),
        (200, Some("suspended")),
        "{}",
        suspended.text
    );
    assert_eq!(
        app.get_current("/v1/issuers", operator).await.body["items"][0]["status"],
        "suspended"
    );
    let twice = app
        .post(&format!("/v1/issuers/{did}/suspend"), operator, &json!({}))
        .await;
    assert_eq!((twice.status, twice.code()), (409, "CONFLICT"));
    let reinstated = app
        .post(
            &format!("/v1/issuers/{did}/reinstate"),
            operator,
            &json!({}),
        )
        .await;
    assert_eq!(reinstated.status, 200);
    assert_eq!(
        app.get_current("/v1/issuers", operator).await.body["items"][0]["status"],
        "active"
    );
    let unknown = app
        .post(
            &format!("/v1/issuers/{}/suspend", web_did()),
            operator,
            &json!({}),
        )
        .await;
    assert_eq!((unknown.status, unknown.code()), (404, "NOT_FOUND"));
    let bad_did = app
        .post("/v1/issuers/not-a-did/suspend", operator, &json!({}))
        .await;
    assert_eq!(bad_did.status, 404);
}

fn list_token(key: &TestKey, kid: &str, uri: &str, statuses: &[u8], bits: u8, iat: i64) -> String {
    key.sign(
        &json!({"alg": key.alg(), "typ": TOKEN_TYPE, "kid": kid}),
        &json!({"sub": uri, "iat": iat, "ttl": 600, "status_list": {"bits": bits, "lst": lst(statuses, bits)}}),
    )
}

pub async fn status_lists_are_checked_published_and_replaced_only_by_newer_ones<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(ApiSettings::default()).await;
    let did = web_did();
    register_web_issuer(&app, &did).await;
    let operator = Some(app.operator_key.as_str());
    let uri = format!("https://{}.example/status/1", uuid::Uuid::now_v7().simple());
    let now = chrono::Utc::now().timestamp();
    let ed = TestKey::ed25519(1);
    let kid = format!("{did}#key-1");

    let statuses: Vec<u8> = (0..256u32).map(|i| u8::from(i % 5 == 0)).collect();
    let first = app
        .post(
            "/v1/status-lists",
            operator,
            &json!({"uri": uri, "token": list_token(&ed, &kid, &uri, &statuses, 1, now - 60)}),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.body["uri"], uri.as_str());
    let list = app
        .state
        .registry
        .status_list(&ListUri::parse(&uri).unwrap())
        .await
        .unwrap();
    let list = list.as_ref().as_ref().expect("published");
    assert_eq!(
        (list.status(0), list.status(1), list.status(255)),
        (Some(1), Some(0), Some(1))
    );
    assert_eq!(list.version, 1);

    let older = app
        .post(
            "/v1/status-lists",
            operator,
            &json!({"uri": uri, "token": list_token(&ed, &kid, &uri, &[0], 1, now - 120)}),
        )
        .await;
    assert_eq!(
        (older.status, older.code()),
        (409, "CONFLICT"),
        "{}",
        older.text
    );
    let p256 = TestKey::p256(2);
    let newer = app
        .post(
            "/v1/status-lists",
            operator,
            &json!({"uri": uri, "token": list_token(&p256, "key-2", &uri, &[2, 0], 2, now)}),
        )
        .await;
    assert_eq!(newer.status, 201, "{}", newer.text);
    let list = app
        .state
        .registry
        .status_list(&ListUri::parse(&uri).unwrap())
        .await
        .unwrap();
    let list = list.as_ref().as_ref().unwrap();
    assert_eq!((list.status(0), list.version, list.bits), (Some(2), 2, 2));

    let refused = [
        (
            "unregistered key",
            list_token(
                &TestKey::ed25519(50),
                &format!("{did}#key-9"),
                &uri,
                &[0],
                1,
                now + 1,
            ),
        ),
        (
            "bad signature",
            list_token(&TestKey::ed25519(50), &kid, &uri, &[0], 1, now + 1),
        ),
        (
            "other subject",
            list_token(&ed, &kid, "https://elsewhere.example/x", &[0], 1, now + 1),
        ),
        (
            "unknown issuer",
            list_token(&ed, &format!("{}#key-1", web_did()), &uri, &[0], 1, now + 1),
        ),
        ("not a JWS", "not.a.jws".to_owned()),
    ];
    for (what, token) in refused {
        let answer = app
            .post(
                "/v1/status-lists",
                operator,
                &json!({"uri": uri, "token": token}),
            )
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (422, "VALIDATION_FAILED"),
            "{what}: {}",
            answer.text
        );
    }
    app.post(&format!("/v1/issuers/{did}/suspend"), operator, &json!({}))
        .await;
    let suspended = app
        .post(
            "/v1/status-lists",
            operator,
            &json!({"uri": uri, "token": list_token(&ed, &kid, &uri, &[0], 1, now + 2)}),
        )
        .await;
    assert_eq!(
        (suspended.status, suspended.code()),
        (422, "VALIDATION_FAILED"),
        "{}",
        suspended.text
    );
    assert!(
        suspended.body["detail"]
            .as_str()
            .unwrap()
            .contains("suspended")
    );
    let bad_uri = app
        .post(
            "/v1/status-lists",
            operator,
            &json!({"uri": "ftp://x/y", "token": "a.b.c"}),
        )
        .await;
    assert_eq!(bad_uri.status, 422);

    // A first list whose token names its issuer nowhere needs the hint.
    let other = web_did();
    register_web_issuer(&app, &other).await;
    let fresh = format!("https://{}.example/status/2", uuid::Uuid::now_v7().simple());
    let token = list_token(&p256, "key-2", &fresh, &[0], 1, now);
    let unnamed = app
        .post(
            "/v1/status-lists",
            operator,
            &json!({"uri": fresh, "token": token}),
        )
        .await;
    assert_eq!((unnamed.status, unnamed.code()), (422, "VALIDATION_FAILED"));
    let hinted = app
        .post(
            "/v1/status-lists",
            operator,
            &json!({"uri": fresh, "token": token, "issuer": other}),
        )
        .await;
    assert_eq!(hinted.status, 201, "{}", hinted.text);
}

pub async fn lenders_may_not_write_the_registry<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(ApiSettings::default()).await;
    let did = web_did();
    register_web_issuer(&app, &did).await;
    let (_, lender) = app
        .register_lender(&format!("l-{}@acme.example", uuid::Uuid::now_v7().simple()))
        .await;
    let lender = Some(lender.as_str());
    let writes = [
        (
            Method::POST,
            "/v1/issuers".to_owned(),
            Some(
                json!({"did": web_did(), "name": "X", "keys": [{"kid": "k", "jwk": jwk(&TestKey::ed25519(3))}]}),
            ),
        ),
        (
            Method::POST,
            format!("/v1/issuers/{did}/keys"),
            Some(json!({"kid": "k9", "jwk": jwk(&TestKey::ed25519(3))})),
        ),
        (
            Method::DELETE,
            format!("/v1/issuers/{did}/keys/key-1"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/issuers/{did}/suspend"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/v1/issuers/{did}/reinstate"),
            Some(json!({})),
        ),
        (
            Method::POST,
            "/v1/status-lists".to_owned(),
            Some(json!({"uri": "https://x.example/1", "token": "a.b.c"})),
        ),
    ];
    for (method, path, body) in writes {
        let answer = app
            .call(method.clone(), &path, lender, body.as_ref(), &[])
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (403, "FORBIDDEN"),
            "{method} {path}: {}",
            answer.text
        );
    }
    let listed = app
        .get_current("/v1/issuers", Some(&app.operator_key))
        .await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "nothing was written"
    );
    assert_eq!(
        listed.body["items"][0]["keys"][0]["retired_at"],
        Value::Null
    );
}
