//! What an outside review found: unbounded text, numbers the log cannot
//! hold, overflowing time arithmetic, claims a holder could withhold, a
//! status index that follows the holder, unknown critical headers, and two
//! interoperability gaps (relative kids, `Ed25519` as an algorithm name).

use proofline_domain::bounded;
use proofline_domain::issuer::{IssuerCommand, Kid};
use proofline_domain::jose::testing::TestKey;
use proofline_domain::jose::{CompactJws, b64url_decode, b64url_encode};
use proofline_domain::sd_jwt::{Issuance, canonical_text};
use proofline_domain::verification::{Outcome, Reason, Step};
use proptest::prelude::*;
use serde_json::json;

use crate::support::{LIST_URI, NOW, World, failure, t};

fn all(disclosures: &[String]) -> Vec<&str> {
    disclosures.iter().map(String::as_str).collect()
}

/// The outcome's texts as the log would write them.
fn recorded_bytes(outcome: &Outcome) -> usize {
    let texts: Vec<&str> = outcome
        .steps
        .iter()
        .map(|s| s.detail.as_str())
        .chain(outcome.issuer.as_deref())
        .chain(outcome.kid.as_deref())
        .chain(outcome.vct.as_deref())
        .chain(outcome.disclosed_paths.iter().map(String::as_str))
        .collect();
    serde_json::to_string(&texts).unwrap().len()
}

#[test]
fn text_from_the_presentation_is_bounded_wherever_the_outcome_keeps_it() {
    let world = World::new();
    for huge in ["i".repeat(70_000), "\u{1}".repeat(11_000)] {
        for (extra, header) in [
            (json!({"iss": huge}), None),
            (json!({"vct": huge}), None),
            (json!({}), Some(json!({"alg": "EdDSA", "typ": huge}))),
            (
                json!({}),
                Some(json!({"alg": "EdDSA", "typ": "dc+sd-jwt", "kid": huge})),
            ),
            (
                json!({"status": {"status_list": {"idx": 0, "uri": huge}}}),
                None,
            ),
        ] {
            let (issued, disclosures) = world.issue_with(extra.clone(), header.clone());
            let outcome = world.verify(&world.present(&issued, &all(&disclosures)));
            assert!(!outcome.verified(), "{extra} {header:?}");
            let bytes = recorded_bytes(&outcome);
            assert!(
                bytes < 4 * 1024,
                "{extra} {header:?}: {bytes} bytes of text in the outcome"
            );
            assert!(
                outcome.steps.iter().any(|s| bounded::is_cut(&s.detail))
                    || [&outcome.issuer, &outcome.kid, &outcome.vct]
                        .iter()
                        .any(|t| t.as_deref().is_some_and(bounded::is_cut)),
                "the cut is marked: {:?}",
                outcome.steps
            );
        }
    }
}

#[test]
fn long_claim_names_are_bounded_in_the_disclosed_paths() {
    let world = World::new();
    let name = "n".repeat(5_000);
    let mut payload = json!({
        "iss": world.did.as_str(), "iat": NOW - 3600, "vct": crate::support::VCT,
        "cnf": {"jwk": serde_json::to_value(world.holder_key.public().to_jwk()).unwrap()},
    });
    payload[&name] = json!("value");
    let mut n = 0;
    let mut issuance = Issuance::new(payload.as_object().unwrap().clone(), move || {
        n += 1;
        format!("salt-{n}-abcdefghijklmnop")
    });
    issuance.conceal(&name).unwrap();
    let kid = world.issuer.keys[0].kid.as_str().to_owned();
    let (issued, disclosures) = issuance.sign(
        &json!({"alg": "EdDSA", "typ": "dc+sd-jwt", "kid": kid}),
        |input| world.issuer_key.sign_raw(input),
    );
    let outcome = world.verify(&world.present(&issued, &all(&disclosures)));
    assert!(outcome.verified(), "{:?}", outcome.steps);
    assert_eq!(outcome.disclosed_paths.len(), 1);
    assert!(bounded::is_cut(&outcome.disclosed_paths[0]));
    assert!(outcome.disclosed_paths[0].len() <= bounded::MAX_TEXT_BYTES);
}

