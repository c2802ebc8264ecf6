//! Reading the documents an issuer's keys are discovered from.
//!
//! Two ways of publishing keys are read here, both as JSON that the caller
//! has fetched (this crate does no IO):
//!
//! - did:web: the DID document at `https://<host>[:port]/.well-known/did.json`
//!   or, for a DID with a path, `https://<host>[:port]/<path>/did.json`
//!   (w3c-ccg did-method-web). Its keys are the verification methods listed
//!   under `assertionMethod` (the relationship for issuing credentials), as
//!   `publicKeyJwk` or `publicKeyMultibase` (Multikey).
//! - SD-JWT VC issuer metadata (draft-ietf-oauth-sd-jwt-vc): for an https
//!   `iss`, the document at `/.well-known/jwt-vc-issuer` inserted before
//!   the path of `iss`, with the keys inline (`jwks`) or behind a
//!   `jwks_uri`.
//!
//! Only keys Proofline can verify with (Ed25519, P-256) are kept; others
//! are skipped rather than refused, so that an issuer may publish keys for
//! other verifiers beside them. Anything that would make the keys
//! ambiguous (duplicate ids, a reference to nothing, a document about
//! another DID or issuer) or unsafe (a private key) is refused, since
//! these keys become trust anchors. Every list is bounded before it is
//! walked.
//!
//! Last, Subresource Integrity (W3C SRI), which SD-JWT VC type metadata
//! uses for `vct#integrity`: a fetched document is checked against the
//! digests its referrer committed to.
//!
//! The parts: `did_web.rs` holds did:web URLs and DID documents; this file
//! the errors, what JWKs and lists every document shares, issuer metadata
//! and JWK Sets; `integrity.rs` Subresource Integrity.

mod did_web;
mod integrity;

use std::collections::HashSet;
use std::fmt;

use serde_json::{Map, Value};
use url::Url;

use crate::issuer::{Kid, MAX_KEYS, RegisteredKey};
use crate::jose::Jwk;

pub use did_web::{did_web_url, keys_of_did_document};
pub use integrity::{
    IntegrityAlgorithm, IntegrityError, MAX_INTEGRITY_LEN, check_integrity, integrity_of,
};

/// Most entries in any list of a document (verification methods, their
/// references, the keys of a JWK Set): far more than an issuer needs, few
/// enough that a hostile document costs little to refuse.
pub const MAX_ENTRIES: usize = 256;
/// Longest URL accepted as an issuer identifier or a `jwks_uri`.
pub const MAX_URL_LEN: usize = 2048;

/// The documents keys are discovered from, to say which one is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    DidDocument,
    IssuerMetadata,
    JwkSet,
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Document::DidDocument => "DID document",
            Document::IssuerMetadata => "issuer metadata",
            Document::JwkSet => "JWK Set",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("{0} is not a did:web DID")]
    NotDidWeb(String),
    #[error("the DID {did} does not give an https URL: {reason}")]
    DidWebUrl { did: String, reason: String },
    #[error("the {0} is not a JSON object")]
    NotAnObject(Document),
    #[error("the {document} has no {member}")]
    Missing {
        document: Document,
        member: &'static str,
    },
    #[error("the {document}'s {member} is not valid: {reason}")]
    Invalid {
        document: Document,
        member: &'static str,
        reason: String,
    },
    #[error("the {document}'s {member} has more than {MAX_ENTRIES} entries")]
    TooLarge {
        document: Document,
        member: &'static str,
    },
    #[error("the DID document's id {found:?} is not the DID {expected}")]
    IdMismatch { expected: String, found: String },
    #[error("assertionMethod refers to {0:?}, which is not a verification method of the document")]
    UnknownReference(String),
    #[error("the verification method {0} is defined or listed more than once")]
    DuplicateId(String),
    #[error("the verification method {0:?} belongs to another DID")]
    ForeignMethod(String),
    #[error("the verification method {id} has controller {controller}, not the DID itself")]
    ControllerMismatch { id: String, controller: String },
    #[error("the verification method {id} is not valid: {reason}")]
    InvalidMethod { id: String, reason: String },
    #[error("the key {0} holds a private part (d); only public keys may be published")]
    PrivateKey(String),
    #[error("the JWK Set's key {key} is not valid: {reason}")]
    InvalidKey { key: String, reason: String },
    #[error("the JWK Set's key at index {0} has no kid")]
    MissingKid(usize),
    #[error("the kid {0:?} is used by more than one key")]
    DuplicateKid(String),
    #[error("no key usable for signatures (Ed25519 or P-256) is published")]
    NoUsableKey,
    #[error("{0} keys are published; at most {MAX_KEYS} can be registered")]
    TooManyKeys(usize),
    #[error("the issuer identifier {iss:?} cannot have metadata: {reason}")]
    InvalidIssuer { iss: String, reason: String },
    #[error("the metadata's issuer {found:?} is not {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("the issuer metadata has both jwks and jwks_uri; it must have exactly one")]
    BothJwksAndJwksUri,
    #[error("the issuer metadata has neither jwks nor jwks_uri")]
    NoJwks,
    #[error("the jwks_uri {uri} is not usable: {reason}")]
    InvalidJwksUri { uri: String, reason: String },
}

