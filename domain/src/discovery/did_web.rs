//! did:web: where a DID's document is, and the keys it lists for issuing.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};
use url::{Host, Url};

use super::{DiscoveryError, Document, Refusal, checked_count, list, read_jwk, required_str};
use crate::did::Did;
use crate::issuer::{Kid, RegisteredKey};
use crate::jose::{Jwk, PublicKey, b64url_encode};

/// Longest `publicKeyMultibase`: a P-256 key takes 48 characters.
const MAX_MULTIBASE_LEN: usize = 128;

/// The URL of a did:web DID's document. The host may carry a port, its
/// colon percent-encoded (`%3A`), since a bare colon separates path
/// segments; each further segment becomes a path segment, the document then
/// being `did.json` there instead of under `/.well-known/`. Anything that
/// would make the URL name another host or path than the DID says (a
/// dot segment, an encoded slash, an IP address, a malformed host) is
/// refused.
pub fn did_web_url(did: &Did) -> Result<String, DiscoveryError> {
    let refuse = |reason: String| DiscoveryError::DidWebUrl {
        did: did.to_string(),
        reason,
    };
    let id = did
        .as_str()
        .strip_prefix("did:web:")
        .ok_or_else(|| DiscoveryError::NotDidWeb(did.to_string()))?;
    let mut parts = id.split(':');
    let (host, port) = host_and_port(parts.next().unwrap_or_default()).map_err(refuse)?;
    let segments: Vec<&str> = parts.collect();
    let mut path = String::new();
    for segment in &segments {
        check_segment(segment).map_err(refuse)?;
        path.push('/');
        path.push_str(segment);
    }
    path.push_str(if segments.is_empty() {
        "/.well-known/did.json"
    } else {
        "/did.json"
    });
    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
    let url = Url::parse(&format!("https://{host}{port}{path}"))
        .map_err(|e| refuse(format!("not a URL ({e})")))?;
    match url.host() {
        Some(Host::Domain(domain)) if domain == host.to_ascii_lowercase() => {}
        Some(Host::Ipv4(_) | Host::Ipv6(_)) => {
            return Err(refuse("did:web names a domain, not an IP address".into()));
        }
        _ => return Err(refuse(format!("{host:?} is not a valid host"))),
    }
    if url.path() != path {
        return Err(refuse("the path would not be read as written".into()));
    }
    Ok(url.into())
}

/// The host and port of a did:web DID's first part, in which only `%3A`
/// (the port's colon) may be percent-encoded.
fn host_and_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let mut decoded = String::new();
    let mut rest = authority;
    while let Some(at) = rest.find('%') {
        decoded.push_str(&rest[..at]);
        let code = rest.get(at..at + 3).unwrap_or_default();
        if !code.eq_ignore_ascii_case("%3A") {
            return Err("only %3A (a port's colon) may be percent-encoded in the host".into());
        }
        decoded.push(':');
        rest = &rest[at + 3..];
    }
    decoded.push_str(rest);
    let (host, port) = match decoded.split_once(':') {
        None => (decoded.as_str(), None),
        Some((host, port)) => {
            let number =
                (!port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| port.parse::<u16>().ok())
                    .flatten()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| format!("{port:?} is not a port"))?;
            (host, Some(number))
        }
    };
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(format!(
            "{host:?} is not a host name (labels of letters, digits and hyphens)"
        ));
    }
    Ok((host.to_owned(), port))
}

/// A did:web path segment: unreserved characters or percent-encoded
/// octets, and nothing that decodes to a dot segment, a slash or a control
/// character, which would move the document elsewhere.
fn check_segment(segment: &str) -> Result<(), String> {
    if segment.is_empty() {
        return Err("a path segment is empty".into());
    }
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'%' => {
                let octet = bytes
                    .get(at + 1..at + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| hex::decode(h).ok())
                    .ok_or_else(|| format!("{segment:?} has a malformed percent-encoding"))?;
                decoded.extend(octet);
                at += 3;
            }
            b if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => {
                decoded.push(b);
                at += 1;
            }
            _ => return Err(format!("{segment:?} has characters a path segment may not")),
        }
    }
    if decoded == b"." || decoded == b".." {
        return Err("a path segment may not be . or ..".into());
    }
    if decoded
        .iter()
        .any(|&b| b == b'/' || b == b'\\' || b.is_ascii_control())
    {
        return Err(format!(
            "{segment:?} encodes a slash or a control character"
        ));
    }
    Ok(())
}

