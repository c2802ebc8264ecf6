//! SD-JWT VC issuer metadata (inline `jwks` or `jwks_uri`) and JWK Sets.

use proofline_domain::discovery::{
    DiscoveryError, MAX_ENTRIES, MetadataKeys, keys_of_issuer_metadata, keys_of_jwks,
};
use proofline_domain::issuer::MAX_KEYS;
use proofline_domain::jose::testing::TestKey;
use serde_json::json;

use crate::support::{jwks, key};

#[test]
fn issuer_metadata_gives_inline_keys_or_where_they_are() {
    let iss = "https://issuer.example/tenant/1";
    let (ed, p) = (TestKey::ed25519(1), TestKey::p256(2));
    let inline = json!({"issuer": iss, "jwks": jwks(&[("a", &ed), ("b", &p)])});
    assert_eq!(
        keys_of_issuer_metadata(iss, &inline),
        Ok(MetadataKeys::Jwks(vec![
            key("a", ed.public()),
            key("b", p.public())
        ]))
    );
    let remote = json!({"issuer": iss, "jwks_uri": "https://issuer.example/jwks.json?v=2"});
    assert_eq!(
        keys_of_issuer_metadata(iss, &remote),
        Ok(MetadataKeys::JwksUri(
            "https://issuer.example/jwks.json?v=2".into()
        ))
    );
    // An inline set is checked as any JWK Set is.
    let empty = json!({"issuer": iss, "jwks": {"keys": []}});
    assert_eq!(
        keys_of_issuer_metadata(iss, &empty),
        Err(DiscoveryError::NoUsableKey)
    );
}

#[test]
fn issuer_metadata_must_be_the_issuers_own() {
    let iss = "https://issuer.example";
    let ed = TestKey::ed25519(1);
    for issuer in [
        json!("https://issuer.example/"),
        json!("https://evil.example"),
        json!("HTTPS://issuer.example"),
    ] {
        let doc = json!({"issuer": issuer, "jwks": jwks(&[("a", &ed)])});
        assert!(
            matches!(
                keys_of_issuer_metadata(iss, &doc),
                Err(DiscoveryError::IssuerMismatch { .. })
            ),
            "{issuer}"
        );
    }
    let no_issuer = json!({"jwks": jwks(&[("a", &ed)])});
    assert!(matches!(
        keys_of_issuer_metadata(iss, &no_issuer),
        Err(DiscoveryError::Missing {
            member: "issuer",
            ..
        })
    ));
    let not_string = json!({"issuer": ["https://issuer.example"], "jwks": jwks(&[("a", &ed)])});
    assert!(matches!(
        keys_of_issuer_metadata(iss, &not_string),
        Err(DiscoveryError::Invalid { .. })
    ));
    assert!(matches!(
        keys_of_issuer_metadata(iss, &json!(null)),
        Err(DiscoveryError::NotAnObject(_))
    ));
}

#[test]
fn issuer_metadata_has_exactly_one_source_of_keys() {
    let iss = "https://issuer.example";
    let ed = TestKey::ed25519(1);
    let both = json!({"issuer": iss, "jwks": jwks(&[("a", &ed)]), "jwks_uri": "https://issuer.example/jwks"});
    assert_eq!(
        keys_of_issuer_metadata(iss, &both),
        Err(DiscoveryError::BothJwksAndJwksUri)
    );
    let neither = json!({"issuer": iss});
    assert_eq!(
        keys_of_issuer_metadata(iss, &neither),
        Err(DiscoveryError::NoJwks)
    );
    for uri in [
        json!("http://issuer.example/jwks"),
        json!("https://user:pw@issuer.example/jwks"),
        json!("https://issuer.example/jwks#keys"),
        json!("/jwks"),
        json!(42),
        json!(null),
    ] {
        let doc = json!({"issuer": iss, "jwks_uri": uri});
        assert!(
            matches!(
                keys_of_issuer_metadata(iss, &doc),
                Err(DiscoveryError::InvalidJwksUri { .. })
            ),
            "{uri}"
        );
    }
}

