//! Token Status Lists: token checks, packing and lookups, the StatusList
//! aggregate.

use proofline_domain::decider::Decider;
use proofline_domain::did::Did;
use proofline_domain::issuer::{Issuer, IssuerCommand, IssuerDecider, Kid, RegisteredKey, Vct};
use proofline_domain::jose::b64url_encode;
use proofline_domain::jose::testing::TestKey;
use proofline_domain::specification::given;
use proofline_domain::status_list::testing::{lst, pack};
use proofline_domain::status_list::{
    INVALID, ListUri, StatusListCommand, StatusListDecider, StatusListError, TOKEN_TYPE,
    claimed_issuer, status_at, verify_token,
};
use proofline_domain::values::Name;
use serde_json::json;

use crate::support::{NOW, t};

fn uri() -> ListUri {
    ListUri::parse("https://issuer.example/status/1").unwrap()
}

fn issuer_with(events_after: &[IssuerCommand]) -> Issuer {
    let register = IssuerCommand::Register {
        did: Did::parse("did:web:issuer.example").unwrap(),
        name: Name::parse("name", "Issuer").unwrap(),
        keys: vec![
            RegisteredKey {
                kid: Kid::parse("ed").unwrap(),
                jwk: TestKey::ed25519(1).public().to_jwk(),
            },
            RegisteredKey {
                kid: Kid::parse("p256").unwrap(),
                jwk: TestKey::p256(2).public().to_jwk(),
            },
        ],
        credential_types: Some(vec![Vct::parse("x").unwrap()]),
        key_sources: None,
    };
    let mut events = given::<IssuerDecider>([])
        .when(register, t(-1000))
        .accepted();
    for command in events_after {
        events = given::<IssuerDecider>(events)
            .when(command.clone(), t(-500))
            .accepted();
    }
    IssuerDecider::fold(&events).unwrap()
}

fn token(key: &TestKey, kid: &str, payload: serde_json::Value) -> String {
    key.sign(
        &json!({"alg": key.alg(), "typ": TOKEN_TYPE, "kid": kid}),
        &payload,
    )
}

fn list_payload(statuses: &[u8], bits: u8, iat: i64) -> serde_json::Value {
    json!({"sub": uri().as_str(), "iat": NOW + iat, "ttl": 300, "status_list": {"bits": bits, "lst": lst(statuses, bits)}})
}

#[test]
fn lookups_at_first_last_and_middle_entries_for_1_2_and_8_bits() {
    let issuer = issuer_with(&[]);
    for (bits, key, kid) in [
        (1u8, TestKey::ed25519(1), "ed"),
        (2, TestKey::p256(2), "p256"),
        (8, TestKey::ed25519(1), "ed"),
    ] {
        let max = if bits == 8 {
            255
        } else {
            (1u16 << bits) as u8 - 1
        };
        let statuses: Vec<u8> = (0..1001u32)
            .map(|i| ((i * 7 + 3) % (u32::from(max) + 1)) as u8)
            .collect();
        let signed = token(&key, kid, list_payload(&statuses, bits, 0));
        let verified = verify_token(&signed, &uri(), &issuer, t(10)).unwrap();
        assert_eq!((verified.bits, verified.kid.as_str()), (bits, kid));
        let list = given::<StatusListDecider>([])
            .when(StatusListCommand::Publish { list: verified }, t(10))
            .state()
            .unwrap();
        for idx in [0usize, 500, 1000] {
            assert_eq!(
                list.status(idx as u64),
                Some(statuses[idx]),
                "bits {bits}, idx {idx}"
            );
        }
        // Past the end of the last byte there is no entry.
        let per_byte = 8 / bits as usize;
        assert_eq!(
            list.status((1001usize.div_ceil(per_byte) * per_byte) as u64),
            None
        );
        assert_eq!(list.version, 1);
    }
}

