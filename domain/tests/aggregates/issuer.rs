//! The Issuer aggregate: the trust registry's issuers, their keys and how a
//! JWT's `kid` names one.

use proofline_domain::decider::{Decider, EventSchema};
use proofline_domain::did::Did;
use proofline_domain::issuer::{
    IssuerCommand, IssuerDecider, IssuerError, IssuerEvent, IssuerId, KeyLookupError, KeySource,
    Kid, RegisteredKey, Vct,
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
        key_sources: None,
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
    // No keys, and no source that gives this identifier any.
    let register = |did: &str, keys: Vec<RegisteredKey>, sources: Option<Vec<KeySource>>| {
        IssuerCommand::Register {
            did: Did::parse(did).unwrap(),
            name: name.clone(),
            keys,
            credential_types: None,
            key_sources: sources,
        }
    };
    for (did, sources) in [
        ("did:web:issuer.example", Some(vec![KeySource::Registered])),
        ("did:example:123", None),
        ("did:web:issuer.example", Some(vec![KeySource::Metadata])),
        ("https://issuer.example", None),
    ] {
        g().when(register(did, vec![], sources), t(0))
            .then_error(IssuerError::NoKeys);
    }
    g().when(
        register("did:web:issuer.example", vec![], Some(vec![])),
        t(0),
    )
    .then_error(IssuerError::NoKeySource);
    g().when(
        register(
            "did:web:issuer.example",
            vec![],
            Some(vec![KeySource::Did, KeySource::Did]),
        ),
        t(0),
    )
    .then_error(IssuerError::DuplicateKeySource("did".into()));
    g().when(
        register(
            "did:web:issuer.example",
            vec![key("k", &TestKey::ed25519(1))],
            Some(vec![KeySource::Did]),
        ),
        t(0),
    )
    .then_error(IssuerError::KeysWithoutRegisteredSource);
    let twice = IssuerCommand::Register {
        did: web_did(),
        name: name.clone(),
        keys: vec![
            key("k", &TestKey::ed25519(1)),
            key("k", &TestKey::ed25519(2)),
        ],
        credential_types: None,
        key_sources: None,
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
        key_sources: None,
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
        key_sources: None,
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
        key_sources: None,
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
            key_sources: None,
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
        key_sources: None,
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

/// A did:web issuer registered with no keys: its keys are what its DID
/// document gives; a new set is recorded only when it changed; a key gone
/// from the document no longer verifies.
#[test]
fn resolved_keys_verify_until_the_source_drops_them() {
    let register = IssuerCommand::Register {
        did: web_did(),
        name: Name::parse("name", "Web Issuer").unwrap(),
        keys: vec![],
        credential_types: None,
        key_sources: Some(vec![KeySource::Did]),
    };
    let registered = given::<IssuerDecider>([]).when(register, t(0)).accepted();
    let resolve = |keys: Vec<RegisteredKey>, at: i64| IssuerCommand::RecordResolution {
        source: KeySource::Did,
        source_url: "https://issuer.example/.well-known/did.json".into(),
        document_sha256: format!("{at:064}"),
        keys,
        resolved_at: t(at),
    };
    let k1 = key("did:web:issuer.example#key-1", &TestKey::ed25519(1));
    let k2 = key("did:web:issuer.example#key-2", &TestKey::p256(2));
    let mut history = given::<IssuerDecider>(registered.clone())
        .when(resolve(vec![k1.clone()], 10), t(10))
        .then([IssuerEvent::IssuerKeysResolved {
            did: web_did(),
            source: KeySource::Did,
            source_url: "https://issuer.example/.well-known/did.json".into(),
            document_sha256: format!("{:064}", 10),
            keys: vec![k1.clone()],
            resolved_at: t(10),
        }]);
    // The same keys again (the document re-served): nothing.
    history = given::<IssuerDecider>(history)
        .when(resolve(vec![k1.clone()], 20), t(20))
        .then([]);
    let issuer = IssuerDecider::fold(&history).unwrap();
    for kid in ["did:web:issuer.example#key-1", "#key-1", "key-1"] {
        let found = issuer.key_at(Some(kid), t(5)).unwrap();
        assert_eq!(found.source, KeySource::Did, "{kid}");
    }
    assert_eq!(issuer.resolved_by(KeySource::Did).unwrap().version, 2);
    // The document now lists key-2 only: key-1 no longer verifies.
    history = given::<IssuerDecider>(history)
        .when(resolve(vec![k2], 30), t(30))
        .accepted();
    let issuer = IssuerDecider::fold(&history).unwrap();
    assert_eq!(
        issuer.key_at(Some("key-1"), t(5)).unwrap_err(),
        KeyLookupError::UnknownKid
    );
    assert!(issuer.key_at(Some("#key-2"), t(5)).is_ok());
    // A source the issuer does not allow is refused.
    given::<IssuerDecider>(registered)
        .when(
            IssuerCommand::RecordResolution {
                source: KeySource::Metadata,
                source_url: "https://issuer.example/.well-known/jwt-vc-issuer".into(),
                document_sha256: String::new(),
                keys: vec![k1],
                resolved_at: t(40),
            },
            t(40),
        )
        .then_error(IssuerError::SourceNotAllowed("metadata".into()));
}

/// An operator's revocation of a registered key holds when a credential
/// names the same key by a kid its DID document gives it.
#[test]
fn a_revoked_key_does_not_come_back_through_the_did_document() {
    let stolen = TestKey::ed25519(7);
    let register = IssuerCommand::Register {
        did: web_did(),
        name: Name::parse("name", "Web Issuer").unwrap(),
        keys: vec![key("k1", &stolen)],
        credential_types: None,
        key_sources: None,
    };
    let history = given::<IssuerDecider>([]).when(register, t(0)).accepted();
    let history = given::<IssuerDecider>(history)
        .when(
            IssuerCommand::RevokeKey {
                kid: Kid::parse("k1").unwrap(),
            },
            t(5),
        )
        .accepted();
    let history = given::<IssuerDecider>(history)
        .when(
            IssuerCommand::RecordResolution {
                source: KeySource::Did,
                source_url: "https://issuer.example/.well-known/did.json".into(),
                document_sha256: String::new(),
                keys: vec![key("did:web:issuer.example#key-2020", &stolen)],
                resolved_at: t(10),
            },
            t(10),
        )
        .accepted();
    let issuer = IssuerDecider::fold(&history).unwrap();
    assert!(matches!(
        issuer.key_at(Some("did:web:issuer.example#key-2020"), t(20)),
        Err(KeyLookupError::Revoked { .. })
    ));
}