/// Why a published key is refused (as opposed to skipped).
enum Refusal {
    Private,
    Invalid(String),
}

/// A published JWK, if it is one to verify signatures with: a private key
/// is refused outright; a key for encryption (`use`, `key_ops`) or of a
/// type Proofline does not verify with is skipped; a supported key must be
/// valid.
fn read_jwk(value: &Value) -> Result<Option<Jwk>, Refusal> {
    let object = value
        .as_object()
        .ok_or_else(|| Refusal::Invalid("not a JSON object".into()))?;
    if object.contains_key("d") {
        return Err(Refusal::Private);
    }
    if object.get("use").is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    if let Some(ops) = object.get("key_ops")
        && !ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op == "verify"))
    {
        return Ok(None);
    }
    let text = |name: &str| object.get(name).and_then(Value::as_str);
    let supported = matches!(
        (text("kty"), text("crv")),
        (Some("OKP"), Some("Ed25519")) | (Some("EC"), Some("P-256"))
    );
    if !supported {
        return Ok(None);
    }
    Jwk::from_json(value)
        .map(|(jwk, _)| Some(jwk))
        .map_err(|e| Refusal::Invalid(e.to_string()))
}

/// A list member of a document, bounded; an absent member is empty.
fn list<'d>(
    object: &'d Map<String, Value>,
    document: Document,
    member: &'static str,
) -> Result<&'d [Value], DiscoveryError> {
    let Some(value) = object.get(member) else {
        return Ok(&[]);
    };
    let entries = value.as_array().ok_or(DiscoveryError::Invalid {
        document,
        member,
        reason: "not an array".into(),
    })?;
    if entries.len() > MAX_ENTRIES {
        return Err(DiscoveryError::TooLarge { document, member });
    }
    Ok(entries)
}

/// A string member that must be present.
fn required_str<'d>(
    object: &'d Map<String, Value>,
    document: Document,
    member: &'static str,
) -> Result<&'d str, DiscoveryError> {
    object
        .get(member)
        .ok_or(DiscoveryError::Missing { document, member })?
        .as_str()
        .ok_or_else(|| DiscoveryError::Invalid {
            document,
            member,
            reason: "not a string".into(),
        })
}

/// At least one key, and no more than an issuer may have registered.
fn checked_count(keys: Vec<RegisteredKey>) -> Result<Vec<RegisteredKey>, DiscoveryError> {
    match keys.len() {
        0 => Err(DiscoveryError::NoUsableKey),
        n if n > MAX_KEYS => Err(DiscoveryError::TooManyKeys(n)),
        _ => Ok(keys),
    }
}

