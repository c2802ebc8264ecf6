//! The X.509 pieces of the verifier's identity: the `x509_hash` value, the
//! `x5c` header, and validating a chain to trust anchors. Reading
//! certificates and PEM files and the chain validation itself are shared
//! with the `x5c` trust of issuers, in [`crate::x509`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proofline_domain::jose::b64url_encode;
use sha2::{Digest, Sha256};

pub(super) use crate::x509::{Cert, pem_chain};

/// `x509_hash`'s value: base64url (no padding) of the SHA-256 of the DER.
pub(super) fn hash_of(der: &[u8]) -> String {
    b64url_encode(Sha256::digest(der))
}

/// The `x5c` header value of a chain (leaf first): standard base64 with
/// padding (RFC 7515 §4.1.6). A self-issued last certificate of a longer
/// chain is the trust anchor, which HAIP says not to send.
pub(super) fn x5c_of(chain: &[Cert]) -> Vec<String> {
    let sent = match chain {
        [_, .., last] if last.is_self_issued() => &chain[..chain.len() - 1],
        _ => chain,
    };
    sent.iter().map(|cert| STANDARD.encode(&cert.der)).collect()
}

/// Validates `chain` (leaf first, DER) to one of `anchors` (DER
/// certificates) at `now_unix`: signatures, validity periods, basic
/// constraints, name constraints; any extended key usage.
pub(super) fn validate_chain(
    chain: &[Cert],
    anchors: &[Vec<u8>],
    now_unix: i64,
) -> Result<(), String> {
    crate::x509::verify_chain(chain, anchors, now_unix)
        .map(|_anchor| ())
        .map_err(|e| e.to_string())
}
