//! Issuer keys discovered from the issuer's own documents: a did:web DID
//! document, SD-JWT VC issuer metadata with `jwks` or `jwks_uri`; each
//! verifies, or fails with its own reason.

use proofline::wallet::{DEMO_VCT, Issuer, okp_jwk};
use proofline_commands::signing::ServiceKey;
use proofline_domain::did::Did;
use serde_json::{Value, json};

use super::world::{Doc, World, outcome, presentation_of, step_detail};

fn json_doc(value: Value) -> Doc {
    Doc::Body {
        content_type: "application/json",
        body: value.to_string().into_bytes(),
        delay: std::time::Duration::ZERO,
    }
}

/// Registers `did` with `key_sources` and no keys.
async fn register(world: &World, did: &str, sources: &[&str]) {
    let (status, body) = world
        .post_as_operator(
            "/v1/issuers",
            json!({"did": did, "name": "Discovered Issuer", "credential_types": [DEMO_VCT], "key_sources": sources}),
        )
        .await;
    assert_eq!(status, 201, "{did}: {body}");
}

/// The DID document of a did:web issuer with one Ed25519 key.
fn did_document(did: &str, key: &ServiceKey) -> Value {
    json!({
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": did,
        "verificationMethod": [{
            "id": format!("{did}#key-1"),
            "type": "JsonWebKey2020",
            "controller": did,
            "publicKeyJwk": okp_jwk(&key.verifying_key()),
        }],
        "assertionMethod": [format!("{did}#key-1")],
    })
}

