//! The small part of JOSE that Proofline needs, written to be strict.
//!
//! - base64url without padding, refusing padding, whitespace and the
//!   standard alphabet (one input, one decoding);
//! - compact JWS (`header.payload.signature`), parsed without trusting
//!   anything in it;
//! - public JWKs of two kinds, OKP Ed25519 and EC P-256; a JWK that carries a
//!   private part (`d`) is refused, so a private key can never be registered
//!   by mistake;
//! - signature verification where the key decides the algorithm: an
//!   Ed25519 key verifies only `EdDSA`, a P-256 key only `ES256`. `none`,
//!   the HMAC family and every other `alg` never verify, whatever the
//!   header says: the confusion attacks on JWT libraries all start by
//!   letting the header pick.
//!
//! Signature checks use `ed25519-dalek` (strict verification: no
//! small-order keys or non-canonical signatures) and `p256`.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Verifier as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    #[error("not base64url without padding")]
    Base64,
    #[error("a compact JWS has three parts separated by dots")]
    Compact,
    #[error("the JOSE header is not a JSON object")]
    Header,
    #[error("the payload is not a JSON object")]
    Payload,
    #[error("alg {0:?} is not accepted (EdDSA and ES256 only)")]
    Algorithm(String),
    #[error("alg {alg} does not match a {key} key")]
    AlgorithmKeyMismatch { alg: String, key: &'static str },
    #[error("the signature does not verify")]
    Signature,
    #[error("not a public JWK: {0}")]
    Jwk(String),
    #[error("the JWS has critical header parameters (crit), which are not supported")]
    Critical,
}

/// Decodes base64url without padding, strictly.
pub fn b64url_decode(text: &str) -> Result<Vec<u8>, JoseError> {
    URL_SAFE_NO_PAD.decode(text).map_err(|_| JoseError::Base64)
}

pub fn b64url_encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The signing input of a compact JWS: `base64url(header).base64url(payload)`
/// (RFC 7515 §5.1), the bytes a signature covers.
pub fn signing_input(header: &Value, payload: &impl Serialize) -> String {
    format!(
        "{}.{}",
        b64url_encode(serde_json::to_vec(header).expect("a JSON value serializes")),
        b64url_encode(serde_json::to_vec(payload).expect("a JSON payload serializes"))
    )
}

/// A compact JWS of `header` and `payload`, its signature made by `sign`
/// over the signing input. This crate holds no private key: the caller's
/// `sign` does.
pub fn sign_compact(
    header: &Value,
    payload: &impl Serialize,
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> String {
    let input = signing_input(header, payload);
    let signature = b64url_encode(sign(input.as_bytes()));
    format!("{input}.{signature}")
}

/// The algorithms Proofline accepts, each bound to one key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    EdDsa,
    Es256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::EdDsa => "EdDSA",
            Algorithm::Es256 => "ES256",
        }
    }

    /// `EdDSA` (or `Ed25519`, its fully specified name since RFC 9864) or
    /// `ES256`; anything else, `none` and `HS256` included, is an error.
    pub fn parse(name: &str) -> Result<Self, JoseError> {
        match name {
            "EdDSA" | "Ed25519" => Ok(Algorithm::EdDsa),
            "ES256" => Ok(Algorithm::Es256),
            other => Err(JoseError::Algorithm(other.to_owned())),
        }
    }
}

/// A public key, with the one algorithm it verifies.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({})",
            serde_json::to_string(&self.to_jwk()).unwrap_or_default()
        )
    }
}