#[test]
fn jwks_keep_signature_keys_under_their_kids() {
    let (ed, p, other) = (TestKey::ed25519(1), TestKey::p256(2), TestKey::p256(3));
    let mut set = jwks(&[
        ("sig-ed", &ed),
        ("sig-p", &p),
        ("enc", &other),
        ("ops", &other),
    ]);
    set["keys"][0]["use"] = json!("sig");
    set["keys"][1]["key_ops"] = json!(["verify"]);
    set["keys"][2]["use"] = json!("enc");
    set["keys"][3]["key_ops"] = json!(["encrypt"]);
    let keys = set["keys"].as_array_mut().unwrap();
    keys.push(json!({"kty": "RSA", "kid": "rsa", "n": "AQAB", "e": "AQAB"}));
    keys.push(json!({"kty": "OKP", "crv": "X25519", "x": "AAAA"}));
    // A symmetric key, without a kid: skipped, not refused.
    keys.push(json!({"kty": "oct", "k": "c2VjcmV0"}));
    assert_eq!(
        keys_of_jwks(&set).unwrap(),
        vec![key("sig-ed", ed.public()), key("sig-p", p.public())]
    );
    let only_enc = {
        let mut set = jwks(&[("enc", &other)]);
        set["keys"][0]["use"] = json!("enc");
        set
    };
    assert_eq!(keys_of_jwks(&only_enc), Err(DiscoveryError::NoUsableKey));
}

#[test]
fn jwks_refuse_private_keys_missing_or_duplicate_kids_and_bad_keys() {
    let (ed, p) = (TestKey::ed25519(1), TestKey::p256(2));
    let mut private = jwks(&[("a", &ed), ("b", &p)]);
    private["keys"][1]["d"] = json!("gPh-VvVS8MbvKQ9LSVVmfnxnKjHn4Tqj0bmbpehRlpc");
    assert_eq!(
        keys_of_jwks(&private),
        Err(DiscoveryError::PrivateKey("\"b\"".into()))
    );
    // Even on a key that would be skipped.
    let mut private_enc = jwks(&[("a", &ed)]);
    private_enc["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty": "RSA", "use": "enc", "d": "x"}));
    assert!(matches!(
        keys_of_jwks(&private_enc),
        Err(DiscoveryError::PrivateKey(_))
    ));

    let mut no_kid = jwks(&[("a", &ed), ("b", &p)]);
    no_kid["keys"][1].as_object_mut().unwrap().remove("kid");
    assert_eq!(keys_of_jwks(&no_kid), Err(DiscoveryError::MissingKid(1)));
    for kid in [json!(""), json!(7), json!("has space")] {
        let mut bad_kid = jwks(&[("a", &ed)]);
        bad_kid["keys"][0]["kid"] = kid;
        assert!(matches!(
            keys_of_jwks(&bad_kid),
            Err(DiscoveryError::InvalidKey { .. })
        ));
    }
    let twice = jwks(&[("a", &ed), ("a", &p)]);
    assert_eq!(
        keys_of_jwks(&twice),
        Err(DiscoveryError::DuplicateKid("a".into()))
    );

    let mut bad_point = jwks(&[("a", &p)]);
    bad_point["keys"][0]["y"] = bad_point["keys"][0]["x"].clone();
    assert!(matches!(
        keys_of_jwks(&bad_point),
        Err(DiscoveryError::InvalidKey { .. })
    ));
    let mut wrong_alg = jwks(&[("a", &p)]);
    wrong_alg["keys"][0]["alg"] = json!("EdDSA");
    assert!(matches!(
        keys_of_jwks(&wrong_alg),
        Err(DiscoveryError::InvalidKey { .. })
    ));
    let not_object = json!({"keys": ["a"]});
    assert!(matches!(
        keys_of_jwks(&not_object),
        Err(DiscoveryError::InvalidKey { .. })
    ));

    assert!(matches!(
        keys_of_jwks(&json!({})),
        Err(DiscoveryError::Missing { member: "keys", .. })
    ));
    assert!(matches!(
        keys_of_jwks(&json!({"keys": {}})),
        Err(DiscoveryError::Invalid { .. })
    ));
    assert!(matches!(
        keys_of_jwks(&json!([])),
        Err(DiscoveryError::NotAnObject(_))
    ));
}

#[test]
fn jwks_are_bounded() {
    let ed = TestKey::ed25519(1);
    let set = |n: usize| {
        let kids: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
        let keys: Vec<(&str, &TestKey)> = kids.iter().map(|k| (k.as_str(), &ed)).collect();
        jwks(&keys)
    };
    assert_eq!(keys_of_jwks(&set(MAX_KEYS)).unwrap().len(), MAX_KEYS);
    assert_eq!(
        keys_of_jwks(&set(MAX_KEYS + 1)),
        Err(DiscoveryError::TooManyKeys(MAX_KEYS + 1))
    );
    let mut padded = set(1);
    let enc = json!({"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"});
    padded["keys"]
        .as_array_mut()
        .unwrap()
        .extend(vec![enc; MAX_ENTRIES]);
    assert!(matches!(
        keys_of_jwks(&padded),
        Err(DiscoveryError::TooLarge { member: "keys", .. })
    ));
}
