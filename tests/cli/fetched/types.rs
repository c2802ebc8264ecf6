//! Type metadata a credential pins with `vct#integrity`: fetched with what
//! it extends and checked; a digest that does not match, or a document
//! that is not there, fails ISSUER_AUTH `type_metadata_invalid`; without
//! `vct#integrity` nothing is fetched.

use proofline::wallet::{Issuer, demo_claims, present_to, random_token};
use proofline_commands::signing::ServiceKey;
use proofline_domain::discovery::integrity_of;
use serde_json::{Value, json};

use super::world::{Doc, World, now, outcome};

fn json_doc(value: &Value) -> (Doc, String) {
    let body = value.to_string().into_bytes();
    let integrity = integrity_of(&body);
    (
        Doc::Body {
            content_type: "application/json",
            body,
            delay: std::time::Duration::ZERO,
        },
        integrity,
    )
}

/// A presentation of a credential of type `vct`, pinned by `integrity`
/// when given.
fn typed(world: &World, issuer: &Issuer, vct: &str, integrity: Option<&str>) -> (String, String) {
    let holder = ServiceKey::generate().unwrap();
    let (mut claims, concealed) = demo_claims();
    claims.insert("vct".into(), vct.into());
    if let Some(integrity) = integrity {
        claims.insert("vct#integrity".into(), integrity.into());
    }
    let (issued, disclosures) =
        issuer.issue(&holder.verifying_key(), claims, concealed, None, now() - 5);
    let nonce = random_token();
    let presentation = present_to(
        &holder,
        &issued,
        &disclosures,
        &nonce,
        &world.audience,
        now(),
    );
    (presentation, nonce)
}

pub async fn pinned_type_metadata(world: &World) {
    let issuer = Issuer::new(ServiceKey::generate().unwrap());
    let (status, body) = world
        .post_as_operator(
            "/v1/issuers",
            json!({"did": issuer.did.as_str(), "name": "Typed Issuer"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let published = &world.server.published;
    let base_url = world.server.url("/types/base");
    let (base, base_integrity) = json_doc(&json!({"vct": base_url, "name": "Base"}));
    published.put("/types/base", base);
    let identity_url = world.server.url("/types/identity");
    let (identity, identity_integrity) = json_doc(&json!({
        "vct": identity_url, "name": "Identity",
        "extends": base_url, "extends#integrity": base_integrity,
    }));
    published.put("/types/identity", identity);

    let answer = world
        .verify(&typed(
            world,
            &issuer,
            &identity_url,
            Some(&identity_integrity),
        ))
        .await;
    assert_eq!(outcome(&answer), (true, None, None), "{answer}");
    assert_eq!(published.hits("/types/identity"), 1);
    assert_eq!(published.hits("/types/base"), 1, "what it extends too");

    // A digest that does not match.
    let wrong = integrity_of(b"another document");
    let answer = world
        .verify(&typed(world, &issuer, &identity_url, Some(&wrong)))
        .await;
    assert_eq!(
        outcome(&answer),
        (false, Some("ISSUER_AUTH"), Some("type_metadata_invalid")),
        "{answer}"
    );
    // A document that is not there.
    let missing = world.server.url("/types/missing");
    let answer = world
        .verify(&typed(world, &issuer, &missing, Some(&identity_integrity)))
        .await;
    assert_eq!(
        outcome(&answer),
        (false, Some("ISSUER_AUTH"), Some("type_metadata_invalid")),
        "{answer}"
    );
    // Not pinned: not fetched.
    let unpinned = world.server.url("/types/unpinned");
    let answer = world.verify(&typed(world, &issuer, &unpinned, None)).await;
    assert_eq!(outcome(&answer), (true, None, None), "{answer}");
    assert_eq!(published.hits("/types/unpinned"), 0);
}