/// The verification method types whose keys are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MethodType {
    /// `JsonWebKey2020`, or `JsonWebKey` (its name in Controlled
    /// Identifiers 1.0): the key is `publicKeyJwk`.
    JsonWebKey,
    /// `Multikey`: the key is `publicKeyMultibase`.
    Multikey,
}

impl MethodType {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "JsonWebKey2020" | "JsonWebKey" => Some(MethodType::JsonWebKey),
            "Multikey" => Some(MethodType::Multikey),
            _ => None,
        }
    }
}

/// The multicodec key types read from a Multikey, by their varint prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Multicodec {
    /// `ed25519-pub` (0xed): the 32-byte public key.
    Ed25519Pub,
    /// `p256-pub` (0x1200): the 33-byte compressed point.
    P256Pub,
}

impl Multicodec {
    /// The key type and the key's bytes, or `None` for another codec.
    fn split(bytes: &[u8]) -> Option<(Self, &[u8])> {
        if let Some(key) = bytes.strip_prefix(&[0xed, 0x01]) {
            Some((Multicodec::Ed25519Pub, key))
        } else {
            bytes
                .strip_prefix(&[0x80, 0x24])
                .map(|key| (Multicodec::P256Pub, key))
        }
    }
}

/// The key of a Multikey's `publicKeyMultibase`: `z` (base58btc) and a
/// multicodec-prefixed key; `None` for a codec other than Ed25519 and P-256.
fn read_multibase(multibase: &str) -> Result<Option<PublicKey>, String> {
    if multibase.len() > MAX_MULTIBASE_LEN {
        return Err("publicKeyMultibase is too long for a public key".into());
    }
    let encoded = multibase
        .strip_prefix('z')
        .ok_or("publicKeyMultibase must be base58btc (starting with z)")?;
    let bytes = bs58::decode(encoded)
        .into_vec()
        .map_err(|_| "publicKeyMultibase is not valid base58btc")?;
    match Multicodec::split(&bytes) {
        None => Ok(None),
        Some((Multicodec::Ed25519Pub, key)) => {
            let jwk = Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: b64url_encode(key),
                y: None,
            };
            jwk.public_key().map(Some).map_err(|e| e.to_string())
        }
        Some((Multicodec::P256Pub, key)) => {
            if key.len() != 33 || !matches!(key[0], 0x02 | 0x03) {
                return Err("a P-256 Multikey is a 33-byte compressed point".into());
            }
            p256::ecdsa::VerifyingKey::from_sec1_bytes(key)
                .map(|key| Some(PublicKey::P256(key)))
                .map_err(|_| "publicKeyMultibase is not a point on P-256".into())
        }
    }
}

/// The fragment a DID URL names within `did`: `#key-1` and
/// `<did>#key-1` both name `key-1`; anything else names nothing here.
fn fragment_in<'r>(did: &Did, reference: &'r str) -> Option<&'r str> {
    let relative = reference.strip_prefix(did.as_str()).unwrap_or(reference);
    relative.strip_prefix('#').filter(|f| !f.is_empty())
}

/// The fragment of a verification method's `id`, which must be within the
/// DID.
fn method_fragment<'m>(
    did: &Did,
    method: &'m Map<String, Value>,
) -> Result<&'m str, DiscoveryError> {
    let id = match method.get("id") {
        Some(Value::String(id)) => id.as_str(),
        _ => {
            return Err(DiscoveryError::InvalidMethod {
                id: "without an id".into(),
                reason: "a verification method needs a string id".into(),
            });
        }
    };
    fragment_in(did, id).ok_or_else(|| {
        if id.starts_with("did:") {
            DiscoveryError::ForeignMethod(id.to_owned())
        } else {
            DiscoveryError::InvalidMethod {
                id: id.to_owned(),
                reason: format!("its id must be {did}#<fragment> or #<fragment>"),
            }
        }
    })
}

