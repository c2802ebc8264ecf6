//! `x5c` trust with a PKI made here by rcgen: root → intermediate → leaf.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, SanType, SignatureAlgorithm,
    date_time_ymd,
};
use serde_json::json;

use super::*;

/// An `https` iss with a port and a path: its host is `issuer.example`.
const ISS: &str = "https://issuer.example:8443/tenants/acme";
const HOST: &str = "issuer.example";

fn unix(year: i32, month: u8, day: u8) -> i64 {
    date_time_ymd(year, month, day).unix_timestamp()
}

/// The credential's iat and now, both well inside rcgen's default
/// validity (1975 to 4096).
fn iat() -> i64 {
    unix(2027, 1, 1)
}

fn now() -> i64 {
    unix(2027, 6, 1)
}

fn times() -> [(&'static str, i64); 2] {
    [(AT_IAT, iat()), (NOW, now())]
}

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

fn ca_params(name: &str, edit: impl FnOnce(&mut CertificateParams)) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    edit(&mut params);
    params
}

impl Ca {
    fn root(name: &str) -> Self {
        Self::root_with(name, |_| {})
    }

    fn root_with(name: &str, edit: impl FnOnce(&mut CertificateParams)) -> Self {
        let key = KeyPair::generate().unwrap();
        let issuer = CertifiedIssuer::self_signed(ca_params(name, edit), key).unwrap();
        Self { issuer }
    }

    fn intermediate(&self, name: &str) -> Self {
        self.intermediate_with(name, |_| {})
    }

    fn intermediate_with(&self, name: &str, edit: impl FnOnce(&mut CertificateParams)) -> Self {
        let key = KeyPair::generate().unwrap();
        let params = ca_params(name, edit);
        let issuer = CertifiedIssuer::signed_by(params, key, &*self.issuer).unwrap();
        Self { issuer }
    }

    fn der(&self) -> Vec<u8> {
        self.issuer.der().to_vec()
    }

    fn anchor(&self) -> TrustAnchor {
        parse_anchor_pem(&self.issuer.pem()).unwrap()
    }