#[test]
fn entry_zero_is_in_the_low_bits_of_byte_zero() {
    assert_eq!(pack(&[1, 0, 0, 0, 0, 0, 0, 1], 1), vec![0b1000_0001]);
    assert_eq!(status_at(&[0b1110_0100], 2, 0), Some(0));
    assert_eq!(status_at(&[0b1110_0100], 2, 1), Some(1));
    assert_eq!(status_at(&[0b1110_0100], 2, 2), Some(2));
    assert_eq!(status_at(&[0b1110_0100], 2, 3), Some(3));
    assert_eq!(status_at(&[0xab], 8, 0), Some(0xab));
    assert_eq!(status_at(&[0x0f], 4, 1), Some(0));
    assert_eq!(status_at(&[0xff], 1, u64::MAX), None);
}

#[test]
fn lists_from_strangers_suspended_issuers_or_with_bad_signatures_are_refused() {
    let issuer = issuer_with(&[]);
    let payload = list_payload(&[0, 1, 0], 1, 0);
    let stranger = TestKey::ed25519(77);
    assert_eq!(
        verify_token(
            &token(&stranger, "ed", payload.clone()),
            &uri(),
            &issuer,
            t(1)
        ),
        Err(StatusListError::Signature(
            "the signature does not verify".into()
        ))
    );
    assert_eq!(
        verify_token(
            &token(&stranger, "unregistered", payload.clone()),
            &uri(),
            &issuer,
            t(1)
        ),
        Err(StatusListError::UnknownKey)
    );
    let suspended = issuer_with(&[IssuerCommand::Suspend]);
    assert_eq!(
        verify_token(
            &token(&TestKey::ed25519(1), "ed", payload.clone()),
            &uri(),
            &suspended,
            t(1)
        ),
        Err(StatusListError::IssuerSuspended)
    );
    let retired = issuer_with(&[IssuerCommand::RetireKey {
        kid: Kid::parse("ed").unwrap(),
    }]);
    assert_eq!(
        verify_token(
            &token(&TestKey::ed25519(1), "ed", payload.clone()),
            &uri(),
            &retired,
            t(1)
        ),
        Err(StatusListError::KeyRetired)
    );
    // A signature made with one key and labelled with another's kid.
    let mut forged = token(&TestKey::ed25519(1), "ed", payload.clone());
    forged.replace_range(forged.len() - 4.., "AAAA");
    assert!(matches!(
        verify_token(&forged, &uri(), &issuer, t(1)),
        Err(StatusListError::Signature(_))
    ));
    let wrong_alg = TestKey::ed25519(1).sign(
        &json!({"alg": "ES256", "typ": TOKEN_TYPE, "kid": "ed"}),
        &payload,
    );
    assert!(matches!(
        verify_token(&wrong_alg, &uri(), &issuer, t(1)),
        Err(StatusListError::Signature(_))
    ));
}

#[test]
fn claims_and_list_are_checked() {
    let issuer = issuer_with(&[]);
    let key = TestKey::ed25519(1);
    let check = |payload: serde_json::Value| {
        verify_token(&token(&key, "ed", payload), &uri(), &issuer, t(0))
    };
    let untyped = key.sign(
        &json!({"alg": "EdDSA", "kid": "ed"}),
        &list_payload(&[0], 1, 0),
    );
    assert_eq!(
        verify_token(&untyped, &uri(), &issuer, t(0)),
        Err(StatusListError::WrongType)
    );
    let mut other_sub = list_payload(&[0], 1, 0);
    other_sub["sub"] = json!("https://issuer.example/status/2");
    assert!(matches!(
        check(other_sub),
        Err(StatusListError::SubjectMismatch(_))
    ));
    assert_eq!(
        check(list_payload(&[0], 1, 3600)),
        Err(StatusListError::IssuedAt),
        "iat in the future"
    );
    let mut expired = list_payload(&[0], 1, -100);
    expired["exp"] = json!(NOW - 1);
    assert_eq!(check(expired), Err(StatusListError::Expired));
    // Numbers the log could not hold exactly are refused by name.
    for (name, value) in [
        ("exp", json!(i64::MAX)),
        ("exp", json!(1e300)),
        ("exp", json!(9_007_199_254_740_992_i64)),
        ("ttl", json!(u64::MAX)),
        ("ttl", json!(-5)),
        ("iat", json!(-9_007_199_254_740_992_i64)),
    ] {
        let mut payload = list_payload(&[0], 1, 0);
        payload[name] = value;
        assert_eq!(
            check(payload),
            Err(StatusListError::OutOfRange(name)),
            "{name}"
        );
    }
    let mut never = list_payload(&[0], 1, 0);
    never["exp"] = json!(9_007_199_254_740_991_i64);
    assert!(check(never).is_ok(), "the largest safe exp is fine");
    let mut bits_3 = list_payload(&[0], 1, 0);
    bits_3["status_list"]["bits"] = json!(3);
    assert!(matches!(check(bits_3), Err(StatusListError::List(_))));
    let mut not_zlib = list_payload(&[0], 1, 0);
    not_zlib["status_list"]["lst"] = json!("bm90IHpsaWI");
    assert!(matches!(check(not_zlib), Err(StatusListError::List(_))));
    let mut other_iss = list_payload(&[0], 1, 0);
    other_iss["iss"] = json!("did:web:someone.else");
    assert!(matches!(
        check(other_iss),
        Err(StatusListError::IssuerMismatch(_))
    ));
    // A zlib bomb: 20 MiB of zeros compresses to about 20 KB, within the
    // token limit but beyond the list limit.
    let bomb = b64url_encode(miniz_oxide::deflate::compress_to_vec_zlib(
        &vec![0u8; 20 * 1024 * 1024],
        10,
    ));
    let mut bombed = list_payload(&[0], 1, 0);
    bombed["status_list"]["lst"] = json!(bomb);
    assert!(matches!(check(bombed), Err(StatusListError::List(_))));
}

