//! Decentralized identifiers, and did:key with Ed25519.
//!
//! A did:key carries its public key in the identifier itself:
//! `did:key:z<base58btc(0xed 0x01 || 32-byte Ed25519 public key)>`, where
//! `z` is the multibase prefix of base58btc and `0xed 0x01` the unsigned
//! varint of the multicodec `ed25519-pub` (0xed). Any other DID method is
//! accepted as an identifier whose keys are registered as JWKs.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::jose::PublicKey;
use crate::values::InvalidValue;

/// The multicodec prefix of an Ed25519 public key, as an unsigned varint.
const ED25519_PUB: [u8; 2] = [0xed, 0x01];
pub const MAX_DID_LEN: usize = 512;

fn invalid(message: impl Into<String>) -> InvalidValue {
    InvalidValue {
        field: "did",
        message: message.into(),
    }
}

/// An issuer's identifier: a DID, `did:<method>:<method-specific-id>`, or
/// (for issuers whose keys come from SD-JWT VC issuer metadata or an
/// `x5c` chain) the https URL credentials carry as `iss`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Did(String);

impl Did {
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        if text.len() > MAX_DID_LEN {
            return Err(invalid(format!("is longer than {MAX_DID_LEN} characters")));
        }
        if text.starts_with("https://") {
            return Self::parse_url(text);
        }
        let rest = text
            .strip_prefix("did:")
            .ok_or_else(|| invalid("must start with did:"))?;
        let (method, id) = rest
            .split_once(':')
            .ok_or_else(|| invalid("must be did:<method>:<id>"))?;
        if method.is_empty()
            || !method
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(invalid("the method must be lowercase letters and digits"));
        }
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b".-_:%".contains(&b);
        if id.is_empty() || !id.bytes().all(allowed) || id.ends_with(':') {
            return Err(invalid(
                "the method-specific id has characters a DID does not allow",
            ));
        }
        let did = Self(text.to_owned());
        if method == "key" {
            did.key_of_did_key()?;
        }
        Ok(did)
    }

    /// An https issuer identifier: a host, no credentials, query or
    /// fragment, and written as the URL parser writes it (so that one
    /// issuer has one spelling).
    fn parse_url(text: &str) -> Result<Self, InvalidValue> {
        let url = url::Url::parse(text).map_err(|e| invalid(format!("is not a URL: {e}")))?;
        if url.host_str().is_none_or(str::is_empty)
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(invalid(
                "an https issuer identifier has a host and no credentials, query or fragment",
            ));
        }
        let written = url.as_str();
        if written != text && written.strip_suffix('/') != Some(text) {
            return Err(invalid(format!("must be written as {written:?}")));
        }
        Ok(Self(text.to_owned()))
    }

    /// Whether this is an https URL rather than a DID.
    pub fn is_url(&self) -> bool {
        self.0.starts_with("https://")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The DID method (`key`, `web`); empty for an https identifier.
    pub fn method(&self) -> &str {
        if self.is_url() {
            return "";
        }
        self.0.split(':').nth(1).unwrap_or_default()
    }

    pub fn is_did_key(&self) -> bool {
        self.method() == "key"
    }

    /// The multibase part of a did:key (`z6Mk…`).
    pub fn did_key_multibase(&self) -> Option<&str> {
        self.0.strip_prefix("did:key:")
    }

    /// The Ed25519 key a did:key carries.
    pub fn key_of_did_key(&self) -> Result<PublicKey, InvalidValue> {
        let multibase = self
            .did_key_multibase()
            .ok_or_else(|| invalid("not a did:key"))?;
        decode_ed25519_multibase(multibase)
    }

    /// The did:key of an Ed25519 public key.
    pub fn from_ed25519(key: &ed25519_dalek::VerifyingKey) -> Self {
        Self(format!("did:key:{}", encode_ed25519_multibase(key)))
    }
}