    /// A leaf with a DNS SAN for [`HOST`] and a fresh `alg` key, edited.
    fn leaf_with(
        &self,
        alg: &'static SignatureAlgorithm,
        edit: impl FnOnce(&mut CertificateParams),
    ) -> (Vec<u8>, KeyPair) {
        let key = KeyPair::generate_for(alg).unwrap();
        let mut params = CertificateParams::new(vec![HOST.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "Issuer");
        edit(&mut params);
        let cert = params.signed_by(&key, &*self.issuer).unwrap();
        (cert.der().to_vec(), key)
    }

    fn leaf(&self) -> Vec<u8> {
        self.leaf_with(&PKCS_ECDSA_P256_SHA256, |_| {}).0
    }
}

/// Root, intermediate, and the anchors that trust the root.
fn pki() -> (Ca, Ca, Vec<TrustAnchor>) {
    let root = Ca::root("Test Root");
    let intermediate = root.intermediate("Test Intermediate");
    let anchors = vec![root.anchor()];
    (root, intermediate, anchors)
}

fn uri(text: &str) -> SanType {
    SanType::URI(Ia5String::try_from(text).unwrap())
}

#[test]
fn a_p256_chain_to_an_anchor_gives_the_leafs_key() {
    let (_root, intermediate, anchors) = pki();
    let (leaf, key) = intermediate.leaf_with(&PKCS_ECDSA_P256_SHA256, |_| {});
    let found = trusted_leaf_key(&[leaf, intermediate.der()], &anchors, ISS, &times()).unwrap();
    let PublicKey::P256(found) = found else {
        panic!("not a P-256 key: {found:?}");
    };
    assert_eq!(found.to_sec1_point(false).as_bytes(), key.public_key_raw());
}

#[test]
fn an_ed25519_leaf_named_by_a_uri_san_gives_its_key() {
    let (_root, intermediate, anchors) = pki();
    let iss = "https://issuer.example/other-tenant";
    let (leaf, key) = intermediate.leaf_with(&PKCS_ED25519, |params| {
        params.subject_alt_names = vec![uri(iss)];
    });
    let found = trusted_leaf_key(&[leaf.clone(), intermediate.der()], &anchors, iss, &times());
    let Ok(PublicKey::Ed25519(found)) = found else {
        panic!("not an Ed25519 key: {found:?}");
    };
    assert_eq!(found.as_bytes().as_slice(), key.public_key_raw());
    // A URI SAN names any iss, not only https ones.
    let urn = "urn:example:issuer";
    let (leaf, _) = intermediate.leaf_with(&PKCS_ED25519, |params| {
        params.subject_alt_names = vec![uri(urn)];
    });
    trusted_leaf_key(&[leaf, intermediate.der()], &anchors, urn, &times()).unwrap();
}

#[test]
fn the_dns_san_matches_the_host_of_an_https_iss_only() {
    let (_root, intermediate, anchors) = pki();
    let chain = [intermediate.leaf(), intermediate.der()];
    for iss in [
        ISS,
        "https://issuer.example",
        "https://ISSUER.example/upper",
    ] {
        trusted_leaf_key(&chain, &anchors, iss, &times()).unwrap();
    }
    for iss in [
        "https://other.example",
        "https://sub.issuer.example",
        "http://issuer.example",
        "issuer.example",
        "https://[::1]/",
        "not a url",
    ] {
        let refused = trusted_leaf_key(&chain, &anchors, iss, &times());
        assert_eq!(refused, Err(X5cError::SanMismatch), "{iss}");
    }
    // A URI SAN must equal iss exactly; a wildcard DNS SAN names no host.
    let (leaf, _) = intermediate.leaf_with(&PKCS_ECDSA_P256_SHA256, |params| {
        params.subject_alt_names = vec![
            uri("https://issuer.example/a"),
            SanType::DnsName(Ia5String::try_from("*.example").unwrap()),
        ];
    });
    let chain = [leaf, intermediate.der()];
    let refused = trusted_leaf_key(&chain, &anchors, "https://issuer.example/b", &times());
    assert_eq!(refused.unwrap_err().code(), "x5c_san_mismatch");
}

#[test]
fn a_root_at_the_end_of_x5c_is_ignored_as_anchor_material() {
    let (root, intermediate, anchors) = pki();
    let chain = [intermediate.leaf(), intermediate.der(), root.der()];
    trusted_leaf_key(&chain, &anchors, ISS, &times()).unwrap();
    // The same chain, root included, is not trusted without the anchor.
    let other = vec![Ca::root("Other Root").anchor()];
    assert_eq!(
        trusted_leaf_key(&chain, &other, ISS, &times()),
        Err(X5cError::UnknownRoot)
    );
}

#[test]
fn a_chain_to_an_unregistered_root_is_an_unknown_root() {
    let (_root, intermediate, _anchors) = pki();
    let chain = [intermediate.leaf(), intermediate.der()];
    let other = vec![Ca::root("Other Root").anchor()];
    let refused = trusted_leaf_key(&chain, &other, ISS, &times()).unwrap_err();
    assert_eq!(refused, X5cError::UnknownRoot);
    assert_eq!(refused.code(), "x5c_unknown_root");
    // No anchor registered at all.
    assert_eq!(
        trusted_leaf_key(&chain, &[], ISS, &times()),
        Err(X5cError::UnknownRoot)
    );
    // The intermediate left out: the leaf's issuer is no anchor.
    let (_root, intermediate, anchors) = pki();
    assert_eq!(
        trusted_leaf_key(&[intermediate.leaf()], &anchors, ISS, &times()),
        Err(X5cError::UnknownRoot)
    );
}

fn expect_expired(refused: Result<PublicKey, X5cError>, label: &str, detail_has: &str) {
    let error = refused.unwrap_err();
    let X5cError::Expired { when, detail, .. } = &error else {
        panic!("not Expired: {error:?}");
    };
    assert_eq!(*when, label);
    assert!(detail.contains(detail_has), "{detail}");
    assert_eq!(error.code(), "x5c_expired");
    assert!(
        error.to_string().contains(&format!("not valid {label} (")),
        "{error}"
    );
}

#[test]
fn a_leaf_expired_now_but_valid_at_iat_is_expired_now() {
    let (_root, intermediate, anchors) = pki();
    let (leaf, _) = intermediate.leaf_with(&PKCS_ECDSA_P256_SHA256, |params| {
        params.not_before = date_time_ymd(2026, 1, 1);
        params.not_after = date_time_ymd(2027, 3, 1);
    });
    let chain = [leaf, intermediate.der()];
    let refused = trusted_leaf_key(&chain, &anchors, ISS, &times());
    expect_expired(
        refused,
        NOW,
        "the leaf certificate (CN=Issuer) is valid from 2026-01-01",
    );
    // At iat alone it is valid.
    trusted_leaf_key(&chain, &anchors, ISS, &[(AT_IAT, iat())]).unwrap();
}

#[test]
fn a_leaf_not_yet_valid_at_iat_is_expired_at_iat() {
    let (_root, intermediate, anchors) = pki();
    let (leaf, _) = intermediate.leaf_with(&PKCS_ECDSA_P256_SHA256, |params| {
        params.not_before = date_time_ymd(2027, 3, 1);
    });
    let refused = trusted_leaf_key(&[leaf, intermediate.der()], &anchors, ISS, &times());
    expect_expired(refused, AT_IAT, "the leaf certificate");
}

#[test]
fn an_expired_intermediate_or_anchor_is_expired() {
    let root = Ca::root("Test Root");
    let intermediate = root.intermediate_with("Old Intermediate", |params| {
        params.not_after = date_time_ymd(2027, 3, 1);
    });
    let chain = [intermediate.leaf(), intermediate.der()];
    let refused = trusted_leaf_key(&chain, &[root.anchor()], ISS, &times());
    expect_expired(
        refused,
        NOW,
        "an intermediate certificate expired at 2027-03-01",
    );

    let old_root = Ca::root_with("Old Root", |params| {
        params.not_after = date_time_ymd(2027, 3, 1);
    });
    let intermediate = old_root.intermediate("Test Intermediate");
    let chain = [intermediate.leaf(), intermediate.der()];
    let refused = trusted_leaf_key(&chain, &[old_root.anchor()], ISS, &times());
    expect_expired(refused, NOW, "the trust anchor (CN=Old Root)");
}

#[test]
fn a_leaf_whose_key_usage_lacks_digital_signature_is_refused() {
    let (_root, intermediate, anchors) = pki();
    let (leaf, _) = intermediate.leaf_with(&PKCS_ECDSA_P256_SHA256, |params| {
        params.key_usages = vec![KeyUsagePurpose::KeyAgreement];
    });
    let refused = trusted_leaf_key(&[leaf, intermediate.der()], &anchors, ISS, &times());
    assert_eq!(refused, Err(X5cError::KeyUsage));
    let (leaf, _) = intermediate.leaf_with(&PKCS_ECDSA_P256_SHA256, |params| {
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    });
    trusted_leaf_key(&[leaf, intermediate.der()], &anchors, ISS, &times()).unwrap();
}

#[test]
fn a_p384_leaf_is_an_unsupported_key() {
    let (_root, intermediate, anchors) = pki();
    let (leaf, _) = intermediate.leaf_with(&PKCS_ECDSA_P384_SHA384, |_| {});
    let refused = trusted_leaf_key(&[leaf, intermediate.der()], &anchors, ISS, &times());
    assert_eq!(refused, Err(X5cError::UnsupportedKey));
}

#[test]
fn a_ca_certificate_as_leaf_is_an_invalid_chain() {
    let (_root, intermediate, anchors) = pki();
    let refused = trusted_leaf_key(&[intermediate.der()], &anchors, ISS, &times()).unwrap_err();
    assert!(matches!(refused, X5cError::ChainInvalid(_)), "{refused:?}");
    assert_eq!(refused.code(), "x5c_chain_invalid");
}

#[test]
fn an_anchor_is_one_ca_certificate() {
    let root = Ca::root_with("Test Root", |params| {
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Proofline Test");
        params.not_after = date_time_ymd(2040, 1, 2);
    });
    let anchor = root.anchor();
    assert_eq!(anchor.der, root.der());
    assert!(
        anchor.subject.contains("CN=Test Root"),
        "{}",
        anchor.subject
    );
    assert!(
        anchor.subject.contains("O=Proofline Test"),
        "{}",
        anchor.subject
    );
    assert_eq!(anchor.not_after, unix(2040, 1, 2));
    // Text around the block is ignored.
    let annotated = format!("subject=CN=Test Root\n{}", root.issuer.pem());
    assert_eq!(parse_anchor_pem(&annotated), Ok(anchor));

    // A leaf is refused, as is a CA whose keyUsage cannot sign certificates.
    let (leaf, _) = root.leaf_with(&PKCS_ECDSA_P256_SHA256, |_| {});
    let leaf_pem = x509_cert::der::pem::encode_string(
        "CERTIFICATE",
        x509_cert::der::pem::LineEnding::LF,
        &leaf,
    )
    .unwrap();
    let refused = parse_anchor_pem(&leaf_pem).unwrap_err();
    assert!(matches!(refused, X5cError::AnchorNotCa(_)), "{refused:?}");
    assert_eq!(refused.code(), "x5c_anchor_not_ca");
    let no_cert_sign = Ca::root_with("No Cert Sign", |params| {
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    });
    let refused = parse_anchor_pem(&no_cert_sign.issuer.pem()).unwrap_err();
    assert!(matches!(refused, X5cError::AnchorNotCa(_)), "{refused:?}");

    // Garbage, two certificates, a key beside it: malformed.
    let two = format!("{}{}", root.issuer.pem(), Ca::root("Other").issuer.pem());
    let with_key = format!(
        "{}{}",
        root.issuer.pem(),
        KeyPair::generate().unwrap().serialize_pem()
    );
    let broken = "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n";
    for (text, says) in [
        ("hello", "no -----BEGIN CERTIFICATE----- block"),
        ("", "no -----BEGIN CERTIFICATE----- block"),
        (two.as_str(), "has 2 PEM blocks"),
        (with_key.as_str(), "has 2 PEM blocks"),
        (broken, "not valid PEM"),
    ] {
        let refused = parse_anchor_pem(text).unwrap_err();
        assert!(matches!(refused, X5cError::Malformed(_)), "{refused:?}");
        assert!(refused.to_string().contains(says), "{refused}");
    }
}

#[test]
fn x5c_is_an_array_of_standard_base64_ders() {
    let (_root, intermediate, _anchors) = pki();
    let chain = vec![intermediate.leaf(), intermediate.der()];
    let encoded: Vec<String> = chain.iter().map(|der| STANDARD.encode(der)).collect();
    assert_eq!(
        x5c_of_header(&json!({"alg": "ES256", "x5c": encoded})),
        Ok(Some(chain.clone()))
    );
    assert_eq!(
        x5c_of_header(&json!({"alg": "ES256", "kid": "k"})),
        Ok(None)
    );

    // b"\xfb\xff\xfe" is "+//+" in base64 and "-__-" in base64url.
    let url_safe = URL_SAFE_NO_PAD.encode(b"\xfb\xff\xfe");
    assert_eq!(url_safe, "-__-");
    // Standard base64 without its padding.
    let unpadded = STANDARD_NO_PAD.encode(b"\x01\x02");
    assert_eq!(unpadded, "AQI");
    for x5c in [
        json!([url_safe]),
        json!([STANDARD.encode(&chain[0]), url_safe]),
        json!(["not base64!"]),
        json!([unpadded]),
        json!([42]),
        json!([]),
        json!("MIIB"),
    ] {
        let refused = x5c_of_header(&json!({ "x5c": x5c }));
        let Err(X5cError::Malformed(message)) = &refused else {
            panic!("{x5c} gave {refused:?}");
        };
        assert!(!message.is_empty());
    }
    // Base64 of something that is not a certificate: refused when read.
    let garbage = x5c_of_header(&json!({"x5c": [STANDARD.encode(b"not DER")]}))
        .unwrap()
        .unwrap();
    let refused = trusted_leaf_key(&garbage, &[], ISS, &times()).unwrap_err();
    assert!(matches!(refused, X5cError::Malformed(_)), "{refused:?}");
    assert_eq!(refused.code(), "x5c_malformed");
}

#[test]
fn more_than_five_certificates_or_a_huge_one_is_too_large() {
    let (_root, intermediate, anchors) = pki();
    let six: Vec<Vec<u8>> = (0..6).map(|_| intermediate.der()).collect();
    let encoded: Vec<String> = six.iter().map(|der| STANDARD.encode(der)).collect();
    let refused = x5c_of_header(&json!({ "x5c": encoded })).unwrap_err();
    assert!(matches!(refused, X5cError::TooLarge(_)), "{refused:?}");
    assert_eq!(refused.code(), "x5c_too_large");
    let refused = trusted_leaf_key(&six, &anchors, ISS, &times()).unwrap_err();
    assert!(matches!(refused, X5cError::TooLarge(_)), "{refused:?}");
    // Five is fine as far as size goes.
    let five: Vec<String> = encoded.into_iter().take(5).collect();
    assert_eq!(
        x5c_of_header(&json!({ "x5c": five }))
            .unwrap()
            .unwrap()
            .len(),
        5
    );

    let huge = vec![0x30; MAX_CERT_BYTES + 1];
    for entry in [STANDARD.encode(&huge), "A".repeat(MAX_ENTRY_CHARS + 4)] {
        let refused = x5c_of_header(&json!({ "x5c": [entry] })).unwrap_err();
        assert!(matches!(refused, X5cError::TooLarge(_)), "{refused:?}");
    }
    let refused = trusted_leaf_key(&[huge], &anchors, ISS, &times()).unwrap_err();
    assert!(matches!(refused, X5cError::TooLarge(_)), "{refused:?}");
}

#[test]
fn every_error_has_its_own_code() {
    let errors = [
        X5cError::Malformed(String::new()),
        X5cError::TooLarge(String::new()),
        X5cError::UnknownRoot,
        X5cError::Expired {
            when: NOW,
            at: 0,
            detail: String::new(),
        },
        X5cError::ChainInvalid(String::new()),
        X5cError::KeyUsage,
        X5cError::SanMismatch,
        X5cError::UnsupportedKey,
        X5cError::AnchorNotCa(String::new()),
    ];
    let mut codes: Vec<&str> = errors.iter().map(X5cError::code).collect();
    assert!(codes.iter().all(|code| code.starts_with("x5c_")));
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), errors.len());
}
