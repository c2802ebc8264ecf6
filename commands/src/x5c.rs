//! Issuers trusted by X.509: an issuer-signed JWT whose `x5c` header (no
//! `kid` needed) chains to a root the operator registered
//! (`POST /v1/trust-anchors`), valid at the credential's `iat` and now,
//! whose leaf may sign (keyUsage digitalSignature, when present) and names
//! the issuer: a URI SAN equal to `iss`, or a DNS SAN equal to the host of
//! an `https` `iss`.
//!
//! - [`parse_anchor_pem`]: what the operator registers, one CA certificate.
//! - [`x5c_of_header`]: the `x5c` header's DER certificates, leaf first.
//! - [`trusted_leaf_key`]: the decision, and the leaf's key to verify the
//!   JWT's signature with.
//!
//! Certificate reading and chain validation (`rustls-webpki`) are shared
//! with the OpenID4VP identity, in `crate::x509`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proofline_domain::jose::PublicKey;
use proofline_domain::verification::Reason;
use serde_json::Value;
use sha2::Digest;
use url::{Host, Url};

use crate::x509::{Cert, ChainError, pem_chain, verify_chain};

/// The most certificates an `x5c` header may carry.
pub const MAX_CERTS: usize = 5;
/// The largest DER certificate accepted, in `x5c` or as a trust anchor.
pub const MAX_CERT_BYTES: usize = 16 * 1024;
/// The label of the credential's `iat` among [`trusted_leaf_key`]'s times.
pub const AT_IAT: &str = "at the credential's iat";
/// The label of the current time among [`trusted_leaf_key`]'s times.
pub const NOW: &str = "now";

/// The base64 length of [`MAX_CERT_BYTES`] bytes, with padding.
const MAX_ENTRY_CHARS: usize = MAX_CERT_BYTES.div_ceil(3) * 4;

/// A root the operator trusts for `x5c` chains: a CA certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustAnchor {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The certificate's subject, as an RFC 4514 string.
    pub subject: String,
    /// The certificate's notAfter, Unix seconds.
    pub not_after: i64,
}

/// Why an `x5c` header, or a trust anchor, is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum X5cError {
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("the x5c chain does not lead to a registered trust anchor")]
    UnknownRoot,
    #[error("the x5c chain is not valid {when} ({}): {detail}", rfc3339(.at))]
    Expired {
        /// Which time: [`AT_IAT`], [`NOW`], or the caller's label.
        when: &'static str,
        at: i64,
        detail: String,
    },
    #[error("the x5c chain does not validate: {0}")]
    ChainInvalid(String),
    #[error("the leaf certificate's keyUsage does not include digitalSignature")]
    KeyUsage,
    #[error(
        "the leaf certificate has no URI SAN equal to iss, nor a DNS SAN equal to the host of an https iss"
    )]
    SanMismatch,
    #[error("the leaf certificate's key is neither Ed25519 nor EC P-256")]
    UnsupportedKey,
    #[error("not a CA certificate: {0}")]
    AnchorNotCa(String),
}

impl X5cError {
    /// A stable snake_case code for API problems and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            X5cError::Malformed(_) => "x5c_malformed",
            X5cError::TooLarge(_) => "x5c_too_large",
            X5cError::UnknownRoot => "x5c_unknown_root",
            X5cError::Expired { .. } => "x5c_expired",
            X5cError::ChainInvalid(_) => "x5c_chain_invalid",
            X5cError::KeyUsage => "x5c_key_usage",
            X5cError::SanMismatch => "x5c_san_mismatch",
            X5cError::UnsupportedKey => "x5c_unsupported_key",
            X5cError::AnchorNotCa(_) => "x5c_anchor_not_ca",
        }
    }
}

/// A Unix time as RFC 3339 (UTC, seconds), for messages.
fn rfc3339(unix: &i64) -> String {
    chrono::DateTime::from_timestamp(*unix, 0)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("Unix time {unix}"))
}

