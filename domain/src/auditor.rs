//! The Auditor aggregate: a principal that reads and verifies the log.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::decider::{Decider, EventSchema, Rejection, RejectionKind};
use crate::ids::StreamId;
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
}

impl EventSchema for AuditorEvent {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auditor {
    pub id: AuditorId,
    pub name: Name,
    pub key_prefix: KeyPrefix,
}

impl Auditor {
    pub fn key_is_valid(&self, prefix: &str) -> bool {
        self.key_prefix.as_str() == prefix
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditorError {
    #[error("the auditor is already registered")]
    AlreadyRegistered,
}

impl Rejection for AuditorError {
    fn kind(&self) -> RejectionKind {
        RejectionKind::Conflict
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
        }
    }

    fn evolve(state: Option<Auditor>, event: &AuditorEvent) -> Option<Auditor> {
        match event {
            AuditorEvent::AuditorRegistered {
                auditor_id,
                name,
                key_prefix,
                ..
            } => Some(state.unwrap_or(Auditor {
                id: *auditor_id,
                name: name.clone(),
                key_prefix: key_prefix.clone(),
            })),
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

    #[test]
    fn register_is_accepted_once() {
        let events = given::<AuditorDecider>(&[])
            .when(register(), now())
            .unwrap();
        let auditor = AuditorDecider::fold(&events).unwrap();
        assert!(auditor.key_is_valid("00000000000000aa"));
        assert!(!auditor.key_is_valid("00000000000000ab"));
        assert_eq!(
            given::<AuditorDecider>(&events).when(register(), now()),
            Err(AuditorError::AlreadyRegistered)
        );
    }
}
