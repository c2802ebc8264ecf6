//! The other `client_id` prefixes: `x509_san_dns:` and `x509_hash:` with
//! a chain from a CA made here, and `redirect_uri:` (unsigned, by value);
//! and what the log and the lender keep of the values.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::world::{World, identity_query};
use proofline::oid4vp_wallet::Behaviour;

/// A CA and a leaf for `verifier.example` with a P-256 key, as PEM files
/// (chain: leaf then CA) in `dir`; the CA's DER.
pub fn x509_files(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Proofline Test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf_params = rcgen::CertificateParams::new(vec!["verifier.example".to_owned()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &*ca).unwrap();
    let chain = dir.join("chain.pem");
    let key = dir.join("leaf.key");
    std::fs::write(&chain, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    (chain, key, ca.der().to_vec())
}

pub async fn x509_and_redirect_uri(configure: impl Fn(&Path) -> (Command, std::path::PathBuf)) {
    let dir = tempfile::tempdir().unwrap();
    let (chain, key, anchor) = x509_files(dir.path());
    // One data directory for the three services, one after the other (the
    // operator key a first start creates is in it).
    let data = dir.path().join("data");
    for (client_id, prefix) in [
        ("x509_san_dns", "x509_san_dns:verifier.example"),
        ("x509_hash", "x509_hash:"),
    ] {
        let (mut command, data) = configure(&data);
        command
            .env("PROOFLINE_OID4VP_CLIENT_ID", client_id)
            .env("PROOFLINE_OID4VP_X509_CHAIN_FILE", &chain)
            .env("PROOFLINE_OID4VP_X509_KEY_FILE", &key);
        let world = World::start(command, data).await;
        let created = world.create(json!({"dcql_query": identity_query()})).await;
        assert!(
            created["client_id"].as_str().unwrap().starts_with(prefix),
            "{created}"
        );
        let trusting = Behaviour {
            trust_anchors: vec![anchor.clone()],
            ..Behaviour::default()
        };
        let posted = world.answer(&created, &[world.ada()], &trusting).await;
        assert_eq!(posted.status, 200, "{}", posted.body);
        assert_eq!(world.result(&created).await["status"], "verified");
        // A wallet that does not trust the CA refuses the request.
        let created = world.create(json!({"dcql_query": identity_query()})).await;
        let link = created["authorization_request"].as_str().unwrap();
        let untrusting =
            proofline::oid4vp_wallet::fetch_request(&world.client, link, &Behaviour::default())
                .await;
        if client_id == "x509_san_dns" {
            assert!(untrusting.is_err(), "no anchor, no trust");
        }
    }

    let (mut command, data) = configure(&data);
    command.env("PROOFLINE_OID4VP_CLIENT_ID", "redirect_uri");
    let world = World::start(command, data).await;
    let created = world.create(json!({"dcql_query": identity_query()})).await;
    let link = created["authorization_request"].as_str().unwrap();
    assert!(link.contains("client_id=redirect_uri%3A"), "{link}");
    assert!(link.contains("nonce="), "all by value: {link}");
    assert!(created["request_uri"].is_null(), "{created}");
    let posted = world
        .answer(&created, &[world.ada()], &Behaviour::default())
        .await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    assert_eq!(world.result(&created).await["status"], "verified");
}

/// No claim value in the log (nor, given its NATS server, on the bus);
/// the lender's values gone after the TTL.
pub async fn values_stay_out_of_the_log(world: &World, nats: Option<String>) {
    // Everything published from here on, as an analyst subscribes.
    let mut published = match &nats {
        Some(url) => {
            let client = async_nats::connect(url.as_str()).await.unwrap();
            Some(client.subscribe("proofline.events.>").await.unwrap())
        }
        None => None,
    };
    // A query whose `values` are claim values: they stay out of the log too.
    let mut query = identity_query();
    query["credentials"][0]["claims"][1]["values"] = json!(["Lovelace"]);
    let created = world
        .create(
            json!({"dcql_query": query, "same_device_return_url": "https://lender.example/done"}),
        )
        .await;
    let posted = world
        .answer(&created, &[world.ada()], &Behaviour::default())
        .await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    let redirect = posted.body["redirect_uri"].as_str().unwrap();
    let code = redirect
        .strip_prefix("https://lender.example/done#response_code=")
        .unwrap_or_else(|| panic!("{redirect}"));
    let id = created["request_id"].as_str().unwrap();
    // Same-device: the values only with the response code.
    let without = world.result(&created).await;
    assert!(
        without["presentations"]["identity"][0]["disclosed_claims"].is_null(),
        "{without}"
    );
    let with = world
        .get(&format!(
            "/v1/presentation-requests/{id}?response_code={code}"
        ))
        .await;
    assert_eq!(
        with["presentations"]["identity"][0]["disclosed_claims"]["family_name"], "Lovelace",
        "{with}"
    );
    // The whole log, as the operator reads it.
    let text = Value::Array(world.log().await).to_string();
    assert!(
        text.contains("PresentationResponseAccepted"),
        "the flow is in the log"
    );
    for value in [
        "Lovelace",
        "1815-12-10",
        code,
        posted.request["nonce"].as_str().unwrap(),
    ] {
        assert!(!text.contains(value), "{value} is in the log");
    }
    if let Some(subscriber) = &mut published {
        use futures::StreamExt;
        let mut bus = String::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while !bus.contains("PresentationResponseAccepted") {
            let message = tokio::time::timeout_at(deadline, subscriber.next())
                .await
                .expect("the answer reaches NATS")
                .expect("the subscription lives");
            bus.push_str(message.subject.as_str());
            bus.push_str(&String::from_utf8_lossy(&message.payload));
        }
        for value in ["Lovelace", "1815-12-10", code] {
            assert!(!bus.contains(value), "{value} is on NATS");
        }
    }
    // Gone after the TTL (the service runs with a short one).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let now = world
            .get(&format!(
                "/v1/presentation-requests/{id}?response_code={code}"
            ))
            .await;
        if now["presentations"]["identity"][0]["disclosed_claims"].is_null() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "values kept past the TTL"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
