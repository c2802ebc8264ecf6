//! What must fail, and be recorded with its reason: a wrong nonce or
//! audience, no Key Binding JWT, the same response twice, an old vp_token
//! in a new request, an unknown state, an expired request, a presentation
//! that does not satisfy the query; and a wallet's `access_denied`, stored.

use serde_json::{Value, json};

use super::world::{World, identity_query};
use proofline::oid4vp_wallet::{Behaviour, fetch_request};

/// Answers a fresh request with `behaviour`; the post's status and the
/// lender's result.
async fn refused(world: &World, behaviour: Behaviour) -> (u16, Value, Value) {
    let created = world.create(json!({"dcql_query": identity_query()})).await;
    let posted = world.answer(&created, &[world.ada()], &behaviour).await;
    (posted.status, posted.body, world.result(&created).await)
}

pub async fn refusals(world: &World) {
    for (behaviour, reason) in [
        (
            Behaviour {
                nonce: Some("another-nonce".into()),
                ..Behaviour::default()
            },
            "nonce_mismatch",
        ),
        (
            Behaviour {
                audience: Some("decentralized_identifier:did:key:z6MkOther".into()),
                ..Behaviour::default()
            },
            "aud_mismatch",
        ),
        (
            Behaviour {
                no_key_binding: true,
                ..Behaviour::default()
            },
            "kb_missing",
        ),
    ] {
        let (status, body, result) = refused(world, behaviour).await;
        assert_eq!(status, 400, "{reason}: {body}");
        assert_eq!(body["error"], "invalid_request", "{body}");
        assert_eq!(result["status"], "rejected", "{result}");
        assert_eq!(result["rejection"], "presentation_invalid", "{result}");
        let shown = &result["presentations"]["identity"][0];
        assert_eq!(shown["reason"], reason, "{result}");
        assert!(shown["disclosed_claims"].is_null(), "{result}");
    }

    // The same response twice: the first wins, the second is refused and
    // changes nothing.
    let created = world.create(json!({"dcql_query": identity_query()})).await;
    let posted = world
        .answer(&created, &[world.ada()], &Behaviour::default())
        .await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    let state = posted.request["state"].as_str().unwrap().to_owned();
    let again = world
        .post_response(&[
            ("vp_token", posted.vp_token.to_string()),
            ("state", state.clone()),
        ])
        .await;
    assert_eq!(again.0, 400, "{}", again.1);
    assert_eq!(world.result(&created).await["status"], "verified");

    // That vp_token in a new request: bound to the old nonce.
    let fresh = world.create(json!({"dcql_query": identity_query()})).await;
    let link = fresh["authorization_request"].as_str().unwrap();
    let request = fetch_request(&world.client, link, &Behaviour::default())
        .await
        .unwrap();
    let replayed = world
        .post_response(&[
            ("vp_token", posted.vp_token.to_string()),
            ("state", request["state"].as_str().unwrap().to_owned()),
        ])
        .await;
    assert_eq!(replayed.0, 400, "{}", replayed.1);
    let result = world.result(&fresh).await;
    assert_eq!(
        result["presentations"]["identity"][0]["reason"], "nonce_mismatch",
        "{result}"
    );

    // An unknown state, and a body that is not a form: 400, never 5xx.
    let unknown = world
        .post_response(&[("vp_token", "{}".into()), ("state", "nobody-knows".into())])
        .await;
    assert_eq!(unknown.0, 400, "{}", unknown.1);
    assert_eq!(unknown.1["error_description"], "unknown state");
    // Recorded with its reason on the stream of unmatched responses.
    let log = world.log().await;
    let unmatched: Vec<&Value> = log
        .iter()
        .filter(|e| e["type"] == "UnmatchedResponseRefused")
        .collect();
    assert_eq!(unmatched.len(), 1, "{log:?}");
    assert_eq!(unmatched[0]["stream_id"], "oid4vp-unmatched");
    assert_eq!(unmatched[0]["data"]["reason"], "unknown_state");
    assert!(!unmatched[0].to_string().contains("nobody-knows"));
    let not_a_form = world
        .client
        .post(format!("{}/oid4vp/response", world.base))
        .json(&json!({"state": state}))
        .send()
        .await
        .unwrap();
    assert_eq!(not_a_form.status(), 400);

    // A presentation that does not satisfy the query: the query asks a
    // claim the wallet then leaves out.
    let query = json!({"credentials": [{
        "id": "identity", "format": "dc+sd-jwt",
        "meta": {"vct_values": [proofline::wallet::DEMO_VCT]},
        "claims": [{"path": ["given_name"]}, {"path": ["birthdate"]}],
    }]});
    let created = world.create(json!({"dcql_query": query})).await;
    let request = fetch_request(
        &world.client,
        created["authorization_request"].as_str().unwrap(),
        &Behaviour::default(),
    )
    .await
    .unwrap();
    let nonce = request["nonce"].as_str().unwrap();
    let client_id = request["client_id"].as_str().unwrap();
    let credential = world.ada();
    let given_name_only = proofline::oid4vp_wallet::present_paths(
        &credential,
        &[vec!["given_name".to_owned()]],
        nonce,
        client_id,
    )
    .unwrap();
    let short = world
        .post_response(&[
            (
                "vp_token",
                json!({"identity": [given_name_only]}).to_string(),
            ),
            ("state", request["state"].as_str().unwrap().to_owned()),
        ])
        .await;
    assert_eq!(short.0, 400, "{}", short.1);
    let result = world.result(&created).await;
    assert_eq!(result["rejection"], "query_not_satisfied", "{result}");
    assert_eq!(result["dcql_satisfied"], false, "{result}");
    assert_eq!(result["presentations"]["identity"][0]["verified"], true);

    // A vp_token that answers a credential query the request does not have.
    let created = world.create(json!({"dcql_query": identity_query()})).await;
    let request = fetch_request(
        &world.client,
        created["authorization_request"].as_str().unwrap(),
        &Behaviour::default(),
    )
    .await
    .unwrap();
    let stray = world
        .post_response(&[
            ("vp_token", json!({"nope": ["x~"]}).to_string()),
            ("state", request["state"].as_str().unwrap().to_owned()),
        ])
        .await;
    assert_eq!(stray.0, 400, "{}", stray.1);
    let result = world.result(&created).await;
    assert_eq!(result["rejection"], "malformed_vp_token", "{result}");

    // A client's request id of any length never breaks a wallet's fetch.
    let created = world.create(json!({"dcql_query": identity_query()})).await;
    let fetched = world
        .client
        .get(created["request_uri"].as_str().unwrap())
        .header("x-request-id", "r".repeat(2000))
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);

    // An error without encryption is taken for a direct_post.jwt request
    // (§8.3.2: a wallet that cannot encrypt may still say so).
    let created = world
        .create(json!({"dcql_query": identity_query(), "response_mode": "direct_post.jwt"}))
        .await;
    let request = fetch_request(
        &world.client,
        created["authorization_request"].as_str().unwrap(),
        &Behaviour::default(),
    )
    .await
    .unwrap();
    let state = request["state"].as_str().unwrap().to_owned();
    let unencrypted = world
        .post_response(&[("vp_token", "{}".into()), ("state", state.clone())])
        .await;
    assert_eq!(unencrypted.0, 400, "a vp_token must be encrypted");
    let plain_error = world
        .post_response(&[("error", "access_denied".into()), ("state", state)])
        .await;
    assert_eq!(plain_error.0, 200, "{}", plain_error.1);
    assert_eq!(world.result(&created).await["status"], "wallet_error");

    // access_denied: stored, answered 200.
    let created = world.create(json!({"dcql_query": identity_query()})).await;
    let declined = world.wallet_process(&created, &["--decline"]);
    assert_eq!(declined["status"], 200, "{declined}");
    let result = world.result(&created).await;
    assert_eq!(result["status"], "wallet_error", "{result}");
    assert_eq!(result["wallet_error"]["error"], "access_denied", "{result}");
}

/// An expired request: 410 on fetch, 400 on post. Requests live at least
/// 60 s, so this waits for the service to say the request expired.
pub async fn expiry(world: &World) {
    let created = world
        .create(json!({"dcql_query": identity_query(), "expires_in": 60}))
        .await;
    let link = created["authorization_request"].as_str().unwrap();
    let request = fetch_request(&world.client, link, &Behaviour::default())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if world.result(&created).await["status"] == "expired" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never expired");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let uri = created["request_uri"].as_str().unwrap();
    let fetched = world.client.get(uri).send().await.unwrap();
    assert_eq!(fetched.status(), 410);
    let late = world
        .post_response(&[
            ("error", "access_denied".into()),
            ("state", request["state"].as_str().unwrap().to_owned()),
        ])
        .await;
    assert_eq!(late.0, 400, "{}", late.1);
    let result = world.result(&created).await;
    assert_eq!(result["status"], "expired", "{result}");
}
