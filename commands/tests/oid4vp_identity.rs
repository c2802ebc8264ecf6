//! The verifier's OpenID4VP identity (client_id prefixes and signed request
//! objects) and the wallet's check of a request object, with a PKI made here
//! by rcgen.

use std::mem::discriminant;
use std::os::unix::fs::PermissionsExt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::pkcs8::{DecodePrivateKey, LineEnding};
use proofline_commands::oid4vp::identity::{
    CheckError, ClientIdPrefix, IdentityError, REQUEST_OBJECT_TYP, VerifierIdentity,
    check_request_object,
};
use proofline_commands::signing::ServiceKey;
use proofline_domain::jose::{self, b64url_encode};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, PKCS_ED25519,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// 2027-01-15, inside rcgen's default validity (1975 to 4096).
const NOW: i64 = 1_800_000_000;
const DNS: &str = "verifier.example";

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let issuer = CertifiedIssuer::self_signed(ca_params(name), key).unwrap();
        Self { issuer }
    }

    fn intermediate(&self, name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let issuer = CertifiedIssuer::signed_by(ca_params(name), key, &*self.issuer).unwrap();
        Self { issuer }
    }

    fn der(&self) -> Vec<u8> {
        self.issuer.der().to_vec()
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf with these SANs and a fresh key of `alg`.
    fn leaf_with(&self, sans: &[&str], alg: &'static rcgen::SignatureAlgorithm) -> Leaf {
        let key = KeyPair::generate_for(alg).unwrap();
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "Verifier");
        let cert = params.signed_by(&key, &*self.issuer).unwrap();
        Leaf {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A leaf for `verifier.example` with a P-256 key.
    fn leaf(&self) -> Leaf {
        self.leaf_with(
            &[DNS, "alt.verifier.example"],
            &rcgen::PKCS_ECDSA_P256_SHA256,
        )
    }
}

struct Leaf {
    pem: String,
    der: Vec<u8>,
    key_pem: String,
}

/// Asserts that `$result` is an `Err` matching `$error`.
macro_rules! refused {
    ($result:expr, $error:pat) => {
        match $result {
            Err($error) => {}
            other => panic!("{:?}", other.map(|_| ())),
        }
    };
}

fn hash(der: &[u8]) -> String {
    b64url_encode(Sha256::digest(der))
}

fn claims(client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "response_type": "vp_token",
        "response_mode": "direct_post.jwt",
        "nonce": "n-0S6_WzA2Mj",
        "exp": NOW + 300,
    })
}

fn signed(identity: &VerifierIdentity) -> String {
    identity
        .sign_request_object(&claims(identity.client_id()))
        .expect("a signing identity")
}

fn header_of(jws: &str) -> Value {
    let header = jws.split('.').next().unwrap();
    serde_json::from_slice(&jose::b64url_decode(header).unwrap()).unwrap()
}

/// The same JWS with its payload replaced (the signature kept).
fn with_payload(jws: &str, payload: &Value) -> String {
    let parts: Vec<&str> = jws.split('.').collect();
    let payload = b64url_encode(serde_json::to_vec(payload).unwrap());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

/// An ES256 JWS with any header, signed with a PKCS#8 PEM key.
fn es256(key_pem: &str, header: &Value, payload: &Value) -> String {
    use p256::ecdsa::signature::Signer;
    let key = p256::ecdsa::SigningKey::from_pkcs8_pem(key_pem).unwrap();
    jose::sign_compact(header, payload, |input| {
        let signature: p256::ecdsa::Signature = key.sign(input);
        signature.to_bytes().to_vec()
    })
}

fn did_identity() -> (VerifierIdentity, ServiceKey) {
    let key = ServiceKey::generate().unwrap();
    let copy = ServiceKey::from_pem(&key.to_pem().unwrap()).unwrap();
    (VerifierIdentity::did_key(key), copy)
}

fn x509_identities(ca: &Ca, leaf: &Leaf) -> [VerifierIdentity; 2] {
    let chain = format!("{}{}", leaf.pem, ca.pem());
    [
        VerifierIdentity::x509(ClientIdPrefix::X509SanDns, &chain, &leaf.key_pem, Some(DNS))
            .unwrap(),
        VerifierIdentity::x509(ClientIdPrefix::X509Hash, &chain, &leaf.key_pem, None).unwrap(),
    ]
}

#[test]
fn prefixes_read_and_print() {
    for prefix in ClientIdPrefix::ALL {
        let client_id = format!("{}:did:key:z6Mk", prefix.as_str());
        assert_eq!(ClientIdPrefix::of(&client_id), Some(prefix));
    }
    for other in [
        "verifier",
        "x509_san_dns:",
        "did:key:z6Mk",
        "openid_federation:https://v.example",
        "X509_SAN_DNS:v.example",
    ] {
        assert_eq!(ClientIdPrefix::of(other), None, "{other}");
    }
}

#[test]
fn the_did_key_file_is_created_owner_only_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oid4vp/verifier.key");
    let (first, created) = VerifierIdentity::did_key_from_file(&path).unwrap();
    assert!(created);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (again, created) = VerifierIdentity::did_key_from_file(&path).unwrap();
    assert!(!created);
    assert_eq!(first.client_id(), again.client_id());
    assert_eq!(first.prefix(), ClientIdPrefix::DecentralizedIdentifier);
    assert_eq!(first.alg(), Some("EdDSA"));
    let did = first.client_id().strip_prefix("decentralized_identifier:");
    let did = did.unwrap();
    assert!(did.starts_with("did:key:z6Mk"), "{did}");
    let multibase = did.strip_prefix("did:key:").unwrap();
    assert_eq!(first.kid(), Some(format!("{did}#{multibase}").as_str()));

    std::fs::write(dir.path().join("garbled.key"), "not a key").unwrap();
    refused!(
        VerifierIdentity::did_key_from_file(&dir.path().join("garbled.key")),
        IdentityError::Key(_)
    );
}

