//! What the discovery tests share: the test DID, documents made of the
//! `testing` signers' keys, and their Multikey encodings.

use proofline_domain::did::{Did, encode_ed25519_multibase};
use proofline_domain::discovery::{DiscoveryError, keys_of_did_document};
use proofline_domain::issuer::{Kid, RegisteredKey};
use proofline_domain::jose::PublicKey;
use proofline_domain::jose::testing::TestKey;
use serde_json::{Value, json};

pub const DID: &str = "did:web:issuer.example";

pub fn did(text: &str) -> Did {
    Did::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

pub fn jwk_of(key: &TestKey) -> Value {
    serde_json::to_value(key.public().to_jwk()).unwrap()
}

pub fn key(kid: &str, public: PublicKey) -> RegisteredKey {
    RegisteredKey {
        kid: Kid::parse(kid).unwrap(),
        jwk: public.to_jwk(),
    }
}

/// `publicKeyMultibase` of a key: `z` + base58btc(multicodec || key), the
/// P-256 one compressed.
pub fn multibase(key: &TestKey) -> String {
    match key {
        TestKey::Ed25519(k) => encode_ed25519_multibase(&k.verifying_key()),
        TestKey::P256(k) => {
            let mut bytes = vec![0x80, 0x24];
            bytes.extend_from_slice(k.verifying_key().to_sec1_point(true).as_bytes());
            format!("z{}", bs58::encode(bytes).into_string())
        }
    }
}

pub fn multibase_of(codec: &[u8], key: &[u8]) -> String {
    format!("z{}", bs58::encode([codec, key].concat()).into_string())
}

pub fn jwk_method(id: &str, key: &TestKey) -> Value {
    json!({"id": id, "type": "JsonWebKey2020", "controller": DID, "publicKeyJwk": jwk_of(key)})
}

pub fn multikey(id: &str, multibase: &str) -> Value {
    json!({"id": id, "type": "Multikey", "controller": DID, "publicKeyMultibase": multibase})
}

pub fn document(methods: Vec<Value>, assertion: Vec<Value>) -> Value {
    json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": DID,
        "verificationMethod": methods,
        "assertionMethod": assertion,
    })
}

pub fn keys_of(document: &Value) -> Result<Vec<RegisteredKey>, DiscoveryError> {
    keys_of_did_document(&did(DID), document)
}

pub fn jwks(keys: &[(&str, &TestKey)]) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|(kid, key)| {
            let mut jwk = jwk_of(key);
            jwk["kid"] = json!(kid);
            jwk
        })
        .collect();
    json!({"keys": keys})
}
