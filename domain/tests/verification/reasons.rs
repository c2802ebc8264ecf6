//! Every reason code, reached by a presentation built for it.

use proofline_domain::issuer::{IssuerCommand, Kid};
use proofline_domain::jose::b64url_encode;
use proofline_domain::jose::testing::TestKey;
use proofline_domain::verification::{ClaimPath, Step};
use serde_json::{Value, json};

use crate::support::{AUDIENCE, NONCE, NOW, World, failure, t};

fn all(disclosures: &[String]) -> Vec<&str> {
    disclosures.iter().map(String::as_str).collect()
}

#[test]
fn a_valid_presentation_verifies_with_nested_and_array_disclosures_and_decoys() {
    let world = World::new();
    let (issued, disclosures) = world.issue();
    let outcome = world.verify(&world.present(&issued, &all(&disclosures)));
    assert!(outcome.verified(), "{:?}", outcome.steps);
    assert_eq!(
        outcome.steps.iter().map(|s| s.name).collect::<Vec<_>>(),
        Step::ALL
    );
    assert!(
        outcome
            .steps
            .iter()
            .all(|s| s.passed && !s.detail.is_empty())
    );
    let claims = Value::Object(outcome.disclosed_claims().unwrap());
    assert_eq!(
        claims,
        json!({"given_name": "Erika", "family_name": "Mustermann", "address": {"country": "DE", "locality": "Köln"}, "nationalities": ["DE", "FR"]})
    );
    assert_eq!(outcome.issuer.as_deref(), Some(world.did.as_str()));
    assert_eq!(outcome.vct.as_deref(), Some(crate::support::VCT));
}

#[test]
fn a_subset_of_disclosures_hides_the_rest() {
    let world = World::new();
    let (issued, disclosures) = world.issue();
    // given_name only (the first Disclosure).
    let outcome = world.verify(&world.present(&issued, &[&disclosures[0]]));
    assert!(outcome.verified(), "{:?}", outcome.steps);
    let claims = Value::Object(outcome.disclosed_claims().unwrap());
    assert_eq!(claims, json!({"given_name": "Erika", "nationalities": []}));
    assert_eq!(outcome.disclosed_paths, vec!["given_name"]);
}

#[test]
fn the_p256_curve_works_both_ways() {
    let world = World::with_web_issuer();
    let (issued, disclosures) = world.issue();
    let outcome = world.verify(&world.present(&issued, &all(&disclosures)));
    assert!(outcome.verified(), "{:?}", outcome.steps);
    assert_eq!(outcome.kid.as_deref(), Some("k1"));
}

