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
use crate::ids::StreamId;
use crate::jose::{Jwk, PublicKey};
use crate::log::Timestamp;
use crate::values::{InvalidValue, Name};

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
        StreamId::new("issuer", self.0).expect("a UUID makes a valid stream id")
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
}

impl EventSchema for IssuerEvent {}

#[derive(Debug, Clone, PartialEq)]
pub struct IssuerKey {
    pub kid: Kid,
    pub jwk: Jwk,
    pub key: PublicKey,
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
        match self.keys.as_slice() {
            [only] if kid == did => Ok(only),
            _ => Err(KeyLookupError::UnknownKid),
        }
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
    #[error("an issuer other than did:key needs at least one key")]
    NoKeys,
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
                },
                None,
            ) => {
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
                    if keys.is_empty() {
                        return Err(IssuerError::NoKeys);
                    }
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
        }
    }

    fn evolve(state: Option<Issuer>, event: &IssuerEvent) -> Option<Issuer> {
        let key_of = |kid: &Kid, jwk: &Jwk, added_at: Timestamp| {
            jwk.public_key().ok().map(|key| IssuerKey {
                kid: kid.clone(),
                jwk: jwk.clone(),
                key,
                added_at,
                retired_at: None,
                revoked_at: None,
            })
        };
        match (state, event) {
            (
                None,
                IssuerEvent::IssuerRegistered {
                    issuer_id,
                    did,
                    name,
                    keys,
                    credential_types,
                    registered_at,
                },
            ) => Some(Issuer {
                id: *issuer_id,
                did: did.clone(),
                name: name.clone(),
                keys: keys
                    .iter()
                    .filter_map(|k| key_of(&k.kid, &k.jwk, *registered_at))
                    .collect(),
                credential_types: credential_types.clone(),
                suspended: false,
                registered_at: *registered_at,
            }),
            (Some(mut issuer), event) => {
                match event {
                    IssuerEvent::IssuerRegistered { .. } => {}
                    IssuerEvent::IssuerKeyAdded { kid, jwk, added_at } => {
                        issuer.keys.extend(key_of(kid, jwk, *added_at))
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
                }
                Some(issuer)
            }
            (None, _) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decider::spec::given;
    use crate::jose::testing::TestKey;
    use chrono::{TimeZone, Utc};

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_datetime(Utc.timestamp_opt(1_790_000_000 + secs, 0).unwrap())
    }

    fn web_did() -> Did {
        Did::parse("did:web:issuer.example").unwrap()
    }

    fn key(kid: &str, test_key: &TestKey) -> RegisteredKey {
        RegisteredKey {
            kid: Kid::parse(kid).unwrap(),
            jwk: test_key.public().to_jwk(),
        }
    }

    fn register_web() -> IssuerCommand {
        IssuerCommand::Register {
            did: web_did(),
            name: Name::parse("name", "State ID Office").unwrap(),
            keys: vec![
                key("key-1", &TestKey::ed25519(1)),
                key("key-2", &TestKey::p256(2)),
            ],
            credential_types: Some(vec![
                Vct::parse("https://credentials.example/identity").unwrap(),
            ]),
        }
    }

    fn registered() -> Vec<IssuerEvent> {
        given::<IssuerDecider>(&[])
            .when(register_web(), t(0))
            .unwrap()
    }

    fn with(mut events: Vec<IssuerEvent>, command: IssuerCommand, at: i64) -> Vec<IssuerEvent> {
        let more = given::<IssuerDecider>(&events)
            .when(command, t(at))
            .unwrap();
        events.extend(more);
        events
    }

    #[test]
    fn register_a_web_did_with_jwks_once() {
        let events = registered();
        let issuer = IssuerDecider::fold(&events).unwrap();
        assert_eq!(issuer.keys.len(), 2);
        assert_eq!(issuer.id, IssuerId::for_did(&web_did()));
        assert!(issuer.allows("https://credentials.example/identity"));
        assert!(!issuer.allows("https://credentials.example/other"));
        assert_eq!(
            given::<IssuerDecider>(&events).when(register_web(), t(1)),
            Err(IssuerError::AlreadyRegistered)
        );
    }

    #[test]
    fn register_refusals() {
        let g = || given::<IssuerDecider>(&[]);
        let name = Name::parse("name", "x").unwrap();
        let no_keys = IssuerCommand::Register {
            did: web_did(),
            name: name.clone(),
            keys: vec![],
            credential_types: None,
        };
        assert_eq!(g().when(no_keys, t(0)), Err(IssuerError::NoKeys));
        let twice = IssuerCommand::Register {
            did: web_did(),
            name: name.clone(),
            keys: vec![
                key("k", &TestKey::ed25519(1)),
                key("k", &TestKey::ed25519(2)),
            ],
            credential_types: None,
        };
        assert_eq!(
            g().when(twice, t(0)),
            Err(IssuerError::DuplicateKid("k".into()))
        );
        let did_key =
            Did::from_ed25519(&ed25519_dalek::SigningKey::from_bytes(&[5; 32]).verifying_key());
        let with_keys = IssuerCommand::Register {
            did: did_key,
            name,
            keys: vec![key("k", &TestKey::ed25519(1))],
            credential_types: None,
        };
        assert_eq!(
            g().when(with_keys, t(0)),
            Err(IssuerError::DidKeyHasItsOwnKey)
        );
    }

    #[test]
    fn a_did_key_issuer_carries_its_own_key_under_three_kids() {
        let signer = TestKey::ed25519(5);
        let PublicKey::Ed25519(public) = signer.public() else {
            unreachable!()
        };
        let did = Did::from_ed25519(&public);
        let register = IssuerCommand::Register {
            did: did.clone(),
            name: Name::parse("name", "Wallet Issuer").unwrap(),
            keys: vec![],
            credential_types: None,
        };
        let events = given::<IssuerDecider>(&[]).when(register, t(0)).unwrap();
        let issuer = IssuerDecider::fold(&events).unwrap();
        let fragment = did.did_key_multibase().unwrap();
        for kid in [
            None,
            Some(did.as_str().to_owned()),
            Some(format!("{did}#{fragment}")),
        ] {
            assert_eq!(
                issuer.key(kid.as_deref()).unwrap().key,
                signer.public(),
                "{kid:?}"
            );
        }
        assert_eq!(
            issuer.key(Some("did:key:other#x")),
            Err(KeyLookupError::UnknownKid)
        );
        let add = IssuerCommand::AddKey {
            key: key("extra", &TestKey::ed25519(6)),
        };
        assert_eq!(
            given::<IssuerDecider>(&events).when(add, t(1)),
            Err(IssuerError::DidKeyHasItsOwnKey)
        );
    }

    #[test]
    fn keys_of_other_dids_are_named_plainly_or_relative_to_the_did() {
        let issuer = IssuerDecider::fold(&registered()).unwrap();
        assert_eq!(issuer.key(Some("key-1")).unwrap().kid.as_str(), "key-1");
        assert_eq!(
            issuer
                .key(Some("did:web:issuer.example#key-2"))
                .unwrap()
                .kid
                .as_str(),
            "key-2"
        );
        assert_eq!(issuer.key(None), Err(KeyLookupError::UnknownKid));
        assert_eq!(issuer.key(Some("key-3")), Err(KeyLookupError::UnknownKid));
    }

    #[test]
    fn add_key_accepted_and_refused() {
        let events = with(
            registered(),
            IssuerCommand::AddKey {
                key: key("key-3", &TestKey::ed25519(3)),
            },
            10,
        );
        let issuer = IssuerDecider::fold(&events).unwrap();
        assert_eq!(issuer.key(Some("key-3")).unwrap().added_at, t(10));
        let again = IssuerCommand::AddKey {
            key: key("key-3", &TestKey::ed25519(4)),
        };
        assert_eq!(
            given::<IssuerDecider>(&events).when(again, t(11)),
            Err(IssuerError::DuplicateKid("key-3".into()))
        );
        let bad = IssuerCommand::AddKey {
            key: RegisteredKey {
                kid: Kid::parse("key-4").unwrap(),
                jwk: Jwk {
                    kty: "OKP".into(),
                    crv: "Ed25519".into(),
                    x: "AAAA".into(),
                    y: None,
                },
            },
        };
        assert!(matches!(
            given::<IssuerDecider>(&events).when(bad, t(11)),
            Err(IssuerError::InvalidKey(_))
        ));
        assert_eq!(
            given::<IssuerDecider>(&[]).when(
                IssuerCommand::AddKey {
                    key: key("k", &TestKey::ed25519(1))
                },
                t(0)
            ),
            Err(IssuerError::NotFound)
        );
    }

    #[test]
    fn a_retired_key_never_verifies_what_was_signed_after_its_retirement() {
        let events = with(
            registered(),
            IssuerCommand::RetireKey {
                kid: Kid::parse("key-1").unwrap(),
            },
            100,
        );
        let issuer = IssuerDecider::fold(&events).unwrap();
        assert!(
            issuer.key_at(Some("key-1"), t(99)).is_ok(),
            "signed before the retirement"
        );
        assert_eq!(
            issuer.key_at(Some("key-1"), t(100)),
            Err(KeyLookupError::Retired { retired_at: t(100) })
        );
        assert_eq!(
            issuer.key_at(Some("key-1"), t(500)),
            Err(KeyLookupError::Retired { retired_at: t(100) })
        );
        assert!(issuer.key_at(Some("key-2"), t(500)).is_ok());
        let g = || given::<IssuerDecider>(&events);
        assert_eq!(
            g().when(
                IssuerCommand::RetireKey {
                    kid: Kid::parse("key-1").unwrap()
                },
                t(101)
            ),
            Err(IssuerError::AlreadyRetired("key-1".into()))
        );
        assert_eq!(
            g().when(
                IssuerCommand::RetireKey {
                    kid: Kid::parse("nope").unwrap()
                },
                t(101)
            ),
            Err(IssuerError::KeyNotFound("nope".into()))
        );
        // A retired kid is never reused.
        let reuse = IssuerCommand::AddKey {
            key: key("key-1", &TestKey::ed25519(9)),
        };
        assert_eq!(
            g().when(reuse, t(102)),
            Err(IssuerError::DuplicateKid("key-1".into()))
        );
    }

    #[test]
    fn relative_did_urls_and_the_bare_did_name_keys_without_ambiguity() {
        let issuer = IssuerDecider::fold(&registered()).unwrap();
        // A relative DID URL (as the OpenWallet Foundation's libraries write).
        assert_eq!(issuer.key(Some("#key-1")).unwrap().kid.as_str(), "key-1");
        assert_eq!(issuer.key(Some("#key-3")), Err(KeyLookupError::UnknownKid));
        // Two keys: the bare DID names none of them.
        assert_eq!(
            issuer.key(Some("did:web:issuer.example")),
            Err(KeyLookupError::UnknownKid)
        );
        // One key registered as a DID URL: every form names it.
        let single = IssuerCommand::Register {
            did: web_did(),
            name: Name::parse("name", "One Key Office").unwrap(),
            keys: vec![key("did:web:issuer.example#k1", &TestKey::ed25519(1))],
            credential_types: None,
        };
        let events = given::<IssuerDecider>(&[]).when(single, t(0)).unwrap();
        let issuer = IssuerDecider::fold(&events).unwrap();
        for kid in [
            "did:web:issuer.example#k1",
            "#k1",
            "k1",
            "did:web:issuer.example",
        ] {
            assert_eq!(
                issuer.key(Some(kid)).unwrap().key,
                TestKey::ed25519(1).public(),
                "{kid}"
            );
        }
        // A kid naming the same key in another form is refused, at
        // registration and when added.
        for (existing, added) in [
            ("did:web:issuer.example#k1", "k1"),
            ("did:web:issuer.example#k1", "#k1"),
        ] {
            let twice = IssuerCommand::Register {
                did: web_did(),
                name: Name::parse("name", "x").unwrap(),
                keys: vec![
                    key(existing, &TestKey::ed25519(1)),
                    key(added, &TestKey::ed25519(2)),
                ],
                credential_types: None,
            };
            assert_eq!(
                given::<IssuerDecider>(&[]).when(twice, t(0)),
                Err(IssuerError::DuplicateKid(added.into()))
            );
            let add = IssuerCommand::AddKey {
                key: key(added, &TestKey::ed25519(2)),
            };
            assert_eq!(
                given::<IssuerDecider>(&events).when(add, t(1)),
                Err(IssuerError::DuplicateKid(added.into()))
            );
        }
    }

    #[test]
    fn a_did_key_issuer_accepts_a_relative_kid() {
        let PublicKey::Ed25519(public) = TestKey::ed25519(5).public() else {
            unreachable!()
        };
        let did = Did::from_ed25519(&public);
        let register = IssuerCommand::Register {
            did: did.clone(),
            name: Name::parse("name", "Wallet Issuer").unwrap(),
            keys: vec![],
            credential_types: None,
        };
        let issuer =
            IssuerDecider::fold(&given::<IssuerDecider>(&[]).when(register, t(0)).unwrap())
                .unwrap();
        let fragment = did.did_key_multibase().unwrap();
        assert!(issuer.key(Some(&format!("#{fragment}"))).is_ok());
        assert_eq!(
            issuer.key(Some("#z6Mkother")),
            Err(KeyLookupError::UnknownKid)
        );
    }

    #[test]
    fn a_revoked_key_verifies_nothing_whatever_the_credential_says() {
        let retired = with(
            registered(),
            IssuerCommand::RetireKey {
                kid: Kid::parse("key-1").unwrap(),
            },
            100,
        );
        let events = with(
            retired,
            IssuerCommand::RevokeKey {
                kid: Kid::parse("key-1").unwrap(),
            },
            200,
        );
        let issuer = IssuerDecider::fold(&events).unwrap();
        for signed_at in [t(-1_000_000), t(99), t(300)] {
            assert_eq!(
                issuer.key_at(Some("key-1"), signed_at),
                Err(KeyLookupError::Revoked { revoked_at: t(200) })
            );
        }
        assert!(issuer.key_at(Some("key-2"), t(300)).is_ok());
        let g = || given::<IssuerDecider>(&events);
        let revoke = |kid: &str| IssuerCommand::RevokeKey {
            kid: Kid::parse(kid).unwrap(),
        };
        assert_eq!(
            g().when(revoke("key-1"), t(201)),
            Err(IssuerError::AlreadyRevoked("key-1".into()))
        );
        assert_eq!(
            g().when(revoke("nope"), t(201)),
            Err(IssuerError::KeyNotFound("nope".into()))
        );
        assert_eq!(
            given::<IssuerDecider>(&[]).when(revoke("key-1"), t(0)),
            Err(IssuerError::NotFound)
        );
    }

    #[test]
    fn suspend_and_reinstate() {
        let suspended = with(registered(), IssuerCommand::Suspend, 5);
        assert!(IssuerDecider::fold(&suspended).unwrap().suspended);
        assert_eq!(
            given::<IssuerDecider>(&suspended).when(IssuerCommand::Suspend, t(6)),
            Err(IssuerError::AlreadySuspended)
        );
        let back = with(suspended, IssuerCommand::Reinstate, 7);
        assert!(!IssuerDecider::fold(&back).unwrap().suspended);
        assert_eq!(
            given::<IssuerDecider>(&back).when(IssuerCommand::Reinstate, t(8)),
            Err(IssuerError::NotSuspended)
        );
        assert_eq!(
            given::<IssuerDecider>(&[]).when(IssuerCommand::Suspend, t(0)),
            Err(IssuerError::NotFound)
        );
    }

    #[test]
    fn events_round_trip() {
        let events = with(
            with(registered(), IssuerCommand::Suspend, 5),
            IssuerCommand::RetireKey {
                kid: Kid::parse("key-2").unwrap(),
            },
            6,
        );
        for event in &events {
            let encoded = event.encode();
            assert_eq!(
                &IssuerEvent::decode(&encoded.event_type, 1, &encoded.data).unwrap(),
                event
            );
        }
    }
}
