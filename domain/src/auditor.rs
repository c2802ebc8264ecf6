//! The Auditor aggregate: a principal that reads and verifies the log. Its
//! API key rotates with a grace and its previous key is revoked by the same
//! rules as a lender's ([`crate::key_ring`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::decider::{Decider, EventSchema, Rejection, RejectionKind};
use crate::ids::{Category, StreamId};
use crate::key_ring::{GracePeriod, KeyRing, KeyRingError};
use crate::log::Timestamp;
use crate::principal::AffectsCredentials;
use crate::values::{KeyPrefix, Name};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuditorId(Uuid);

impl AuditorId {
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    pub fn stream_id(&self) -> StreamId {
        StreamId::of(Category::Auditor, self.0)
    }

    pub fn from_stream(stream: &StreamId) -> Option<Self> {
        stream.uuid_of(Category::Auditor).map(Self)
    }
}

impl fmt::Display for AuditorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AuditorCommand {
    Register {
        auditor_id: AuditorId,
        name: Name,
        key_prefix: KeyPrefix,
    },
    RotateKey {
        new_prefix: KeyPrefix,
        grace: GracePeriod,
        using: KeyPrefix,
    },
    RevokeKey {
        prefix: KeyPrefix,
        using: KeyPrefix,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum AuditorEvent {
    AuditorRegistered {
        auditor_id: AuditorId,
        name: Name,
        key_prefix: KeyPrefix,
        issued_at: Timestamp,
    },
    ApiKeyRotated {
        new_prefix: KeyPrefix,
        issued_at: Timestamp,
        previous_prefix: KeyPrefix,
        previous_valid_until: Timestamp,
        /// The key that was still in its grace and is replaced now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dropped_prefix: Option<KeyPrefix>,
    },
    ApiKeyRevoked {
        key_prefix: KeyPrefix,
        revoked_at: Timestamp,
    },
}

impl EventSchema for AuditorEvent {}

impl AffectsCredentials for AuditorEvent {
    fn affects_credentials(&self) -> bool {
        match self {
            AuditorEvent::AuditorRegistered { .. }
            | AuditorEvent::ApiKeyRotated { .. }
            | AuditorEvent::ApiKeyRevoked { .. } => true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auditor {
    pub id: AuditorId,
    pub name: Name,
    pub keys: KeyRing,
}

impl Auditor {
    /// `Some(until)` when `prefix` authenticates at `now` (see
    /// [`KeyRing::validity`]).
    pub fn key_validity(&self, prefix: &str, now: Timestamp) -> Option<Option<Timestamp>> {
        self.keys.validity(prefix, now)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditorError {
    #[error("the auditor is already registered")]
    AlreadyRegistered,
    #[error("no such auditor")]
    NotFound,
    #[error(transparent)]
    Keys(#[from] KeyRingError),
}

impl Rejection for AuditorError {
    fn kind(&self) -> RejectionKind {
        match self {
            AuditorError::AlreadyRegistered
            | AuditorError::Keys(KeyRingError::CannotRevokeCurrentKey) => RejectionKind::Conflict,
            AuditorError::NotFound | AuditorError::Keys(KeyRingError::KeyNotFound) => {
                RejectionKind::NotFound
            }
            AuditorError::Keys(KeyRingError::NotCurrentKey) => RejectionKind::Forbidden,
            AuditorError::Keys(KeyRingError::GraceTooLong { .. }) => RejectionKind::Invalid,
        }
    }
}

pub struct AuditorDecider;

impl Decider for AuditorDecider {
    type Command = AuditorCommand;
    type Event = AuditorEvent;
    type State = Option<Auditor>;
    type Error = AuditorError;

    fn decide(
        command: &AuditorCommand,
        state: &Option<Auditor>,
        now: Timestamp,
    ) -> Result<Vec<AuditorEvent>, AuditorError> {
        match (command, state) {
            (
                AuditorCommand::Register {
                    auditor_id,
                    name,
                    key_prefix,
                },
                None,
            ) => Ok(vec![AuditorEvent::AuditorRegistered {
                auditor_id: *auditor_id,
                name: name.clone(),
                key_prefix: key_prefix.clone(),
                issued_at: now,
            }]),
            (AuditorCommand::Register { .. }, Some(_)) => Err(AuditorError::AlreadyRegistered),
            (_, None) => Err(AuditorError::NotFound),
            (
                AuditorCommand::RotateKey {
                    new_prefix,
                    grace,
                    using,
                },
                Some(auditor),
            ) => {
                let rotation = auditor.keys.rotate(using, *grace, now)?;
                Ok(vec![AuditorEvent::ApiKeyRotated {
                    new_prefix: new_prefix.clone(),
                    issued_at: now,
                    previous_prefix: rotation.previous_prefix,
                    previous_valid_until: rotation.previous_valid_until,
                    dropped_prefix: rotation.dropped_prefix,
                }])
            }
            (AuditorCommand::RevokeKey { prefix, using }, Some(auditor)) => {
                auditor.keys.revoke(prefix, using, now)?;
                Ok(vec![AuditorEvent::ApiKeyRevoked {
                    key_prefix: prefix.clone(),
                    revoked_at: now,
                }])
            }
        }
    }

    fn evolve(state: Option<Auditor>, event: &AuditorEvent) -> Option<Auditor> {
        match (state, event) {
            (
                None,
                AuditorEvent::AuditorRegistered {
                    auditor_id,
                    name,
                    key_prefix,
                    issued_at,
                },
            ) => {
                let mut keys = KeyRing::default();
                keys.issued(key_prefix, *issued_at);
                Some(Auditor {
                    id: *auditor_id,
                    name: name.clone(),
                    keys,
                })
            }
            (Some(mut auditor), event) => {
                match event {
                    AuditorEvent::AuditorRegistered { .. } => {}
                    AuditorEvent::ApiKeyRotated {
                        new_prefix,
                        issued_at,
                        previous_valid_until,
                        ..
                    } => auditor
                        .keys
                        .rotated(new_prefix, *issued_at, *previous_valid_until),
                    AuditorEvent::ApiKeyRevoked { key_prefix, .. } => {
                        auditor.keys.revoked(key_prefix)
                    }
                }
                Some(auditor)
            }
            // An event before registration cannot have been decided.
            (None, _) => None,
        }
    }
}
