//! The X.509 pieces of the verifier's identity: reading a PEM chain, the
//! leaf's P-256 key and SAN dNSNames, the `x509_hash` value, the `x5c`
//! header, and validating a chain to trust anchors (`rustls-webpki`).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::pkcs8::DecodePublicKey;
use proofline_domain::jose::b64url_encode;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use sha2::{Digest, Sha256};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// A certificate as it came (its DER bytes are what `x5c` carries and what
/// `x509_hash` hashes) and as parsed.
pub(super) struct Cert {
    pub der: Vec<u8>,
    pub parsed: Certificate,
}

impl Cert {
    pub fn from_der(der: Vec<u8>) -> Result<Self, String> {
        let parsed = Certificate::from_der(&der).map_err(|e| e.to_string())?;
        Ok(Self { der, parsed })
    }

    /// Subject and issuer are the same name: a root (trust anchor).
    pub fn is_self_issued(&self) -> bool {
        let tbs = self.parsed.tbs_certificate();
        tbs.subject() == tbs.issuer()
    }

    /// The certificate's public key when it is an EC P-256 key.
    pub fn p256_key(&self) -> Option<p256::ecdsa::VerifyingKey> {
        let spki = self
            .parsed
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .ok()?;
        p256::ecdsa::VerifyingKey::from_public_key_der(&spki).ok()
    }

    /// The dNSName entries of the subjectAltName extension, in order.
    pub fn dns_names(&self) -> Result<Vec<String>, String> {
        let san = self
            .parsed
            .tbs_certificate()
            .get_extension::<SubjectAltName>()
            .map_err(|e| format!("the subjectAltName extension is malformed: {e}"))?;
        Ok(san
            .map(|(_critical, SubjectAltName(names))| {
                names
                    .into_iter()
                    .filter_map(|name| match name {
                        GeneralName::DnsName(dns) => Some(dns.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Whether `name` is one of the dNSNames, compared ASCII
    /// case-insensitively and literally: a wildcard entry names no host.
    pub fn has_dns_name(&self, name: &str) -> Result<bool, String> {
        Ok(self
            .dns_names()?
            .iter()
            .any(|entry| !entry.starts_with('*') && entry.eq_ignore_ascii_case(name)))
    }
}

/// The certificates of a PEM file, in file order. Text around the blocks
/// (`openssl` writes `subject=` lines) is ignored.
pub(super) fn pem_chain(text: &str) -> Result<Vec<Cert>, String> {
    let mut certs = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let from_begin = &rest[start..];
        let end = from_begin
            .find(END)
            .ok_or_else(|| format!("certificate {} has no {END} line", certs.len() + 1))?
            + END.len();
        let (label, der) = x509_cert::der::pem::decode_vec(&from_begin.as_bytes()[..end])
            .map_err(|e| format!("certificate {} is not valid PEM: {e}", certs.len() + 1))?;
        if label != "CERTIFICATE" {
            return Err(format!("unexpected PEM label {label}"));
        }
        let number = certs.len() + 1;
        certs.push(Cert::from_der(der).map_err(|e| format!("certificate {number}: {e}"))?);
        rest = &from_begin[end..];
    }
    Ok(certs)
}

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

/// The DER certificates of an `x5c` header value.
pub(super) fn decode_x5c(entries: &[serde_json::Value]) -> Option<Vec<Vec<u8>>> {
    entries
        .iter()
        .map(|entry| STANDARD.decode(entry.as_str()?).ok())
        .collect()
}

/// Any extended key usage is accepted: verifier certificates carry
/// profile-specific EKUs (or none); a malformed extension still fails.
struct AnyKeyPurpose;

impl ExtendedKeyUsageValidator for AnyKeyPurpose {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for purpose in iter {
            purpose?;
        }
        Ok(())
    }
}

/// Validates `chain` (leaf first, DER) to one of `anchors` (DER
/// certificates) at `now_unix`: signatures, validity periods, basic
/// constraints, name constraints.
pub(super) fn validate_chain(
    chain: &[Cert],
    anchors: &[Vec<u8>],
    now_unix: i64,
) -> Result<(), String> {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err("the chain is empty".into());
    };
    if anchors.is_empty() {
        return Err("no trust anchor is configured".into());
    }
    let anchor_ders: Vec<CertificateDer<'_>> = anchors
        .iter()
        .map(|der| CertificateDer::from(der.as_slice()))
        .collect();
    let trust_anchors: Vec<TrustAnchor<'_>> = anchor_ders
        .iter()
        .enumerate()
        .map(|(i, der)| {
            webpki::anchor_from_trusted_cert(der)
                .map_err(|e| format!("trust anchor {} is not usable: {e}", i + 1))
        })
        .collect::<Result<_, _>>()?;
    let leaf_der = CertificateDer::from(leaf.der.as_slice());
    let leaf = EndEntityCert::try_from(&leaf_der)
        .map_err(|e| format!("the leaf certificate is not usable: {e}"))?;
    let intermediates: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|cert| CertificateDer::from(cert.der.as_slice()))
        .collect();
    let now = UnixTime::since_unix_epoch(Duration::from_secs(
        u64::try_from(now_unix).unwrap_or_default(),
    ));
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &trust_anchors,
        &intermediates,
        now,
        AnyKeyPurpose,
        None,
        None,
    )
    .map(|_path| ())
    .map_err(|e| e.to_string())
}
