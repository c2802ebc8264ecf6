//! Every reason code, reached by a case built for it: a presentation,
//! verified; for `nonce_replayed`, which the store decides, its outcome
//! through `Outcome::replayed`; for `record_too_large`, which no presentation
//! makes, the log's stand-in `VerificationRecord::too_large`.
//! `every_reason_is_reached` walks `Reason::ALL`.

use proofline_domain::issuer::{IssuerCommand, Kid};
use proofline_domain::jose::b64url_encode;
use proofline_domain::jose::testing::TestKey;
use proofline_domain::lender::LenderId;
use proofline_domain::sd_jwt::{MAX_DEPTH, MAX_DISCLOSURES, present};
use proofline_domain::verification::{ClaimPath, Outcome, Reason, Step};
use proofline_domain::verification_record::{Asked, VerificationId, VerificationRecord};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::hardening::{
    critical_header_in_the_issuer_jwt, issued_with_disclosable, under_a_revoked_key,
};
use crate::support::{AUDIENCE, Failure, LIST_URI, NONCE, NOW, World, disclosure, failure, t};

fn all(disclosures: &[String]) -> Vec<&str> {
    disclosures.iter().map(String::as_str).collect()
}

// The standard credential's Disclosures, in the order `World::issue` makes
// them.
const GIVEN_NAME: usize = 0;
const COUNTRY: usize = 2;
const ADDRESS: usize = 3;
const FIRST_NATIONALITY: usize = 4;
const EVERY_DISCLOSURE: [usize; 6] = [0, 1, 2, 3, 4, 5];

/// The standard credential presented with its Disclosures at `picked` (in
/// that order, repeats kept) and then `more`, bound by the holder, to a
/// lender requiring `required`.
fn presenting(picked: &[usize], more: &[&str], required: &[&str]) -> Outcome {
    let mut world = World::new();
    world.required = required
        .iter()
        .map(|path| ClaimPath::parse(path).unwrap())
        .collect();
    let (issued, disclosures) = world.issue();
    let mut presented: Vec<&str> = picked.iter().map(|&i| disclosures[i].as_str()).collect();
    presented.extend_from_slice(more);
    world.verify(&world.present(&issued, &presented))
}

/// The standard credential with every Disclosure, bound by `key` (the
/// holder's unless another is given) for `nonce` and `audience` at `iat`.
fn bound(nonce: &str, audience: &str, iat: i64, key: Option<&TestKey>) -> Outcome {
    let world = World::new();
    let (issued, disclosures) = world.issue();
    let key = key.unwrap_or(&world.holder_key);
    world.verify(&world.present_bound(&issued, &all(&disclosures), nonce, audience, iat, key))
}

/// The standard credential with every Disclosure and a Key Binding JWT whose
/// usual header and claims `header` and `claims` change (see
/// `World::present_kb`).
fn bound_with(header: Value, claims: Value) -> Outcome {
    let world = World::new();
    let (issued, disclosures) = world.issue();
    world.verify(&world.present_kb(&issued, &all(&disclosures), header, claims))
}

/// A credential signed exactly as given (the standard claims changed by
/// `extra`, no Disclosure made by `Issuance`), presented with `disclosures`
/// and bound.
fn crafted(extra: Value, disclosures: &[&str]) -> Outcome {
    let world = World::new();
    let issued = world.sign_credential(&world.claims(extra));
    world.verify(&world.present(&issued, disclosures))
}

