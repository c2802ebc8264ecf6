//! The cases the reason tests build: the standard credential presented,
//! bound, crafted or checked against a status list in the one way that makes
//! a reason come out. Shared by `steps.rs` and `reasons.rs`.

use proofline_domain::issuer::{IssuerCommand, Kid};
use proofline_domain::jose::b64url_encode;
use proofline_domain::jose::testing::TestKey;
use proofline_domain::lender::LenderId;
use proofline_domain::sd_jwt::{MAX_DEPTH, MAX_DISCLOSURES, present};
use proofline_domain::verification::{ClaimPath, Outcome};
use proofline_domain::verification_record::{Asked, VerificationId, VerificationRecord};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{AUDIENCE, LIST_URI, NONCE, NOW, World, disclosure, t};

pub(crate) fn all(disclosures: &[String]) -> Vec<&str> {
    disclosures.iter().map(String::as_str).collect()
}

// The standard credential's Disclosures, in the order `World::issue` makes
// them.
pub(crate) const GIVEN_NAME: usize = 0;

pub(crate) const COUNTRY: usize = 2;

pub(crate) const ADDRESS: usize = 3;

pub(crate) const FIRST_NATIONALITY: usize = 4;

pub(crate) const EVERY_DISCLOSURE: [usize; 6] = [0, 1, 2, 3, 4, 5];