#[test]
fn decode_refuses_none_hmac_and_foreign_types() {
    let world = World::new();
    for (header, reason) in [
        (
            json!({"alg": "none", "typ": "dc+sd-jwt"}),
            "alg_not_allowed",
        ),
        (
            json!({"alg": "HS256", "typ": "dc+sd-jwt"}),
            "alg_not_allowed",
        ),
        (
            json!({"alg": "RS256", "typ": "dc+sd-jwt"}),
            "alg_not_allowed",
        ),
        (json!({"alg": "EdDSA", "typ": "JWT"}), "typ_invalid"),
        (json!({"alg": "EdDSA"}), "typ_invalid"),
    ] {
        let (issued, disclosures) = world.issue_with(json!({}), Some(header.clone()));
        let outcome = world.verify(&world.present(&issued, &all(&disclosures)));
        assert_eq!(
            failure(&outcome),
            (Some("DECODE"), Some(reason.into())),
            "{header}"
        );
        assert_eq!(outcome.steps.len(), 1, "no later step runs");
    }
    for garbage in ["", "~", "abc", "a.b.c~", "not base64~x~"] {
        assert_eq!(
            world.verify(garbage).failed_step,
            Some(Step::Decode),
            "{garbage:?}"
        );
    }
    let (issued, _) = world.issue();
    let bad_disclosure = b64url_encode(br#"["salt"]"#);
    let outcome = world.verify(&world.present(&issued, &[&bad_disclosure]));
    assert_eq!(
        failure(&outcome),
        (Some("DECODE"), Some("disclosure_malformed".into()))
    );
}

#[test]
fn alg_confusion_fails_at_signature() {
    // The Ed25519 key's credential claims ES256: the key decides, so it fails.
    let world = World::new();
    let kid = world.issuer.keys[0].kid.as_str().to_owned();
    let (issued, disclosures) = world.issue_with(
        json!({}),
        Some(json!({"alg": "ES256", "typ": "dc+sd-jwt", "kid": kid})),
    );
    let outcome = world.verify(&world.present(&issued, &all(&disclosures)));
    assert_eq!(
        failure(&outcome),
        (Some("SIGNATURE"), Some("alg_key_mismatch".into()))
    );
}

#[test]
fn freshness_reasons() {
    let world = World::new();
    let (expired, disclosures) = world.issue_with(json!({"exp": NOW - 3600}), None);
    assert_eq!(
        failure(&world.verify(&world.present(&expired, &all(&disclosures)))),
        (Some("FRESHNESS"), Some("credential_expired".into()))
    );
    let (future, disclosures) = world.issue_with(json!({"nbf": NOW + 3600}), None);
    assert_eq!(
        failure(&world.verify(&world.present(&future, &all(&disclosures)))),
        (Some("FRESHNESS"), Some("credential_not_yet_valid".into()))
    );

    let (issued, disclosures) = world.issue();
    let old = world.present_bound(
        &issued,
        &all(&disclosures),
        NONCE,
        AUDIENCE,
        NOW - 301 - 60,
        &world.holder_key,
    );
    assert_eq!(
        failure(&world.verify(&old)),
        (Some("FRESHNESS"), Some("kb_iat_too_old".into()))
    );
    let ahead = world.present_bound(
        &issued,
        &all(&disclosures),
        NONCE,
        AUDIENCE,
        NOW + 120,
        &world.holder_key,
    );
    assert_eq!(
        failure(&world.verify(&ahead)),
        (Some("FRESHNESS"), Some("kb_iat_in_future".into()))
    );
    let other_nonce = world.present_bound(
        &issued,
        &all(&disclosures),
        "another",
        AUDIENCE,
        NOW,
        &world.holder_key,
    );
    assert_eq!(
        failure(&world.verify(&other_nonce)),
        (Some("FRESHNESS"), Some("nonce_mismatch".into()))
    );
    // Within the skew, and a minute-old binding, pass.
    let skewed = world.present_bound(
        &issued,
        &all(&disclosures),
        NONCE,
        AUDIENCE,
        NOW + 30,
        &world.holder_key,
    );
    assert!(world.verify(&skewed).verified());
}

#[test]
fn a_replayed_nonce_fails_at_freshness() {
    let world = World::new();
    let (issued, disclosures) = world.issue();
    let replayed = world
        .verify(&world.present(&issued, &all(&disclosures)))
        .replayed();
    assert_eq!(
        failure(&replayed),
        (Some("FRESHNESS"), Some("nonce_replayed".into()))
    );
    assert_eq!(
        replayed.steps.iter().map(|s| s.name).collect::<Vec<_>>(),
        vec![Step::Decode, Step::Freshness]
    );
    assert!(replayed.disclosed_claims().is_none());
    // A presentation that could not even be decoded stays a DECODE failure.
    assert_eq!(
        world.verify("garbage").replayed().failed_step,
        Some(Step::Decode)
    );
}

#[test]
fn issuer_auth_reasons() {
    let mut world = World::new();
    let (issued, disclosures) = world.issue();
    let presentation = world.present(&issued, &all(&disclosures));
    let stranger = World::new().issue_with(json!({"iss": "did:web:stranger.example"}), None);
    assert_eq!(
        failure(&world.verify(&world.present(&stranger.0, &all(&stranger.1)))),
        (Some("ISSUER_AUTH"), Some("issuer_unknown".into()))
    );
    let (other_vct, d) =
        world.issue_with(json!({"vct": "https://credentials.example/other"}), None);
    assert_eq!(
        failure(&world.verify(&world.present(&other_vct, &all(&d)))),
        (Some("ISSUER_AUTH"), Some("vct_not_allowed".into()))
    );
    let (no_vct, d) = world.issue_with(json!({"vct": null}), None);
    assert_eq!(
        failure(&world.verify(&world.present(&no_vct, &all(&d)))),
        (Some("ISSUER_AUTH"), Some("vct_not_allowed".into()))
    );
    let (unknown_kid, d) = world.issue_with(
        json!({}),
        Some(json!({"alg": "EdDSA", "typ": "dc+sd-jwt", "kid": "did:key:z6Mkother#z6Mkother"})),
    );
    assert_eq!(
        failure(&world.verify(&world.present(&unknown_kid, &all(&d)))),
        (Some("ISSUER_AUTH"), Some("key_unknown".into()))
    );

    world.issuer_does(IssuerCommand::Suspend, t(-10));
    assert_eq!(
        failure(&world.verify(&presentation)),
        (Some("ISSUER_AUTH"), Some("issuer_suspended".into()))
    );
    world.issuer_does(IssuerCommand::Reinstate, t(-5));
    assert!(world.verify(&presentation).verified());

    // Retired after issuance: credentials issued before still verify; one
    // issued after the retirement never does.
    let kid = Kid::parse(world.issuer.keys[0].kid.as_str()).unwrap();
    world.issuer_does(IssuerCommand::RetireKey { kid }, t(-1800));
    assert!(
        world.verify(&presentation).verified(),
        "issued an hour ago, retired half an hour ago"
    );
    let (after, d) = world.issue_with(json!({"iat": NOW - 60}), None);
    assert_eq!(
        failure(&world.verify(&world.present(&after, &all(&d)))),
        (Some("ISSUER_AUTH"), Some("key_retired".into()))
    );
}

#[test]
fn signature_and_disclosure_reasons() {
    let world = World::new();
    let (issued, disclosures) = world.issue();
    // A payload byte changed: the signature no longer covers it.
    let mut parts: Vec<String> = issued
        .split('~')
        .next()
        .unwrap()
        .split('.')
        .map(str::to_owned)
        .collect();
    let mut payload: Value =
        serde_json::from_slice(&proofline_domain::jose::b64url_decode(&parts[1]).unwrap()).unwrap();
    payload["exp"] = json!(NOW + 999_999);
    parts[1] = b64url_encode(serde_json::to_vec(&payload).unwrap());
    let tampered = parts.join(".");
    assert_eq!(
        failure(&world.verify(&world.present(&tampered, &all(&disclosures)))),
        (Some("SIGNATURE"), Some("signature_invalid".into()))
    );

    // A Disclosure of another credential.
    let (_, foreign) = World::new().issue_with(json!({"given_name": "Max"}), None);
    let mut with_foreign = all(&disclosures);
    with_foreign.push(&foreign[0]);
    assert_eq!(
        failure(&world.verify(&world.present(&issued, &with_foreign))),
        (Some("SIGNATURE"), Some("disclosure_unreferenced".into()))
    );

    // The same Disclosure twice.
    let mut twice = all(&disclosures);
    twice.push(&disclosures[0]);
    assert_eq!(
        failure(&world.verify(&world.present(&issued, &twice))),
        (Some("SIGNATURE"), Some("disclosure_duplicate".into()))
    );

    // A nested Disclosure without its parent is unreferenced.
    let country = &disclosures[2];
    assert_eq!(
        failure(&world.verify(&world.present(&issued, &[country]))),
        (Some("SIGNATURE"), Some("disclosure_unreferenced".into()))
    );
}

#[test]
fn revocation_reasons() {
    let mut world = World::new();
    let (with_status, disclosures) = world.issue_with(
        json!({"status": {"status_list": {"idx": 3, "uri": crate::support::LIST_URI}}}),
        None,
    );
    let presentation = world.present(&with_status, &all(&disclosures));
    assert_eq!(
        failure(&world.verify(&presentation)),
        (Some("REVOCATION"), Some("status_list_unknown".into())),
        "fails closed"
    );
    world.publish_list(&[0, 0, 0, 0, 0]);
    let outcome = world.verify(&presentation);
    assert!(outcome.verified(), "{:?}", outcome.steps);
    assert_eq!(
        outcome
            .status
            .as_ref()
            .map(|s| (s.uri.as_str(), s.list_version, s.status)),
        Some((crate::support::LIST_URI, 1, 0))
    );
    world.publish_list(&[0, 0, 0, 1, 0]);
    assert_eq!(
        failure(&world.verify(&presentation)),
        (Some("REVOCATION"), Some("status_revoked".into()))
    );
    world.publish_list(&[0, 0, 0, 2, 0]);
    assert_eq!(
        failure(&world.verify(&presentation)),
        (Some("REVOCATION"), Some("status_suspended".into()))
    );
    let (far, d) = world.issue_with(
        json!({"status": {"status_list": {"idx": 100_000, "uri": crate::support::LIST_URI}}}),
        None,
    );
    assert_eq!(
        failure(&world.verify(&world.present(&far, &all(&d)))),
        (Some("REVOCATION"), Some("status_index_out_of_range".into()))
    );
}

#[test]
fn holder_binding_reasons() {
    let mut world = World::new();
    let (issued, disclosures) = world.issue();
    let unbound = proofline_domain::sd_jwt::present(&issued, &all(&disclosures), None);
    assert_eq!(
        failure(&world.verify(&unbound)),
        (Some("HOLDER_BINDING"), Some("kb_missing".into()))
    );
    let stranger = TestKey::p256(99);
    let forged = world.present_bound(&issued, &all(&disclosures), NONCE, AUDIENCE, NOW, &stranger);
    assert_eq!(
        failure(&world.verify(&forged)),
        (Some("HOLDER_BINDING"), Some("kb_signature_invalid".into()))
    );
    let wrong_curve = world.present_bound(
        &issued,
        &all(&disclosures),
        NONCE,
        AUDIENCE,
        NOW,
        &TestKey::ed25519(3),
    );
    assert_eq!(
        failure(&world.verify(&wrong_curve)),
        (Some("HOLDER_BINDING"), Some("kb_signature_invalid".into()))
    );
    let elsewhere = world.present_bound(
        &issued,
        &all(&disclosures),
        NONCE,
        "https://other.example",
        NOW,
        &world.holder_key,
    );
    assert_eq!(
        failure(&world.verify(&elsewhere)),
        (Some("HOLDER_BINDING"), Some("aud_mismatch".into()))
    );
    // A Disclosure dropped after the holder signed: sd_hash no longer covers the presentation.
    let signed = world.present(&issued, &all(&disclosures));
    let kb = signed.rsplit('~').next().unwrap();
    let fewer = format!(
        "{}{kb}",
        proofline_domain::sd_jwt::present(&issued, &all(&disclosures[1..]), None)
    );
    assert_eq!(
        failure(&world.verify(&fewer)),
        (Some("HOLDER_BINDING"), Some("sd_hash_mismatch".into()))
    );
    let (no_cnf, d) = world.issue_with(json!({"cnf": null}), None);
    assert_eq!(
        failure(&world.verify(&world.present(&no_cnf, &all(&d)))),
        (Some("HOLDER_BINDING"), Some("cnf_missing".into()))
    );
    // A lender that opts out accepts an unbound presentation.
    world.require_holder_binding = false;
    assert!(world.verify(&unbound).verified());
}

#[test]
fn claims_reasons() {
    let mut world = World::new();
    let (issued, disclosures) = world.issue();
    world.required = vec![
        ClaimPath::parse("address.country").unwrap(),
        ClaimPath::parse("given_name").unwrap(),
    ];
    assert!(
        world
            .verify(&world.present(&issued, &all(&disclosures)))
            .verified()
    );
    // address without its country.
    let without_country: Vec<&str> = vec![&disclosures[0], &disclosures[3]];
    let outcome = world.verify(&world.present(&issued, &without_country));
    assert_eq!(
        failure(&outcome),
        (Some("CLAIMS"), Some("claim_missing".into()))
    );
    assert!(
        outcome
            .steps
            .last()
            .unwrap()
            .detail
            .contains("address.country")
    );
    world.required = vec![ClaimPath::parse("nationalities.1").unwrap()];
    assert_eq!(
        failure(&world.verify(&world.present(&issued, &[&disclosures[4]]))),
        (Some("CLAIMS"), Some("claim_missing".into()))
    );
    assert!(ClaimPath::parse("a..b").is_err() && ClaimPath::parse("").is_err());
}