/// An https URL with no credentials in it and no fragment, as an issuer
/// identifier and a `jwks_uri` must be.
fn https_url(text: &str) -> Result<Url, String> {
    if text.len() > MAX_URL_LEN {
        return Err(format!("longer than {MAX_URL_LEN} characters"));
    }
    let url = Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
    if url.scheme() != "https" {
        return Err("not https".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("it has a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("it has a fragment".into());
    }
    if url.host().is_none() {
        return Err("it has no host".into());
    }
    Ok(url)
}

/// The URL of the SD-JWT VC issuer metadata of `iss`: the well-known
/// suffix goes between the host (and port) and the path of `iss`, a
/// trailing `/` removed first, so that issuers sharing a host each have
/// their own.
pub fn issuer_metadata_url(iss: &str) -> Result<String, DiscoveryError> {
    let refuse = |reason: String| DiscoveryError::InvalidIssuer {
        iss: iss.to_owned(),
        reason,
    };
    let mut url = https_url(iss).map_err(refuse)?;
    if url.query().is_some() {
        return Err(refuse("it has a query".into()));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("/.well-known/jwt-vc-issuer{path}"));
    Ok(url.into())
}

/// Where issuer metadata says its keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataKeys {
    /// Inline, read already.
    Jwks(Vec<RegisteredKey>),
    /// At this https URL, a JWK Set for [`keys_of_jwks`].
    JwksUri(String),
}

/// The keys of SD-JWT VC issuer metadata fetched for `iss`: its `issuer`
/// must be `iss` exactly (else anyone's metadata could stand in for
/// another's), and it must have exactly one of `jwks` and `jwks_uri`.
pub fn keys_of_issuer_metadata(
    iss: &str,
    document: &Value,
) -> Result<MetadataKeys, DiscoveryError> {
    const DOC: Document = Document::IssuerMetadata;
    let object = document
        .as_object()
        .ok_or(DiscoveryError::NotAnObject(DOC))?;
    let issuer = required_str(object, DOC, "issuer")?;
    if issuer != iss {
        return Err(DiscoveryError::IssuerMismatch {
            expected: iss.to_owned(),
            found: issuer.to_owned(),
        });
    }
    match (object.get("jwks"), object.get("jwks_uri")) {
        (Some(_), Some(_)) => Err(DiscoveryError::BothJwksAndJwksUri),
        (None, None) => Err(DiscoveryError::NoJwks),
        (Some(jwks), None) => keys_of_jwks(jwks).map(MetadataKeys::Jwks),
        (None, Some(uri)) => {
            let refuse = |reason: String| DiscoveryError::InvalidJwksUri {
                uri: uri.to_string(),
                reason,
            };
            let text = uri.as_str().ok_or_else(|| refuse("not a string".into()))?;
            let url = https_url(text).map_err(refuse)?;
            Ok(MetadataKeys::JwksUri(url.into()))
        }
    }
}

/// The signature keys of a JWK Set (RFC 7517), each under its `kid`. Keys
/// for encryption and of unsupported types are skipped; a private key
/// anywhere in the set refuses it.
pub fn keys_of_jwks(document: &Value) -> Result<Vec<RegisteredKey>, DiscoveryError> {
    const DOC: Document = Document::JwkSet;
    let object = document
        .as_object()
        .ok_or(DiscoveryError::NotAnObject(DOC))?;
    if !object.contains_key("keys") {
        return Err(DiscoveryError::Missing {
            document: DOC,
            member: "keys",
        });
    }
    let mut kids = HashSet::new();
    let mut keys = Vec::new();
    for (index, entry) in list(object, DOC, "keys")?.iter().enumerate() {
        let kid = entry.get("kid");
        let label = kid
            .and_then(Value::as_str)
            .map_or_else(|| format!("at index {index}"), |kid| format!("{kid:?}"));
        let jwk = match read_jwk(entry) {
            Ok(Some(jwk)) => jwk,
            Ok(None) => continue,
            Err(Refusal::Private) => return Err(DiscoveryError::PrivateKey(label)),
            Err(Refusal::Invalid(reason)) => {
                return Err(DiscoveryError::InvalidKey { key: label, reason });
            }
        };
        let kid = kid
            .ok_or(DiscoveryError::MissingKid(index))?
            .as_str()
            .and_then(|kid| Kid::parse(kid).ok())
            .ok_or_else(|| DiscoveryError::InvalidKey {
                key: label,
                reason: "its kid must be 1 to 256 visible ASCII characters".into(),
            })?;
        if !kids.insert(kid.clone()) {
            return Err(DiscoveryError::DuplicateKid(kid.as_str().to_owned()));
        }
        keys.push(RegisteredKey { kid, jwk });
    }
    checked_count(keys)
}
