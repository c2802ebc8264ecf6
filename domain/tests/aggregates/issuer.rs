//! The Issuer aggregate: the trust registry's issuers, their keys and how a
//! JWT's `kid` names one.

use proofline_domain::decider::{Decider, EventSchema};
use proofline_domain::did::Did;
use proofline_domain::issuer::{
    IssuerCommand, IssuerDecider, IssuerError, IssuerEvent, IssuerId, KeyLookupError, Kid,
    RegisteredKey, Vct,
};
use proofline_domain::jose::testing::TestKey;
use proofline_domain::jose::{Jwk, PublicKey};
use proofline_domain::specification::given;
use proofline_domain::values::Name;

use crate::support::t;

fn web_did() -> Did {
    Did::parse("did:web:issuer.example").unwrap()
}

fn key(kid: &str, test_key: &TestKey) -> RegisteredKey {
    RegisteredKey {
        kid: Kid::parse(kid).unwrap(),
        jwk: test_key.public().to_jwk(),
    }
}

fn register_web() -> IssuerCommand {
    IssuerCommand::Register {
        did: web_did(),
        name: Name::parse("name", "State ID Office").unwrap(),
        keys: vec![
            key("key-1", &TestKey::ed25519(1)),
            key("key-2", &TestKey::p256(2)),
        ],
        credential_types: Some(vec![
            Vct::parse("https://credentials.example/identity").unwrap(),
        ]),
    }
}

fn registered() -> Vec<IssuerEvent> {
    given::<IssuerDecider>([])
        .when(register_web(), t(0))
        .accepted()
}

#[test]
fn register_a_web_did_with_jwks_once() {
    let events = registered();
    let issuer = IssuerDecider::fold(&events).unwrap();
    assert_eq!(issuer.keys.len(), 2);
    assert_eq!(issuer.id, IssuerId::for_did(&web_did()));
    assert!(issuer.allows("https://credentials.example/identity"));
    assert!(!issuer.allows("https://credentials.example/other"));
    given::<IssuerDecider>(events)
        .when(register_web(), t(1))
        .then_error(IssuerError::AlreadyRegistered);
}

#[test]
fn register_refusals() {
    let g = || given::<IssuerDecider>([]);
    let name = Name::parse("name", "x").unwrap();
    let no_keys = IssuerCommand::Register {
        did: web_did(),
        name: name.clone(),
        keys: vec![],
        credential_types: None,
    };
    g().when(no_keys, t(0)).then_error(IssuerError::NoKeys);
    let twice = IssuerCommand::Register {
        did: web_did(),
        name: name.clone(),
        keys: vec![
            key("k", &TestKey::ed25519(1)),
            key("k", &TestKey::ed25519(2)),
        ],
        credential_types: None,
    };
    g().when(twice, t(0))
        .then_error(IssuerError::DuplicateKid("k".into()));
    let did_key =
        Did::from_ed25519(&ed25519_dalek::SigningKey::from_bytes(&[5; 32]).verifying_key());
    let with_keys = IssuerCommand::Register {
        did: did_key,
        name,
        keys: vec![key("k", &TestKey::ed25519(1))],
        credential_types: None,
    };
    g().when(with_keys, t(0))
        .then_error(IssuerError::DidKeyHasItsOwnKey);
}

#[test]
fn a_did_key_issuer_carries_its_own_key_under_three_kids() {
    let signer = TestKey::ed25519(5);
    let PublicKey::Ed25519(public) = signer.public() else {
        unreachable!()
    };
    let did = Did::from_ed25519(&public);
    let register = IssuerCommand::Register {
        did: did.clone(),
        name: Name::parse("name", "Wallet Issuer").unwrap(),
        keys: vec![],
        credential_types: None,
    };
    let events = given::<IssuerDecider>([]).when(register, t(0)).accepted();
    let issuer = IssuerDecider::fold(&events).unwrap();
    let fragment = did.did_key_multibase().unwrap();
    for kid in [
        None,
        Some(did.as_str().to_owned()),
        Some(format!("{did}#{fragment}")),
    ] {
        assert_eq!(
            issuer.key(kid.as_deref()).unwrap().key,
            signer.public(),
            "{kid:?}"
        );
    }
    assert_eq!(
        issuer.key(Some("did:key:other#x")),
        Err(KeyLookupError::UnknownKid)
    );
    let add = IssuerCommand::AddKey {
        key: key("extra", &TestKey::ed25519(6)),
    };
    given::<IssuerDecider>(events)
        .when(add, t(1))
        .then_error(IssuerError::DidKeyHasItsOwnKey);
}

