//! Compact JWE with `ECDH-ES` on P-256 and AES-GCM: the encrypted
//! Authorization Responses of OpenID4VP 1.0 (`direct_post.jwt`, §8.3) and
//! of HAIP.
//!
//! One key management algorithm and two content encryptions, nothing else:
//!
//! - `alg` is `ECDH-ES`, direct key agreement (RFC 7518 §4.6): the sender's
//!   ephemeral P-256 key (`epk`) and the recipient's static key agree on Z,
//!   and the Concat KDF of NIST SP 800-56A (RFC 7518 §4.6.2) turns Z into
//!   the content encryption key. The Encrypted Key part is empty. Every
//!   other `alg` (`RSA-OAEP`, `dir`, the `ECDH-ES+A*KW` key wraps...) is
//!   refused;
//! - `enc` is `A128GCM` or `A256GCM` (RFC 7518 §5.3), with a 96-bit IV and
//!   a 128-bit tag, the ASCII of the protected header's base64url as
//!   additional authenticated data (RFC 7516 §5.2);
//! - `zip` and `crit` are refused, the input is bounded (1 MiB), parts are
//!   strict base64url, and every failure of the tag is one opaque error.
//!
//! Like the rest of this crate it holds no randomness: [`encrypt`] takes
//! the ephemeral key and the IV from its caller.
//!
//! Why written here rather than taken from a JOSE crate: `josekit` needs
//! OpenSSL; `jwt-simple` and `compact_jwt` do the `ECDH-ES+A*KW` key wraps
//! but not direct `ECDH-ES`, and draw their own randomness; the pure-Rust
//! ones that do are young and bring a second `p256`. The pieces are small
//! and standard, and each is RustCrypto's: `p256` for the key agreement,
//! `sha2` for the KDF, `aes-gcm` for the content; what is written here is
//! the parsing and the KDF's framing, both checked against the RFCs'
//! examples in `tests/jwe.rs`.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use p256::elliptic_curve::sec1::ToSec1Point;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::jose::{b64url_decode, b64url_encode};

/// The largest compact JWE accepted, in bytes.
pub const MAX_COMPACT_LEN: usize = 1024 * 1024;

/// The only key management algorithm accepted.
pub const ALG_ECDH_ES: &str = "ECDH-ES";

/// Length of a GCM IV, in bytes.
pub const IV_LEN: usize = 12;

/// Length of a GCM authentication tag, in bytes.
pub const TAG_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JweError {
    #[error("a compact JWE has five parts separated by dots")]
    Compact,
    #[error("the compact JWE is larger than {MAX_COMPACT_LEN} bytes")]
    TooLarge,
    #[error("not base64url without padding")]
    Base64,
    #[error("the protected header is not a JSON object, or a member has the wrong type")]
    Header,
    #[error("alg {0:?} is not accepted (ECDH-ES only)")]
    Algorithm(String),
    #[error("enc {0:?} is not accepted (A128GCM and A256GCM only)")]
    Encryption(String),
    #[error("the encrypted key must be empty with ECDH-ES")]
    EncryptedKeyNotEmpty,
    #[error("epk is missing or not a public EC P-256 key on the curve")]
    EphemeralKey,
    #[error("compressed plaintext (zip) is not supported")]
    Compression,
    #[error("the JWE has critical header parameters (crit), which are not supported")]
    Critical,
    #[error("the IV must be {IV_LEN} bytes")]
    Iv,
    #[error("the JWE does not decrypt")]
    Decrypt,
    #[error("not a public EC P-256 JWK: {0}")]
    Jwk(String),
}

/// The content encryption algorithms accepted (`enc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncryption {
    A128Gcm,
    A256Gcm,
}

impl ContentEncryption {
    pub const ALL: [Self; 2] = [Self::A128Gcm, Self::A256Gcm];

    pub fn name(self) -> &'static str {
        match self {
            Self::A128Gcm => "A128GCM",
            Self::A256Gcm => "A256GCM",
        }
    }

    /// `A128GCM` or `A256GCM`, exactly; anything else is `None`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|enc| enc.name() == name)
    }

    /// The length of the content encryption key, in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::A128Gcm => 16,
            Self::A256Gcm => 32,
        }
    }
}

