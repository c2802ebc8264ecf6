//! The verifier's identity towards wallets: its `client_id` (OpenID4VP 1.0
//! §5.9, Client Identifier Prefixes) and the key that signs its request
//! objects (RFC 9101 JAR, `typ: oauth-authz-req+jwt`).
//!
//! - `decentralized_identifier:did:key:z6Mk…`: the verifier's own Ed25519
//!   key, in a PKCS#8 PEM file of its own (0600, created on first start;
//!   not the service's log signing key). Signed with `EdDSA`, `kid` the DID
//!   URL `<did>#<multibase>`.
//! - `x509_san_dns:<dns name>`: a certificate chain whose leaf has the name
//!   as a SAN dNSName, and the leaf's P-256 key. Signed with `ES256`, the
//!   chain in `x5c` (leaf first, the trust anchor left out, as HAIP says).
//! - `x509_hash:<base64url SHA-256 of the leaf's DER>` (HAIP): the same,
//!   named by the leaf's hash.
//! - `redirect_uri:<response_uri>`: development only; requests are passed
//!   by value, unsigned.
//!
//! [`check_request_object`] is the other side: what a wallet checks.

mod check;
mod x509;

use std::fmt;
use std::path::Path;

use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::DecodePrivateKey;
use proofline_domain::did::Did;
use proofline_domain::jose;
use serde_json::{Value, json};

pub use check::{CheckError, check_request_object};

use crate::keys::KeyError;
use crate::secret_file;
use crate::signing::{self, ServiceKey};

/// The JOSE `typ` of a request object (RFC 9101 §10.8).
pub const REQUEST_OBJECT_TYP: &str = "oauth-authz-req+jwt";

/// The Client Identifier Prefixes Proofline speaks (OpenID4VP 1.0 §5.9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIdPrefix {
    DecentralizedIdentifier,
    X509SanDns,
    X509Hash,
    RedirectUri,
}

impl ClientIdPrefix {
    pub const ALL: [ClientIdPrefix; 4] = [
        ClientIdPrefix::DecentralizedIdentifier,
        ClientIdPrefix::X509SanDns,
        ClientIdPrefix::X509Hash,
        ClientIdPrefix::RedirectUri,
    ];

    /// The prefix as written before the `:` of a `client_id`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientIdPrefix::DecentralizedIdentifier => "decentralized_identifier",
            ClientIdPrefix::X509SanDns => "x509_san_dns",
            ClientIdPrefix::X509Hash => "x509_hash",
            ClientIdPrefix::RedirectUri => "redirect_uri",
        }
    }

    /// The prefix of a `client_id` (`<prefix>:<value>`, the value not
    /// empty); `None` for one without a prefix (pre-registered) or with
    /// another prefix.
    pub fn of(client_id: &str) -> Option<Self> {
        let (prefix, value) = client_id.split_once(':')?;
        if value.is_empty() {
            return None;
        }
        Self::ALL.into_iter().find(|p| p.as_str() == prefix)
    }

    /// Whether request objects of this prefix are signed.
    pub fn is_signed(self) -> bool {
        self != ClientIdPrefix::RedirectUri
    }
}

impl fmt::Display for ClientIdPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The did:key identity's key file (as for the service's signing key).
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} is not an X.509 client id prefix (x509_san_dns, x509_hash)")]
    NotX509Prefix(ClientIdPrefix),
    #[error("the certificate chain holds no PEM certificate")]
    EmptyChain,
    #[error("the certificate chain cannot be read: {0}")]
    Certificate(String),
    #[error("the private key is not a P-256 PKCS#8 (or SEC1) PEM key")]
    PrivateKey,
    #[error("the leaf certificate's public key is not an EC P-256 key (ES256)")]
    NotP256,
    #[error("the private key does not match the leaf certificate's public key")]
    KeyMismatch,
    #[error("the leaf certificate has no subjectAltName dNSName")]
    NoDnsName,
    #[error("{0} is not a subjectAltName dNSName of the leaf certificate")]
    DnsNameNotInCertificate(String),
}

