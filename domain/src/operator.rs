//! The operator principal.
//!
//! There is one operator. Its key is created on first start; the event names
//! the key by its public prefix only, the argon2id hash goes to the secrets
//! table in the same transaction.

use serde::{Deserialize, Serialize};

use crate::decider::{Decider, EventSchema, Rejection, RejectionKind};
use crate::ids::{Category, StreamId};
use crate::log::Timestamp;
use crate::principal::AffectsCredentials;
use crate::values::KeyPrefix;

/// The operator's stream id.
pub fn stream_id() -> StreamId {
    StreamId::singleton(Category::Operator, None)
}

#[derive(Debug, Clone, PartialEq)]
pub enum OperatorCommand {
    IssueKey { key_prefix: KeyPrefix },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum OperatorEvent {
    OperatorKeyIssued { key_prefix: KeyPrefix },
}

impl EventSchema for OperatorEvent {}

impl AffectsCredentials for OperatorEvent {
    fn affects_credentials(&self) -> bool {
        match self {
            OperatorEvent::OperatorKeyIssued { .. } => true,
        }
    }
}

/// The operator's current key, once issued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Operator {
    pub key_prefix: Option<KeyPrefix>,
}

impl Operator {
    pub fn key_is_valid(&self, prefix: &str) -> bool {
        self.key_prefix
            .as_ref()
            .is_some_and(|p| p.as_str() == prefix)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    #[error("the operator key is already issued")]
    AlreadyIssued,
}

impl Rejection for OperatorError {
    fn kind(&self) -> RejectionKind {
        RejectionKind::Conflict
    }
}

pub struct OperatorDecider;

impl Decider for OperatorDecider {
    type Command = OperatorCommand;
    type Event = OperatorEvent;
    type State = Operator;
    type Error = OperatorError;

    fn decide(
        command: &OperatorCommand,
        state: &Operator,
        _now: Timestamp,
    ) -> Result<Vec<OperatorEvent>, OperatorError> {
        match command {
            OperatorCommand::IssueKey { key_prefix } => {
                if state.key_prefix.is_some() {
                    return Err(OperatorError::AlreadyIssued);
                }
                Ok(vec![OperatorEvent::OperatorKeyIssued {
                    key_prefix: key_prefix.clone(),
                }])
            }
        }
    }

    fn evolve(mut state: Operator, event: &OperatorEvent) -> Operator {
        match event {
            OperatorEvent::OperatorKeyIssued { key_prefix } => {
                state.key_prefix = Some(key_prefix.clone())
            }
        }
        state
    }
}