#[test]
fn a_newer_list_replaces_an_older_one_never_the_reverse() {
    let issuer = issuer_with(&[]);
    let key = TestKey::ed25519(1);
    let publish = |iat: i64, statuses: &[u8]| {
        let list = verify_token(
            &token(&key, "ed", list_payload(statuses, 1, iat)),
            &uri(),
            &issuer,
            t(1000),
        )
        .unwrap();
        StatusListCommand::Publish { list }
    };
    let first = given::<StatusListDecider>([])
        .when(publish(0, &[0, 0]), t(0))
        .accepted();
    let events = given::<StatusListDecider>(first)
        .when(publish(10, &[0, 1]), t(10))
        .accepted();
    let list = StatusListDecider::fold(&events).unwrap();
    assert_eq!(
        (list.status(1), list.version, list.iat),
        (Some(INVALID), 2, NOW + 10)
    );
    given::<StatusListDecider>(events.clone())
        .when(publish(5, &[0, 0]), t(11))
        .then_error(StatusListError::NotNewer);
    given::<StatusListDecider>(events)
        .when(publish(10, &[0, 0]), t(11))
        .then_error(StatusListError::NotNewer);
}

#[test]
fn the_claimed_issuer_comes_from_iss_or_the_did_of_kid() {
    let key = TestKey::ed25519(1);
    let with_iss = key.sign(
        &json!({"alg": "EdDSA", "typ": TOKEN_TYPE}),
        &json!({"iss": "did:web:a.example"}),
    );
    assert_eq!(
        claimed_issuer(&with_iss).unwrap().as_str(),
        "did:web:a.example"
    );
    let with_kid = key.sign(
        &json!({"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": "did:web:b.example#k1"}),
        &json!({}),
    );
    assert_eq!(
        claimed_issuer(&with_kid).unwrap().as_str(),
        "did:web:b.example"
    );
    let neither = key.sign(&json!({"alg": "EdDSA", "kid": "k1"}), &json!({}));
    assert_eq!(claimed_issuer(&neither), Err(StatusListError::NoIssuer));
}

#[test]
fn uris_are_absolute_http_urls() {
    assert!(ListUri::parse("https://issuer.example/status/1").is_ok());
    for bad in [
        "",
        "/status/1",
        "ftp://x/y",
        "https://",
        "https:///x",
        "https://a b/",
    ] {
        assert!(ListUri::parse(bad).is_err(), "{bad:?}");
    }
    assert_ne!(
        ListUri::parse("https://a.example/1").unwrap().stream_id(),
        ListUri::parse("https://a.example/2").unwrap().stream_id()
    );
}