/// The Concat KDF of RFC 7518 §4.6.2 (NIST SP 800-56A §5.8.1 with SHA-256)
/// for direct key agreement: AlgorithmID is the `enc` name, keydatalen the
/// `enc` key size, PartyUInfo and PartyVInfo the decoded `apu` and `apv`
/// (empty when absent), each with its 32-bit big-endian length first;
/// SuppPubInfo is keydatalen in bits, SuppPrivInfo empty.
pub fn concat_kdf(z: &[u8], enc: ContentEncryption, apu: &[u8], apv: &[u8]) -> Vec<u8> {
    let key_len = enc.key_len();
    let mut other_info = Vec::new();
    for field in [enc.name().as_bytes(), apu, apv] {
        other_info.extend_from_slice(&be32(field.len()));
        other_info.extend_from_slice(field);
    }
    other_info.extend_from_slice(&be32(key_len * 8));
    let mut derived = Vec::with_capacity(key_len);
    let mut counter: u32 = 1;
    while derived.len() < key_len {
        let mut hash = Sha256::new();
        hash.update(counter.to_be_bytes());
        hash.update(z);
        hash.update(&other_info);
        derived.extend_from_slice(&hash.finalize());
        counter += 1;
    }
    derived.truncate(key_len);
    derived
}

/// A length as the KDF frames it. Every length here (a header member in a
/// bounded JWE, a key size in bits) is far below 2^32.
fn be32(len: usize) -> [u8; 4] {
    u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes()
}