#[test]
fn times_the_log_cannot_hold_exactly_are_credential_time_invalid() {
    let world = World::new();
    for (name, value) in [
        ("exp", json!(i64::MAX)),
        ("exp", json!(9_007_199_254_740_992_i64)),
        ("nbf", json!(i64::MIN)),
        ("iat", json!(-1e300)),
        ("exp", json!(1e300)),
        ("exp", json!("never")),
    ] {
        let outcome = world.verify_issued(json!({ name: value }), None);
        assert_eq!(
            failure(&outcome),
            (Some(Step::Freshness), Some(Reason::CredentialTimeInvalid)),
            "{name} = {value}"
        );
    }
    // The largest exact integer is a time like any other.
    let (issued, disclosures) = world.issue_with(json!({"exp": 9_007_199_254_740_991_i64}), None);
    assert!(
        world
            .verify(&world.present(&issued, &all(&disclosures)))
            .verified()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Extreme times never panic (no overflow in `now - exp`, `now - iat`,
    /// in the key binding's age), whatever the clock and the maximum age.
    #[test]
    fn extreme_times_never_overflow(
        field in prop::sample::select(vec!["nbf", "iat", "exp"]),
        value in prop::sample::select(vec![
            json!(i64::MIN), json!(i64::MAX), json!(u64::MAX), json!(1e300), json!(-1e300),
            json!(9_007_199_254_740_991_i64), json!(-9_007_199_254_740_991_i64), json!(0),
        ]),
        kb_iat in prop::sample::select(vec![i64::MIN, i64::MAX, -9_007_199_254_740_991, 9_007_199_254_740_991, NOW]),
        max_age in prop::sample::select(vec![0, 300, i64::MAX]),
        now in prop::sample::select(vec![t(0), t(-NOW), t(250_000_000_000 - NOW)]),
    ) {
        let mut world = World::new();
        world.now = now;
        let (issued, disclosures) = world.issue_with(json!({ field: value }), None);
        let refs = all(&disclosures);
        let presentation = world.present_bound(
            &issued, &refs, crate::support::NONCE, crate::support::AUDIENCE, kb_iat, &world.holder_key,
        );
        let request = proofline_domain::verification::Request {
            nonce: crate::support::NONCE,
            audience: crate::support::AUDIENCE,
            required_claims: &[],
            require_holder_binding: true,
            max_age_seconds: max_age,
            now,
            profile: proofline_domain::verification::Profile::SdJwtVc,
        };
        let trust = proofline_domain::verification::Resolved { issuer: Some(&world.issuer), list: None, list_unavailable: None, list_expired: None, keys_unavailable: None, x5c: None, type_metadata_invalid: None };
        let outcome = proofline_domain::verification::verify(&presentation, &request, &trust);
        prop_assert!(outcome.failed_step.is_none() || !outcome.steps.is_empty());
    }
}

/// A credential of `world`'s issuer that makes `claim`, one SD-JWT VC
/// keeps in the clear, selectively disclosable: issued and its Disclosures.
pub(crate) fn issued_with_disclosable(world: &World, claim: &str) -> (String, Vec<String>) {
    let mut payload = json!({
        "iss": world.did.as_str(), "iat": NOW - 3600, "nbf": NOW - 3600, "exp": NOW + 3600,
        "vct": crate::support::VCT,
        "status": {"status_list": {"idx": 1, "uri": LIST_URI}},
        "cnf": {"jwk": serde_json::to_value(world.holder_key.public().to_jwk()).unwrap()},
    });
    payload["given_name"] = json!("Erika");
    let mut n = 0;
    let mut issuance = Issuance::new(payload.as_object().unwrap().clone(), move || {
        n += 1;
        format!("salt-{n}-abcdefghijklmnop")
    });
    issuance.conceal(claim).unwrap();
    let kid = world.issuer.keys[0].kid.as_str().to_owned();
    issuance.sign(
        &json!({"alg": "EdDSA", "typ": "dc+sd-jwt", "kid": kid}),
        |input| world.issuer_key.sign_raw(input),
    )
}

#[test]
fn claims_a_holder_could_withhold_may_not_be_disclosable() {
    let mut world = World::new();
    world.publish_list(&[0, 1]);
    for claim in ["status", "exp", "iat", "cnf", "vct", "nbf", "iss"] {
        let (issued, disclosures) = issued_with_disclosable(&world, claim);
        // Presented, the Disclosure is refused. Withheld, the verifier sees
        // what the signed payload says, as for any credential: here no
        // `status` (the verifier cannot tell a withheld Disclosure from a
        // decoy), and the issuer that made it disclosable is at fault.
        let outcome = world.verify(&world.present(&issued, &all(&disclosures)));
        assert_eq!(
            failure(&outcome),
            (Some(Step::Decode), Some(Reason::ClaimNotDisclosable)),
            "{claim}"
        );
        let withheld = world.verify(&world.present(&issued, &[]));
        if claim == "status" {
            assert!(withheld.status.is_none(), "never read from a Disclosure");
        }
    }
}

#[test]
fn the_outcome_names_the_list_and_its_version_never_the_entry() {
    let mut world = World::new();
    world.publish_list(&[
        0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    for idx in [3_u64, 41] {
        let (issued, disclosures) = world.issue_with(
            json!({"status": {"status_list": {"idx": idx, "uri": LIST_URI}}}),
            None,
        );
        let outcome = world.verify(&world.present(&issued, &all(&disclosures)));
        let status = outcome.status.as_ref().expect("the list was read");
        assert_eq!((status.uri.as_str(), status.list_version), (LIST_URI, 1));
        let revocation = outcome
            .steps
            .iter()
            .find(|s| s.name == Step::Revocation)
            .unwrap();
        assert!(
            !revocation.detail.contains(&idx.to_string()),
            "{}",
            revocation.detail
        );
        let as_json = serde_json::to_value(status).unwrap();
        assert_eq!(as_json.as_object().unwrap().len(), 3, "{as_json}");
    }
}

/// The standard credential under an issuer header with a critical
/// parameter Proofline does not understand.
pub(crate) fn critical_header_in_the_issuer_jwt() -> Outcome {
    let world = World::new();
    let kid = world.issuer.keys[0].kid.as_str().to_owned();
    world.verify_issued(
        json!({}),
        Some(json!({"alg": "EdDSA", "typ": "dc+sd-jwt", "kid": kid, "crit": ["exp"], "exp": 1})),
    )
}

#[test]
fn unknown_critical_headers_are_refused_in_either_jwt() {
    let world = World::new();
    assert_eq!(
        failure(&critical_header_in_the_issuer_jwt()),
        (Some(Step::Decode), Some(Reason::CritUnsupported))
    );
    let (issued, disclosures) = world.issue();
    let header = json!({"alg": "ES256", "typ": "kb+jwt", "crit": ["b64"], "b64": true});
    let mut sign = |input: &[u8]| world.holder_key.sign_raw(input);
    let presentation = proofline_domain::sd_jwt::present(
        &issued,
        &all(&disclosures),
        Some(proofline_domain::sd_jwt::KeyBinding {
            header: &header,
            sign: &mut sign,
            nonce: crate::support::NONCE,
            audience: crate::support::AUDIENCE,
            iat: NOW - 5,
        }),
    );
    assert_eq!(
        failure(&world.verify(&presentation)),
        (Some(Step::Decode), Some(Reason::CritUnsupported))
    );
    // And a status list token or any JWS with crit never verifies.
    let key = TestKey::ed25519(1);
    let token = key.sign(&json!({"alg": "EdDSA", "crit": ["x"], "x": 1}), &json!({}));
    assert!(
        CompactJws::parse(&token)
            .unwrap()
            .verify(&key.public())
            .is_err()
    );
}

#[test]
fn ed25519_is_accepted_as_the_fully_specified_algorithm_name() {
    let mut world = World::new();
    world.holder_key = TestKey::ed25519(13);
    let kid = world.issuer.keys[0].kid.as_str().to_owned();
    let mut cnf = serde_json::to_value(world.holder_key.public().to_jwk()).unwrap();
    cnf["alg"] = json!("Ed25519");
    let (issued, disclosures) = world.issue_with(
        json!({"cnf": {"jwk": cnf}}),
        Some(json!({"alg": "Ed25519", "typ": "dc+sd-jwt", "kid": kid})),
    );
    let header = json!({"alg": "Ed25519", "typ": "kb+jwt"});
    let mut sign = |input: &[u8]| world.holder_key.sign_raw(input);
    let presentation = proofline_domain::sd_jwt::present(
        &issued,
        &all(&disclosures),
        Some(proofline_domain::sd_jwt::KeyBinding {
            header: &header,
            sign: &mut sign,
            nonce: crate::support::NONCE,
            audience: crate::support::AUDIENCE,
            iat: NOW - 5,
        }),
    );
    let outcome = world.verify(&presentation);
    assert!(outcome.verified(), "{:?}", outcome.steps);
    // Still bound to the key type: `Ed25519` on a P-256 key does not verify.
    let p256 = TestKey::p256(2);
    let token = p256.sign(&json!({"alg": "Ed25519"}), &json!({}));
    assert!(
        CompactJws::parse(&token)
            .unwrap()
            .verify(&p256.public())
            .is_err()
    );
    let mut wrong = serde_json::to_value(p256.public().to_jwk()).unwrap();
    wrong["alg"] = json!("Ed25519");
    assert!(proofline_domain::jose::Jwk::from_json(&wrong).is_err());
}

#[test]
fn relative_kids_name_registered_and_did_key_keys() {
    // did:key, kid `#z6Mk…` (the OpenWallet Foundation's TypeScript form).
    let world = World::new();
    let fragment = world.did.did_key_multibase().unwrap();
    let (issued, disclosures) = world.issue_with(
        json!({}),
        Some(json!({"alg": "EdDSA", "typ": "dc+sd-jwt", "kid": format!("#{fragment}")})),
    );
    let outcome = world.verify(&world.present(&issued, &all(&disclosures)));
    assert!(outcome.verified(), "{:?}", outcome.steps);
    // did:web with a registered `k1`, named `#k1` and by the bare DID.
    let world = World::with_web_issuer();
    for kid in ["#k1", "did:web:issuer.example#k1", "did:web:issuer.example"] {
        let (issued, disclosures) = world.issue_with(
            json!({}),
            Some(json!({"alg": "ES256", "typ": "dc+sd-jwt", "kid": kid})),
        );
        let outcome = world.verify(&world.present(&issued, &all(&disclosures)));
        assert!(outcome.verified(), "{kid}: {:?}", outcome.steps);
    }
}

/// A credential issued at `iat` under a key its issuer revoked ten seconds
/// ago.
pub(crate) fn under_a_revoked_key(iat: i64) -> Outcome {
    let mut world = World::with_web_issuer();
    world.issuer_does(
        IssuerCommand::RevokeKey {
            kid: Kid::parse("k1").unwrap(),
        },
        t(-10),
    );
    world.verify_issued(json!({"iat": iat}), None)
}

#[test]
fn a_revoked_key_fails_issuer_auth_whatever_the_credentials_iat() {
    for iat in [NOW - 1_000_000, NOW - 20, NOW] {
        assert_eq!(
            failure(&under_a_revoked_key(iat)),
            (Some(Step::IssuerAuth), Some(Reason::KeyRevoked)),
            "iat {iat}"
        );
    }
}

/// (r, n − s) of a P-256 signature: the other signature of the same message.
fn flip_s(signature_b64: &str) -> String {
    let bytes = b64url_decode(signature_b64).unwrap();
    let signature = p256::ecdsa::Signature::from_slice(&bytes).unwrap();
    let low = signature.normalize_s();
    let flipped = if low == signature {
        // low already: make it high.
        let n_minus_s = -*low.s();
        p256::ecdsa::Signature::from_scalars(low.r(), n_minus_s).unwrap()
    } else {
        low
    };
    b64url_encode(flipped.to_bytes())
}

#[test]
fn both_forms_of_an_es256_signature_verify_and_identify_one_presentation() {
    let world = World::with_web_issuer();
    let (issued, disclosures) = world.issue();
    let presentation = world.present(&issued, &all(&disclosures));
    let kb = presentation.rsplit('~').next().unwrap().to_owned();
    let (signing_input, signature) = kb.rsplit_once('.').unwrap();
    let flipped = format!(
        "{}{signing_input}.{}",
        &presentation[..presentation.len() - kb.len()],
        flip_s(signature)
    );
    assert_ne!(flipped, presentation);
    assert!(world.verify(&presentation).verified());
    assert!(
        world.verify(&flipped).verified(),
        "WebCrypto does not normalize s"
    );
    assert_eq!(canonical_text(&presentation), canonical_text(&flipped));
    assert_eq!(
        proofline_domain::verification_record::presentation_digest("n", &presentation),
        proofline_domain::verification_record::presentation_digest("n", &flipped)
    );
}
