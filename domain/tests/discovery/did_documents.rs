//! DID documents: JWK and Multikey methods, references, embedded
//! methods, and every refusal.

use proofline_domain::discovery::{DiscoveryError, MAX_ENTRIES, keys_of_did_document};
use proofline_domain::issuer::MAX_KEYS;
use proofline_domain::jose::Jwk;
use proofline_domain::jose::testing::TestKey;
use serde_json::{Value, json};

use crate::support::{
    DID, did, document, jwk_method, jwk_of, key, keys_of, multibase, multibase_of, multikey,
};

#[test]
fn jwk_methods_give_absolute_kids_whatever_the_reference() {
    let (ed, p) = (TestKey::ed25519(1), TestKey::p256(2));
    let mut p_method = jwk_method(&format!("{DID}#p256"), &p);
    p_method["type"] = json!("JsonWebKey");
    let doc = document(
        vec![jwk_method("#ed", &ed), p_method],
        vec![json!(format!("{DID}#ed")), json!("#p256")],
    );
    assert_eq!(
        keys_of(&doc).unwrap(),
        vec![
            key(&format!("{DID}#ed"), ed.public()),
            key(&format!("{DID}#p256"), p.public()),
        ]
    );
}

#[test]
fn multikeys_give_the_signers_own_jwks() {
    for seed in 1..6u8 {
        let (ed, p) = (TestKey::ed25519(seed), TestKey::p256(seed));
        let doc = document(
            vec![
                multikey("#ed", &multibase(&ed)),
                multikey("#p", &multibase(&p)),
            ],
            vec![json!("#ed"), json!("#p")],
        );
        let keys = keys_of(&doc).unwrap();
        assert_eq!(keys[0].jwk, ed.public().to_jwk());
        assert_eq!(keys[1].jwk, p.public().to_jwk());
        assert_eq!(keys[1].jwk.public_key().unwrap(), p.public());
        assert_eq!(keys[0].kid.as_str(), format!("{DID}#ed"));
    }
}

#[test]
fn multikeys_of_the_did_key_test_vectors() {
    // did-method-key test vectors: an Ed25519 key and two P-256 keys (nist-curves.json)
    let ed = "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
    let p256 = [
        (
            "zDnaerx9CtbPJ1q36T5Ln5wYt3MQYeGRG5ehnPAmxcf5mDZpv",
            "igrFmi0whuihKnj9R3Om1SoMph72wUGeFaBbzG2vzns",
            "efsX5b10x8yjyrj4ny3pGfLcY7Xby1KzgqOdqnsrJIM",
        ),
        (
            "zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169",
            "fyNYMN0976ci7xqiSdag3buk-ZCwgXU4kz9XNkBlNUI",
            "hW2ojTNfH7Jbi8--CJUo3OCbH3y5n91g-IMA9MLMbTU",
        ),
    ];
    let doc = document(
        vec![
            multikey("#ed", ed),
            multikey("#p1", p256[0].0),
            multikey("#p2", p256[1].0),
        ],
        vec![json!("#ed"), json!("#p1"), json!("#p2")],
    );
    let keys = keys_of(&doc).unwrap();
    let did_key = did(&format!("did:key:{ed}"));
    assert_eq!(keys[0].jwk, did_key.key_of_did_key().unwrap().to_jwk());
    for (key, (_, x, y)) in keys[1..].iter().zip(p256) {
        let expected = Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: x.into(),
            y: Some(y.into()),
        };
        assert_eq!(key.jwk, expected);
    }
}

#[test]
fn embedded_methods_count_and_others_relationships_do_not() {
    let (listed, embedded, other) = (TestKey::ed25519(1), TestKey::p256(2), TestKey::ed25519(3));
    let mut doc = document(
        vec![jwk_method("#listed", &listed), jwk_method("#auth", &other)],
        vec![
            json!("#listed"),
            jwk_method(&format!("{DID}#embedded"), &embedded),
        ],
    );
    doc["authentication"] = json!(["#auth"]);
    let keys = keys_of(&doc).unwrap();
    assert_eq!(
        keys,
        vec![
            key(&format!("{DID}#listed"), listed.public()),
            key(&format!("{DID}#embedded"), embedded.public()),
        ]
    );
    // A document with no verificationMethod at all, only embedded ones.
    let only = json!({"id": DID, "assertionMethod": [multikey("#m", &multibase(&other))]});
    assert_eq!(
        keys_of(&only).unwrap(),
        vec![key(&format!("{DID}#m"), other.public())]
    );
}

