//! The Issuer aggregate: the trust registry's entries.
//!
//! An issuer is known by its DID. A did:key issuer has exactly the key its
//! DID carries; any other DID lists its keys as JWKs under key ids. Keys are
//! added, retired and revoked, never removed or reused: a retired key still
//! verifies credentials issued before its retirement, never one issued
//! after; a revoked key (stolen, say, so that a thief could date a
//! credential as they like) verifies nothing at all. An issuer may restrict
//! the credential types (`vct`) it is trusted for, and may be suspended and
//! reinstated.
//!
//! A JWT names its key by `kid` as registered, as an absolute DID URL
//! (`<did>#<kid>`) or a relative one (`#<kid>`), or, when the DID has a
//! single key, by the bare DID. Kids that would name the same key in
//! these forms (`key-1` and `<did>#key-1`) cannot both be registered.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::decider::{Decider, EventSchema, Rejection, RejectionKind};
use crate::did::{Did, encode_ed25519_multibase};
use crate::ids::{Category, StreamId};
use crate::jose::{Jwk, PublicKey};
use crate::log::Timestamp;
use crate::values::{InvalidValue, Name};

mod sources;

pub use sources::{DEFAULT_KEY_SOURCES, KeySource, ResolvedSet, effective as sources_of};

/// Most keys one issuer may have registered, retired ones included.
pub const MAX_KEYS: usize = 32;
/// Most credential types one issuer may be restricted to.
pub const MAX_CREDENTIAL_TYPES: usize = 64;

/// An issuer's id, derived from its DID, so that a DID is registered once:
/// the first 128 bits of SHA-256 of the DID, as a UUID (version 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IssuerId(Uuid);