/// A did:web issuer whose key is read from its DID document: verifies,
/// and the log keeps the document's digest and the key; the record names
/// the key's source. A document that does not answer, or whose `id` is
/// another DID: `issuer_keys_unavailable`, saying why.
pub async fn did_web(world: &World) {
    let port = world.server.address.port();
    let did = format!("did:web:localhost%3A{port}");
    let key = ServiceKey::generate().unwrap();
    world
        .server
        .published
        .put("/.well-known/did.json", json_doc(did_document(&did, &key)));
    register(world, &did, &["did"]).await;
    let issuer = Issuer::with_did(key, Did::parse(&did).unwrap(), format!("{did}#key-1"));
    let answer = world
        .verify(&presentation_of(&issuer, None, &world.audience))
        .await;
    assert_eq!(outcome(&answer), (true, None, None), "{answer}");
    let resolved = world.events("IssuerKeysResolved").await;
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    let data = &resolved[0]["data"];
    assert_eq!(data["source"], "did");
    assert_eq!(
        data["source_url"],
        world.server.url("/.well-known/did.json")
    );
    assert_eq!(data["document_sha256"].as_str().map(str::len), Some(64));
    assert_eq!(data["keys"][0]["kid"], format!("{did}#key-1"));
    let verified = world.events("PresentationVerified").await;
    let used = &verified.last().unwrap()["data"]["key"];
    assert_eq!(used["source"], "did", "{used}");
    assert_eq!(used["resolved_version"], 2, "{used}");

    // The registry shows each key's source and last resolution.
    let position = answer["position"].as_u64().unwrap();
    let listed = world
        .get_as_operator(&format!("/v1/issuers?min_position={position}"))
        .await;
    let entry = listed["items"]
        .as_array()
        .or(listed.as_array())
        .into_iter()
        .flatten()
        .find(|i| i["did"] == did.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{did} in {listed}"));
    assert_eq!(entry["key_sources"], json!(["did"]), "{entry}");
    assert_eq!(entry["keys"][0]["source"], "did", "{entry}");
    assert!(
        entry["keys"][0]["resolution"]["resolved_at"].is_string(),
        "{entry}"
    );

    // Another did:web whose document is not there.
    let missing = format!("did:web:localhost%3A{port}:issuers:missing");
    register(world, &missing, &["did"]).await;
    let absent = Issuer::with_did(
        ServiceKey::generate().unwrap(),
        Did::parse(&missing).unwrap(),
        format!("{missing}#key-1"),
    );
    let answer = world
        .verify(&presentation_of(&absent, None, &world.audience))
        .await;
    assert_eq!(
        outcome(&answer),
        (false, Some("ISSUER_AUTH"), Some("issuer_keys_unavailable")),
        "{answer}"
    );
    assert!(
        step_detail(&answer, "ISSUER_AUTH").contains("HTTP 404"),
        "{answer}"
    );

    // One whose document names another DID.
    let other = format!("did:web:localhost%3A{port}:issuers:other");
    let key = ServiceKey::generate().unwrap();
    world.server.published.put(
        "/issuers/other/did.json",
        json_doc(did_document("did:web:elsewhere.example", &key)),
    );
    register(world, &other, &["did"]).await;
    let stranger = Issuer::with_did(key, Did::parse(&other).unwrap(), format!("{other}#key-1"));
    let answer = world
        .verify(&presentation_of(&stranger, None, &world.audience))
        .await;
    assert_eq!(
        outcome(&answer),
        (false, Some("ISSUER_AUTH"), Some("issuer_keys_unavailable")),
        "{answer}"
    );
    assert_eq!(world.events("IssuerKeysResolved").await.len(), 1);
}

/// https issuers whose keys come from SD-JWT VC issuer metadata: inline
/// `jwks`, and `jwks_uri`; metadata naming another issuer is refused.
pub async fn issuer_metadata(world: &World) {
    let jwk = |key: &ServiceKey, kid: &str| {
        let mut jwk = okp_jwk(&key.verifying_key());
        jwk["kid"] = kid.into();
        jwk["use"] = "sig".into();
        jwk
    };
    // Inline jwks.
    let inline = world.server.url("/issuers/inline");
    let key = ServiceKey::generate().unwrap();
    world.server.published.put(
        "/.well-known/jwt-vc-issuer/issuers/inline",
        json_doc(json!({"issuer": inline, "jwks": {"keys": [jwk(&key, "k1")]}})),
    );
    register(world, &inline, &["metadata"]).await;
    let issuer = Issuer::with_did(key, Did::parse(&inline).unwrap(), "k1".into());
    let answer = world
        .verify(&presentation_of(&issuer, None, &world.audience))
        .await;
    assert_eq!(outcome(&answer), (true, None, None), "{answer}");

    // jwks_uri.
    let by_uri = world.server.url("/issuers/by-uri");
    let key = ServiceKey::generate().unwrap();
    world.server.published.put(
        "/.well-known/jwt-vc-issuer/issuers/by-uri",
        json_doc(json!({"issuer": by_uri, "jwks_uri": world.server.url("/jwks/by-uri")})),
    );
    world
        .server
        .published
        .put("/jwks/by-uri", json_doc(json!({"keys": [jwk(&key, "k2")]})));
    register(world, &by_uri, &["metadata"]).await;
    let issuer = Issuer::with_did(key, Did::parse(&by_uri).unwrap(), "k2".into());
    let answer = world
        .verify(&presentation_of(&issuer, None, &world.audience))
        .await;
    assert_eq!(outcome(&answer), (true, None, None), "{answer}");
    let resolved = world.events("IssuerKeysResolved").await;
    let sources: Vec<&Value> = resolved.iter().map(|e| &e["data"]["source_url"]).collect();
    assert!(
        sources.contains(&&json!(world.server.url("/jwks/by-uri"))),
        "{sources:?}"
    );

    // Metadata that names another issuer.
    let impostor = world.server.url("/issuers/impostor");
    let key = ServiceKey::generate().unwrap();
    world.server.published.put(
        "/.well-known/jwt-vc-issuer/issuers/impostor",
        json_doc(
            json!({"issuer": "https://elsewhere.example", "jwks": {"keys": [jwk(&key, "k3")]}}),
        ),
    );
    register(world, &impostor, &["metadata"]).await;
    let issuer = Issuer::with_did(key, Did::parse(&impostor).unwrap(), "k3".into());
    let answer = world
        .verify(&presentation_of(&issuer, None, &world.audience))
        .await;
    assert_eq!(
        outcome(&answer),
        (false, Some("ISSUER_AUTH"), Some("issuer_keys_unavailable")),
        "{answer}"
    );
    assert!(
        step_detail(&answer, "ISSUER_AUTH").contains("issuer"),
        "{answer}"
    );
}