/// The standard credential presented with its Disclosures at `picked` (in
/// that order, repeats kept) and then `more`, bound by the holder, to a
/// lender requiring `required`.
pub(crate) fn presenting(picked: &[usize], more: &[&str], required: &[&str]) -> Outcome {
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
pub(crate) fn bound(nonce: &str, audience: &str, iat: i64, key: Option<&TestKey>) -> Outcome {
    let world = World::new();
    let (issued, disclosures) = world.issue();
    let key = key.unwrap_or(&world.holder_key);
    world.verify(&world.present_bound(&issued, &all(&disclosures), nonce, audience, iat, key))
}

/// The standard credential with every Disclosure and a Key Binding JWT whose
/// usual header and claims `header` and `claims` change (see
/// `World::present_kb`).
pub(crate) fn bound_with(header: Value, claims: Value) -> Outcome {
    let world = World::new();
    let (issued, disclosures) = world.issue();
    world.verify(&world.present_kb(&issued, &all(&disclosures), header, claims))
}

/// A credential signed exactly as given (the standard claims changed by
/// `extra`, no Disclosure made by `Issuance`), presented with `disclosures`
/// and bound.
pub(crate) fn crafted(extra: Value, disclosures: &[&str]) -> Outcome {
    let world = World::new();
    let issued = world.sign_credential(&world.claims(extra));
    world.verify(&world.present(&issued, disclosures))
}

/// A credential whose payload references the Disclosure of `parts` where
/// `place` puts its digest, presented with that Disclosure.
pub(crate) fn referencing(parts: Value, place: fn(String) -> Value) -> Outcome {
    let (text, digest) = disclosure(&parts);
    crafted(place(digest), &[&text])
}

/// The standard credential with a Disclosure of one element (neither a
/// property nor an array element).
pub(crate) fn malformed_disclosure() -> Outcome {
    let world = World::new();
    let (issued, _) = world.issue();
    let bad_disclosure = b64url_encode(br#"["salt"]"#);
    world.verify(&world.present(&issued, &[&bad_disclosure]))
}

/// One Disclosure more than a presentation may carry (the same one, over
/// and over: the count is checked before anything else about them).
pub(crate) fn too_many_disclosures() -> Outcome {
    let world = World::new();
    let (issued, disclosures) = world.issue();
    let many = vec![disclosures[0].as_str(); MAX_DISCLOSURES + 1];
    world.verify(&world.present(&issued, &many))
}

/// A Key Binding JWT that is not a JWS.
pub(crate) fn key_binding_not_a_jws() -> Outcome {
    let world = World::new();
    let (issued, disclosures) = world.issue();
    let unbound = present(&issued, &all(&disclosures), None);
    world.verify(&format!("{unbound}not-a-jwt"))
}

/// A credential of the Ed25519 key whose header claims ES256.
pub(crate) fn es256_claimed_for_an_ed25519_key() -> Outcome {
    let world = World::new();
    let kid = world.issuer.keys[0].kid.as_str().to_owned();
    world.verify_issued(
        json!({}),
        Some(json!({"alg": "ES256", "typ": "dc+sd-jwt", "kid": kid})),
    )
}

/// A presentation that verified, then turned out to use a nonce the lender
/// used before.
pub(crate) fn replayed() -> Outcome {
    let world = World::new();
    let (issued, disclosures) = world.issue();
    world
        .verify(&world.present(&issued, &all(&disclosures)))
        .replayed()
}

/// Suspends `world`'s issuer ten seconds ago and verifies the standard
/// credential.
pub(crate) fn once_suspended(world: &mut World) -> Outcome {
    world.issuer_does(IssuerCommand::Suspend, t(-10));
    world.verify_issued(json!({}), None)
}

/// Retires `world`'s issuer's key half an hour ago and verifies a credential
/// it issued a minute ago.
pub(crate) fn issued_after_retirement(world: &mut World) -> Outcome {
    let kid = Kid::parse(world.issuer.keys[0].kid.as_str()).unwrap();
    world.issuer_does(IssuerCommand::RetireKey { kid }, t(-1800));
    world.verify_issued(json!({"iat": NOW - 60}), None)
}

/// The standard credential with a payload byte changed after signing.
pub(crate) fn tampered_payload() -> Outcome {
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
pub(crate) fn referenced_as_a_property(place: fn(String) -> Value) -> Outcome {
    referencing(json!(["salt-p-0123456789", "nickname", "Eri"]), place)
}

/// An array-element Disclosure (two elements), referenced where `place` puts
/// it.
pub(crate) fn referenced_as_an_element(place: fn(String) -> Value) -> Outcome {
    referencing(json!(["salt-e-0123456789", "FR"]), place)
}

/// A credential nested deeper than processing goes (twice the limit: deep,
/// yet well within what the JSON parser takes).
pub(crate) fn nested_too_deep() -> Outcome {
    let mut deep = json!("bottom");
    for _ in 0..2 * MAX_DEPTH {
        deep = json!({ "inner": deep });
    }
    crafted(json!({ "deep": deep }), &[])
}

/// A credential whose `status.status_list` is `reference`, verified in
/// `world`.
pub(crate) fn with_status(world: &World, reference: Value) -> Outcome {
    world.verify_issued(json!({"status": {"status_list": reference}}), None)
}

/// Entry `idx` of the list at `LIST_URI`.
pub(crate) fn entry(idx: u64) -> Value {
    json!({"idx": idx, "uri": LIST_URI})
}

/// A world whose issuer published `statuses` at `LIST_URI`.
pub(crate) fn listing(statuses: &[u8]) -> World {
    let mut world = World::new();
    world.publish_list(statuses);
    world
}

/// Entry 3 of a valid list its issuer published to expire a minute from
/// now, verified `seconds` from now.
pub(crate) fn list_expiring_in_a_minute(seconds: i64) -> Outcome {
    let mut world = World::new();
    world.list = Some(world.list_of(&[0, 0, 0, 0, 0], Some(NOW + 60)));
    world.now = t(seconds);
    with_status(&world, entry(3))
}

/// Entry 3 of a valid list at `LIST_URI`, published there by another
/// issuer than the credential's.
pub(crate) fn list_of_another_issuer() -> Outcome {
    let mut world = World::new();
    let other = World::with_web_issuer();
    assert_ne!(other.issuer.did, world.issuer.did);
    world.list = Some(other.list_of(&[0, 0, 0, 0, 0], None));
    with_status(&world, entry(3))
}

/// The standard credential without a Key Binding JWT, to a lender that
/// requires one or not.
pub(crate) fn unbound(require_holder_binding: bool) -> Outcome {
    let mut world = World::new();
    world.require_holder_binding = require_holder_binding;
    let (issued, disclosures) = world.issue();
    world.verify(&present(&issued, &all(&disclosures), None))
}

/// A Disclosure dropped after the holder signed: sd_hash no longer covers
/// the presentation.
pub(crate) fn disclosure_dropped_after_binding() -> Outcome {
    let world = World::new();
    let (issued, disclosures) = world.issue();
    let signed = world.present(&issued, &all(&disclosures));
    let kb = signed.rsplit('~').next().unwrap();
    let fewer = format!("{}{kb}", present(&issued, &all(&disclosures[1..]), None));
    world.verify(&fewer)
}

/// A credential whose `cnf.jwk` is `jwk`.
pub(crate) fn holder_key(jwk: Value) -> Outcome {
    World::new().verify_issued(json!({"cnf": {"jwk": jwk}}), None)
}

/// The record that stands in for one too large for the log (here of a
/// presentation that verified: the stand-in keeps nothing of it).
pub(crate) fn record_too_large() -> VerificationRecord {
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