#[test]
fn did_documents_with_a_path_use_their_own_did() {
    let path_did = "did:web:example.com:user:alice";
    let ed = TestKey::ed25519(4);
    let doc = json!({
        "id": path_did,
        "verificationMethod": [{"id": "#k", "type": "Multikey", "controller": path_did,
                                "publicKeyMultibase": multibase(&ed)}],
        "assertionMethod": [format!("{path_did}#k")],
    });
    assert_eq!(
        keys_of_did_document(&did(path_did), &doc).unwrap(),
        vec![key(&format!("{path_did}#k"), ed.public())]
    );
    // The host's own DID is another DID.
    assert!(matches!(
        keys_of_did_document(&did("did:web:example.com"), &doc),
        Err(DiscoveryError::IdMismatch { .. })
    ));
}

#[test]
fn unsupported_key_types_are_skipped() {
    let ed = TestKey::ed25519(1);
    let unsupported = vec![
        json!({"id": "#k1", "type": "EcdsaSecp256k1VerificationKey2019", "controller": DID,
               "publicKeyJwk": {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"}}),
        json!({"id": "#rsa", "type": "JsonWebKey2020", "controller": DID,
               "publicKeyJwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}),
        json!({"id": "#p384", "type": "JsonWebKey2020", "publicKeyJwk":
               {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}}),
        multikey("#x25519", &multibase_of(&[0xec, 0x01], &[9; 32])),
        multikey("#secp256k1", &multibase_of(&[0xe7, 0x01], &[2; 33])),
        json!({"id": "#enc", "type": "JsonWebKey2020",
               "publicKeyJwk": {"use": "enc", "kty": "OKP", "crv": "Ed25519", "x": jwk_of(&ed)["x"]}}),
    ];
    let references: Vec<Value> = ["#k1", "#rsa", "#p384", "#x25519", "#secp256k1", "#enc"]
        .into_iter()
        .map(Value::from)
        .collect();
    let mut methods = unsupported.clone();
    methods.push(jwk_method("#ed", &ed));
    let mut listed = references.clone();
    listed.push(json!("#ed"));
    assert_eq!(
        keys_of(&document(methods, listed)).unwrap(),
        vec![key(&format!("{DID}#ed"), ed.public())]
    );
    assert_eq!(
        keys_of(&document(unsupported, references)),
        Err(DiscoveryError::NoUsableKey)
    );
    assert_eq!(
        keys_of(&document(vec![jwk_method("#ed", &ed)], vec![])),
        Err(DiscoveryError::NoUsableKey)
    );
    assert_eq!(
        keys_of(&json!({"id": DID})),
        Err(DiscoveryError::NoUsableKey)
    );
}

#[test]
fn the_document_must_be_the_dids_own_and_its_methods_too() {
    let ed = TestKey::ed25519(1);
    let mut other_id = document(vec![jwk_method("#k", &ed)], vec![json!("#k")]);
    other_id["id"] = json!("did:web:evil.example");
    assert!(matches!(
        keys_of(&other_id),
        Err(DiscoveryError::IdMismatch { .. })
    ));
    let mut no_id = other_id.clone();
    no_id.as_object_mut().unwrap().remove("id");
    assert!(matches!(
        keys_of(&no_id),
        Err(DiscoveryError::Missing { member: "id", .. })
    ));
    assert!(matches!(
        keys_of(&json!([DID])),
        Err(DiscoveryError::NotAnObject(_))
    ));

    let mut controlled = jwk_method("#k", &ed);
    controlled["controller"] = json!("did:web:evil.example");
    let doc = document(vec![controlled.clone()], vec![json!("#k")]);
    assert!(matches!(
        keys_of(&doc),
        Err(DiscoveryError::ControllerMismatch { .. })
    ));
    controlled["controller"] = json!([DID]);
    let doc = document(vec![], vec![controlled]);
    assert!(matches!(
        keys_of(&doc),
        Err(DiscoveryError::ControllerMismatch { .. })
    ));
    // Without a controller, the method is the document's.
    let mut bare = jwk_method("#k", &ed);
    bare.as_object_mut().unwrap().remove("controller");
    assert!(keys_of(&document(vec![bare], vec![json!("#k")])).is_ok());

    let foreign = jwk_method("did:web:evil.example#k", &ed);
    let doc = document(vec![foreign], vec![json!("did:web:evil.example#k")]);
    assert!(matches!(
        keys_of(&doc),
        Err(DiscoveryError::ForeignMethod(_))
    ));
    // A DID with this one as a prefix is another DID.
    let longer = jwk_method(&format!("{DID}.evil#k"), &ed);
    assert!(matches!(
        keys_of(&document(vec![longer], vec![json!("#k")])),
        Err(DiscoveryError::ForeignMethod(_))
    ));
}

#[test]
fn references_must_name_a_method_of_the_document() {
    let ed = TestKey::ed25519(1);
    for reference in [
        "#other",
        "did:web:issuer.example#other",
        "did:web:evil.example#k",
        "k",
        "#",
        DID,
    ] {
        let doc = document(vec![jwk_method("#k", &ed)], vec![json!(reference)]);
        assert_eq!(
            keys_of(&doc),
            Err(DiscoveryError::UnknownReference(reference.into())),
            "{reference}"
        );
    }
    let doc = document(vec![jwk_method("#k", &ed)], vec![json!(7)]);
    assert!(matches!(
        keys_of(&doc),
        Err(DiscoveryError::Invalid {
            member: "assertionMethod",
            ..
        })
    ));
    let mut doc = document(vec![jwk_method("#k", &ed)], vec![]);
    doc["assertionMethod"] = json!("#k");
    assert!(matches!(
        keys_of(&doc),
        Err(DiscoveryError::Invalid {
            member: "assertionMethod",
            ..
        })
    ));
}

#[test]
fn duplicate_ids_are_refused() {
    let (a, b) = (TestKey::ed25519(1), TestKey::ed25519(2));
    let twice_defined = document(
        vec![jwk_method("#k", &a), jwk_method(&format!("{DID}#k"), &b)],
        vec![json!("#k")],
    );
    let embedded_again = document(vec![jwk_method("#k", &a)], vec![jwk_method("#k", &b)]);
    let listed_twice = document(
        vec![jwk_method("#k", &a)],
        vec![json!("#k"), json!(format!("{DID}#k"))],
    );
    let embedded_twice = document(vec![], vec![jwk_method("#k", &a), jwk_method("#k", &b)]);
    for doc in [twice_defined, embedded_again, listed_twice, embedded_twice] {
        assert_eq!(
            keys_of(&doc),
            Err(DiscoveryError::DuplicateId(format!("{DID}#k")))
        );
    }
}

#[test]
fn private_jwks_are_refused() {
    let p = TestKey::p256(2);
    let mut method = jwk_method("#k", &p);
    method["publicKeyJwk"]["d"] = json!("gPh-VvVS8MbvKQ9LSVVmfnxnKjHn4Tqj0bmbpehRlpc");
    let doc = document(vec![method], vec![json!("#k")]);
    assert_eq!(
        keys_of(&doc),
        Err(DiscoveryError::PrivateKey(format!("{DID}#k")))
    );
    assert!(keys_of(&doc).unwrap_err().to_string().contains("private"));
}

#[test]
fn malformed_methods_are_refused() {
    let ed = TestKey::ed25519(1);
    let p = TestKey::p256(2);
    let compressed = match &p {
        TestKey::P256(k) => k.verifying_key().to_sec1_point(true).as_bytes().to_vec(),
        TestKey::Ed25519(_) => unreachable!(),
    };
    let mut not_on_curve = compressed.clone();
    not_on_curve[1..].fill(0xff);
    let mut uncompressed_prefix = compressed.clone();
    uncompressed_prefix[0] = 0x04;
    let mut wrong_alg = jwk_method("#k", &ed);
    wrong_alg["publicKeyJwk"]["alg"] = json!("ES256");
    let mut both = multikey("#k", &multibase(&ed));
    both["publicKeyJwk"] = jwk_of(&ed);
    let mut bad_x = jwk_method("#k", &ed);
    bad_x["publicKeyJwk"]["x"] = json!("AAAA");
    let cases = vec![
        json!({"id": "#k", "type": "JsonWebKey2020"}),
        json!({"id": "#k", "publicKeyJwk": jwk_of(&ed)}),
        json!({"id": "#k", "type": "JsonWebKey2020", "publicKeyJwk": "not an object"}),
        json!({"id": "#k", "type": "Multikey"}),
        json!({"id": "#k", "type": "Multikey", "publicKeyMultibase": 7}),
        wrong_alg,
        both,
        bad_x,
        // base64url instead of base58btc, bad base58, truncated keys
        multikey("#k", "uO0BAQ"),
        multikey("#k", "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta20OIl"),
        multikey("#k", &multibase_of(&[0xed, 0x01], &[1; 31])),
        multikey("#k", &multibase_of(&[0xed, 0x01], &[1; 33])),
        multikey("#k", &multibase_of(&[0x80, 0x24], &compressed[..32])),
        multikey("#k", &multibase_of(&[0x80, 0x24], &not_on_curve)),
        multikey("#k", &multibase_of(&[0x80, 0x24], &uncompressed_prefix)),
        multikey("#k", &format!("z{}", "2".repeat(200))),
    ];
    for method in cases {
        let doc = document(vec![method.clone()], vec![json!("#k")]);
        assert!(
            matches!(keys_of(&doc), Err(DiscoveryError::InvalidMethod { .. })),
            "{method}: {:?}",
            keys_of(&doc)
        );
    }
    for method in [
        json!("#k"),
        json!({"type": "Multikey"}),
        json!({"id": "k", "type": "Multikey"}),
    ] {
        let doc = document(vec![method.clone()], vec![json!("#k")]);
        assert!(
            matches!(keys_of(&doc), Err(DiscoveryError::InvalidMethod { .. })),
            "{method}"
        );
    }
    // A kid longer than a Kid may be (a long DID and fragment).
    let long = format!("#{}", "k".repeat(300));
    let doc = document(vec![jwk_method(&long, &ed)], vec![json!(long)]);
    assert!(matches!(
        keys_of(&doc),
        Err(DiscoveryError::InvalidMethod { .. })
    ));
}

#[test]
fn did_documents_are_bounded() {
    let ed = TestKey::ed25519(1);
    let many =
        |n: usize| -> Vec<Value> { (0..n).map(|i| jwk_method(&format!("#k{i}"), &ed)).collect() };
    let refs = |n: usize| -> Vec<Value> { (0..n).map(|i| json!(format!("#k{i}"))).collect() };
    assert_eq!(
        keys_of(&document(many(MAX_KEYS), refs(MAX_KEYS)))
            .unwrap()
            .len(),
        MAX_KEYS
    );
    assert_eq!(
        keys_of(&document(many(MAX_KEYS + 1), refs(MAX_KEYS + 1))),
        Err(DiscoveryError::TooManyKeys(MAX_KEYS + 1))
    );
    assert!(matches!(
        keys_of(&document(many(MAX_ENTRIES + 1), refs(1))),
        Err(DiscoveryError::TooLarge {
            member: "verificationMethod",
            ..
        })
    ));
    assert!(matches!(
        keys_of(&document(many(1), vec![json!("#k0"); MAX_ENTRIES + 1])),
        Err(DiscoveryError::TooLarge {
            member: "assertionMethod",
            ..
        })
    ));
}
