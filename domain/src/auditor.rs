//! The Auditor aggregate: a principal that reads and verifies the log. Its
//! API key rotates with a grace and its previous key is revoked by the same
//! rules as a lender's ([`crate::key_ring`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::decider::{Decider, EventSchema, Rejection, RejectionKind};
use crate::ids::StreamId;
use crate::key_ring::{GracePeriod, KeyRing, KeyRingError};
use crate::log::Timestamp;
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
        StreamId::new("auditor", self.0).expect("a UUID makes a valid stream id")
    }

    pub fn from_stream(stream: &StreamId) -> Option<Self> {
        stream
            .as_str()
            .strip_prefix("auditor-")?
            .parse()
            .ok()
            .map(Self)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decider::spec::given;
    use chrono::{TimeZone, Utc};

    fn register() -> AuditorCommand {
        AuditorCommand::Register {
            auditor_id: AuditorId::from_uuid(Uuid::from_u128(3)),
            name: Name::parse("name", "Ledger Audit LLP").unwrap(),
            key_prefix: KeyPrefix::parse("00000000000000aa").unwrap(),
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_datetime(Utc.timestamp_opt(1_790_000_000, 0).unwrap())
    }

    fn prefix(n: u8) -> KeyPrefix {
        KeyPrefix::parse(&format!("00000000000000{n:02x}")).unwrap()
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_datetime(Utc.timestamp_opt(1_790_000_000 + seconds, 0).unwrap())
    }

    #[test]
    fn register_is_accepted_once() {
        let events = given::<AuditorDecider>(&[])
            .when(register(), now())
            .unwrap();
        let auditor = AuditorDecider::fold(&events).unwrap();
        assert_eq!(auditor.key_validity("00000000000000aa", now()), Some(None));
        assert_eq!(auditor.key_validity("00000000000000ab", now()), None);
        assert_eq!(
            given::<AuditorDecider>(&events).when(register(), now()),
            Err(AuditorError::AlreadyRegistered)
        );
    }

    #[test]
    fn an_auditor_rotates_with_a_grace_and_revokes_the_previous_key() {
        let mut events = given::<AuditorDecider>(&[])
            .when(register(), at(0))
            .unwrap();
        let rotate = |new: u8, grace: u64, using: u8| AuditorCommand::RotateKey {
            new_prefix: prefix(new),
            grace: GracePeriod::seconds(grace).unwrap(),
            using: prefix(using),
        };
        events.extend(
            given::<AuditorDecider>(&events)
                .when(rotate(0xb1, 3600, 0xaa), at(10))
                .unwrap(),
        );
        let auditor = AuditorDecider::fold(&events).unwrap();
        assert_eq!(auditor.key_validity("00000000000000b1", at(11)), Some(None));
        assert_eq!(
            auditor.key_validity("00000000000000aa", at(11)),
            Some(Some(at(3610))),
            "the old key in its grace"
        );
        assert_eq!(auditor.key_validity("00000000000000aa", at(3610)), None);
        // Only the current key rotates or revokes; the current one is not
        // revoked.
        assert_eq!(
            given::<AuditorDecider>(&events).when(rotate(0xb2, 60, 0xaa), at(12)),
            Err(AuditorError::Keys(KeyRingError::NotCurrentKey))
        );
        let revoke = |key: u8, using: u8| AuditorCommand::RevokeKey {
            prefix: prefix(key),
            using: prefix(using),
        };
        assert_eq!(
            given::<AuditorDecider>(&events).when(revoke(0xb1, 0xb1), at(12)),
            Err(AuditorError::Keys(KeyRingError::CannotRevokeCurrentKey))
        );
        events.extend(
            given::<AuditorDecider>(&events)
                .when(revoke(0xaa, 0xb1), at(13))
                .unwrap(),
        );
        let auditor = AuditorDecider::fold(&events).unwrap();
        assert_eq!(auditor.key_validity("00000000000000aa", at(14)), None);
        assert_eq!(
            given::<AuditorDecider>(&events).when(revoke(0xaa, 0xb1), at(15)),
            Err(AuditorError::Keys(KeyRingError::KeyNotFound))
        );
        assert_eq!(
            given::<AuditorDecider>(&[]).when(rotate(1, 0, 2), at(0)),
            Err(AuditorError::NotFound)
        );
        for event in &events {
            let encoded = event.encode();
            assert_eq!(
                &AuditorEvent::decode(&encoded.event_type, 1, &encoded.data).unwrap(),
                event
            );
        }
    }
}