#[test]
fn keys_of_other_dids_are_named_plainly_or_relative_to_the_did() {
    let issuer = IssuerDecider::fold(&registered()).unwrap();
    assert_eq!(issuer.key(Some("key-1")).unwrap().kid.as_str(), "key-1");
    assert_eq!(
        issuer
            .key(Some("did:web:issuer.example#key-2"))
            .unwrap()
            .kid
            .as_str(),
        "key-2"
    );
    assert_eq!(issuer.key(None), Err(KeyLookupError::UnknownKid));
    assert_eq!(issuer.key(Some("key-3")), Err(KeyLookupError::UnknownKid));
}

#[test]
fn add_key_accepted_and_refused() {
    let events = given::<IssuerDecider>(registered())
        .when(
            IssuerCommand::AddKey {
                key: key("key-3", &TestKey::ed25519(3)),
            },
            t(10),
        )
        .accepted();
    let issuer = IssuerDecider::fold(&events).unwrap();
    assert_eq!(issuer.key(Some("key-3")).unwrap().added_at, t(10));
    let again = IssuerCommand::AddKey {
        key: key("key-3", &TestKey::ed25519(4)),
    };
    given::<IssuerDecider>(events.clone())
        .when(again, t(11))
        .then_error(IssuerError::DuplicateKid("key-3".into()));
    let bad = IssuerCommand::AddKey {
        key: RegisteredKey {
            kid: Kid::parse("key-4").unwrap(),
            jwk: Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: "AAAA".into(),
                y: None,
            },
        },
    };
    // The variant, whatever the JWK parser's words for the fault.
    assert!(matches!(
        given::<IssuerDecider>(events).when(bad, t(11)).decided(),
        Err(IssuerError::InvalidKey(_))
    ));
    given::<IssuerDecider>([])
        .when(
            IssuerCommand::AddKey {
                key: key("k", &TestKey::ed25519(1)),
            },
            t(0),
        )
        .then_error(IssuerError::NotFound);
}

#[test]
fn a_retired_key_never_verifies_what_was_signed_after_its_retirement() {
    let events = given::<IssuerDecider>(registered())
        .when(
            IssuerCommand::RetireKey {
                kid: Kid::parse("key-1").unwrap(),
            },
            t(100),
        )
        .accepted();
    let issuer = IssuerDecider::fold(&events).unwrap();
    assert!(
        issuer.key_at(Some("key-1"), t(99)).is_ok(),
        "signed before the retirement"
    );
    assert_eq!(
        issuer.key_at(Some("key-1"), t(100)),
        Err(KeyLookupError::Retired { retired_at: t(100) })
    );
    assert_eq!(
        issuer.key_at(Some("key-1"), t(500)),
        Err(KeyLookupError::Retired { retired_at: t(100) })
    );
    assert!(issuer.key_at(Some("key-2"), t(500)).is_ok());
    let g = || given::<IssuerDecider>(events.clone());
    g().when(
        IssuerCommand::RetireKey {
            kid: Kid::parse("key-1").unwrap(),
        },
        t(101),
    )
    .then_error(IssuerError::AlreadyRetired("key-1".into()));
    g().when(
        IssuerCommand::RetireKey {
            kid: Kid::parse("nope").unwrap(),
        },
        t(101),
    )
    .then_error(IssuerError::KeyNotFound("nope".into()));
    // A retired kid is never reused.
    let reuse = IssuerCommand::AddKey {
        key: key("key-1", &TestKey::ed25519(9)),
    };
    g().when(reuse, t(102))
        .then_error(IssuerError::DuplicateKid("key-1".into()));
}

#[test]
fn relative_did_urls_and_the_bare_did_name_keys_without_ambiguity() {
    let issuer = IssuerDecider::fold(&registered()).unwrap();
    // A relative DID URL (as the OpenWallet Foundation's libraries write).
    assert_eq!(issuer.key(Some("#key-1")).unwrap().kid.as_str(), "key-1");
    assert_eq!(issuer.key(Some("#key-3")), Err(KeyLookupError::UnknownKid));
    // Two keys: the bare DID names none of them.
    assert_eq!(
        issuer.key(Some("did:web:issuer.example")),
        Err(KeyLookupError::UnknownKid)
    );
    // One key registered as a DID URL: every form names it.
    let single = IssuerCommand::Register {
        did: web_did(),
        name: Name::parse("name", "One Key Office").unwrap(),
        keys: vec![key("did:web:issuer.example#k1", &TestKey::ed25519(1))],
        credential_types: None,
    };
    let events = given::<IssuerDecider>([]).when(single, t(0)).accepted();
    let issuer = IssuerDecider::fold(&events).unwrap();
    for kid in [
        "did:web:issuer.example#k1",
        "#k1",
        "k1",
        "did:web:issuer.example",
    ] {
        assert_eq!(
            issuer.key(Some(kid)).unwrap().key,
            TestKey::ed25519(1).public(),
            "{kid}"
        );
    }
    // A kid naming the same key in another form is refused, at
    // registration and when added.
    for (existing, added) in [
        ("did:web:issuer.example#k1", "k1"),
        ("did:web:issuer.example#k1", "#k1"),
    ] {
        let twice = IssuerCommand::Register {
            did: web_did(),
            name: Name::parse("name", "x").unwrap(),
            keys: vec![
                key(existing, &TestKey::ed25519(1)),
                key(added, &TestKey::ed25519(2)),
            ],
            credential_types: None,
        };
        given::<IssuerDecider>([])
            .when(twice, t(0))
            .then_error(IssuerError::DuplicateKid(added.into()));
        let add = IssuerCommand::AddKey {
            key: key(added, &TestKey::ed25519(2)),
        };
        given::<IssuerDecider>(events.clone())
            .when(add, t(1))
            .then_error(IssuerError::DuplicateKid(added.into()));
    }
}

