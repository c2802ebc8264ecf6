//! The flows that verify: by reference (GET, and POST with a
//! `wallet_nonce`), by value, encrypted, with an ES256 holder, with
//! `claim_sets`, `credential_sets` and `multiple`.

use serde_json::json;

use super::world::{World, identity_query, names};
use proofline::oid4vp_wallet::Behaviour;

pub async fn verified_flows(world: &World) {
    // By reference with GET, answered by the CLI's wallet as a process:
    // exactly the three claims asked are disclosed.
    let created = world.create(json!({"dcql_query": identity_query()})).await;
    assert_eq!(created["status"], "pending", "{created}");
    assert!(
        created["client_id"]
            .as_str()
            .unwrap()
            .starts_with("decentralized_identifier:did:key:z6Mk"),
        "{created}"
    );
    let answered = world.wallet_process(&created, &[]);
    assert_eq!(answered["status"], 200, "{answered}");
    assert_eq!(answered["body"], json!({}), "{answered}");
    let result = world.result(&created).await;
    assert_eq!(result["status"], "verified", "{result}");
    assert_eq!(result["dcql_satisfied"], true, "{result}");
    let shown = &result["presentations"]["identity"][0];
    assert_eq!(shown["verified"], true, "{result}");
    assert_eq!(
        names(&shown["disclosed_claim_names"]),
        ["address.country", "family_name", "given_name"],
        "{result}"
    );
    assert_eq!(
        shown["disclosed_claims"],
        json!({"given_name": "Ada", "family_name": "Lovelace", "address": {"country": "GB"}}),
        "{result}"
    );

    // By reference with POST and a wallet_nonce; by value; encrypted.
    for body in [
        json!({"dcql_query": identity_query(), "request_uri_method": "post"}),
        json!({"dcql_query": identity_query(), "request_by": "value"}),
        json!({"dcql_query": identity_query(), "response_mode": "direct_post.jwt"}),
        json!({"dcql_query": identity_query(), "response_mode": "direct_post.jwt",
               "request_uri_method": "post"}),
    ] {
        let created = world.create(body.clone()).await;
        let link = created["authorization_request"].as_str().unwrap();
        if body.get("request_by").is_some() {
            assert!(link.contains("request="), "{link}");
            assert!(created["request_uri"].is_null(), "{created}");
        } else {
            assert!(link.contains("request_uri="), "{link}");
        }
        assert_eq!(
            link.contains("request_uri_method=post"),
            body.get("request_uri_method").is_some(),
            "{link}"
        );
        let posted = world
            .answer(&created, &[world.ada()], &Behaviour::default())
            .await;
        assert_eq!(posted.status, 200, "{body}: {}", posted.body);
        if body.get("request_uri_method").is_some() {
            assert!(posted.request.contains_key("wallet_nonce"));
        }
        if body.get("response_mode").is_some() {
            let keys = &posted.request["client_metadata"]["jwks"]["keys"];
            assert_eq!(
                keys.as_array().map(Vec::len),
                Some(1),
                "one key per request"
            );
            assert_eq!(keys[0]["alg"], "ECDH-ES");
        }
        let result = world.result(&created).await;
        assert_eq!(result["status"], "verified", "{body}: {result}");
    }

    // direct_post.jwt with A256GCM, the other encoding offered.
    let created = world
        .create(json!({"dcql_query": identity_query(), "response_mode": "direct_post.jwt"}))
        .await;
    let a256 = Behaviour {
        enc: Some(proofline_domain::jwe::ContentEncryption::A256Gcm),
        ..Behaviour::default()
    };
    let posted = world.answer(&created, &[world.ada()], &a256).await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    assert_eq!(
        posted.request["client_metadata"]["encrypted_response_enc_values_supported"],
        json!(["A128GCM", "A256GCM"])
    );
    assert_eq!(world.result(&created).await["status"], "verified");

    // An ES256 holder.
    let created = world.create(json!({"dcql_query": identity_query()})).await;
    let posted = world
        .answer(&created, &[world.ada_es256()], &Behaviour::default())
        .await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    assert_eq!(world.result(&created).await["status"], "verified");

    // claim_sets: the first set asks a claim the credential lacks, the
    // wallet falls back to the second.
    let query = json!({"credentials": [{
        "id": "identity", "format": "dc+sd-jwt",
        "meta": {"vct_values": [proofline::wallet::DEMO_VCT]},
        "claims": [
            {"id": "n", "path": ["nationality"]},
            {"id": "g", "path": ["given_name"]},
            {"id": "b", "path": ["birthdate"]},
        ],
        "claim_sets": [["n", "g"], ["g", "b"]],
    }]});
    let created = world.create(json!({"dcql_query": query})).await;
    let posted = world
        .answer(&created, &[world.ada()], &Behaviour::default())
        .await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    let result = world.result(&created).await;
    assert_eq!(
        names(&result["presentations"]["identity"][0]["disclosed_claim_names"]),
        ["birthdate", "given_name"],
        "{result}"
    );

    // credential_sets: either an identity or a diploma; the wallet holds
    // the identity only.
    let query = json!({
        "credentials": [
            {"id": "identity", "format": "dc+sd-jwt",
             "meta": {"vct_values": [proofline::wallet::DEMO_VCT]},
             "claims": [{"path": ["family_name"]}]},
            {"id": "diploma", "format": "dc+sd-jwt",
             "meta": {"vct_values": ["https://credentials.example/diploma"]}},
        ],
        "credential_sets": [{"options": [["diploma"], ["identity"]]}],
    });
    let created = world.create(json!({"dcql_query": query})).await;
    let posted = world
        .answer(&created, &[world.ada()], &Behaviour::default())
        .await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    let result = world.result(&created).await;
    assert_eq!(result["status"], "verified", "{result}");
    assert!(result["presentations"].get("diploma").is_none(), "{result}");

    // §8.6: a presentation that fails a step is discarded and the query
    // judged on the others: one of two options still satisfies the set.
    let query = json!({
        "credentials": [
            {"id": "first", "format": "dc+sd-jwt",
             "meta": {"vct_values": [proofline::wallet::DEMO_VCT]},
             "claims": [{"path": ["given_name"]}]},
            {"id": "second", "format": "dc+sd-jwt",
             "meta": {"vct_values": [proofline::wallet::DEMO_VCT]},
             "claims": [{"path": ["family_name"]}]},
        ],
        "credential_sets": [{"options": [["first"], ["second"]]}],
    });
    let created = world.create(json!({"dcql_query": query})).await;
    let link = created["authorization_request"].as_str().unwrap();
    let request =
        proofline::oid4vp_wallet::fetch_request(&world.client, link, &Behaviour::default())
            .await
            .unwrap();
    let (nonce, client_id) = (
        request["nonce"].as_str().unwrap(),
        request["client_id"].as_str().unwrap(),
    );
    let present = |claim: &str, nonce: &str| {
        proofline::oid4vp_wallet::present_paths(
            &world.ada(),
            &[vec![claim.to_owned()]],
            nonce,
            client_id,
        )
        .unwrap()
    };
    let token = json!({
        "first": [present("given_name", "a-nonce-of-another-request")],
        "second": [present("family_name", nonce)],
    });
    let posted = world
        .post_response(&[
            ("vp_token", token.to_string()),
            ("state", request["state"].as_str().unwrap().to_owned()),
        ])
        .await;
    assert_eq!(posted.0, 200, "{}", posted.1);
    let result = world.result(&created).await;
    assert_eq!(result["status"], "verified", "{result}");
    assert_eq!(
        result["presentations"]["first"][0]["verified"], false,
        "{result}"
    );
    assert_eq!(
        result["presentations"]["first"][0]["reason"],
        "nonce_mismatch"
    );
    assert_eq!(result["presentations"]["second"][0]["verified"], true);

    // multiple: two credentials of the type, both presented.
    let query = json!({"credentials": [{
        "id": "identity", "format": "dc+sd-jwt", "multiple": true,
        "meta": {"vct_values": [proofline::wallet::DEMO_VCT]},
        "claims": [{"path": ["given_name"]}],
    }]});
    let created = world.create(json!({"dcql_query": query})).await;
    let posted = world
        .answer(
            &created,
            &[world.ada(), world.ada_es256()],
            &Behaviour::default(),
        )
        .await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    let result = world.result(&created).await;
    assert_eq!(
        result["presentations"]["identity"].as_array().map(Vec::len),
        Some(2),
        "{result}"
    );

    // The list, from the read model at the last position.
    let position = result["position"].as_u64().unwrap();
    let listed = world
        .get(&format!(
            "/v1/presentation-requests?status=verified&min_position={position}"
        ))
        .await;
    assert!(
        listed["items"].as_array().map_or(0, Vec::len) >= 9,
        "{listed}"
    );
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["status"] == "verified" && i["dcql_satisfied"] == true),
        "{listed}"
    );
}