#[test]
fn a_did_key_request_object_verifies() {
    let (identity, _) = did_identity();
    let jws = signed(&identity);
    let header = header_of(&jws);
    assert_eq!(header["typ"], REQUEST_OBJECT_TYP);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], identity.kid().unwrap());
    let payload = check_request_object(&jws, identity.client_id(), &[], NOW).unwrap();
    assert_eq!(payload["nonce"], "n-0S6_WzA2Mj");
}

#[test]
fn x509_request_objects_verify_against_the_anchor() {
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf();
    let [san, hashed] = x509_identities(&ca, &leaf);
    assert_eq!(san.client_id(), format!("x509_san_dns:{DNS}"));
    assert_eq!(hashed.client_id(), format!("x509_hash:{}", hash(&leaf.der)));
    for identity in [&san, &hashed] {
        assert_eq!(identity.alg(), Some("ES256"));
        let jws = signed(identity);
        let header = header_of(&jws);
        assert_eq!(header["typ"], REQUEST_OBJECT_TYP);
        assert_eq!(header["alg"], "ES256");
        // The self-signed anchor is left out: the leaf alone, standard base64.
        let x5c = header["x5c"].as_array().unwrap();
        assert_eq!(x5c.len(), 1);
        assert_eq!(STANDARD.decode(x5c[0].as_str().unwrap()).unwrap(), leaf.der);
        assert!(header.get("kid").is_none());
        let payload = check_request_object(&jws, identity.client_id(), &[ca.der()], NOW).unwrap();
        assert_eq!(payload["client_id"], identity.client_id());
    }
    // x509_hash: the hash pins the leaf when the wallet has no anchors.
    check_request_object(&signed(&hashed), hashed.client_id(), &[], NOW).unwrap();
    // x509_san_dns always needs an anchor.
    refused!(
        check_request_object(&signed(&san), san.client_id(), &[], NOW),
        CheckError::Chain(_)
    );
    // The first dNSName when none is named; a SEC1 key is read too.
    let sec1 = p256::SecretKey::from_pkcs8_pem(&leaf.key_pem)
        .unwrap()
        .to_sec1_pem(LineEnding::LF)
        .unwrap();
    let chain = format!("{}{}", leaf.pem, ca.pem());
    let first = VerifierIdentity::x509(ClientIdPrefix::X509SanDns, &chain, &sec1, None).unwrap();
    assert_eq!(first.client_id(), san.client_id());
}