#[test]
fn a_did_key_issuer_accepts_a_relative_kid() {
    let PublicKey::Ed25519(public) = TestKey::ed25519(5).public() else {
        unreachable!()
    };
    let did = Did::from_ed25519(&public);
    let register = IssuerCommand::Register {
        did: did.clone(),
        name: Name::parse("name", "Wallet Issuer").unwrap(),
        keys: vec![],
        credential_types: None,
    };
    let issuer = given::<IssuerDecider>([])
        .when(register, t(0))
        .state()
        .unwrap();
    let fragment = did.did_key_multibase().unwrap();
    assert!(issuer.key(Some(&format!("#{fragment}"))).is_ok());
    assert_eq!(
        issuer.key(Some("#z6Mkother")),
        Err(KeyLookupError::UnknownKid)
    );
}

#[test]
fn a_revoked_key_verifies_nothing_whatever_the_credential_says() {
    let retired = given::<IssuerDecider>(registered())
        .when(
            IssuerCommand::RetireKey {
                kid: Kid::parse("key-1").unwrap(),
            },
            t(100),
        )
        .accepted();
    let events = given::<IssuerDecider>(retired)
        .when(
            IssuerCommand::RevokeKey {
                kid: Kid::parse("key-1").unwrap(),
            },
            t(200),
        )
        .accepted();
    let issuer = IssuerDecider::fold(&events).unwrap();
    for signed_at in [t(-1_000_000), t(99), t(300)] {
        assert_eq!(
            issuer.key_at(Some("key-1"), signed_at),
            Err(KeyLookupError::Revoked { revoked_at: t(200) })
        );
    }
    assert!(issuer.key_at(Some("key-2"), t(300)).is_ok());
    let g = || given::<IssuerDecider>(events.clone());
    let revoke = |kid: &str| IssuerCommand::RevokeKey {
        kid: Kid::parse(kid).unwrap(),
    };
    g().when(revoke("key-1"), t(201))
        .then_error(IssuerError::AlreadyRevoked("key-1".into()));
    g().when(revoke("nope"), t(201))
        .then_error(IssuerError::KeyNotFound("nope".into()));
    given::<IssuerDecider>([])
        .when(revoke("key-1"), t(0))
        .then_error(IssuerError::NotFound);
}

#[test]
fn suspend_and_reinstate() {
    let suspended = given::<IssuerDecider>(registered())
        .when(IssuerCommand::Suspend, t(5))
        .accepted();
    assert!(IssuerDecider::fold(&suspended).unwrap().suspended);
    given::<IssuerDecider>(suspended.clone())
        .when(IssuerCommand::Suspend, t(6))
        .then_error(IssuerError::AlreadySuspended);
    let back = given::<IssuerDecider>(suspended)
        .when(IssuerCommand::Reinstate, t(7))
        .accepted();
    assert!(!IssuerDecider::fold(&back).unwrap().suspended);
    given::<IssuerDecider>(back)
        .when(IssuerCommand::Reinstate, t(8))
        .then_error(IssuerError::NotSuspended);
    given::<IssuerDecider>([])
        .when(IssuerCommand::Suspend, t(0))
        .then_error(IssuerError::NotFound);
}

#[test]
fn events_round_trip() {
    let suspended = given::<IssuerDecider>(registered())
        .when(IssuerCommand::Suspend, t(5))
        .accepted();
    let events = given::<IssuerDecider>(suspended)
        .when(
            IssuerCommand::RetireKey {
                kid: Kid::parse("key-2").unwrap(),
            },
            t(6),
        )
        .accepted();
    for event in &events {
        let encoded = event.encode();
        assert_eq!(
            &IssuerEvent::decode(&encoded.event_type, 1, &encoded.data).unwrap(),
            event
        );
    }
}
