//! The OpenID4VP endpoints as a wallet library meets them: the request
//! object on the points where libraries are known to differ, the response,
//! and the log's scan (when the app is dropped) over the new events.

use std::future::Future;

use proofline_api::ApiSettings;
use proofline_domain::did::Did;
use proofline_domain::jose::CompactJws;
use serde_json::{Value, json};

use crate::support::TestApp;
use crate::world::{VCT, now, world};

fn query() -> Value {
    json!({"credentials": [{
        "id": "identity",
        "format": "dc+sd-jwt",
        "meta": {"vct_values": [VCT]},
        "claims": [
            {"path": ["given_name"]},
            {"path": ["family_name"]},
            {"path": ["address", "country"]},
        ],
    }]})
}

/// The parameters of an `openid4vp://` link.
fn parameters(link: &str) -> std::collections::BTreeMap<String, String> {
    url::Url::parse(link)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub async fn a_wallet_flow_conforms_and_keeps_values_out_of_the_log<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let world = world(open).await;
    let app = &world.app;
    let created = app
        .post(
            "/v1/presentation-requests",
            Some(&world.lender_key),
            &json!({"dcql_query": query(), "request_uri_method": "post", "expires_in": 120}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let link = created.body["authorization_request"].as_str().unwrap();
    assert!(link.starts_with("openid4vp://?"), "{link}");
    let link = parameters(link);
    assert_eq!(link["request_uri_method"], "post");
    assert_eq!(
        link["client_id"],
        created.body["client_id"].as_str().unwrap()
    );

    // The request object, fetched as §5.10 says.
    let fetched = app
        .client
        .post(&link["request_uri"])
        .form(&[("wallet_nonce", "wn-1"), ("wallet_metadata", "{}")])
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(
        fetched.headers()["content-type"],
        "application/oauth-authz-req+jwt"
    );
    let jws = CompactJws::parse(&fetched.text().await.unwrap()).unwrap();
    assert_eq!(jws.typ(), Some("oauth-authz-req+jwt"));
    assert_eq!(jws.alg(), Some("EdDSA"));
    let claims = &jws.payload;
    let client_id = link["client_id"].as_str();
    assert_eq!(claims["client_id"], client_id, "byte-identical");
    let did = client_id
        .strip_prefix("decentralized_identifier:")
        .expect("the did:key prefix");
    assert!(jws.kid().unwrap().starts_with(&format!("{did}#")));
    jws.verify(&Did::parse(did).unwrap().key_of_did_key().unwrap())
        .expect("signed by the verifier key");
    assert_eq!(claims["aud"], "https://self-issued.me/v2");
    assert!(!claims.contains_key("iss") && !claims.contains_key("redirect_uri"));
    let exp = claims["exp"].as_i64().expect("exp is set");
    assert!(exp > now() && exp <= now() + 121, "exp {exp}");
    assert_eq!(claims["response_type"], "vp_token");
    assert_eq!(claims["response_mode"], "direct_post");
    assert_eq!(claims["wallet_nonce"], "wn-1");
    assert_eq!(claims["dcql_query"], query());
    assert_eq!(
        claims["response_uri"],
        format!("{}/oid4vp/response", app.base)
    );
    for token in ["nonce", "state"] {
        assert!(claims[token].as_str().unwrap().len() >= 22, "128 bits");
    }
    assert_eq!(
        claims["client_metadata"]["vp_formats_supported"]["dc+sd-jwt"]["kb-jwt_alg_values"],
        json!(["EdDSA", "ES256"])
    );
    // A second fetch, by GET, works as well (§5.10: GET always works).
    let again = app.client.get(&link["request_uri"]).send().await.unwrap();
    assert_eq!(again.status(), 200);

    // The response: every disclosure, bound to the nonce and the whole
    // client_id.
    let nonce = claims["nonce"].as_str().unwrap();
    let state = claims["state"].as_str().unwrap();
    let (issued, disclosures) = world.issue(
        &proofline_domain::jose::testing::TestKey::ed25519(1),
        "key-1",
        now() - 600,
        3,
    );
    let presentation = world.present_for(&issued, &disclosures, nonce, client_id);
    let form = [
        ("vp_token", json!({"identity": [presentation]}).to_string()),
        ("state", state.to_owned()),
    ];
    let posted = app
        .client
        .post(format!("{}/oid4vp/response", app.base))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    assert_eq!(posted.json::<Value>().await.unwrap(), json!({}));
    let twice = app
        .client
        .post(format!("{}/oid4vp/response", app.base))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400, "the first response wins");
    assert_eq!(
        twice.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );

    let id = created.body["request_id"].as_str().unwrap();
    let result = app
        .get(
            &format!("/v1/presentation-requests/{id}"),
            Some(&world.lender_key),
        )
        .await;
    assert_eq!(result.status, 200, "{}", result.text);
    assert_eq!(result.body["status"], "verified", "{}", result.text);
    let shown = &result.body["presentations"]["identity"][0];
    assert_eq!(shown["disclosed_claims"]["given_name"], "Erika");
    assert_eq!(shown["disclosed_claims"]["address"]["country"], "DE");
    // Another lender sees nothing of it.
    let (_, other) = app.register_lender("other-oid4vp@acme.example").await;
    let hidden = app
        .get(&format!("/v1/presentation-requests/{id}"), Some(&other))
        .await;
    assert_eq!(hidden.status, 404);
    let listed = app
        .get_current("/v1/presentation-requests", Some(&world.lender_key))
        .await;
    assert_eq!(listed.body["items"][0]["request_id"], id, "{}", listed.text);
    assert_eq!(listed.body["items"][0]["status"], "verified");
}

pub async fn the_wallet_endpoints_have_a_budget_per_address<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(ApiSettings {
        oid4vp_rate_per_minute: 3,
        ..ApiSettings::default()
    })
    .await;
    let unknown = format!("{}/oid4vp/requests/{}", app.base, uuid::Uuid::now_v7());
    for _ in 0..3 {
        let answer = app.client.get(&unknown).send().await.unwrap();
        assert_eq!(answer.status(), 404);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "OAuth JSON");
    }
    let limited = app
        .client
        .post(format!("{}/oid4vp/response", app.base))
        .form(&[("state", "s")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        limited.status(),
        429,
        "the budget is per address, not per route"
    );
    assert!(limited.headers().contains_key("retry-after"));
    // A lender's API is not charged to it.
    let health = app.get("/health/live", None).await;
    assert_eq!(health.status, 200);
}