/// Who the verifier is to wallets, and what signs its request objects.
/// Its `Debug` shows the `client_id` and never key material.
pub struct VerifierIdentity {
    client_id: String,
    prefix: ClientIdPrefix,
    signer: RequestSigner,
}

enum RequestSigner {
    DidKey {
        key: ServiceKey,
        kid: String,
    },
    X509 {
        key: p256::ecdsa::SigningKey,
        x5c: Vec<String>,
    },
    Unsigned,
}

impl fmt::Debug for VerifierIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("VerifierIdentity");
        out.field("client_id", &self.client_id);
        match &self.signer {
            RequestSigner::DidKey { kid, .. } => out.field("kid", kid),
            RequestSigner::X509 { x5c, .. } => out.field("x5c_certificates", &x5c.len()),
            RequestSigner::Unsigned => out.field("signed", &false),
        };
        out.finish_non_exhaustive()
    }
}

impl VerifierIdentity {
    /// The verifier's own Ed25519 key file (PKCS#8 PEM, 0600, created on
    /// first start if absent; a file of its own, not the service's log
    /// signing key): `client_id` `decentralized_identifier:did:key:z6Mk…`.
    /// True in the second element when this call created the file.
    pub fn did_key_from_file(path: &Path) -> Result<(Self, bool), IdentityError> {
        let (key, created) = signing::load_or_create(path)?;
        Ok((Self::did_key(key), created))
    }

    /// `decentralized_identifier:<did:key of key>`, `kid` `<did>#<multibase>`.
    pub fn did_key(key: ServiceKey) -> Self {
        let did = Did::from_ed25519(&key.verifying_key());
        let multibase = did.did_key_multibase().unwrap_or_default();
        let kid = format!("{did}#{multibase}");
        Self {
            client_id: format!("{}:{did}", ClientIdPrefix::DecentralizedIdentifier),
            prefix: ClientIdPrefix::DecentralizedIdentifier,
            signer: RequestSigner::DidKey { key, kid },
        }
    }

    /// An X.509 identity from a PEM chain (leaf first; a self-issued last
    /// certificate, the trust anchor, is left out of `x5c`) and the leaf's
    /// P-256 private key (PKCS#8 PEM; SEC1 `EC PRIVATE KEY` is accepted too).
    ///
    /// - `x509_san_dns`: `client_id` `x509_san_dns:<dns_name>`, which must be
    ///   a SAN dNSName of the leaf; without `dns_name`, the leaf's first
    ///   dNSName that is not a wildcard.
    /// - `x509_hash`: `client_id` `x509_hash:<base64url SHA-256 of the leaf's
    ///   DER>`; `dns_name` is not used.
    ///
    /// The chain itself is not validated here (the wallet does that against
    /// its own trust anchors).
    pub fn x509(
        prefix: ClientIdPrefix,
        chain_pem: &str,
        key_pem: &str,
        dns_name: Option<&str>,
    ) -> Result<Self, IdentityError> {
        if !matches!(
            prefix,
            ClientIdPrefix::X509SanDns | ClientIdPrefix::X509Hash
        ) {
            return Err(IdentityError::NotX509Prefix(prefix));
        }
        let chain = x509::pem_chain(chain_pem).map_err(IdentityError::Certificate)?;
        let leaf = chain.first().ok_or(IdentityError::EmptyChain)?;
        let leaf_key = leaf.p256_key().ok_or(IdentityError::NotP256)?;
        let key = p256_private_key(key_pem)?;
        if *key.verifying_key() != leaf_key {
            return Err(IdentityError::KeyMismatch);
        }
        let value = match prefix {
            ClientIdPrefix::X509SanDns => match dns_name {
                Some(name) => {
                    if !leaf
                        .has_dns_name(name)
                        .map_err(IdentityError::Certificate)?
                    {
                        return Err(IdentityError::DnsNameNotInCertificate(name.to_owned()));
                    }
                    name.to_owned()
                }
                None => leaf
                    .dns_names()
                    .map_err(IdentityError::Certificate)?
                    .into_iter()
                    .find(|name| !name.starts_with('*'))
                    .ok_or(IdentityError::NoDnsName)?,
            },
            _ => x509::hash_of(&leaf.der),
        };
        Ok(Self {
            client_id: format!("{prefix}:{value}"),
            prefix,
            signer: RequestSigner::X509 {
                key,
                x5c: x509::x5c_of(&chain),
            },
        })
    }