#[test]
fn an_intermediate_is_sent_and_the_root_is_not() {
    let root = Ca::new("Root");
    let intermediate = root.intermediate("Intermediate");
    let leaf = intermediate.leaf();
    let chain = format!(
        "subject=CN=Verifier\n{}{}{}",
        leaf.pem,
        intermediate.pem(),
        root.pem()
    );
    let identity =
        VerifierIdentity::x509(ClientIdPrefix::X509SanDns, &chain, &leaf.key_pem, Some(DNS))
            .unwrap();
    assert_eq!(identity.x5c().unwrap().len(), 2);
    let jws = signed(&identity);
    check_request_object(&jws, identity.client_id(), &[root.der()], NOW).unwrap();
    // Without the intermediate in x5c the path cannot be built.
    let mut header = header_of(&jws);
    header["x5c"] = json!([identity.x5c().unwrap()[0]]);
    let short = es256(&leaf.key_pem, &header, &claims(identity.client_id()));
    refused!(
        check_request_object(&short, identity.client_id(), &[root.der()], NOW),
        CheckError::Chain(_)
    );
}

#[test]
fn x509_identities_load_from_files() {
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf();
    let dir = tempfile::tempdir().unwrap();
    let chain_file = dir.path().join("chain.pem");
    let key_file = dir.path().join("leaf.key");
    std::fs::write(&chain_file, format!("{}{}", leaf.pem, ca.pem())).unwrap();
    std::fs::write(&key_file, &leaf.key_pem).unwrap();
    let identity =
        VerifierIdentity::x509_from_files(ClientIdPrefix::X509Hash, &chain_file, &key_file, None)
            .unwrap();
    assert_eq!(
        identity.client_id(),
        format!("x509_hash:{}", hash(&leaf.der))
    );
    let missing = dir.path().join("absent.key");
    refused!(
        VerifierIdentity::x509_from_files(ClientIdPrefix::X509Hash, &chain_file, &missing, None),
        IdentityError::Io { .. }
    );
}

#[test]
fn a_tampered_payload_does_not_verify() {
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf();
    let [san, hashed] = x509_identities(&ca, &leaf);
    let (did, _) = did_identity();
    for identity in [&did, &san, &hashed] {
        let jws = signed(identity);
        let mut payload = claims(identity.client_id());
        payload["nonce"] = json!("another nonce");
        assert_eq!(
            check_request_object(
                &with_payload(&jws, &payload),
                identity.client_id(),
                &[ca.der()],
                NOW
            ),
            Err(CheckError::Signature),
            "{}",
            identity.client_id()
        );
    }
}

#[test]
fn the_client_id_must_be_the_one_of_the_request_url() {
    let (did, _) = did_identity();
    let (other, _) = did_identity();
    let jws = signed(&did);
    assert_eq!(
        check_request_object(&jws, other.client_id(), &[], NOW),
        Err(CheckError::ClientIdMismatch)
    );
    let unsigned_claims = json!({"response_type": "vp_token"});
    let no_client_id = did.sign_request_object(&unsigned_claims).unwrap();
    assert_eq!(
        check_request_object(&no_client_id, did.client_id(), &[], NOW),
        Err(CheckError::ClientIdMismatch)
    );
}

#[test]
fn the_typ_and_the_kid_are_checked() {
    let (identity, key) = did_identity();
    let kid = identity.kid().unwrap().to_owned();
    let payload = claims(identity.client_id());
    for typ in [json!("JWT"), json!("oauth-authz-req+JWT"), Value::Null] {
        let jws = key.sign_jws(&json!({"typ": typ, "alg": "EdDSA", "kid": kid}), &payload);
        assert_eq!(
            check_request_object(&jws, identity.client_id(), &[], NOW),
            Err(CheckError::Typ),
            "{typ}"
        );
    }
    let did = identity
        .client_id()
        .strip_prefix("decentralized_identifier:")
        .unwrap();
    for bad_kid in [json!(format!("{did}#key-2")), json!("z6Mk"), Value::Null] {
        let jws = key.sign_jws(
            &json!({"typ": REQUEST_OBJECT_TYP, "alg": "EdDSA", "kid": bad_kid}),
            &payload,
        );
        assert_eq!(
            check_request_object(&jws, identity.client_id(), &[], NOW),
            Err(CheckError::Kid),
            "{bad_kid}"
        );
    }
    // Signed by another key under the right kid.
    let (_, stranger) = did_identity();
    let forged = stranger.sign_jws(
        &json!({"typ": REQUEST_OBJECT_TYP, "alg": "EdDSA", "kid": kid}),
        &payload,
    );
    assert_eq!(
        check_request_object(&forged, identity.client_id(), &[], NOW),
        Err(CheckError::Signature)
    );
    let web = "decentralized_identifier:did:web:verifier.example";
    let jws = key.sign_jws(
        &json!({"typ": REQUEST_OBJECT_TYP, "alg": "EdDSA", "kid": format!("{}#k", web.strip_prefix("decentralized_identifier:").unwrap())}),
        &claims(web),
    );
    assert_eq!(
        check_request_object(&jws, web, &[], NOW),
        Err(CheckError::UnsupportedDidMethod)
    );
}