/// A trust anchor from PEM text: exactly one `CERTIFICATE` block (text
/// around it is ignored), a CA certificate (basicConstraints cA true, and
/// keyCertSign when keyUsage is present). Its validity is not checked
/// here: an anchor out of its validity period anchors nothing then.
pub fn parse_anchor_pem(pem: &str) -> Result<TrustAnchor, X5cError> {
    let certs = pem_chain(pem)
        .map_err(|e| X5cError::Malformed(format!("the trust anchor is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(X5cError::Malformed(
            "no -----BEGIN CERTIFICATE----- block in the trust anchor PEM".into(),
        ));
    }
    let blocks = pem.matches("-----BEGIN ").count();
    let Ok([cert]) = <[Cert; 1]>::try_from(certs) else {
        return Err(one_block(blocks));
    };
    if blocks != 1 {
        return Err(one_block(blocks));
    }
    if cert.der.len() > MAX_CERT_BYTES {
        return Err(X5cError::TooLarge(format!(
            "the trust anchor is {} bytes; at most {MAX_CERT_BYTES} are accepted",
            cert.der.len()
        )));
    }
    if !cert.is_ca().map_err(X5cError::Malformed)? {
        return Err(X5cError::AnchorNotCa(
            "basicConstraints cA is not true (a leaf cannot be a trust anchor)".into(),
        ));
    }
    if let Some(usage) = cert.key_usage().map_err(X5cError::Malformed)?
        && !usage.key_cert_sign()
    {
        return Err(X5cError::AnchorNotCa(
            "its keyUsage does not include keyCertSign".into(),
        ));
    }
    webpki::anchor_from_trusted_cert(&rustls_pki_types::CertificateDer::from(cert.der.as_slice()))
        .map_err(|e| {
            X5cError::Malformed(format!("the certificate cannot be a trust anchor: {e}"))
        })?;
    let (_not_before, not_after) = cert.validity();
    Ok(TrustAnchor {
        subject: cert.subject(),
        not_after,
        der: cert.der,
    })
}

fn one_block(blocks: usize) -> X5cError {
    X5cError::Malformed(format!(
        "the trust anchor PEM has {blocks} PEM blocks; exactly one, a CERTIFICATE, is expected"
    ))
}

/// The DER certificates of a JOSE header's `x5c` (leaf first), `None` when
/// there is none. Each entry is standard base64 with padding, not base64url
/// (RFC 7515 §4.1.6); at most [`MAX_CERTS`] of at most [`MAX_CERT_BYTES`]
/// each. The certificates are not parsed here: [`trusted_leaf_key`] does.
pub fn x5c_of_header(header: &Value) -> Result<Option<Vec<Vec<u8>>>, X5cError> {
    match header.get("x5c") {
        None => Ok(None),
        Some(Value::Array(entries)) => decode_x5c(entries).map(Some),
        Some(_) => Err(X5cError::Malformed(
            "the x5c header is not an array of base64 certificates".into(),
        )),
    }
}

/// The DER certificates of an `x5c` array, with the limits of
/// [`x5c_of_header`]; empty is refused.
pub(crate) fn decode_x5c(entries: &[Value]) -> Result<Vec<Vec<u8>>, X5cError> {
    if entries.is_empty() {
        return Err(X5cError::Malformed(
            "the x5c header is an empty array".into(),
        ));
    }
    if entries.len() > MAX_CERTS {
        return Err(too_many(entries.len()));
    }
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let number = i + 1;
            let text = entry.as_str().ok_or_else(|| {
                X5cError::Malformed(format!("x5c entry {number} is not a string"))
            })?;
            if text.len() > MAX_ENTRY_CHARS {
                return Err(too_big(number));
            }
            let der = STANDARD.decode(text).map_err(|e| {
                X5cError::Malformed(format!(
                    "x5c entry {number} is not standard base64 with padding \
                     (RFC 7515 §4.1.6; base64url is not accepted): {e}"
                ))
            })?;
            if der.len() > MAX_CERT_BYTES {
                return Err(too_big(number));
            }
            Ok(der)
        })
        .collect()
}