impl PublicKey {
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::Ed25519(_) => Algorithm::EdDsa,
            PublicKey::P256(_) => Algorithm::Es256,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            PublicKey::Ed25519(_) => "Ed25519",
            PublicKey::P256(_) => "P-256",
        }
    }

    /// Verifies `signature` over `message` under `alg`, which must be this
    /// key's algorithm.
    pub fn verify(&self, alg: &str, message: &[u8], signature: &[u8]) -> Result<(), JoseError> {
        let alg = Algorithm::parse(alg)?;
        if alg != self.algorithm() {
            return Err(JoseError::AlgorithmKeyMismatch {
                alg: alg.name().to_owned(),
                key: self.kind(),
            });
        }
        match self {
            PublicKey::Ed25519(key) => {
                let signature = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| JoseError::Signature)?;
                key.verify_strict(message, &signature)
                    .map_err(|_| JoseError::Signature)
            }
            PublicKey::P256(key) => {
                // JWS ES256 signatures are the 64 bytes r || s. Both s and
                // n - s verify (WebCrypto and most signers do not normalize),
                // so wherever a signature's bytes identify something, they
                // go through `low_s_es256` first.
                let signature = p256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| JoseError::Signature)?;
                key.verify(message, &signature)
                    .map_err(|_| JoseError::Signature)
            }
        }
    }

    pub fn to_jwk(&self) -> Jwk {
        match self {
            PublicKey::Ed25519(key) => Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: b64url_encode(key.as_bytes()),
                y: None,
            },
            PublicKey::P256(key) => {
                let point = key.to_sec1_point(false);
                let bytes = point.as_bytes();
                Jwk {
                    kty: "EC".into(),
                    crv: "P-256".into(),
                    x: b64url_encode(&bytes[1..33]),
                    y: Some(b64url_encode(&bytes[33..65])),
                }
            }
        }
    }
}

/// The low-s form of a base64url ES256 signature (r || n - s when s is
/// high), or `None` when it is not a 64-byte ECDSA signature or is low-s
/// already. ECDSA signatures are malleable: (r, s) and (r, n - s) verify the
/// same message, so a hash over a signature identifies it only in one form.
pub fn low_s_es256(signature_b64: &str) -> Option<String> {
    let bytes = b64url_decode(signature_b64).ok()?;
    let signature = p256::ecdsa::Signature::from_slice(&bytes).ok()?;
    let low = signature.normalize_s();
    (low != signature).then(|| b64url_encode(low.to_bytes()))
}

/// A public JWK as stored: only the members that define the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

impl Jwk {
    /// Reads a JWK object: OKP/Ed25519 or EC/P-256, public only. Other
    /// members (`kid`, `use`, `alg`) are allowed and ignored, except `alg`,
    /// which must agree with the key type when present.
    pub fn from_json(value: &Value) -> Result<(Jwk, PublicKey), JoseError> {
        let object = value
            .as_object()
            .ok_or_else(|| JoseError::Jwk("not a JSON object".into()))?;
        let text = |name: &str| object.get(name).and_then(Value::as_str);
        if object.contains_key("d") {
            return Err(JoseError::Jwk(
                "it holds a private key (d); send the public key only".into(),
            ));
        }
        let jwk = Jwk {
            kty: text("kty").unwrap_or_default().to_owned(),
            crv: text("crv").unwrap_or_default().to_owned(),
            x: text("x").unwrap_or_default().to_owned(),
            y: text("y").map(str::to_owned),
        };
        let key = jwk.public_key()?;
        if let Some(alg) = text("alg")
            && Algorithm::parse(alg).ok() != Some(key.algorithm())
        {
            return Err(JoseError::Jwk(format!(
                "alg {alg:?} does not fit a {} key",
                key.kind()
            )));
        }
        Ok((jwk, key))
    }

    pub fn public_key(&self) -> Result<PublicKey, JoseError> {
        let bytes = |field: &str, value: &str, len: usize| -> Result<Vec<u8>, JoseError> {
            let decoded = b64url_decode(value)
                .map_err(|_| JoseError::Jwk(format!("{field} is not base64url")))?;
            if decoded.len() != len {
                return Err(JoseError::Jwk(format!("{field} must be {len} bytes")));
            }
            Ok(decoded)
        };
        match (self.kty.as_str(), self.crv.as_str()) {
            ("OKP", "Ed25519") => {
                if self.y.is_some() {
                    return Err(JoseError::Jwk("an OKP key has no y".into()));
                }
                let x: [u8; 32] = bytes("x", &self.x, 32)?
                    .try_into()
                    .map_err(|_| JoseError::Jwk("x".into()))?;
                ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map(PublicKey::Ed25519)
                    .map_err(|_| JoseError::Jwk("x is not an Ed25519 public key".into()))
            }
            ("EC", "P-256") => {
                let y = self
                    .y
                    .as_deref()
                    .ok_or_else(|| JoseError::Jwk("an EC key needs y".into()))?;
                let mut point = vec![0x04];
                point.extend(bytes("x", &self.x, 32)?);
                point.extend(bytes("y", y, 32)?);
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                    .map(PublicKey::P256)
                    .map_err(|_| JoseError::Jwk("x and y are not a point on P-256".into()))
            }
            (kty, crv) => Err(JoseError::Jwk(format!(
                "kty {kty:?} with crv {crv:?} is not supported (OKP Ed25519, EC P-256)"
            ))),
        }
    }
}