/// A credential whose payload references the Disclosure of `parts` where
/// `place` puts its digest, presented with that Disclosure.
fn referencing(parts: Value, place: fn(String) -> Value) -> Outcome {
    let (text, digest) = disclosure(&parts);
    crafted(place(digest), &[&text])
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

/// The standard credential with a Disclosure of one element (neither a
/// property nor an array element).
fn malformed_disclosure() -> Outcome {
    let world = World::new();
    let (issued, _) = world.issue();
    let bad_disclosure = b64url_encode(br#"["salt"]"#);
    world.verify(&world.present(&issued, &[&bad_disclosure]))
}

/// One Disclosure more than a presentation may carry (the same one, over
/// and over: the count is checked before anything else about them).
fn too_many_disclosures() -> Outcome {
    let world = World::new();
    let (issued, disclosures) = world.issue();
    let many = vec![disclosures[0].as_str(); MAX_DISCLOSURES + 1];
    world.verify(&world.present(&issued, &many))
}

/// A Key Binding JWT that is not a JWS.
fn key_binding_not_a_jws() -> Outcome {
    let world = World::new();
    let (issued, disclosures) = world.issue();
    let unbound = present(&issued, &all(&disclosures), None);
    world.verify(&format!("{unbound}not-a-jwt"))
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

/// A credential of the Ed25519 key whose header claims ES256.
fn es256_claimed_for_an_ed25519_key() -> Outcome {
    let world = World::new();
    let kid = world.issuer.keys[0].kid.as_str().to_owned();
    world.verify_issued(
        json!({}),
        Some(json!({"alg": "ES256", "typ": "dc+sd-jwt", "kid": kid})),
    )
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

/// A presentation that verified, then turned out to use a nonce the lender
/// used before.
fn replayed() -> Outcome {
    let world = World::new();
    let (issued, disclosures) = world.issue();
    world
        .verify(&world.present(&issued, &all(&disclosures)))
        .replayed()
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

/// Suspends `world`'s issuer ten seconds ago and verifies the standard
/// credential.
fn once_suspended(world: &mut World) -> Outcome {
    world.issuer_does(IssuerCommand::Suspend, t(-10));
    world.verify_issued(json!({}), None)
}

/// Retires `world`'s issuer's key half an hour ago and verifies a credential
/// it issued a minute ago.
fn issued_after_retirement(world: &mut World) -> Outcome {
    let kid = Kid::parse(world.issuer.keys[0].kid.as_str()).unwrap();
    world.issuer_does(IssuerCommand::RetireKey { kid }, t(-1800));
    world.verify_issued(json!({"iat": NOW - 60}), None)
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

/// The standard credential with a payload byte changed after signing.
fn tampered_payload() -> Outcome {
    let world = World::new();
    let (issued, disclosures) = world.issue();
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
    world.verify(&world.present(&tampered, &all(&disclosures)))
}

/// A property Disclosure (three elements) referenced from `_sd`, where
/// `place` puts it.
fn referenced_as_a_property(place: fn(String) -> Value) -> Outcome {
    referencing(json!(["salt-p-0123456789", "nickname", "Eri"]), place)
}

/// An array-element Disclosure (two elements), referenced where `place` puts
/// it.
fn referenced_as_an_element(place: fn(String) -> Value) -> Outcome {
    referencing(json!(["salt-e-0123456789", "FR"]), place)
}

/// A credential nested deeper than processing goes (twice the limit: deep,
/// yet well within what the JSON parser takes).
fn nested_too_deep() -> Outcome {
    let mut deep = json!("bottom");
    for _ in 0..2 * MAX_DEPTH {
        deep = json!({ "inner": deep });
    }
    crafted(json!({ "deep": deep }), &[])
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

/// A credential whose `status.status_list` is `reference`, verified in
/// `world`.
fn with_status(world: &World, reference: Value) -> Outcome {
    world.verify_issued(json!({"status": {"status_list": reference}}), None)
}

/// Entry `idx` of the list at `LIST_URI`.
fn entry(idx: u64) -> Value {
    json!({"idx": idx, "uri": LIST_URI})
}

/// A world whose issuer published `statuses` at `LIST_URI`.
fn listing(statuses: &[u8]) -> World {
    let mut world = World::new();
    world.publish_list(statuses);
    world
}

/// Entry 3 of a valid list its issuer published to expire a minute from
/// now, verified `seconds` from now.
fn list_expiring_in_a_minute(seconds: i64) -> Outcome {
    let mut world = World::new();
    world.list = Some(world.list_of(&[0, 0, 0, 0, 0], Some(NOW + 60)));
    world.now = t(seconds);
    with_status(&world, entry(3))
}

/// Entry 3 of a valid list at `LIST_URI`, published there by another
/// issuer than the credential's.
fn list_of_another_issuer() -> Outcome {
    let mut world = World::new();
    let other = World::with_web_issuer();
    assert_ne!(other.issuer.did, world.issuer.did);
    world.list = Some(other.list_of(&[0, 0, 0, 0, 0], None));
    with_status(&world, entry(3))
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

/// The standard credential without a Key Binding JWT, to a lender that
/// requires one or not.
fn unbound(require_holder_binding: bool) -> Outcome {
    let mut world = World::new();
    world.require_holder_binding = require_holder_binding;
    let (issued, disclosures) = world.issue();
    world.verify(&present(&issued, &all(&disclosures), None))
}

/// A Disclosure dropped after the holder signed: sd_hash no longer covers
/// the presentation.
fn disclosure_dropped_after_binding() -> Outcome {
    let world = World::new();
    let (issued, disclosures) = world.issue();
    let signed = world.present(&issued, &all(&disclosures));
    let kb = signed.rsplit('~').next().unwrap();
    let fewer = format!("{}{kb}", present(&issued, &all(&disclosures[1..]), None));
    world.verify(&fewer)
}

/// A credential whose `cnf.jwk` is `jwk`.
fn holder_key(jwk: Value) -> Outcome {
    World::new().verify_issued(json!({"cnf": {"jwk": jwk}}), None)
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

/// The record that stands in for one too large for the log (here of a
/// presentation that verified: the stand-in keeps nothing of it).
fn record_too_large() -> VerificationRecord {
    let world = World::new();
    let (issued, disclosures) = world.issue();
    let presentation = world.present(&issued, &all(&disclosures));
    let outcome = world.verify(&presentation);
    let lender_id = LenderId::from_uuid(Uuid::from_u128(7));
    let asked = Asked {
        lender_id,
        presentation: &presentation,
        nonce: NONCE,
        audience: AUDIENCE,
        required_claims: Vec::new(),
        require_holder_binding: true,
        at: t(0),
    };
    VerificationRecord::new(
        VerificationId::for_nonce(lender_id, NONCE),
        &asked,
        &outcome,
    )
    .too_large()
}

/// Every reason in `Reason::ALL` comes out of a case built for it, at its
/// step. The match has no wildcard arm: a new reason does not compile until
/// it has a case here.
#[test]
fn every_reason_is_reached() {
    let at = |step: Step, outcome: Outcome| -> (Step, Failure) { (step, failure(&outcome)) };
    for &reason in Reason::ALL {
        let (step, reached) = match reason {
            // DECODE. `malformed` also comes out of SIGNATURE for a payload
            // nested too deep: see `signature_and_disclosure_reasons`.
            Reason::Malformed => at(Step::Decode, World::new().verify("not an sd-jwt")),
            Reason::TooLarge => at(Step::Decode, too_many_disclosures()),
            Reason::DisclosureMalformed => at(Step::Decode, malformed_disclosure()),
            Reason::KbMalformed => at(Step::Decode, key_binding_not_a_jws()),
            Reason::AlgNotAllowed => at(
                Step::Decode,
                World::new().verify_issued(json!({}), Some(json!({"alg": "none", "typ": "dc+sd-jwt"}))),
            ),
            Reason::TypInvalid => at(
                Step::Decode,
                World::new().verify_issued(json!({}), Some(json!({"alg": "EdDSA", "typ": "JWT"}))),
            ),
            Reason::CritUnsupported => at(Step::Decode, critical_header_in_the_issuer_jwt()),
            Reason::ClaimNotDisclosable => {
                let world = World::new();
                let (issued, disclosures) = issued_with_disclosable(&world, "exp");
                at(
                    Step::Decode,
                    world.verify(&world.present(&issued, &all(&disclosures))),
                )
            }
            Reason::SdAlgUnsupported => {
                at(Step::Decode, crafted(json!({"_sd_alg": "sha-512"}), &[]))
            }
            // No presentation makes it: the log's stand-in for a record too
            // large to append, which the service makes with `too_large`.
            Reason::RecordTooLarge => {
                let record = record_too_large();
                (Step::Decode, (record.failed_step, record.reason))
            }
            // FRESHNESS
            Reason::CredentialTimeInvalid => at(
                Step::Freshness,
                World::new().verify_issued(json!({"exp": "never"}), None),
            ),
            Reason::CredentialNotYetValid => at(
                Step::Freshness,
                World::new().verify_issued(json!({"nbf": NOW + 3600}), None),
            ),
            Reason::CredentialIssuedInFuture => at(
                Step::Freshness,
                World::new().verify_issued(json!({"iat": NOW + 61}), None),
            ),
            Reason::CredentialExpired => at(
                Step::Freshness,
                World::new().verify_issued(json!({"exp": NOW - 3600}), None),
            ),
            Reason::KbIatInvalid => at(
                Step::Freshness,
                bound_with(json!({}), json!({"iat": null})),
            ),
            Reason::KbIatInFuture => {
                at(Step::Freshness, bound(NONCE, AUDIENCE, NOW + 120, None))
            }
            Reason::KbIatTooOld => at(
                Step::Freshness,
                bound(NONCE, AUDIENCE, NOW - 301 - 60, None),
            ),
            Reason::NonceMismatch => at(Step::Freshness, bound("another", AUDIENCE, NOW, None)),
            // Decided by the store, not the presentation: a verified outcome
            // through `Outcome::replayed`, as the service does.
            Reason::NonceReplayed => at(Step::Freshness, replayed()),
            // ISSUER_AUTH
            Reason::IssuerUnknown => at(
                Step::IssuerAuth,
                World::new().verify_issued(json!({"iss": "did:web:stranger.example"}), None),
            ),
            Reason::IssuerSuspended => at(Step::IssuerAuth, once_suspended(&mut World::new())),
            Reason::KeyUnknown => at(
                Step::IssuerAuth,
                World::new().verify_issued(
                    json!({}),
                    Some(json!({"alg": "EdDSA", "typ": "dc+sd-jwt", "kid": "did:key:z6Mkother#z6Mkother"})),
                ),
            ),
            Reason::KeyRetired => at(
                Step::IssuerAuth,
                issued_after_retirement(&mut World::new()),
            ),
            Reason::KeyRevoked => at(Step::IssuerAuth, under_a_revoked_key(NOW - 20)),
            Reason::VctNotAllowed => at(
                Step::IssuerAuth,
                World::new().verify_issued(json!({"vct": null}), None),
            ),
            // SIGNATURE
            Reason::AlgKeyMismatch => at(Step::Signature, es256_claimed_for_an_ed25519_key()),
            Reason::SignatureInvalid => at(Step::Signature, tampered_payload()),
            Reason::SdInvalid => at(
                Step::Signature,
                crafted(json!({"_sd": "not an array"}), &[]),
            ),
            Reason::DisclosureDuplicate => at(
                Step::Signature,
                presenting(&[GIVEN_NAME, GIVEN_NAME], &[], &[]),
            ),
            Reason::DisclosureUnreferenced => {
                at(Step::Signature, presenting(&[COUNTRY], &[], &[]))
            }
            Reason::DisclosureWrongKind => at(
                Step::Signature,
                referenced_as_an_element(|d| json!({"_sd": [d]})),
            ),
            Reason::DisclosureInvalidName => at(
                Step::Signature,
                referencing(json!(["salt-n-0123456789", "_sd", ["x"]]), |d| {
                    json!({"_sd": [d]})
                }),
            ),
            Reason::DisclosureClaimConflict => at(
                Step::Signature,
                referencing(json!(["salt-c-0123456789", "given_name", "Max"]), |d| {
                    json!({"_sd": [d]})
                }),
            ),
            // REVOCATION
            Reason::StatusInvalid => at(
                Step::Revocation,
                with_status(&listing(&[0, 0, 0, 3, 0]), entry(3)),
            ),
            Reason::StatusListUnknown => {
                at(Step::Revocation, with_status(&World::new(), entry(3)))
            }
            Reason::StatusListIssuerMismatch => at(Step::Revocation, list_of_another_issuer()),
            Reason::StatusListExpired => at(Step::Revocation, list_expiring_in_a_minute(60)),
            Reason::StatusIndexOutOfRange => at(
                Step::Revocation,
                with_status(&listing(&[0, 0, 0, 0, 0]), entry(100_000)),
            ),
            Reason::StatusRevoked => at(
                Step::Revocation,
                with_status(&listing(&[0, 0, 0, 1, 0]), entry(3)),
            ),
            Reason::StatusSuspended => at(
                Step::Revocation,
                with_status(&listing(&[0, 0, 0, 2, 0]), entry(3)),
            ),
            // HOLDER_BINDING
            Reason::KbMissing => at(Step::HolderBinding, unbound(true)),
            Reason::KbTypeInvalid => at(
                Step::HolderBinding,
                bound_with(json!({"typ": "JWT"}), json!({})),
            ),
            Reason::CnfMissing => at(
                Step::HolderBinding,
                World::new().verify_issued(json!({"cnf": null}), None),
            ),
            Reason::CnfInvalid => at(
                Step::HolderBinding,
                holder_key(json!({"kty": "RSA", "n": "sXch", "e": "AQAB"})),
            ),
            Reason::KbSignatureInvalid => at(
                Step::HolderBinding,
                bound(NONCE, AUDIENCE, NOW, Some(&TestKey::p256(99))),
            ),
            Reason::AudMismatch => at(
                Step::HolderBinding,
                bound(NONCE, "https://other.example", NOW, None),
            ),
            Reason::SdHashMismatch => at(Step::HolderBinding, disclosure_dropped_after_binding()),
            // CLAIMS
            Reason::ClaimMissing => at(
                Step::Claims,
                presenting(&[GIVEN_NAME, ADDRESS], &[], &["address.country"]),
            ),
        };
        assert_eq!(reached, (Some(step), Some(reason)), "{reason}");
    }
}