#[test]
fn another_ca_as_anchor_or_an_expired_chain_fails_the_chain() {
    let ca = Ca::new("Test CA");
    let other = Ca::new("Other CA");
    let leaf = ca.leaf();
    for identity in x509_identities(&ca, &leaf) {
        let jws = signed(&identity);
        refused!(
            check_request_object(&jws, identity.client_id(), &[other.der()], NOW),
            CheckError::Chain(_)
        );
    }
    // A leaf issued by the other CA but claiming to be from ours.
    let impostor = other.leaf();
    let [san, _] = x509_identities(&other, &impostor);
    refused!(
        check_request_object(&signed(&san), san.client_id(), &[ca.der()], NOW),
        CheckError::Chain(_)
    );
    // After rcgen's default notAfter (year 4096); exp kept ahead of it.
    let late = 80_000_000_000;
    let mut payload = claims(san.client_id());
    payload["exp"] = json!(late + 300);
    let jws = san.sign_request_object(&payload).unwrap();
    refused!(
        check_request_object(&jws, san.client_id(), &[other.der()], late),
        CheckError::Chain(_)
    );
}

#[test]
fn the_claimed_name_or_hash_must_be_the_leafs() {
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf();
    let [san, hashed] = x509_identities(&ca, &leaf);
    // Properly signed by the leaf, claiming a name or hash not its own.
    let other_hash = format!("x509_hash:{}", hash(&ca.leaf().der));
    for (identity, claimed, expected) in [
        (&san, "x509_san_dns:other.example", CheckError::SanMismatch),
        (&hashed, other_hash.as_str(), CheckError::HashMismatch),
    ] {
        let jws = identity.sign_request_object(&claims(claimed)).unwrap();
        let checked = check_request_object(&jws, claimed, &[ca.der()], NOW);
        assert_eq!(checked, Err(expected));
    }
    // A SAN is compared case-insensitively.
    let upper = "x509_san_dns:VERIFIER.example";
    let jws = san.sign_request_object(&claims(upper)).unwrap();
    check_request_object(&jws, upper, &[ca.der()], NOW).unwrap();
}

#[test]
fn x5c_must_be_present_and_certificates() {
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf();
    let [san, hashed] = x509_identities(&ca, &leaf);
    for identity in [&san, &hashed] {
        let payload = claims(identity.client_id());
        for (x5c, expected) in [
            (None, CheckError::NoX5c),
            (Some(json!([])), CheckError::NoX5c),
            (Some(json!(["not base64!"])), CheckError::BadX5c),
            (
                Some(json!([STANDARD.encode(b"not DER")])),
                CheckError::BadX5c,
            ),
            (Some(json!("a string")), CheckError::BadX5c),
        ] {
            let mut header = json!({"typ": REQUEST_OBJECT_TYP, "alg": "ES256"});
            if let Some(x5c) = x5c {
                header["x5c"] = x5c;
            }
            let jws = es256(&leaf.key_pem, &header, &payload);
            assert_eq!(
                check_request_object(&jws, identity.client_id(), &[ca.der()], NOW),
                Err(expected)
            );
        }
    }
    // An Ed25519 leaf cannot sign ES256 request objects.
    let ed_leaf = ca.leaf_with(&[DNS], &PKCS_ED25519);
    let header = json!({"typ": REQUEST_OBJECT_TYP, "alg": "ES256",
        "x5c": [STANDARD.encode(&ed_leaf.der)]});
    let jws = es256(&leaf.key_pem, &header, &claims(san.client_id()));
    assert_eq!(
        check_request_object(&jws, san.client_id(), &[ca.der()], NOW),
        Err(CheckError::UnsupportedKey)
    );
}

