//! Where an issuer's keys may come from, as the operator allows it on
//! registration (`key_sources`), and the key sets Proofline resolved from
//! the documents the issuer publishes.

use serde::{Deserialize, Serialize};

use super::{Issuer, IssuerError, IssuerKey, Kid, RegisteredKey};
use crate::did::Did;
use crate::jose::Jwk;
use crate::log::Timestamp;

/// A source of an issuer's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// Keys the operator registered (and a did:key's own key).
    Registered,
    /// The DID document: did:web (did:key carries its key itself).
    Did,
    /// SD-JWT VC issuer metadata at `/.well-known/jwt-vc-issuer`, its
    /// `jwks` or `jwks_uri`.
    Metadata,
    /// The credential's `x5c` chain, to a trust anchor the operator
    /// registered.
    X5c,
}

impl KeySource {
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Registered => "registered",
            KeySource::Did => "did",
            KeySource::Metadata => "metadata",
            KeySource::X5c => "x5c",
        }
    }

    /// Whether Proofline fetches keys from this source.
    pub fn is_fetched(self) -> bool {
        matches!(self, KeySource::Did | KeySource::Metadata)
    }
}

/// What an issuer registered without `key_sources` allows.
pub const DEFAULT_KEY_SOURCES: [KeySource; 2] = [KeySource::Registered, KeySource::Did];

/// The sources of an issuer as registered: `None` means the default.
pub fn effective(sources: Option<&[KeySource]>) -> Vec<KeySource> {
    sources.map_or_else(|| DEFAULT_KEY_SOURCES.to_vec(), <[KeySource]>::to_vec)
}

/// Whether `source` can give keys to `did` at all.
pub fn applies(source: KeySource, did: &Did) -> bool {
    match source {
        KeySource::Registered => true,
        KeySource::Did => did.method() == "web" || did.is_did_key(),
        KeySource::Metadata | KeySource::X5c => did.is_url(),
    }
}

/// The rules of a registration's sources: listed once each; operator keys
/// only with `registered`; without keys, a source that gives keys to this
/// identifier.
pub(super) fn check(
    did: &Did,
    sources: Option<&[KeySource]>,
    keys_given: bool,
) -> Result<(), IssuerError> {
    if let Some(sources) = sources {
        if sources.is_empty() {
            return Err(IssuerError::NoKeySource);
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = sources.iter().find(|s| !seen.insert(**s)) {
            return Err(IssuerError::DuplicateKeySource(twice.as_str().to_owned()));
        }
    }
    let sources = effective(sources);
    if keys_given && !sources.contains(&KeySource::Registered) {
        return Err(IssuerError::KeysWithoutRegisteredSource);
    }
    if did.is_did_key() {
        return Ok(());
    }
    if !keys_given
        && !sources
            .iter()
            .any(|s| *s != KeySource::Registered && applies(*s, did))
    {
        return Err(IssuerError::NoKeys);
    }
    Ok(())
}

/// The keys one source gave, as last resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedSet {
    pub source: KeySource,
    /// The document the keys were read from.
    pub source_url: String,
    /// Hex SHA-256 of that document, as fetched.
    pub document_sha256: String,
    pub keys: Vec<IssuerKey>,
    pub resolved_at: Timestamp,
    /// The issuer stream's version at the `IssuerKeysResolved` event.
    pub version: u64,
}

impl ResolvedSet {
    /// Whether `keys` are the keys of this set (same kids, same keys).
    pub fn has_the_keys(&self, keys: &[RegisteredKey]) -> bool {
        self.keys.len() == keys.len()
            && keys.iter().all(|k| {
                self.keys
                    .iter()
                    .any(|mine| mine.kid == k.kid && mine.jwk == k.jwk)
            })
    }
}

/// A key as the issuer state holds it; `None` when its JWK is not a key
/// (checked before any event is decided, so only an old log has one).
pub(super) fn key_from(
    kid: &Kid,
    jwk: &Jwk,
    added_at: Timestamp,
    source: KeySource,
) -> Option<IssuerKey> {
    jwk.public_key().ok().map(|key| IssuerKey {
        kid: kid.clone(),
        jwk: jwk.clone(),
        key,
        source,
        added_at,
        retired_at: None,
        revoked_at: None,
    })
}

impl Issuer {
    /// The key sources this issuer allows that Proofline fetches, and that
    /// apply to its identifier.
    pub fn fetched_sources(&self) -> impl Iterator<Item = KeySource> + '_ {
        self.key_sources
            .iter()
            .copied()
            .filter(|s| s.is_fetched() && applies(*s, &self.did) && !self.did.is_did_key())
    }

    /// The last key set `source` gave.
    pub fn resolved_by(&self, source: KeySource) -> Option<&ResolvedSet> {
        self.resolved.iter().find(|set| set.source == source)
    }
}
