//! Every reason code, reached by a case built for it: a presentation,
//! verified; for `nonce_replayed`, which the store decides, its outcome
//! through `Outcome::replayed`; for `record_too_large`, which no presentation
//! makes, the log's stand-in `VerificationRecord::too_large`.
//! `every_reason_is_reached` walks `Reason::ALL`; the cases are built in
//! `cases.rs`, and `steps.rs` tests each step's reasons more closely.

use proofline_domain::jose::testing::TestKey;
use proofline_domain::verification::{Outcome, Reason, Step};
use serde_json::json;

use crate::cases::{
    ADDRESS, COUNTRY, GIVEN_NAME, all, bound, bound_with, crafted,
    disclosure_dropped_after_binding, entry, es256_claimed_for_an_ed25519_key, holder_key,
    issued_after_retirement, key_binding_not_a_jws, list_expiring_in_a_minute,
    list_of_another_issuer, listing, malformed_disclosure, once_suspended, presenting,
    record_too_large, referenced_as_an_element, referencing, replayed, tampered_payload,
    too_many_disclosures, unbound, with_status,
};
use crate::hardening::{
    critical_header_in_the_issuer_jwt, issued_with_disclosable, under_a_revoked_key,
};
use crate::support::{AUDIENCE, Failure, NONCE, NOW, World, failure};

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
            Reason::IssuerKeysUnavailable => {
                let mut world = World::new();
                world.keys_unavailable = Some("the server answered HTTP 503".into());
                at(
                    Step::IssuerAuth,
                    world.verify_issued(json!({}), Some(json!({"alg": "EdDSA", "typ": "dc+sd-jwt", "kid": "rotated"}))),
                )
            }
            Reason::X5cUnknownRoot
            | Reason::X5cExpired
            | Reason::X5cSanMismatch
            | Reason::X5cInvalid => {
                let mut world = World::new();
                world.x5c_refusal = Some((reason, "as the chain check said".into()));
                at(Step::IssuerAuth, world.verify_issued(json!({}), None))
            }
            Reason::TypeMetadataInvalid => {
                let mut world = World::new();
                world.type_metadata_invalid = Some("the digest does not match".into());
                at(Step::IssuerAuth, world.verify_issued(json!({}), None))
            }
            Reason::StatusListUnavailable => {
                let mut world = World::new();
                world.list_unavailable = Some("the server answered HTTP 503".into());
                at(Step::Revocation, with_status(&world, entry(3)))
            }
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