#[test]
fn redirect_uri_does_not_sign_and_is_not_accepted_signed() {
    let identity = VerifierIdentity::redirect_uri("https://verifier.example/oid4vp/response");
    assert_eq!(
        identity.client_id(),
        "redirect_uri:https://verifier.example/oid4vp/response"
    );
    assert_eq!(identity.prefix(), ClientIdPrefix::RedirectUri);
    assert_eq!(identity.alg(), None);
    assert_eq!(identity.sign_request_object(&json!({})), None);
    let (_, key) = did_identity();
    let jws = key.sign_jws(
        &json!({"typ": REQUEST_OBJECT_TYP, "alg": "EdDSA"}),
        &claims(identity.client_id()),
    );
    assert_eq!(
        check_request_object(&jws, identity.client_id(), &[], NOW),
        Err(CheckError::UnsupportedPrefix)
    );
    let plain = key.sign_jws(
        &json!({"typ": REQUEST_OBJECT_TYP, "alg": "EdDSA"}),
        &claims("verifier"),
    );
    assert_eq!(
        check_request_object(&plain, "verifier", &[], NOW),
        Err(CheckError::UnsupportedPrefix)
    );
}

#[test]
fn malformed_and_expired_request_objects_are_refused() {
    let (identity, _) = did_identity();
    for bad in ["", "a.b", "not.a.jws", "a.b.c.d"] {
        assert_eq!(
            check_request_object(bad, identity.client_id(), &[], NOW),
            Err(CheckError::Malformed),
            "{bad}"
        );
    }
    let jws = signed(&identity);
    assert_eq!(
        check_request_object(&jws, identity.client_id(), &[], NOW + 300),
        Err(CheckError::Expired)
    );
    let mut payload = claims(identity.client_id());
    payload["exp"] = json!("soon");
    let jws = identity.sign_request_object(&payload).unwrap();
    assert_eq!(
        check_request_object(&jws, identity.client_id(), &[], NOW),
        Err(CheckError::Malformed)
    );
}

#[test]
fn loading_an_x509_identity_checks_key_and_names() {
    use ClientIdPrefix::{DecentralizedIdentifier as Did, X509Hash as Hash, X509SanDns as San};
    use IdentityError as E;
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf();
    let chain = &format!("{}{}", leaf.pem, ca.pem());
    let key = leaf.key_pem.as_str();
    let other_key = &ca.leaf().key_pem;
    let garbled = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    // A leaf with only an IP address SAN has no name for x509_san_dns (its
    // hash still names it); an Ed25519 leaf is not an ES256 identity.
    let ip = &ca.leaf_with(&["192.0.2.1"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let ed = &ca.leaf_with(&[DNS], &PKCS_ED25519);
    let cases: [(_, &str, &str, _, E); 9] = [
        (San, chain, other_key, Some(DNS), E::KeyMismatch),
        (Hash, chain, other_key, None, E::KeyMismatch),
        (
            San,
            chain,
            key,
            Some("x.example"),
            E::DnsNameNotInCertificate(String::new()),
        ),
        (San, chain, "not a key", Some(DNS), E::PrivateKey),
        (Did, chain, key, None, E::NotX509Prefix(Did)),
        (Hash, "no certificates here", key, None, E::EmptyChain),
        (Hash, garbled, key, None, E::Certificate(String::new())),
        (San, &ip.pem, &ip.key_pem, None, E::NoDnsName),
        (San, &ed.pem, key, Some(DNS), E::NotP256),
    ];
    for (prefix, chain, key, dns, expected) in cases {
        let error = VerifierIdentity::x509(prefix, chain, key, dns).unwrap_err();
        assert_eq!(discriminant(&error), discriminant(&expected), "{error:?}");
    }
    assert!(VerifierIdentity::x509(Hash, &ip.pem, &ip.key_pem, None).is_ok());
}

#[test]
fn debug_shows_no_key_material() {
    fn shared_across_tasks<T: Send + Sync>() {}
    shared_across_tasks::<VerifierIdentity>();
    let ca = Ca::new("Test CA");
    let leaf = ca.leaf();
    let [san, _] = x509_identities(&ca, &leaf);
    let key = ServiceKey::generate().unwrap();
    let pem = key.to_pem().unwrap();
    let did = VerifierIdentity::did_key(key);
    let secret_lines = |pem: &str| -> Vec<String> {
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::to_owned)
            .collect()
    };
    for (identity, pem) in [(&did, pem.as_str()), (&san, leaf.key_pem.as_str())] {
        let shown = format!("{identity:?}");
        assert!(shown.contains(identity.client_id()), "{shown}");
        assert!(!shown.contains("PRIVATE"), "{shown}");
        for line in secret_lines(pem) {
            assert!(!shown.contains(&line), "{shown}");
        }
    }
}