/// The key of a verification method, if of a type that is read, under the
/// absolute kid `<did>#<fragment>`.
fn key_of_method(
    did: &Did,
    fragment: &str,
    method: &Map<String, Value>,
) -> Result<Option<RegisteredKey>, DiscoveryError> {
    let id = format!("{did}#{fragment}");
    let invalid = |reason: String| DiscoveryError::InvalidMethod {
        id: id.clone(),
        reason,
    };
    if let Some(controller) = method.get("controller")
        && controller.as_str() != Some(did.as_str())
    {
        return Err(DiscoveryError::ControllerMismatch {
            id,
            controller: controller.to_string(),
        });
    }
    let kind = method
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("it has no type".into()))?;
    let (jwk, multibase) = (method.get("publicKeyJwk"), method.get("publicKeyMultibase"));
    if jwk.is_some() && multibase.is_some() {
        return Err(invalid(
            "it has both publicKeyJwk and publicKeyMultibase".into(),
        ));
    }
    let jwk = match MethodType::parse(kind) {
        None => return Ok(None),
        Some(MethodType::JsonWebKey) => {
            let value = jwk.ok_or_else(|| invalid(format!("a {kind} needs publicKeyJwk")))?;
            match read_jwk(value) {
                Ok(jwk) => jwk,
                Err(Refusal::Private) => return Err(DiscoveryError::PrivateKey(id)),
                Err(Refusal::Invalid(reason)) => return Err(invalid(reason)),
            }
        }
        Some(MethodType::Multikey) => {
            let text = multibase
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("a Multikey needs a string publicKeyMultibase".into()))?;
            read_multibase(text)
                .map_err(invalid)?
                .map(|key| key.to_jwk())
        }
    };
    let Some(jwk) = jwk else {
        return Ok(None);
    };
    let kid = Kid::parse(&id).map_err(|e| invalid(e.to_string()))?;
    Ok(Some(RegisteredKey { kid, jwk }))
}

/// The keys a DID document lists for issuing (`assertionMethod`), each by
/// reference to an entry of `verificationMethod` or embedded, under the
/// absolute kid `<did>#<fragment>`. The document must be the DID's own, and
/// its methods controlled by the DID.
pub fn keys_of_did_document(
    did: &Did,
    document: &Value,
) -> Result<Vec<RegisteredKey>, DiscoveryError> {
    const DOC: Document = Document::DidDocument;
    let object = document
        .as_object()
        .ok_or(DiscoveryError::NotAnObject(DOC))?;
    let id = required_str(object, DOC, "id")?;
    if id != did.as_str() {
        return Err(DiscoveryError::IdMismatch {
            expected: did.to_string(),
            found: id.to_owned(),
        });
    }
    let mut methods: HashMap<&str, &Map<String, Value>> = HashMap::new();
    for entry in list(object, DOC, "verificationMethod")? {
        let method = entry
            .as_object()
            .ok_or_else(|| DiscoveryError::InvalidMethod {
                id: "in verificationMethod".into(),
                reason: "not a JSON object".into(),
            })?;
        let fragment = method_fragment(did, method)?;
        if methods.insert(fragment, method).is_some() {
            return Err(DiscoveryError::DuplicateId(format!("{did}#{fragment}")));
        }
    }
    let mut listed = HashSet::new();
    let mut keys = Vec::new();
    for entry in list(object, DOC, "assertionMethod")? {
        let (fragment, method) = match entry {
            Value::String(reference) => {
                let unknown = || DiscoveryError::UnknownReference(reference.clone());
                let fragment = fragment_in(did, reference).ok_or_else(unknown)?;
                (fragment, *methods.get(fragment).ok_or_else(unknown)?)
            }
            Value::Object(method) => {
                let fragment = method_fragment(did, method)?;
                if methods.contains_key(fragment) {
                    return Err(DiscoveryError::DuplicateId(format!("{did}#{fragment}")));
                }
                (fragment, method)
            }
            _ => {
                return Err(DiscoveryError::Invalid {
                    document: DOC,
                    member: "assertionMethod",
                    reason: "each entry is a reference or a verification method".into(),
                });
            }
        };
        if !listed.insert(fragment) {
            return Err(DiscoveryError::DuplicateId(format!("{did}#{fragment}")));
        }
        keys.extend(key_of_method(did, fragment, method)?);
    }
    checked_count(keys)
}