/// `z` + base58btc(multicodec ed25519-pub + key).
pub fn encode_ed25519_multibase(key: &ed25519_dalek::VerifyingKey) -> String {
    let mut bytes = ED25519_PUB.to_vec();
    bytes.extend_from_slice(key.as_bytes());
    format!("z{}", bs58::encode(bytes).into_string())
}

pub fn decode_ed25519_multibase(multibase: &str) -> Result<PublicKey, InvalidValue> {
    let encoded = multibase
        .strip_prefix('z')
        .ok_or_else(|| invalid("a did:key must be multibase base58btc (starting with z)"))?;
    let bytes = bs58::decode(encoded)
        .into_vec()
        .map_err(|_| invalid("the did:key is not valid base58btc"))?;
    let key = bytes
        .strip_prefix(&ED25519_PUB)
        .ok_or_else(|| invalid("the did:key is not an Ed25519 key (multicodec 0xed)"))?;
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| invalid("an Ed25519 did:key holds 32 bytes"))?;
    ed25519_dalek::VerifyingKey::from_bytes(&key)
        .map(PublicKey::Ed25519)
        .map_err(|_| invalid("the did:key is not a valid Ed25519 point"))
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Did {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Did> for String {
    fn from(value: Did) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first example of the did:key specification (Ed25519 2020).
    const SPEC_EXAMPLE: &str = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";

    #[test]
    fn did_key_round_trips_to_its_public_key_and_back() {
        let did = Did::parse(SPEC_EXAMPLE).unwrap();
        let PublicKey::Ed25519(key) = did.key_of_did_key().unwrap() else {
            panic!("an Ed25519 key")
        };
        assert_eq!(Did::from_ed25519(&key), did);
        for seed in 0..20u8 {
            let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key();
            let did = Did::from_ed25519(&key);
            assert!(did.as_str().starts_with("did:key:z6Mk"), "{did}");
            assert_eq!(
                Did::parse(did.as_str()).unwrap().key_of_did_key().unwrap(),
                PublicKey::Ed25519(key)
            );
        }
    }

    #[test]
    fn malformed_did_keys_are_refused() {
        let cases = [
            (
                "did:web:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
                true,
            ),
            // wrong multibase prefix (u = base64url)
            ("did:key:u7QGK", false),
            // secp256k1 (multicodec 0xe7): a valid did:key, but not Ed25519
            (
                "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme",
                false,
            ),
            // bad base58: 0, O, I and l are not in the alphabet
            (
                "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta20OIl",
                false,
            ),
            // right prefix, truncated key
            (
                "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2do",
                false,
            ),
            ("did:key:", false),
        ];
        for (text, accepted) in cases {
            assert_eq!(Did::parse(text).is_ok(), accepted, "{text}");
        }
        for bad in [
            "",
            "did:",
            "did:web",
            "DID:web:x",
            "did:Web:x",
            "did:web:a b",
            "did:web:x:",
            "https://",
            "https://user@issuer.example",
            "https://issuer.example/?q=1",
            "https://issuer.example/#f",
            "https://ISSUER.example",
            "key:z6Mk",
        ] {
            assert!(Did::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Did::parse(&format!("did:web:{}", "a".repeat(600))).is_err());
    }

    #[test]
    fn https_issuer_identifiers_are_accepted_as_written() {
        for good in [
            "https://issuer.example",
            "https://issuer.example/",
            "https://issuer.example:8443/tenants/acme",
        ] {
            let did = Did::parse(good).unwrap();
            assert!(did.is_url() && !did.is_did_key(), "{good}");
            assert_eq!(did.method(), "");
            assert_eq!(did.as_str(), good);
        }
    }

    #[test]
    fn other_methods_are_identifiers() {
        let did = Did::parse("did:web:issuer.example:credentials").unwrap();
        assert_eq!(did.method(), "web");
        assert!(!did.is_did_key());
        assert!(Did::parse("did:web:issuer.example%3A8443").is_ok());
    }
}