impl IssuerId {
    pub fn for_did(did: &Did) -> Self {
        let digest = Sha256::digest(did.as_str().as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(Uuid::new_v8(bytes))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    pub fn stream_id(&self) -> StreamId {
        StreamId::of(Category::Issuer, self.0)
    }
}

impl fmt::Display for IssuerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A key id: 1 to 256 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Kid(String);

impl Kid {
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        if text.is_empty() || text.len() > 256 || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidValue {
                field: "kid",
                message: "must be 1 to 256 visible ASCII characters".into(),
            });
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Kid {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Kid> for String {
    fn from(value: Kid) -> Self {
        value.0
    }
}

/// A credential type (`vct`): 1 to 512 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Vct(String);

impl Vct {
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        if text.is_empty() || text.len() > 512 || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidValue {
                field: "credential_types",
                message: "each is 1 to 512 visible ASCII characters".into(),
            });
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Vct {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Vct> for String {
    fn from(value: Vct) -> Self {
        value.0
    }
}

/// A key as registered: its id and public JWK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RegisteredKey {
    pub kid: Kid,
    pub jwk: Jwk,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IssuerCommand {
    Register {
        did: Did,
        name: Name,
        keys: Vec<RegisteredKey>,
        credential_types: Option<Vec<Vct>>,
        /// `None`: [`DEFAULT_KEY_SOURCES`].
        key_sources: Option<Vec<KeySource>>,
    },
    AddKey {
        key: RegisteredKey,
    },
    RetireKey {
        kid: Kid,
    },
    RevokeKey {
        kid: Kid,
    },
    Suspend,
    Reinstate,
    /// Proofline resolved the keys of a fetched source: recorded when the
    /// key set differs from the last one of that source.
    RecordResolution {
        source: KeySource,
        source_url: String,
        document_sha256: String,
        keys: Vec<RegisteredKey>,
        resolved_at: Timestamp,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum IssuerEvent {
    IssuerRegistered {
        issuer_id: IssuerId,
        did: Did,
        name: Name,
        keys: Vec<RegisteredKey>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credential_types: Option<Vec<Vct>>,
        /// Absent: [`DEFAULT_KEY_SOURCES`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_sources: Option<Vec<KeySource>>,
        registered_at: Timestamp,
    },
    IssuerKeyAdded {
        kid: Kid,
        jwk: Jwk,
        added_at: Timestamp,
    },
    IssuerKeyRetired {
        kid: Kid,
        retired_at: Timestamp,
    },
    IssuerKeyRevoked {
        kid: Kid,
        revoked_at: Timestamp,
    },
    IssuerSuspended {
        suspended_at: Timestamp,
    },
    IssuerReinstated {
        reinstated_at: Timestamp,
    },
    /// The keys a fetched source gave changed: the document they were read
    /// from, its digest, and the whole new set (a key gone from it no
    /// longer verifies).
    IssuerKeysResolved {
        did: Did,
        source: KeySource,
        source_url: String,
        document_sha256: String,
        keys: Vec<RegisteredKey>,
        resolved_at: Timestamp,
    },
}

impl EventSchema for IssuerEvent {}

#[derive(Debug, Clone, PartialEq)]
pub struct IssuerKey {
    pub kid: Kid,
    pub jwk: Jwk,
    pub key: PublicKey,
    /// Where the key came from.
    pub source: KeySource,
    pub added_at: Timestamp,
    pub retired_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Issuer {
    pub id: IssuerId,
    pub did: Did,
    pub name: Name,
    pub keys: Vec<IssuerKey>,
    /// `None`: trusted for any credential type.
    pub credential_types: Option<Vec<Vct>>,
    pub suspended: bool,
    pub registered_at: Timestamp,
    /// Where its keys may come from.
    pub key_sources: Vec<KeySource>,
    /// The last key set each fetched source gave.
    pub resolved: Vec<ResolvedSet>,
    /// How many events the issuer's stream holds (its stream version).
    pub version: u64,
}

/// Why no key of an issuer verifies a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyLookupError {
    #[error("no key of the issuer has this kid")]
    UnknownKid,
    #[error("the key was retired at {retired_at}, before the signature it should verify")]
    Retired { retired_at: Timestamp },
    #[error("the key was revoked at {revoked_at}; it verifies nothing")]
    Revoked { revoked_at: Timestamp },
}

/// The fragment a kid stands for, in any of its forms: `key-1`,
/// `#key-1` and `<did>#key-1` are all `key-1`.
fn fragment_of<'k>(did: &str, kid: &'k str) -> &'k str {
    let relative = kid
        .strip_prefix(did)
        .filter(|rest| rest.starts_with('#'))
        .unwrap_or(kid);
    relative.strip_prefix('#').unwrap_or(relative)
}

impl Issuer {
    /// The key a JWT's `kid` names. For a did:key issuer the `kid` may be
    /// absent, the DID, or the DID with its `#<multibase>` fragment; for
    /// others it names a registered key, plainly or as `<did>#<kid>`.
    pub fn key(&self, kid: Option<&str>) -> Result<&IssuerKey, KeyLookupError> {
        let did = self.did.as_str();
        if self.did.is_did_key() {
            let only = self.keys.first().ok_or(KeyLookupError::UnknownKid)?;
            let fragment = self.did.did_key_multibase().unwrap_or_default();
            return match kid {
                None => Ok(only),
                Some(k) if k == did || k == only.kid.as_str() => Ok(only),
                Some(k) if fragment_of(did, k) == fragment => Ok(only),
                Some(_) => Err(KeyLookupError::UnknownKid),
            };
        }
        let kid = kid.ok_or(KeyLookupError::UnknownKid)?;
        // The kid as registered wins; then the one key whose fragment it
        // names; then the bare DID of a single-key issuer.
        if let Some(exact) = self.keys.iter().find(|key| key.kid.as_str() == kid) {
            return Ok(exact);
        }
        let wanted = fragment_of(did, kid);
        let mut named = self
            .keys
            .iter()
            .filter(|key| fragment_of(did, key.kid.as_str()) == wanted);
        match (named.next(), named.next()) {
            (Some(key), None) => return Ok(key),
            (Some(_), Some(_)) => return Err(KeyLookupError::UnknownKid),
            (None, _) => {}
        }
        if let [only] = self.keys.as_slice()
            && kid == did
        {
            return Ok(only);
        }
        // Then the keys the issuer's own documents gave, by kid or by
        // the fragment it names. A resolved key that is also a registered
        // key (the same public key under another kid) is the registered
        // one: the operator's retirement or revocation of it holds whatever
        // kid a credential names it by.
        let resolved = || {
            self.resolved
                .iter()
                .filter(|set| self.key_sources.contains(&set.source))
                .flat_map(|set| set.keys.iter())
        };
        let found = resolved()
            .find(|key| key.kid.as_str() == kid)
            .or_else(|| resolved().find(|key| fragment_of(did, key.kid.as_str()) == wanted))
            .ok_or(KeyLookupError::UnknownKid)?;
        Ok(self
            .keys
            .iter()
            .find(|registered| registered.key == found.key)
            .unwrap_or(found))
    }

    /// Whether `kid` would name the same key as one registered already, in
    /// any of the forms [`Issuer::key`] accepts.
    fn kid_taken(&self, kid: &Kid) -> bool {
        let did = self.did.as_str();
        let wanted = fragment_of(did, kid.as_str());
        self.keys
            .iter()
            .any(|key| key.kid == *kid || fragment_of(did, key.kid.as_str()) == wanted)
    }

    /// The key for a signature made at `signed_at` (a credential's `iat`):
    /// a key retired at or before then does not verify it.
    pub fn key_at(
        &self,
        kid: Option<&str>,
        signed_at: Timestamp,
    ) -> Result<&IssuerKey, KeyLookupError> {
        let key = self.key(kid)?;
        if let Some(revoked_at) = key.revoked_at {
            return Err(KeyLookupError::Revoked { revoked_at });
        }
        match key.retired_at {
            Some(retired_at) if retired_at <= signed_at => {
                Err(KeyLookupError::Retired { retired_at })
            }
            _ => Ok(key),
        }
    }

    pub fn allows(&self, vct: &str) -> bool {
        self.credential_types
            .as_ref()
            .is_none_or(|types| types.iter().any(|t| t.as_str() == vct))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuerError {
    #[error("an issuer with this DID is already registered")]
    AlreadyRegistered,
    #[error("no such issuer")]
    NotFound,
    #[error("a did:key issuer has exactly the key its DID carries; register it without keys")]
    DidKeyHasItsOwnKey,
    #[error(
        "an issuer other than did:key needs at least one key, or a key source that gives it \
         keys (did for did:web; metadata or x5c for an https issuer)"
    )]
    NoKeys,
    #[error("key_sources must name at least one source")]
    NoKeySource,
    #[error("the key source {0:?} is listed twice")]
    DuplicateKeySource(String),
    #[error("keys are given, but key_sources does not allow registered keys")]
    KeysWithoutRegisteredSource,
    #[error("the issuer does not allow keys from {0}")]
    SourceNotAllowed(String),
    #[error("at most {MAX_KEYS} keys per issuer")]
    TooManyKeys,
    #[error("at most {MAX_CREDENTIAL_TYPES} credential types")]
    TooManyCredentialTypes,
    #[error("the kid {0:?} is used already (kids are never reused)")]
    DuplicateKid(String),
    #[error("a key is not valid: {0}")]
    InvalidKey(String),
    #[error("no key with kid {0:?}")]
    KeyNotFound(String),
    #[error("the key {0:?} is already retired")]
    AlreadyRetired(String),
    #[error("the key {0:?} is already revoked")]
    AlreadyRevoked(String),
    #[error("the issuer is already suspended")]
    AlreadySuspended,
    #[error("the issuer is not suspended")]
    NotSuspended,
}

impl Rejection for IssuerError {
    fn kind(&self) -> RejectionKind {
        match self {
            IssuerError::AlreadyRegistered
            | IssuerError::DuplicateKid(_)
            | IssuerError::AlreadyRetired(_)
            | IssuerError::AlreadyRevoked(_)
            | IssuerError::AlreadySuspended
            | IssuerError::NotSuspended => RejectionKind::Conflict,
            IssuerError::NotFound | IssuerError::KeyNotFound(_) => RejectionKind::NotFound,
            IssuerError::DidKeyHasItsOwnKey
            | IssuerError::NoKeys
            | IssuerError::NoKeySource
            | IssuerError::DuplicateKeySource(_)
            | IssuerError::KeysWithoutRegisteredSource
            | IssuerError::SourceNotAllowed(_)
            | IssuerError::TooManyKeys
            | IssuerError::TooManyCredentialTypes
            | IssuerError::InvalidKey(_) => RejectionKind::Invalid,
        }
    }
}

pub struct IssuerDecider;

impl Decider for IssuerDecider {
    type Command = IssuerCommand;
    type Event = IssuerEvent;
    type State = Option<Issuer>;
    type Error = IssuerError;

    fn decide(
        command: &IssuerCommand,
        state: &Option<Issuer>,
        now: Timestamp,
    ) -> Result<Vec<IssuerEvent>, IssuerError> {
        let issuer = match (command, state) {
            (
                IssuerCommand::Register {
                    did,
                    name,
                    keys,
                    credential_types,
                    key_sources,
                },
                None,
            ) => {
                sources::check(did, key_sources.as_deref(), !keys.is_empty())?;
                let keys = if did.is_did_key() {
                    if !keys.is_empty() {
                        return Err(IssuerError::DidKeyHasItsOwnKey);
                    }
                    let key = did
                        .key_of_did_key()
                        .map_err(|e| IssuerError::InvalidKey(e.to_string()))?;
                    let PublicKey::Ed25519(ed) = &key else {
                        return Err(IssuerError::InvalidKey("not Ed25519".into()));
                    };
                    let kid = Kid::parse(&format!("{did}#{}", encode_ed25519_multibase(ed)))
                        .map_err(|e| IssuerError::InvalidKey(e.to_string()))?;
                    vec![RegisteredKey {
                        kid,
                        jwk: key.to_jwk(),
                    }]
                } else {
                    if keys.len() > MAX_KEYS {
                        return Err(IssuerError::TooManyKeys);
                    }
                    let mut seen = std::collections::HashSet::new();
                    for key in keys {
                        // `key-1` and `<did>#key-1` would name one key.
                        if !seen.insert(fragment_of(did.as_str(), key.kid.as_str())) {
                            return Err(IssuerError::DuplicateKid(key.kid.as_str().to_owned()));
                        }
                        key.jwk
                            .public_key()
                            .map_err(|e| IssuerError::InvalidKey(e.to_string()))?;
                    }
                    keys.clone()
                };
                if credential_types
                    .as_ref()
                    .is_some_and(|t| t.len() > MAX_CREDENTIAL_TYPES)
                {
                    return Err(IssuerError::TooManyCredentialTypes);
                }
                return Ok(vec![IssuerEvent::IssuerRegistered {
                    issuer_id: IssuerId::for_did(did),
                    did: did.clone(),
                    name: name.clone(),
                    keys,
                    credential_types: credential_types.clone(),
                    key_sources: key_sources.clone(),
                    registered_at: now,
                }]);
            }
            (IssuerCommand::Register { .. }, Some(_)) => {
                return Err(IssuerError::AlreadyRegistered);
            }
            (_, None) => return Err(IssuerError::NotFound),
            (_, Some(issuer)) => issuer,
        };
        match command {
            IssuerCommand::Register { .. } => Err(IssuerError::AlreadyRegistered),
            IssuerCommand::AddKey { key } => {
                if issuer.did.is_did_key() {
                    return Err(IssuerError::DidKeyHasItsOwnKey);
                }
                if issuer.kid_taken(&key.kid) {
                    return Err(IssuerError::DuplicateKid(key.kid.as_str().to_owned()));
                }
                if issuer.keys.len() >= MAX_KEYS {
                    return Err(IssuerError::TooManyKeys);
                }
                key.jwk
                    .public_key()
                    .map_err(|e| IssuerError::InvalidKey(e.to_string()))?;
                Ok(vec![IssuerEvent::IssuerKeyAdded {
                    kid: key.kid.clone(),
                    jwk: key.jwk.clone(),
                    added_at: now,
                }])
            }
            IssuerCommand::RetireKey { kid } => {
                let key = issuer
                    .keys
                    .iter()
                    .find(|k| k.kid == *kid)
                    .ok_or_else(|| IssuerError::KeyNotFound(kid.as_str().to_owned()))?;
                if key.retired_at.is_some() {
                    return Err(IssuerError::AlreadyRetired(kid.as_str().to_owned()));
                }
                Ok(vec![IssuerEvent::IssuerKeyRetired {
                    kid: kid.clone(),
                    retired_at: now,
                }])
            }
            IssuerCommand::RevokeKey { kid } => {
                let key = issuer
                    .keys
                    .iter()
                    .find(|k| k.kid == *kid)
                    .ok_or_else(|| IssuerError::KeyNotFound(kid.as_str().to_owned()))?;
                if key.revoked_at.is_some() {
                    return Err(IssuerError::AlreadyRevoked(kid.as_str().to_owned()));
                }
                Ok(vec![IssuerEvent::IssuerKeyRevoked {
                    kid: kid.clone(),
                    revoked_at: now,
                }])
            }
            IssuerCommand::Suspend => {
                if issuer.suspended {
                    return Err(IssuerError::AlreadySuspended);
                }
                Ok(vec![IssuerEvent::IssuerSuspended { suspended_at: now }])
            }
            IssuerCommand::Reinstate => {
                if !issuer.suspended {
                    return Err(IssuerError::NotSuspended);
                }
                Ok(vec![IssuerEvent::IssuerReinstated { reinstated_at: now }])
            }
            IssuerCommand::RecordResolution {
                source,
                source_url,
                document_sha256,
                keys,
                resolved_at,
            } => {
                if !issuer.fetched_sources().any(|s| s == *source) {
                    return Err(IssuerError::SourceNotAllowed(source.as_str().to_owned()));
                }
                if keys.len() > MAX_KEYS {
                    return Err(IssuerError::TooManyKeys);
                }
                for key in keys {
                    key.jwk
                        .public_key()
                        .map_err(|e| IssuerError::InvalidKey(e.to_string()))?;
                }
                if issuer
                    .resolved_by(*source)
                    .is_some_and(|set| set.has_the_keys(keys))
                {
                    return Ok(Vec::new());
                }
                Ok(vec![IssuerEvent::IssuerKeysResolved {
                    did: issuer.did.clone(),
                    source: *source,
                    source_url: source_url.clone(),
                    document_sha256: document_sha256.clone(),
                    keys: keys.clone(),
                    resolved_at: *resolved_at,
                }])
            }
        }
    }

    fn evolve(state: Option<Issuer>, event: &IssuerEvent) -> Option<Issuer> {
        let registered = |kid: &Kid, jwk: &Jwk, added_at: Timestamp| {
            sources::key_from(kid, jwk, added_at, KeySource::Registered)
        };
        let mut issuer = match (state, event) {
            (
                None,
                IssuerEvent::IssuerRegistered {
                    issuer_id,
                    did,
                    name,
                    keys,
                    credential_types,
                    key_sources,
                    registered_at,
                },
            ) => Issuer {
                id: *issuer_id,
                did: did.clone(),
                name: name.clone(),
                keys: keys
                    .iter()
                    .filter_map(|k| registered(&k.kid, &k.jwk, *registered_at))
                    .collect(),
                credential_types: credential_types.clone(),
                suspended: false,
                registered_at: *registered_at,
                key_sources: sources::effective(key_sources.as_deref()),
                resolved: Vec::new(),
                version: 0,
            },
            (None, _) => return None,
            (Some(mut issuer), event) => {
                match event {
                    IssuerEvent::IssuerRegistered { .. } => {}
                    IssuerEvent::IssuerKeyAdded { kid, jwk, added_at } => {
                        issuer.keys.extend(registered(kid, jwk, *added_at))
                    }
                    IssuerEvent::IssuerKeyRetired { kid, retired_at } => {
                        if let Some(key) = issuer.keys.iter_mut().find(|k| k.kid == *kid) {
                            key.retired_at = Some(*retired_at);
                        }
                    }
                    IssuerEvent::IssuerKeyRevoked { kid, revoked_at } => {
                        if let Some(key) = issuer.keys.iter_mut().find(|k| k.kid == *kid) {
                            key.revoked_at = Some(*revoked_at);
                        }
                    }
                    IssuerEvent::IssuerSuspended { .. } => issuer.suspended = true,
                    IssuerEvent::IssuerReinstated { .. } => issuer.suspended = false,
                    IssuerEvent::IssuerKeysResolved {
                        source,
                        source_url,
                        document_sha256,
                        keys,
                        resolved_at,
                        ..
                    } => {
                        let set = ResolvedSet {
                            source: *source,
                            source_url: source_url.clone(),
                            document_sha256: document_sha256.clone(),
                            keys: keys
                                .iter()
                                .filter_map(|k| {
                                    sources::key_from(&k.kid, &k.jwk, *resolved_at, *source)
                                })
                                .collect(),
                            resolved_at: *resolved_at,
                            version: issuer.version + 1,
                        };
                        issuer.resolved.retain(|old| old.source != *source);
                        issuer.resolved.push(set);
                    }
                }
                issuer
            }
        };
        issuer.version += 1;
        Some(issuer)
    }
}