/// AES-GCM content encryption (RFC 7518 §5.3): the ciphertext and the
/// 128-bit tag, for `cek` of the size `enc` needs.
///
/// # Panics
/// When `cek` is not `enc.key_len()` bytes: keys come from [`concat_kdf`],
/// so another length is a bug of the caller.
pub fn content_encrypt(
    enc: ContentEncryption,
    cek: &[u8],
    iv: [u8; IV_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> (Vec<u8>, [u8; TAG_LEN]) {
    assert_eq!(
        cek.len(),
        enc.key_len(),
        "the CEK's length must fit {enc:?}"
    );
    let mut buffer = plaintext.to_vec();
    let nonce = iv.into();
    let tag = match enc {
        ContentEncryption::A128Gcm => Aes128Gcm::new_from_slice(cek)
            .expect("a 16-byte key")
            .encrypt_inout_detached(&nonce, aad, buffer.as_mut_slice().into()),
        ContentEncryption::A256Gcm => Aes256Gcm::new_from_slice(cek)
            .expect("a 32-byte key")
            .encrypt_inout_detached(&nonce, aad, buffer.as_mut_slice().into()),
    }
    .expect("AES-GCM encrypts any plaintext under 64 GiB");
    (buffer, tag.into())
}

/// The inverse of [`content_encrypt`]; any failure is [`JweError::Decrypt`].
fn content_decrypt(
    enc: ContentEncryption,
    cek: &[u8],
    iv: [u8; IV_LEN],
    aad: &[u8],
    ciphertext: &[u8],
    tag: [u8; TAG_LEN],
) -> Result<Vec<u8>, JweError> {
    let mut buffer = ciphertext.to_vec();
    let (nonce, tag) = (iv.into(), tag.into());
    match enc {
        ContentEncryption::A128Gcm => Aes128Gcm::new_from_slice(cek)
            .map_err(|_| JweError::Decrypt)?
            .decrypt_inout_detached(&nonce, aad, buffer.as_mut_slice().into(), &tag),
        ContentEncryption::A256Gcm => Aes256Gcm::new_from_slice(cek)
            .map_err(|_| JweError::Decrypt)?
            .decrypt_inout_detached(&nonce, aad, buffer.as_mut_slice().into(), &tag),
    }
    .map_err(|_| JweError::Decrypt)?;
    Ok(buffer)
}

/// The public EC JWK of a P-256 key used for encryption, as a verifier
/// publishes it (in `client_metadata.jwks`, for instance):
/// `{"kty":"EC","crv":"P-256","x","y","use":"enc","alg":"ECDH-ES","kid"}`.
pub fn encryption_jwk(key: &p256::PublicKey, kid: &str) -> Value {
    let mut jwk = ec_jwk(key);
    jwk["use"] = json!("enc");
    jwk["alg"] = json!(ALG_ECDH_ES);
    jwk["kid"] = json!(kid);
    jwk
}

/// `{"kty":"EC","crv":"P-256","x","y"}`, the members that define the key.
fn ec_jwk(key: &p256::PublicKey) -> Value {
    let point = key.to_sec1_point(false);
    let bytes = point.as_bytes();
    json!({
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(&bytes[1..33]),
        "y": b64url_encode(&bytes[33..65]),
    })
}

/// Reads a public EC P-256 JWK: `kty` `EC`, `crv` `P-256`, `x` and `y` of
/// 32 bytes each in strict base64url, a point on the curve. A JWK with a
/// private part (`d`) is refused; other members (`kid`, `use`, `alg`) are
/// ignored, choosing among keys is the caller's business.
pub fn public_key_from_jwk(jwk: &Value) -> Result<p256::PublicKey, JweError> {
    let object = jwk
        .as_object()
        .ok_or_else(|| JweError::Jwk("not a JSON object".into()))?;
    if object.contains_key("d") {
        return Err(JweError::Jwk("it holds a private key (d)".into()));
    }
    let text = |name: &str| object.get(name).and_then(Value::as_str);
    if text("kty") != Some("EC") || text("crv") != Some("P-256") {
        return Err(JweError::Jwk("kty must be EC and crv P-256".into()));
    }
    let mut point = vec![0x04];
    for name in ["x", "y"] {
        let coordinate = text(name)
            .and_then(|value| b64url_decode(value).ok())
            .filter(|bytes| bytes.len() == 32)
            .ok_or_else(|| JweError::Jwk(format!("{name} must be 32 bytes in base64url")))?;
        point.extend(coordinate);
    }
    p256::PublicKey::from_sec1_bytes(&point)
        .map_err(|_| JweError::Jwk("x and y are not a point on P-256".into()))
}

/// A compact JWE split in its five parts and its header decoded; nothing
/// checked beyond the form.
struct Parts<'a> {
    header_b64: &'a str,
    header: Map<String, Value>,
    encrypted_key: &'a str,
    iv: &'a str,
    ciphertext: &'a str,
    tag: &'a str,
}

fn split(compact: &str) -> Result<Parts<'_>, JweError> {
    if compact.len() > MAX_COMPACT_LEN {
        return Err(JweError::TooLarge);
    }
    let mut parts = compact.split('.');
    let (Some(header_b64), Some(encrypted_key), Some(iv), Some(ciphertext), Some(tag), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(JweError::Compact);
    };
    let Value::Object(header) =
        serde_json::from_slice(&b64url_decode(header_b64).map_err(|_| JweError::Base64)?)
            .map_err(|_| JweError::Header)?
    else {
        return Err(JweError::Header);
    };
    Ok(Parts {
        header_b64,
        header,
        encrypted_key,
        iv,
        ciphertext,
        tag,
    })
}

/// The protected header's `kid`, read without decrypting (to find which
/// recipient key to use). `None` when the header has none; an error when
/// the compact form or the header is malformed, or `kid` is not a string.
pub fn peek_kid(compact: &str) -> Result<Option<String>, JweError> {
    match split(compact)?.header.get("kid") {
        None => Ok(None),
        Some(Value::String(kid)) => Ok(Some(kid.clone())),
        Some(_) => Err(JweError::Header),
    }
}

/// A header member that must be a base64url string when present: `apu`
/// and `apv`. Absent is empty.
fn party_info(header: &Map<String, Value>, name: &str) -> Result<Vec<u8>, JweError> {
    match header.get(name) {
        None => Ok(Vec::new()),
        Some(Value::String(text)) => b64url_decode(text).map_err(|_| JweError::Base64),
        Some(_) => Err(JweError::Header),
    }
}

