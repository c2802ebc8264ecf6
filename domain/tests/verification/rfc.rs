//! RFC 9901's examples verify with the RFC's published issuer key, at the
//! time their Key Binding JWTs were made.

use chrono::{TimeZone, Utc};
use proofline_domain::issuer::KeyLookupError;
use proofline_domain::jose::{Jwk, PublicKey};
use proofline_domain::log::Timestamp;
use proofline_domain::status_list::StatusList;
use proofline_domain::verification::{Profile, Reason, Request, Step, Trust, verify};
use serde_json::{Value, json};

use crate::rfc9901::*;
use crate::support::failure;

/// The RFC's issuers (URLs, not DIDs) with the RFC's key.
struct RfcIssuers(PublicKey);

impl RfcIssuers {
    fn new() -> Self {
        let (_, key) = Jwk::from_json(&serde_json::from_str(ISSUER_JWK).unwrap()).unwrap();
        Self(key)
    }
}

impl Trust for RfcIssuers {
    fn issuer_suspended(&self, iss: &str) -> Option<bool> {
        matches!(
            iss,
            "https://issuer.example.com"
                | "https://pid-issuer.bund.de.example"
                | "https://example.com/issuer"
        )
        .then_some(false)
    }
    fn issuer_key(
        &self,
        _: &str,
        _: Option<&str>,
        _: Timestamp,
    ) -> Result<PublicKey, KeyLookupError> {
        Ok(self.0.clone())
    }
    fn allows(&self, _: &str, vct: &str) -> bool {
        vct == "urn:eudi:pid:de:1"
    }
    fn status_list(&self, _: &str) -> Option<&StatusList> {
        None
    }
}

fn at_kb_iat() -> Timestamp {
    Timestamp::from_datetime(Utc.timestamp_opt(KB_IAT, 0).unwrap())
}

fn request(profile: Profile, holder_binding: bool) -> Request<'static> {
    Request {
        nonce: NONCE,
        audience: AUDIENCE,
        required_claims: &[],
        require_holder_binding: holder_binding,
        max_age_seconds: 300,
        now: at_kb_iat(),
        profile,
    }
}

const GENERIC: Profile = Profile::Generic {
    typ: "example+sd-jwt",
};

#[test]
fn section_5_2_verifies_to_the_processed_payload_the_rfc_prints() {
    let outcome = verify(SECTION_5_2, &request(GENERIC, true), &RfcIssuers::new());
    assert!(outcome.verified(), "{:?}", outcome.steps);
    assert_eq!(outcome.steps.len(), 7);
    let claims = Value::Object(outcome.claims.clone().unwrap());
    assert_eq!(
        claims,
        json!({
            "iss": "https://issuer.example.com", "iat": 1683000000, "exp": 1883000000, "sub": "user_42",
            "nationalities": ["US"],
            "cnf": {"jwk": {"kty": "EC", "crv": "P-256", "x": "TCAER19Zvu3OHF4j4W4vfSVoHIP1ILilDls7vCeGemc", "y": "ZxjiWWbZMQGHVWKVQ4hbSIirsVfuecCE6t4jT9F2HZQ"}},
            "family_name": "Doe",
            "address": {"street_address": "123 Main St", "locality": "Anytown", "region": "Anystate", "country": "US"},
            "given_name": "John",
        })
    );
    let mut paths = outcome.disclosed_paths.clone();
    paths.sort();
    assert_eq!(
        paths,
        vec!["address", "family_name", "given_name", "nationalities.0"]
    );
}

#[test]
fn appendix_a_3_an_sd_jwt_vc_verifies_under_the_service_profile() {
    let outcome = verify(
        APPENDIX_A_3,
        &request(Profile::SdJwtVc, true),
        &RfcIssuers::new(),
    );
    assert!(outcome.verified(), "{:?}", outcome.steps);
    assert_eq!(outcome.vct.as_deref(), Some("urn:eudi:pid:de:1"));
    assert_eq!(
        Value::Object(outcome.disclosed_claims().unwrap()),
        json!({"age_equal_or_over": {"18": true}, "nationalities": ["DE"]})
    );
}

#[test]
fn appendix_a_1_without_key_binding_verifies_when_none_is_required() {
    let outcome = verify(APPENDIX_A_1, &request(GENERIC, false), &RfcIssuers::new());
    assert!(outcome.verified(), "{:?}", outcome.steps);
    assert_eq!(
        Value::Object(outcome.claims.unwrap())["address"],
        json!({"region": "港区", "country": "JP"})
    );
    let required = verify(APPENDIX_A_1, &request(GENERIC, true), &RfcIssuers::new());
    assert_eq!(required.reason, Some(Reason::KbMissing));
}

#[test]
fn appendix_a_4_verifies() {
    let outcome = verify(APPENDIX_A_4, &request(GENERIC, true), &RfcIssuers::new());
    assert!(outcome.verified(), "{:?}", outcome.steps);
    let claims = Value::Object(outcome.claims.unwrap());
    assert_eq!(
        claims["credentialSubject"]["vaccine"]["medicinalProductName"],
        "COVID-19 Vaccine Moderna"
    );
}

#[test]
fn the_examples_are_not_sd_jwt_vcs_except_a_3() {
    // The service profile wants typ dc+sd-jwt: RFC 9901's generic examples fail at DECODE.
    let outcome = verify(
        SECTION_5_2,
        &request(Profile::SdJwtVc, true),
        &RfcIssuers::new(),
    );
    assert_eq!(
        failure(&outcome),
        (Some(Step::Decode), Some(Reason::TypInvalid))
    );
}

#[test]
fn one_changed_character_anywhere_fails() {
    let trust = RfcIssuers::new();
    let bytes = SECTION_5_2.as_bytes();
    for position in (0..bytes.len()).step_by(37) {
        let mut changed = bytes.to_vec();
        changed[position] = if changed[position] == b'A' {
            b'B'
        } else {
            b'A'
        };
        let Ok(changed) = String::from_utf8(changed) else {
            continue;
        };
        if changed == SECTION_5_2 {
            continue;
        }
        assert!(
            !verify(&changed, &request(GENERIC, true), &trust).verified(),
            "a change at {position} verified"
        );
    }
}
