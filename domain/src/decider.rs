//! The decider shape every aggregate follows, and how its events travel.
//!
//! `decide` holds every rule and may refuse; `evolve` applies an event that
//! was decided (or stored) and never fails. Time is an argument, never read.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::log::Timestamp;

/// An aggregate as a pure decider.
pub trait Decider {
    type Command;
    type Event: EventSchema;
    type State: Default;
    type Error: Rejection;

    fn decide(
        command: &Self::Command,
        state: &Self::State,
        now: Timestamp,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// The state after a history of events.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events
            .into_iter()
            .fold(Self::State::default(), Self::evolve)
    }
}

/// What kind of refusal a domain error is; the HTTP layer maps kinds to
/// statuses, so the domain never speaks HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    /// The input is not acceptable in itself.
    Invalid,
    /// The input is fine but conflicts with the current state.
    Conflict,
    /// The aggregate does not exist.
    NotFound,
    /// The caller may not do this to this aggregate.
    Forbidden,
}

/// A domain error: what kind of refusal it is. It travels boxed, with its
/// type, up to the one HTTP mapping (`Send + Sync + 'static` for that), so
/// a caller can match the exact variant it expects.
pub trait Rejection: std::error::Error + Send + Sync + 'static {
    fn kind(&self) -> RejectionKind;
}

/// An event as the log stores it: a type name, a schema version, data.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedEvent {
    pub event_type: String,
    pub schema_version: u32,
    pub data: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode a stored {event_type} event (schema {schema_version}): {reason}")]
pub struct DecodeError {
    pub event_type: String,
    pub schema_version: u32,
    pub reason: String,
}

/// Events are a wire format: an enum serialized with
/// `#[serde(tag = "type", content = "data")]`, whose variant names are the
/// event type names. A shipped event is never edited: a new shape gets a new
/// schema version, and old ones are upcast in `decode`.
pub trait EventSchema: Serialize + DeserializeOwned + Sized {
    /// The schema version written for new events.
    const SCHEMA_VERSION: u32 = 1;

    fn encode(&self) -> EncodedEvent {
        let mut tagged = serde_json::to_value(self).expect("events always serialize");
        let event_type = tagged["type"].as_str().unwrap_or_default().to_owned();
        let data = tagged
            .get_mut("data")
            .map(Value::take)
            .unwrap_or_else(|| json!({}));
        EncodedEvent {
            event_type,
            schema_version: Self::SCHEMA_VERSION,
            data,
        }
    }

    fn decode(event_type: &str, schema_version: u32, data: &Value) -> Result<Self, DecodeError> {
        let error = |reason: String| DecodeError {
            event_type: event_type.to_owned(),
            schema_version,
            reason,
        };
        if schema_version != Self::SCHEMA_VERSION {
            return Err(error(format!(
                "only schema {} is known",
                Self::SCHEMA_VERSION
            )));
        }
        crate::tagged::from_tagged(event_type, data).map_err(|e| error(e.to_string()))
    }
}