/// A compact JWS, split and decoded but not verified.
#[derive(Debug, Clone)]
pub struct CompactJws {
    pub header: Map<String, Value>,
    pub payload: Map<String, Value>,
    pub signature: Vec<u8>,
    /// `header.payload` as sent: what the signature covers.
    pub signing_input: String,
}

impl CompactJws {
    /// Splits and decodes; the header and payload must be JSON objects.
    pub fn parse(text: &str) -> Result<Self, JoseError> {
        let mut parts = text.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JoseError::Compact);
        };
        let header_json: Value =
            serde_json::from_slice(&b64url_decode(header)?).map_err(|_| JoseError::Header)?;
        let payload_json: Value =
            serde_json::from_slice(&b64url_decode(payload)?).map_err(|_| JoseError::Payload)?;
        let (Value::Object(header_map), Value::Object(payload_map)) = (header_json, payload_json)
        else {
            return Err(if text.is_empty() {
                JoseError::Compact
            } else {
                JoseError::Header
            });
        };
        Ok(Self {
            header: header_map,
            payload: payload_map,
            signature: b64url_decode(signature)?,
            signing_input: format!("{header}.{payload}"),
        })
    }

    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    pub fn typ(&self) -> Option<&str> {
        self.header.get("typ").and_then(Value::as_str)
    }

    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// Verifies the signature with `key`, under the header's `alg`, which
    /// must be the key's own algorithm. A JWS with `crit` never verifies:
    /// Proofline understands no extension (RFC 7515 4.1.11).
    pub fn verify(&self, key: &PublicKey) -> Result<(), JoseError> {
        if self.header.contains_key("crit") {
            return Err(JoseError::Critical);
        }
        let alg = self
            .alg()
            .ok_or_else(|| JoseError::Algorithm(String::new()))?;
        key.verify(alg, self.signing_input.as_bytes(), &self.signature)
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod testing {
    //! Signing, for tests only: the service itself never signs JWTs for
    //! issuers.

    use super::*;
    use ed25519_dalek::Signer as _;

    pub enum TestKey {
        Ed25519(ed25519_dalek::SigningKey),
        P256(p256::ecdsa::SigningKey),
    }

    impl TestKey {
        pub fn ed25519(seed: u8) -> Self {
            TestKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
        }

        pub fn p256(seed: u8) -> Self {
            TestKey::P256(p256::ecdsa::SigningKey::from_slice(&[seed; 32]).expect("a valid scalar"))
        }

        pub fn public(&self) -> PublicKey {
            match self {
                TestKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
                TestKey::P256(k) => PublicKey::P256(*k.verifying_key()),
            }
        }

        pub fn alg(&self) -> &'static str {
            self.public().algorithm().name()
        }

        pub fn sign_raw(&self, message: &[u8]) -> Vec<u8> {
            match self {
                TestKey::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
                TestKey::P256(k) => {
                    let signature: p256::ecdsa::Signature = k.sign(message);
                    signature.to_bytes().to_vec()
                }
            }
        }

        /// A compact JWS with this header and payload.
        pub fn sign(&self, header: &Value, payload: &Value) -> String {
            sign_compact(header, payload, |input| self.sign_raw(input))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::TestKey;
    use super::*;
    use serde_json::json;

    #[test]
    fn base64url_is_strict() {
        assert_eq!(b64url_decode("aGk").unwrap(), b"hi");
        for bad in ["aGk=", "aG k", "a+/=", "a"] {
            assert!(b64url_decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_key_verifies_only_its_own_algorithm() {
        for key in [TestKey::ed25519(1), TestKey::p256(2)] {
            let header = json!({"alg": key.alg(), "typ": "JWT"});
            let token = key.sign(&header, &json!({"a": 1}));
            let jws = CompactJws::parse(&token).unwrap();
            jws.verify(&key.public()).unwrap();
            // Another key of the same type does not verify it.
            let other = match key {
                TestKey::Ed25519(_) => TestKey::ed25519(9),
                TestKey::P256(_) => TestKey::p256(9),
            };
            assert_eq!(jws.verify(&other.public()), Err(JoseError::Signature));
        }
    }

    #[test]
    fn the_header_cannot_choose_the_algorithm() {
        let ed = TestKey::ed25519(1);
        let message = b"header.payload";
        let signature = ed.sign_raw(message);
        let key = ed.public();
        for alg in [
            "none", "HS256", "HS512", "RS256", "PS256", "ES384", "", "eddsa",
        ] {
            assert!(
                matches!(
                    key.verify(alg, message, &signature),
                    Err(JoseError::Algorithm(_))
                ),
                "{alg}"
            );
        }
        assert!(matches!(
            key.verify("ES256", message, &signature),
            Err(JoseError::AlgorithmKeyMismatch { .. })
        ));
        let p = TestKey::p256(2).public();
        assert!(matches!(
            p.verify("EdDSA", message, &signature),
            Err(JoseError::AlgorithmKeyMismatch { .. })
        ));
        // An unsigned token ("alg": "none", empty signature) never verifies.
        let unsigned = format!(
            "{}.{}.",
            b64url_encode(br#"{"alg":"none"}"#),
            b64url_encode(br#"{"sub":"x"}"#)
        );
        let jws = CompactJws::parse(&unsigned).unwrap();
        assert!(jws.verify(&key).is_err());
        assert!(jws.verify(&p).is_err());
    }

    #[test]
    fn compact_serialization_is_checked() {
        assert_eq!(CompactJws::parse("a.b").unwrap_err(), JoseError::Compact);
        assert_eq!(
            CompactJws::parse("a.b.c.d").unwrap_err(),
            JoseError::Compact
        );
        let not_object = format!("{}.{}.", b64url_encode(b"[1]"), b64url_encode(b"{}"));
        assert_eq!(
            CompactJws::parse(&not_object).unwrap_err(),
            JoseError::Header
        );
        let not_json = format!("{}.{}.", b64url_encode(b"{}"), b64url_encode(b"{"));
        assert_eq!(
            CompactJws::parse(&not_json).unwrap_err(),
            JoseError::Payload
        );
    }

    #[test]
    fn jwks_round_trip_and_private_or_foreign_ones_are_refused() {
        for key in [TestKey::ed25519(3), TestKey::p256(4)] {
            let jwk = key.public().to_jwk();
            let (parsed, public) = Jwk::from_json(&serde_json::to_value(&jwk).unwrap()).unwrap();
            assert_eq!((parsed, public), (jwk, key.public()));
        }
        let ed = serde_json::to_value(TestKey::ed25519(3).public().to_jwk()).unwrap();
        let mut private = ed.clone();
        private["d"] = json!("AAAA");
        assert!(
            matches!(Jwk::from_json(&private), Err(JoseError::Jwk(m)) if m.contains("private"))
        );
        let mut wrong_alg = ed.clone();
        wrong_alg["alg"] = json!("ES256");
        assert!(Jwk::from_json(&wrong_alg).is_err());
        for bad in [
            json!({"kty": "RSA", "n": "x", "e": "AQAB"}),
            json!({"kty": "oct", "k": "c2VjcmV0"}),
            json!({"kty": "OKP", "crv": "X25519", "x": ed["x"]}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}),
            json!({"kty": "EC", "crv": "P-256", "x": ed["x"], "y": ed["x"]}),
            json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}),
            json!("not an object"),
        ] {
            assert!(Jwk::from_json(&bad).is_err(), "{bad}");
        }
    }
}