fn too_many(count: usize) -> X5cError {
    X5cError::TooLarge(format!(
        "the x5c header has {count} certificates; at most {MAX_CERTS} are accepted"
    ))
}

fn too_big(number: usize) -> X5cError {
    X5cError::TooLarge(format!(
        "x5c certificate {number} is over {MAX_CERT_BYTES} bytes"
    ))
}

/// Whether `iss` trusts the signer of an issuer-signed JWT by its `x5c`
/// `chain` (DER, leaf first, then intermediates; a self-issued last
/// certificate, the root, is allowed and ignored: anchors come only from
/// `anchors`). Returns the leaf's key, which the caller verifies the JWT's
/// signature with.
///
/// At every `(label, unix time)` of `times` (the credential's `iat` as
/// [`AT_IAT`] and the current time as [`NOW`]), the chain validates with
/// webpki to one of `anchors` that is itself within its validity period:
/// signatures, validity periods, basic constraints, name constraints; any
/// extended key usage (issuer certificates carry no TLS one). Then the
/// leaf's keyUsage, when present, includes digitalSignature; a SAN names
/// `iss` (a URI SAN equal to it, or for an `https` `iss` a DNS SAN equal
/// to its host, ASCII case-insensitively, no wildcards); and its key is
/// Ed25519 or EC P-256.
pub fn trusted_leaf_key(
    chain: &[Vec<u8>],
    anchors: &[TrustAnchor],
    iss: &str,
    times: &[(&'static str, i64)],
) -> Result<PublicKey, X5cError> {
    if chain.is_empty() {
        return Err(X5cError::Malformed("the x5c chain is empty".into()));
    }
    if chain.len() > MAX_CERTS {
        return Err(too_many(chain.len()));
    }
    let mut certs = chain
        .iter()
        .enumerate()
        .map(|(i, der)| {
            if der.len() > MAX_CERT_BYTES {
                return Err(too_big(i + 1));
            }
            Cert::from_der(der.clone()).map_err(|e| {
                X5cError::Malformed(format!("x5c entry {} is not a DER certificate: {e}", i + 1))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if certs.len() > 1 && certs.last().is_some_and(Cert::is_self_issued) {
        certs.pop();
    }
    if times.is_empty() {
        return Err(X5cError::ChainInvalid(
            "no time was given to validate the chain at".into(),
        ));
    }
    let anchors = anchors
        .iter()
        .map(|anchor| {
            Cert::from_der(anchor.der.clone()).map_err(|e| {
                X5cError::ChainInvalid(format!(
                    "the trust anchor {} is not a certificate: {e}",
                    anchor.subject
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for &(when, at) in times {
        validate_at(&certs, &anchors, when, at)?;
    }
    let leaf = &certs[0];
    if let Some(usage) = leaf.key_usage().map_err(X5cError::Malformed)?
        && !usage.digital_signature()
    {
        return Err(X5cError::KeyUsage);
    }
    if !names_issuer(leaf, iss)? {
        return Err(X5cError::SanMismatch);
    }
    leaf.public_key().ok_or(X5cError::UnsupportedKey)
}

/// The chain validates at `at` to an anchor valid then.
fn validate_at(
    chain: &[Cert],
    anchors: &[Cert],
    when: &'static str,
    at: i64,
) -> Result<(), X5cError> {
    let current: Vec<&[u8]> = anchors
        .iter()
        .filter(|anchor| valid_at(anchor, at))
        .map(|anchor| anchor.der.as_slice())
        .collect();
    let Err(error) = verify_chain(chain, &current, at) else {
        return Ok(());
    };
    if matches!(
        error,
        ChainError::NoAnchor | ChainError::Path(webpki::Error::UnknownIssuer)
    ) {
        // No anchor valid then; one out of its validity period may be the
        // root all the same: say so rather than "unknown root".
        let all: Vec<&[u8]> = anchors.iter().map(|anchor| anchor.der.as_slice()).collect();
        if let Ok(index) = verify_chain(chain, &all, at) {
            let anchor = &anchors[index];
            return Err(expired(when, at, "the trust anchor", anchor));
        }
    }
    Err(match error {
        ChainError::NoAnchor | ChainError::Path(webpki::Error::UnknownIssuer) => {
            X5cError::UnknownRoot
        }
        ChainError::Path(
            webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. },
        ) => {
            let leaf = &chain[0];
            if !valid_at(leaf, at) {
                expired(when, at, "the leaf certificate", leaf)
            } else {
                let detail = match error {
                    ChainError::Path(webpki::Error::CertExpired { not_after, .. }) => format!(
                        "an intermediate certificate expired at {}",
                        rfc3339(&unix(not_after))
                    ),
                    ChainError::Path(webpki::Error::CertNotValidYet { not_before, .. }) => {
                        format!(
                            "an intermediate certificate is not valid before {}",
                            rfc3339(&unix(not_before))
                        )
                    }
                    other => other.to_string(),
                };
                X5cError::Expired { when, at, detail }
            }
        }
        ChainError::Empty => X5cError::Malformed("the x5c chain is empty".into()),
        other => X5cError::ChainInvalid(other.to_string()),
    })
}

fn unix(time: rustls_pki_types::UnixTime) -> i64 {
    i64::try_from(time.as_secs()).unwrap_or(i64::MAX)
}

fn valid_at(cert: &Cert, at: i64) -> bool {
    let (not_before, not_after) = cert.validity();
    (not_before..=not_after).contains(&at)
}

fn expired(when: &'static str, at: i64, which: &str, cert: &Cert) -> X5cError {
    let (not_before, not_after) = cert.validity();
    X5cError::Expired {
        when,
        at,
        detail: format!(
            "{which} ({}) is valid from {} to {}",
            cert.subject(),
            rfc3339(&not_before),
            rfc3339(&not_after)
        ),
    }
}

/// A URI SAN equal to `iss`, or for an `https` `iss`, a DNS SAN equal to
/// its host.
fn names_issuer(leaf: &Cert, iss: &str) -> Result<bool, X5cError> {
    if leaf
        .uri_names()
        .map_err(X5cError::Malformed)?
        .iter()
        .any(|uri| uri == iss)
    {
        return Ok(true);
    }
    let Ok(url) = Url::parse(iss) else {
        return Ok(false);
    };
    match url.host() {
        Some(Host::Domain(host)) if url.scheme() == "https" => {
            leaf.has_dns_name(host).map_err(X5cError::Malformed)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests;

/// What a verification takes from a credential's `x5c` chain: the leaf's
/// key and its SHA-256 thumbprint (hex), or the reason it is not trusted
/// and why.
pub type Checked = Result<(PublicKey, String), (Reason, String)>;

/// The issuer JWT `jws`'s `x5c` chain checked against `anchors` for `iss`,
/// at its `iat` (or `now` without one) and at `now`; `None` when it
/// carries no chain. The service and `log replay-verification` both judge
/// through this.
pub fn check_credential(
    jws: &proofline_domain::jose::CompactJws,
    anchors: &[TrustAnchor],
    iss: &str,
    now: i64,
) -> Option<Checked> {
    let chain = match x5c_of_header(&Value::Object(jws.header.clone())) {
        Ok(chain) => chain?,
        Err(e) => return Some(Err((Reason::X5cInvalid, e.to_string()))),
    };
    let iat = jws
        .payload
        .get("iat")
        .and_then(Value::as_i64)
        .unwrap_or(now);
    let times = [(AT_IAT, iat), (NOW, now)];
    Some(match trusted_leaf_key(&chain, anchors, iss, &times) {
        Ok(key) => Ok((key, hex::encode(sha2::Sha256::digest(&chain[0])))),
        Err(e) => Err((
            match e {
                X5cError::UnknownRoot => Reason::X5cUnknownRoot,
                X5cError::Expired { .. } => Reason::X5cExpired,
                X5cError::SanMismatch => Reason::X5cSanMismatch,
                _ => Reason::X5cInvalid,
            },
            e.to_string(),
        )),
    })
}