/// Decrypts a compact JWE sent to `recipient`.
///
/// The protected header must say `alg` `ECDH-ES`, `enc` one of
/// [`ContentEncryption`], and carry an `epk` that is a public EC P-256 JWK
/// on the curve; `apu` and `apv` (base64url) go into the KDF when present;
/// `zip` and `crit` are refused. The Encrypted Key part must be empty, the
/// IV 96 bits. The additional authenticated data is the ASCII of the
/// protected header's base64url as sent (RFC 7516 §5.2). Returns the
/// protected header and the plaintext.
pub fn decrypt(
    compact: &str,
    recipient: &p256::SecretKey,
) -> Result<(Map<String, Value>, Vec<u8>), JweError> {
    let parts = split(compact)?;
    let header = &parts.header;
    if header.contains_key("crit") {
        return Err(JweError::Critical);
    }
    if header.contains_key("zip") {
        return Err(JweError::Compression);
    }
    let alg = header.get("alg").and_then(Value::as_str);
    if alg != Some(ALG_ECDH_ES) {
        return Err(JweError::Algorithm(alg.unwrap_or_default().to_owned()));
    }
    let enc_name = header.get("enc").and_then(Value::as_str);
    let enc = enc_name
        .and_then(ContentEncryption::parse)
        .ok_or_else(|| JweError::Encryption(enc_name.unwrap_or_default().to_owned()))?;
    if !parts.encrypted_key.is_empty() {
        return Err(JweError::EncryptedKeyNotEmpty);
    }
    let epk = header
        .get("epk")
        .ok_or(JweError::EphemeralKey)
        .and_then(|jwk| public_key_from_jwk(jwk).map_err(|_| JweError::EphemeralKey))?;
    let apu = party_info(header, "apu")?;
    let apv = party_info(header, "apv")?;
    let iv: [u8; IV_LEN] = b64url_decode(parts.iv)
        .map_err(|_| JweError::Base64)?
        .try_into()
        .map_err(|_| JweError::Iv)?;
    let ciphertext = b64url_decode(parts.ciphertext).map_err(|_| JweError::Base64)?;
    let tag: [u8; TAG_LEN] = b64url_decode(parts.tag)
        .map_err(|_| JweError::Base64)?
        .try_into()
        .map_err(|_| JweError::Decrypt)?;

    let cek = agree(recipient, &epk, enc, &apu, &apv);
    let plaintext = content_decrypt(enc, &cek, iv, parts.header_b64.as_bytes(), &ciphertext, tag)?;
    Ok((parts.header, plaintext))
}

/// ECDH on P-256, then the Concat KDF: the content encryption key.
fn agree(
    secret: &p256::SecretKey,
    public: &p256::PublicKey,
    enc: ContentEncryption,
    apu: &[u8],
    apv: &[u8],
) -> Vec<u8> {
    let z = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine());
    concat_kdf(z.raw_secret_bytes(), enc, apu, apv)
}

/// Encrypts `plaintext` to `recipient`: the wallet's side, and the tests'.
///
/// The protected header is `extra_header`'s members (`kid`, `apu`, `apv`,
/// `typ`...) with `alg`, `enc` and `epk` (the public key of `ephemeral`)
/// set over them. `apu` and `apv` found there go into the KDF; they must
/// be base64url strings (anything else counts as empty here, and
/// [`decrypt`] refuses the result). `ephemeral` must be fresh for each
/// message and `iv` random: both come from the caller, this crate draws no
/// randomness.
pub fn encrypt(
    plaintext: &[u8],
    recipient: &p256::PublicKey,
    enc: ContentEncryption,
    ephemeral: &p256::SecretKey,
    iv: [u8; IV_LEN],
    extra_header: &Map<String, Value>,
) -> String {
    let mut header = extra_header.clone();
    header.insert("alg".into(), json!(ALG_ECDH_ES));
    header.insert("enc".into(), json!(enc.name()));
    header.insert("epk".into(), ec_jwk(&ephemeral.public_key()));
    let apu = party_info(&header, "apu").unwrap_or_default();
    let apv = party_info(&header, "apv").unwrap_or_default();
    let cek = agree(ephemeral, recipient, enc, &apu, &apv);
    let header_b64 = b64url_encode(serde_json::to_vec(&header).expect("a JSON object serializes"));
    let (ciphertext, tag) = content_encrypt(enc, &cek, iv, header_b64.as_bytes(), plaintext);
    format!(
        "{header_b64}..{}.{}.{}",
        b64url_encode(iv),
        b64url_encode(ciphertext),
        b64url_encode(tag)
    )
}
