//! X.509 shared by the verifier's OpenID4VP identity (`oid4vp::identity`)
//! and the `x5c` trust of issuers ([`crate::x5c`]): reading certificates
//! (`x509-cert`), their keys, SANs and extensions, PEM files, and
//! validating a chain to trust anchors (`rustls-webpki`).

use std::fmt;
use std::time::Duration;

use p256::pkcs8::DecodePublicKey as _;
use proofline_domain::jose::PublicKey;
use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, SubjectAltName};

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// A certificate as it came (its DER bytes are what `x5c` carries and what
/// `x509_hash` hashes) and as parsed.
pub(crate) struct Cert {
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

    /// The subject as an RFC 4514 string.
    pub fn subject(&self) -> String {
        self.parsed.tbs_certificate().subject().to_string()
    }

    /// notBefore and notAfter, in Unix seconds (both inclusive, RFC 5280).
    pub fn validity(&self) -> (i64, i64) {
        let validity = self.parsed.tbs_certificate().validity();
        let unix = |time: x509_cert::time::Time| {
            i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
        };
        (unix(validity.not_before), unix(validity.not_after))
    }

    fn spki_der(&self) -> Option<Vec<u8>> {
        self.parsed
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .ok()
    }

    /// The certificate's public key when it is an EC P-256 key.
    pub fn p256_key(&self) -> Option<p256::ecdsa::VerifyingKey> {
        p256::ecdsa::VerifyingKey::from_public_key_der(&self.spki_der()?).ok()
    }

    /// The certificate's public key when it is an Ed25519 or EC P-256 key.
    pub fn public_key(&self) -> Option<PublicKey> {
        use ed25519_dalek::pkcs8::DecodePublicKey as _;
        let spki = self.spki_der()?;
        if let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_der(&spki) {
            return Some(PublicKey::Ed25519(key));
        }
        p256::ecdsa::VerifyingKey::from_public_key_der(&spki)
            .ok()
            .map(PublicKey::P256)
    }

    /// Whether basicConstraints is present with cA true.
    pub fn is_ca(&self) -> Result<bool, String> {
        let constraints = self
            .parsed
            .tbs_certificate()
            .get_extension::<BasicConstraints>()
            .map_err(|e| format!("the basicConstraints extension is malformed: {e}"))?;
        Ok(constraints.is_some_and(|(_critical, constraints)| constraints.ca))
    }

    /// The keyUsage extension, when present.
    pub fn key_usage(&self) -> Result<Option<KeyUsage>, String> {
        self.parsed
            .tbs_certificate()
            .get_extension::<KeyUsage>()
            .map(|usage| usage.map(|(_critical, usage)| usage))
            .map_err(|e| format!("the keyUsage extension is malformed: {e}"))
    }

    /// The subjectAltName entries that `pick` keeps, in order.
    fn san_names(&self, pick: fn(GeneralName) -> Option<String>) -> Result<Vec<String>, String> {
        let san = self
            .parsed
            .tbs_certificate()
            .get_extension::<SubjectAltName>()
            .map_err(|e| format!("the subjectAltName extension is malformed: {e}"))?;
        Ok(san
            .map(|(_critical, SubjectAltName(names))| names.into_iter().filter_map(pick).collect())
            .unwrap_or_default())
    }

    /// The dNSName entries of the subjectAltName extension, in order.
    pub fn dns_names(&self) -> Result<Vec<String>, String> {
        self.san_names(|name| match name {
            GeneralName::DnsName(dns) => Some(dns.to_string()),
            _ => None,
        })
    }

    /// The uniformResourceIdentifier entries of the subjectAltName
    /// extension, in order.
    pub fn uri_names(&self) -> Result<Vec<String>, String> {
        self.san_names(|name| match name {
            GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
            _ => None,
        })
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
pub(crate) fn pem_chain(text: &str) -> Result<Vec<Cert>, String> {
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

/// Any extended key usage is accepted: verifier and issuer certificates
/// carry profile-specific EKUs (or none), not TLS ones; a malformed
/// extension still fails.
struct AnyKeyPurpose;

impl ExtendedKeyUsageValidator for AnyKeyPurpose {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for purpose in iter {
            purpose?;
        }
        Ok(())
    }
}

/// Why [`verify_chain`] refused a chain.
#[derive(Debug)]
pub(crate) enum ChainError {
    /// No certificate at all.
    Empty,
    /// No trust anchor to validate to.
    NoAnchor,
    /// Trust anchor `index` (0-based) is not usable as one.
    Anchor { index: usize, error: webpki::Error },
    /// The leaf is not usable as an end-entity certificate.
    Leaf(webpki::Error),
    /// No path from the leaf to an anchor validates; the most specific
    /// reason (`UnknownIssuer` when no path reaches an anchor at all).
    Path(webpki::Error),
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainError::Empty => f.write_str("the chain is empty"),
            ChainError::NoAnchor => f.write_str("no trust anchor is configured"),
            ChainError::Anchor { index, error } => {
                write!(f, "trust anchor {} is not usable: {error}", index + 1)
            }
            ChainError::Leaf(error) => write!(f, "the leaf certificate is not usable: {error}"),
            ChainError::Path(error) => write!(f, "{error}"),
        }
    }
}

/// Validates `chain` (leaf first, DER) to one of `anchors` (DER
/// certificates) at `at_unix`: signatures, validity periods, basic
/// constraints, name constraints; any extended key usage, and keyUsage
/// left to the caller. Returns the index in `anchors` of the anchor the
/// validated path ends at. webpki does not look at the anchor's own
/// validity period: that is left to the caller too.
pub(crate) fn verify_chain<A: AsRef<[u8]>>(
    chain: &[Cert],
    anchors: &[A],
    at_unix: i64,
) -> Result<usize, ChainError> {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err(ChainError::Empty);
    };
    if anchors.is_empty() {
        return Err(ChainError::NoAnchor);
    }
    let anchor_ders: Vec<CertificateDer<'_>> = anchors
        .iter()
        .map(|der| CertificateDer::from(der.as_ref()))
        .collect();
    let trust_anchors: Vec<rustls_pki_types::TrustAnchor<'_>> = anchor_ders
        .iter()
        .enumerate()
        .map(|(index, der)| {
            webpki::anchor_from_trusted_cert(der)
                .map_err(|error| ChainError::Anchor { index, error })
        })
        .collect::<Result<_, _>>()?;
    let leaf_der = CertificateDer::from(leaf.der.as_slice());
    let leaf = EndEntityCert::try_from(&leaf_der).map_err(ChainError::Leaf)?;
    let intermediates: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|cert| CertificateDer::from(cert.der.as_slice()))
        .collect();
    let at = UnixTime::since_unix_epoch(Duration::from_secs(
        u64::try_from(at_unix).unwrap_or_default(),
    ));
    let path = leaf
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &trust_anchors,
            &intermediates,
            at,
            AnyKeyPurpose,
            None,
            None,
        )
        .map_err(ChainError::Path)?;
    // `path.anchor()` is one of `trust_anchors`, by reference.
    let used = path.anchor();
    Ok(trust_anchors
        .iter()
        .position(|anchor| std::ptr::eq(anchor, used))
        .unwrap_or_default())
}