    /// [`VerifierIdentity::x509`] with the chain and the key read from
    /// files (the key file as a secret file: a warning when others may read
    /// it).
    pub fn x509_from_files(
        prefix: ClientIdPrefix,
        chain_file: &Path,
        key_file: &Path,
        dns_name: Option<&str>,
    ) -> Result<Self, IdentityError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| IdentityError::Io { path, source }
        };
        let chain = std::fs::read_to_string(chain_file).map_err(io(chain_file))?;
        let key = secret_file::read(key_file)
            .map_err(io(key_file))?
            .ok_or_else(|| io(key_file)(std::io::ErrorKind::NotFound.into()))?;
        Self::x509(prefix, &chain, &key, dns_name)
    }

    /// `redirect_uri:<response_uri>` (development only; unsigned requests
    /// by value).
    pub fn redirect_uri(response_uri: &str) -> Self {
        Self {
            client_id: format!("{}:{response_uri}", ClientIdPrefix::RedirectUri),
            prefix: ClientIdPrefix::RedirectUri,
            signer: RequestSigner::Unsigned,
        }
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn prefix(&self) -> ClientIdPrefix {
        self.prefix
    }

    /// The `alg` it signs request objects with; `None` for `redirect_uri`.
    pub fn alg(&self) -> Option<&'static str> {
        match self.signer {
            RequestSigner::DidKey { .. } => Some("EdDSA"),
            RequestSigner::X509 { .. } => Some("ES256"),
            RequestSigner::Unsigned => None,
        }
    }

    /// The `kid` of a did:key identity (`<did>#<multibase>`).
    pub fn kid(&self) -> Option<&str> {
        match &self.signer {
            RequestSigner::DidKey { kid, .. } => Some(kid),
            _ => None,
        }
    }

    /// The `x5c` of an X.509 identity: standard base64 DER, leaf first.
    pub fn x5c(&self) -> Option<&[String]> {
        match &self.signer {
            RequestSigner::X509 { x5c, .. } => Some(x5c),
            _ => None,
        }
    }

    /// A compact JWS of `claims`: header `{"typ":"oauth-authz-req+jwt",
    /// "alg":"EdDSA","kid":…}` (did:key) or `{"typ":…,"alg":"ES256",
    /// "x5c":[…]}` (X.509; the signature is r || s, low-s). `None` for
    /// `redirect_uri`.
    pub fn sign_request_object(&self, claims: &Value) -> Option<String> {
        match &self.signer {
            RequestSigner::DidKey { key, kid } => Some(key.sign_jws(
                &json!({"typ": REQUEST_OBJECT_TYP, "alg": "EdDSA", "kid": kid}),
                claims,
            )),
            RequestSigner::X509 { key, x5c } => {
                let header = json!({"typ": REQUEST_OBJECT_TYP, "alg": "ES256", "x5c": x5c});
                Some(jose::sign_compact(&header, claims, |input| {
                    let signature: p256::ecdsa::Signature = key.sign(input);
                    signature.normalize_s().to_bytes().to_vec()
                }))
            }
            RequestSigner::Unsigned => None,
        }
    }
}

/// A P-256 private key from PKCS#8 PEM (`PRIVATE KEY`) or SEC1 PEM
/// (`EC PRIVATE KEY`, as `openssl ecparam -genkey` writes).
fn p256_private_key(pem: &str) -> Result<p256::ecdsa::SigningKey, IdentityError> {
    if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
        return Ok(key);
    }
    p256::SecretKey::from_sec1_pem(pem)
        .map(p256::ecdsa::SigningKey::from)
        .map_err(|_| IdentityError::PrivateKey)
}
