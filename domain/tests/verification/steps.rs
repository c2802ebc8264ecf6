//! The reasons of each step, tested step by step (with the cases of
//! `cases.rs`), and presentations that verify.

use proofline_domain::issuer::IssuerCommand;
use proofline_domain::jose::b64url_encode;
use proofline_domain::jose::testing::TestKey;
use proofline_domain::verification::{ClaimPath, Reason, Step};
use serde_json::{Value, json};

use crate::cases::{
    ADDRESS, COUNTRY, EVERY_DISCLOSURE, FIRST_NATIONALITY, GIVEN_NAME, all, bound, bound_with,
    crafted, disclosure_dropped_after_binding, entry, es256_claimed_for_an_ed25519_key, holder_key,
    issued_after_retirement, key_binding_not_a_jws, list_expiring_in_a_minute,
    list_of_another_issuer, listing, malformed_disclosure, nested_too_deep, once_suspended,
    presenting, referenced_as_a_property, referenced_as_an_element, referencing, replayed,
    tampered_payload, too_many_disclosures, unbound, with_status,
};
use crate::support::{AUDIENCE, LIST_URI, NONCE, NOW, World, disclosure, failure, t};

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
            Reason::AlgNotAllowed,
        ),
        (
            json!({"alg": "HS256", "typ": "dc+sd-jwt"}),
            Reason::AlgNotAllowed,
        ),
        (
            json!({"alg": "RS256", "typ": "dc+sd-jwt"}),
            Reason::AlgNotAllowed,
        ),
        (json!({"alg": "EdDSA", "typ": "JWT"}), Reason::TypInvalid),
        (json!({"alg": "EdDSA"}), Reason::TypInvalid),
    ] {
        let outcome = world.verify_issued(json!({}), Some(header.clone()));
        assert_eq!(
            failure(&outcome),
            (Some(Step::Decode), Some(reason)),
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
    assert_eq!(
        failure(&malformed_disclosure()),
        (Some(Step::Decode), Some(Reason::DisclosureMalformed))
    );
    assert_eq!(
        failure(&too_many_disclosures()),
        (Some(Step::Decode), Some(Reason::TooLarge))
    );
    assert_eq!(
        failure(&key_binding_not_a_jws()),
        (Some(Step::Decode), Some(Reason::KbMalformed))
    );
    assert_eq!(
        failure(&crafted(json!({"_sd_alg": "sha-512"}), &[])),
        (Some(Step::Decode), Some(Reason::SdAlgUnsupported))
    );
}

#[test]
fn alg_confusion_fails_at_signature() {
    // The Ed25519 key's credential claims ES256: the key decides, so it fails.
    assert_eq!(
        failure(&es256_claimed_for_an_ed25519_key()),
        (Some(Step::Signature), Some(Reason::AlgKeyMismatch))
    );
}

#[test]
fn freshness_reasons() {
    let world = World::new();
    assert_eq!(
        failure(&world.verify_issued(json!({"exp": NOW - 3600}), None)),
        (Some(Step::Freshness), Some(Reason::CredentialExpired))
    );
    assert_eq!(
        failure(&world.verify_issued(json!({"nbf": NOW + 3600}), None)),
        (Some(Step::Freshness), Some(Reason::CredentialNotYetValid))
    );
    // Issued beyond the skew; within it, it verifies.
    assert_eq!(
        failure(&world.verify_issued(json!({"iat": NOW + 61}), None)),
        (
            Some(Step::Freshness),
            Some(Reason::CredentialIssuedInFuture)
        )
    );
    assert!(
        world
            .verify_issued(json!({"iat": NOW + 60}), None)
            .verified()
    );
    // A time that is not a number (the out-of-range ones are in hardening.rs).
    assert_eq!(
        failure(&world.verify_issued(json!({"exp": "never"}), None)),
        (Some(Step::Freshness), Some(Reason::CredentialTimeInvalid))
    );

    assert_eq!(
        failure(&bound(NONCE, AUDIENCE, NOW - 301 - 60, None)),
        (Some(Step::Freshness), Some(Reason::KbIatTooOld))
    );
    assert_eq!(
        failure(&bound(NONCE, AUDIENCE, NOW + 120, None)),
        (Some(Step::Freshness), Some(Reason::KbIatInFuture))
    );
    assert_eq!(
        failure(&bound("another", AUDIENCE, NOW, None)),
        (Some(Step::Freshness), Some(Reason::NonceMismatch))
    );
    // A key binding without iat, or whose iat is not a number.
    for iat in [Value::Null, json!("yesterday"), json!(1e300)] {
        assert_eq!(
            failure(&bound_with(json!({}), json!({ "iat": iat }))),
            (Some(Step::Freshness), Some(Reason::KbIatInvalid)),
            "iat {iat}"
        );
    }
    // Within the skew, and a minute-old binding, pass.
    assert!(bound(NONCE, AUDIENCE, NOW + 30, None).verified());
}

#[test]
fn a_replayed_nonce_fails_at_freshness() {
    let world = World::new();
    let replayed = replayed();
    assert_eq!(
        failure(&replayed),
        (Some(Step::Freshness), Some(Reason::NonceReplayed))
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
    assert_eq!(
        failure(&world.verify_issued(json!({"iss": "did:web:stranger.example"}), None)),
        (Some(Step::IssuerAuth), Some(Reason::IssuerUnknown))
    );
    assert_eq!(
        failure(&world.verify_issued(json!({"vct": "https://credentials.example/other"}), None)),
        (Some(Step::IssuerAuth), Some(Reason::VctNotAllowed))
    );
    assert_eq!(
        failure(&world.verify_issued(json!({"vct": null}), None)),
        (Some(Step::IssuerAuth), Some(Reason::VctNotAllowed))
    );
    assert_eq!(
        failure(&world.verify_issued(
            json!({}),
            Some(json!({"alg": "EdDSA", "typ": "dc+sd-jwt", "kid": "did:key:z6Mkother#z6Mkother"})),
        )),
        (Some(Step::IssuerAuth), Some(Reason::KeyUnknown))
    );

    assert_eq!(
        failure(&once_suspended(&mut world)),
        (Some(Step::IssuerAuth), Some(Reason::IssuerSuspended))
    );
    assert_eq!(
        failure(&world.verify(&presentation)),
        (Some(Step::IssuerAuth), Some(Reason::IssuerSuspended))
    );
    world.issuer_does(IssuerCommand::Reinstate, t(-5));
    assert!(world.verify(&presentation).verified());

    // Retired after issuance: credentials issued before still verify; one
    // issued after the retirement never does.
    assert_eq!(
        failure(&issued_after_retirement(&mut world)),
        (Some(Step::IssuerAuth), Some(Reason::KeyRetired))
    );
    assert!(
        world.verify(&presentation).verified(),
        "issued an hour ago, retired half an hour ago"
    );
}

#[test]
fn signature_and_disclosure_reasons() {
    // A payload byte changed: the signature no longer covers it.
    assert_eq!(
        failure(&tampered_payload()),
        (Some(Step::Signature), Some(Reason::SignatureInvalid))
    );

    // A Disclosure of another credential.
    let (_, foreign) = World::new().issue_with(json!({"given_name": "Max"}), None);
    assert_eq!(
        failure(&presenting(&EVERY_DISCLOSURE, &[&foreign[0]], &[])),
        (Some(Step::Signature), Some(Reason::DisclosureUnreferenced))
    );

    // The same Disclosure twice.
    let twice = [EVERY_DISCLOSURE.as_slice(), &[GIVEN_NAME]].concat();
    assert_eq!(
        failure(&presenting(&twice, &[], &[])),
        (Some(Step::Signature), Some(Reason::DisclosureDuplicate))
    );

    // A nested Disclosure without its parent is unreferenced.
    assert_eq!(
        failure(&presenting(&[COUNTRY], &[], &[])),
        (Some(Step::Signature), Some(Reason::DisclosureUnreferenced))
    );

    // `_sd` that is not an array of digests, `...` with company.
    for outcome in [
        crafted(json!({"_sd": "not an array"}), &[]),
        crafted(json!({"_sd": [1]}), &[]),
        referenced_as_an_element(|d| json!({"nationalities": [{"...": d, "more": 1}]})),
    ] {
        assert_eq!(
            failure(&outcome),
            (Some(Step::Signature), Some(Reason::SdInvalid)),
            "{:?}",
            outcome.steps
        );
    }
    // A Disclosure of one kind referenced as the other.
    assert_eq!(
        failure(&referenced_as_an_element(|d| json!({"_sd": [d]}))),
        (Some(Step::Signature), Some(Reason::DisclosureWrongKind))
    );
    assert_eq!(
        failure(&referenced_as_a_property(
            |d| json!({"nationalities": [{"...": d}]})
        )),
        (Some(Step::Signature), Some(Reason::DisclosureWrongKind))
    );
    // Disclosures naming `_sd` or `...`.
    for name in ["_sd", "..."] {
        let (text, digest) = disclosure(&json!(["salt-n-0123456789", name, ["x"]]));
        assert_eq!(
            failure(&crafted(json!({"_sd": [digest]}), &[&text])),
            (Some(Step::Signature), Some(Reason::DisclosureInvalidName)),
            "{name}"
        );
    }
    // A Disclosure of given_name, which the payload has in the clear.
    assert_eq!(
        failure(&referencing(
            json!(["salt-c-0123456789", "given_name", "Max"]),
            |d| json!({"_sd": [d]})
        )),
        (Some(Step::Signature), Some(Reason::DisclosureClaimConflict))
    );
    // Nesting beyond the limit: `malformed`, but at SIGNATURE, where the
    // payload is processed (the signature verified first).
    assert_eq!(
        failure(&nested_too_deep()),
        (Some(Step::Signature), Some(Reason::Malformed))
    );
}

#[test]
fn revocation_reasons() {
    assert_eq!(
        failure(&with_status(&World::new(), entry(3))),
        (Some(Step::Revocation), Some(Reason::StatusListUnknown)),
        "fails closed"
    );
    let outcome = with_status(&listing(&[0, 0, 0, 0, 0]), entry(3));
    assert!(outcome.verified(), "{:?}", outcome.steps);
    assert_eq!(
        outcome
            .status
            .as_ref()
            .map(|s| (s.uri.as_str(), s.list_version, s.status)),
        Some((LIST_URI, 1, 0))
    );
    assert_eq!(
        failure(&with_status(&listing(&[0, 0, 0, 1, 0]), entry(3))),
        (Some(Step::Revocation), Some(Reason::StatusRevoked))
    );
    assert_eq!(
        failure(&with_status(&listing(&[0, 0, 0, 2, 0]), entry(3))),
        (Some(Step::Revocation), Some(Reason::StatusSuspended))
    );
    assert_eq!(
        failure(&with_status(&listing(&[0, 0, 0, 2, 0]), entry(100_000))),
        (Some(Step::Revocation), Some(Reason::StatusIndexOutOfRange))
    );
    // 3, which a 2-bit list can hold, is no status the draft defines; the
    // entry read is still reported.
    let undefined = with_status(&listing(&[0, 0, 0, 3, 0]), entry(3));
    assert_eq!(
        failure(&undefined),
        (Some(Step::Revocation), Some(Reason::StatusInvalid))
    );
    assert_eq!(undefined.status.map(|s| s.status), Some(3));
    // A reference without a uri, or without a whole-number idx.
    for reference in [
        json!({"idx": 3}),
        json!({"idx": "3", "uri": LIST_URI}),
        json!({"idx": -1, "uri": LIST_URI}),
        json!({"idx": 3, "uri": 7}),
    ] {
        assert_eq!(
            failure(&with_status(&listing(&[0, 0, 0, 0, 0]), reference.clone())),
            (Some(Step::Revocation), Some(Reason::StatusInvalid)),
            "{reference}"
        );
    }
    // A list read after its exp (no skew: the issuer said until when).
    assert!(list_expiring_in_a_minute(59).verified());
    assert_eq!(
        failure(&list_expiring_in_a_minute(60)),
        (Some(Step::Revocation), Some(Reason::StatusListExpired))
    );
    assert_eq!(
        failure(&list_of_another_issuer()),
        (
            Some(Step::Revocation),
            Some(Reason::StatusListIssuerMismatch)
        )
    );
}

#[test]
fn holder_binding_reasons() {
    assert_eq!(
        failure(&unbound(true)),
        (Some(Step::HolderBinding), Some(Reason::KbMissing))
    );
    let stranger = TestKey::p256(99);
    assert_eq!(
        failure(&bound(NONCE, AUDIENCE, NOW, Some(&stranger))),
        (Some(Step::HolderBinding), Some(Reason::KbSignatureInvalid))
    );
    assert_eq!(
        failure(&bound(NONCE, AUDIENCE, NOW, Some(&TestKey::ed25519(3)))),
        (Some(Step::HolderBinding), Some(Reason::KbSignatureInvalid))
    );
    assert_eq!(
        failure(&bound(NONCE, "https://other.example", NOW, None)),
        (Some(Step::HolderBinding), Some(Reason::AudMismatch))
    );
    assert_eq!(
        failure(&disclosure_dropped_after_binding()),
        (Some(Step::HolderBinding), Some(Reason::SdHashMismatch))
    );
    assert_eq!(
        failure(&World::new().verify_issued(json!({"cnf": null}), None)),
        (Some(Step::HolderBinding), Some(Reason::CnfMissing))
    );
    // A Key Binding JWT of another type, or of none.
    for typ in [json!("JWT"), json!("dc+sd-jwt"), Value::Null] {
        assert_eq!(
            failure(&bound_with(json!({ "typ": typ }), json!({}))),
            (Some(Step::HolderBinding), Some(Reason::KbTypeInvalid)),
            "typ {typ}"
        );
    }
    // A cnf.jwk that is no public key Proofline reads: a private one, an
    // unsupported type, a point off the curve, an alg of another key type,
    // not an object.
    let holder = serde_json::to_value(World::new().holder_key.public().to_jwk()).unwrap();
    let mut private = holder.clone();
    private["d"] = json!(b64url_encode([7u8; 32]));
    let mut other_alg = holder.clone();
    other_alg["alg"] = json!("EdDSA");
    let zero = b64url_encode([0u8; 32]);
    for jwk in [
        private,
        json!({"kty": "RSA", "n": "sXch", "e": "AQAB"}),
        json!({"kty": "EC", "crv": "P-256", "x": zero, "y": zero}),
        other_alg,
        json!("did:key:z6Mk"),
    ] {
        assert_eq!(
            failure(&holder_key(jwk.clone())),
            (Some(Step::HolderBinding), Some(Reason::CnfInvalid)),
            "{jwk}"
        );
    }
    // A lender that opts out accepts an unbound presentation.
    assert!(unbound(false).verified());
}

#[test]
fn claims_reasons() {
    let required = ["address.country", "given_name"];
    assert!(presenting(&EVERY_DISCLOSURE, &[], &required).verified());
    // address without its country.
    let outcome = presenting(&[GIVEN_NAME, ADDRESS], &[], &required);
    assert_eq!(
        failure(&outcome),
        (Some(Step::Claims), Some(Reason::ClaimMissing))
    );
    assert!(
        outcome
            .steps
            .last()
            .unwrap()
            .detail
            .contains("address.country")
    );
    assert_eq!(
        failure(&presenting(&[FIRST_NATIONALITY], &[], &["nationalities.1"])),
        (Some(Step::Claims), Some(Reason::ClaimMissing))
    );
    assert!(ClaimPath::parse("a..b").is_err() && ClaimPath::parse("").is_err());
}
