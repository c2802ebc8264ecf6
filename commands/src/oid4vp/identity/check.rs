//! The wallet's check of a signed request object (OpenID4VP 1.0 §5.9,
//! RFC 9101): used by the CLI wallet and by tests, never by the verifier on
//! its own requests.

use proofline_domain::did::Did;
use proofline_domain::jose::{CompactJws, PublicKey};
use serde_json::{Map, Value};

use super::x509::{self, Cert};
use super::{ClientIdPrefix, REQUEST_OBJECT_TYP};

/// Why a request object is refused; one variant per failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("not a compact JWS with JSON header and payload objects")]
    Malformed,
    #[error("the header's typ is not {REQUEST_OBJECT_TYP}")]
    Typ,
    #[error("the request object's client_id is not the authorization request's")]
    ClientIdMismatch,
    #[error("the client_id has no prefix that can sign request objects")]
    UnsupportedPrefix,
    #[error("only did:key is resolved for decentralized_identifier client ids")]
    UnsupportedDidMethod,
    #[error("the kid is not the DID URL of the client_id's did:key")]
    Kid,
    #[error("the signature does not verify")]
    Signature,
    #[error("the x5c header is missing or empty")]
    NoX5c,
    #[error("the x5c header is not base64 DER certificates")]
    BadX5c,
    #[error("the leaf certificate's key is not an EC P-256 key")]
    UnsupportedKey,
    #[error("the certificate chain does not validate: {0}")]
    Chain(String),
    #[error("the leaf certificate has no dNSName equal to the client_id's")]
    SanMismatch,
    #[error("the SHA-256 of the leaf certificate is not the client_id's hash")]
    HashMismatch,
    #[error("the request object has expired (exp)")]
    Expired,
}

/// The wallet's check of a signed request object `jws`, for the `client_id`
/// of the authorization request that pointed to it:
///
/// - the header's `typ` is `oauth-authz-req+jwt`;
/// - the payload's `client_id` is byte-identical to `client_id`;
/// - `decentralized_identifier:did:key:…`: `kid` is the DID URL of that
///   did:key (`<did>#<multibase>`), and the signature verifies (EdDSA);
/// - `x509_san_dns:<name>`: the leaf of `x5c` verifies the signature (ES256),
///   the chain validates to one of `trust_anchors` (DER) at `now_unix`, and
///   the leaf has `<name>` as a SAN dNSName (ASCII case-insensitive, no
///   wildcard matching);
/// - `x509_hash:<hash>`: the base64url SHA-256 of the leaf's DER is
///   `<hash>`, the signature verifies, and the chain validates to one of
///   `trust_anchors` when any are given (else the hash pins the leaf);
/// - `exp`, when present, is after `now_unix`.
///
/// `redirect_uri` and other prefixes cannot sign: [`CheckError::UnsupportedPrefix`].
/// Returns the payload's claims.
pub fn check_request_object(
    jws: &str,
    client_id: &str,
    trust_anchors: &[Vec<u8>],
    now_unix: i64,
) -> Result<Map<String, Value>, CheckError> {
    let parsed = CompactJws::parse(jws).map_err(|_| CheckError::Malformed)?;
    if parsed.typ() != Some(REQUEST_OBJECT_TYP) {
        return Err(CheckError::Typ);
    }
    if parsed.payload.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return Err(CheckError::ClientIdMismatch);
    }
    let prefix = ClientIdPrefix::of(client_id).ok_or(CheckError::UnsupportedPrefix)?;
    let value = &client_id[prefix.as_str().len() + 1..];
    match prefix {
        ClientIdPrefix::DecentralizedIdentifier => check_did_key(&parsed, value)?,
        ClientIdPrefix::X509SanDns => {
            let chain = x5c_chain(&parsed)?;
            verify_with_leaf(&parsed, &chain[0])?;
            validate(&chain, trust_anchors, now_unix)?;
            if !chain[0]
                .has_dns_name(value)
                .map_err(|_| CheckError::BadX5c)?
            {
                return Err(CheckError::SanMismatch);
            }
        }
        ClientIdPrefix::X509Hash => {
            let chain = x5c_chain(&parsed)?;
            if x509::hash_of(&chain[0].der) != value {
                return Err(CheckError::HashMismatch);
            }
            verify_with_leaf(&parsed, &chain[0])?;
            if !trust_anchors.is_empty() {
                validate(&chain, trust_anchors, now_unix)?;
            }
        }
        ClientIdPrefix::RedirectUri => return Err(CheckError::UnsupportedPrefix),
    }
    if let Some(exp) = parsed.payload.get("exp") {
        let exp = exp.as_i64().ok_or(CheckError::Malformed)?;
        if now_unix >= exp {
            return Err(CheckError::Expired);
        }
    }
    Ok(parsed.payload)
}

fn check_did_key(parsed: &CompactJws, did_text: &str) -> Result<(), CheckError> {
    let did = Did::parse(did_text).map_err(|_| CheckError::Malformed)?;
    if !did.is_did_key() {
        return Err(CheckError::UnsupportedDidMethod);
    }
    let key = did.key_of_did_key().map_err(|_| CheckError::Malformed)?;
    let multibase = did.did_key_multibase().unwrap_or_default();
    if parsed.kid() != Some(format!("{did}#{multibase}").as_str()) {
        return Err(CheckError::Kid);
    }
    parsed.verify(&key).map_err(|_| CheckError::Signature)
}

/// The certificates of the `x5c` header, leaf first; at least one.
fn x5c_chain(parsed: &CompactJws) -> Result<Vec<Cert>, CheckError> {
    let entries = match parsed.header.get("x5c") {
        None => return Err(CheckError::NoX5c),
        Some(Value::Array(entries)) if entries.is_empty() => return Err(CheckError::NoX5c),
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err(CheckError::BadX5c),
    };
    crate::x5c::decode_x5c(entries)
        .map_err(|_| CheckError::BadX5c)?
        .into_iter()
        .map(|der| Cert::from_der(der).map_err(|_| CheckError::BadX5c))
        .collect()
}

fn verify_with_leaf(parsed: &CompactJws, leaf: &Cert) -> Result<(), CheckError> {
    let key = leaf.p256_key().ok_or(CheckError::UnsupportedKey)?;
    parsed
        .verify(&PublicKey::P256(key))
        .map_err(|_| CheckError::Signature)
}

fn validate(chain: &[Cert], trust_anchors: &[Vec<u8>], now_unix: i64) -> Result<(), CheckError> {
    x509::validate_chain(chain, trust_anchors, now_unix).map_err(CheckError::Chain)
}
