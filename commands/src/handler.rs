//! Load, decide, append: the one way commands change state.
//!
//! An aggregate is loaded from its stream, the decider decides with the time
//! of the command, and the events are appended with the version that was
//! loaded as the expected version. If another command got there first, the
//! stream is reloaded and the decision taken again, a few times, before
//! giving up with [`CommandError::Contention`].

use chrono::Utc;
use std::sync::Arc;

use proofline_domain::decider::{Decider, DecodeError, Rejection, RejectionKind};
use proofline_domain::ids::StreamId;
use proofline_domain::log::{Metadata, Timestamp};

use crate::store::{
    AppendOutcome, AppendRequest, EventStore, ExpectedVersion, NewEvent, SecretWrite, StoreError,
    StreamAppend,
};

/// Attempts before a contended command gives up.
const ATTEMPTS: usize = 5;
/// Events read per page when loading a stream.
const PAGE: usize = 1_000;

/// The time of a command and what its events' metadata says.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub now: Timestamp,
    pub metadata: Metadata,
}

impl CommandContext {
    /// A context at the current time.
    pub fn now(metadata: Metadata) -> Self {
        Self {
            now: Timestamp::from_datetime(Utc::now()),
            metadata,
        }
    }
}

/// A domain rejection with its type kept: the one HTTP mapping reads its
/// [`RejectionKind`], and a caller that expects a particular refusal
/// matches the exact variant ([`Rejected::is`], [`Rejected::downcast_ref`]).
#[derive(Debug, Clone)]
pub struct Rejected(Arc<dyn Rejection>);

impl Rejected {
    pub fn new(error: impl Rejection) -> Self {
        Self(Arc::new(error))
    }

    pub fn kind(&self) -> RejectionKind {
        self.0.kind()
    }

    /// The domain error, if it is an `E`.
    pub fn downcast_ref<E: Rejection>(&self) -> Option<&E> {
        let error: &(dyn std::error::Error + 'static) = &*self.0;
        error.downcast_ref::<E>()
    }

    /// Whether the domain error is exactly `expected`.
    pub fn is<E: Rejection + PartialEq>(&self, expected: &E) -> bool {
        self.downcast_ref::<E>() == Some(expected)
    }
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Rejected {}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CommandError {
    /// The domain refused the command.
    #[error(transparent)]
    Rejected(Rejected),
    /// Another stream of the append (such as a uniqueness reservation) was
    /// not at the expected version; the caller knows what that means.
    #[error("stream {stream_id} is taken")]
    Taken { stream_id: StreamId },
    /// The aggregate kept changing under the command.
    #[error("stream {stream_id} kept changing; try again")]
    Contention { stream_id: StreamId },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event cannot be read back.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl CommandError {
    pub fn rejected(error: impl Rejection) -> Self {
        CommandError::Rejected(Rejected::new(error))
    }

    /// The domain's refusal, if this is one.
    pub fn rejection(&self) -> Option<&Rejected> {
        match self {
            CommandError::Rejected(rejected) => Some(rejected),
            _ => None,
        }
    }
}

/// An aggregate's state and the version it was loaded at.
#[derive(Debug, Clone)]
pub struct Loaded<S> {
    pub state: S,
    pub version: u64,
}

pub async fn load<D: Decider>(
    store: &dyn EventStore,
    stream: &StreamId,
) -> Result<Loaded<D::State>, CommandError> {
    let mut state = D::State::default();
    let mut version = 0;
    loop {
        let page = store.read_stream(stream, version, PAGE).await?;
        let done = page.len() < PAGE;
        for envelope in page {
            let event = envelope.decode::<D::Event>()?;
            state = D::evolve(state, &event);
            version = envelope.stream_version;
        }
        if done {
            return Ok(Loaded { state, version });
        }
    }
}

/// What one attempt decided.
pub struct Decision<E, T> {
    /// The aggregate's new events.
    pub events: Vec<E>,
    /// Other streams that must accept their events in the same append.
    pub also: Vec<(StreamId, ExpectedVersion, Vec<NewEvent>)>,
    /// Secrets written in the same transaction.
    pub secrets: Vec<SecretWrite>,
    /// What the command answers, besides the position.
    pub value: T,
}

impl<E, T> Decision<E, T> {
    pub fn events(events: Vec<E>, value: T) -> Self {
        Self {
            events,
            also: Vec::new(),
            secrets: Vec::new(),
            value,
        }
    }
}

/// A command that was appended.
#[derive(Debug, Clone)]
pub struct Done<T> {
    pub value: T,
    pub outcome: AppendOutcome,
}

impl<T> Done<T> {
    /// The position of the command's last event: what a query passes as
    /// `min_position` to read its own write.
    pub fn position(&self) -> u64 {
        self.outcome.last_position
    }
}

/// Loads the aggregate, asks `decide` for a decision, appends it; on a
/// conflict on the aggregate's own stream, does it all again.
pub async fn execute<D, T>(
    store: &dyn EventStore,
    stream: &StreamId,
    context: &CommandContext,
    decide: impl FnMut(&D::State) -> Result<Decision<D::Event, T>, CommandError>,
) -> Result<Done<T>, CommandError>
where
    D: Decider,
{
    execute_if_any::<D, T>(store, stream, context, decide)
        .await?
        .ok_or_else(|| {
            CommandError::Store(StoreError::InvalidAppend(
                "the command decided no events".into(),
            ))
        })
}

/// As [`execute`], for commands that may decide nothing (a fetched
/// document that had not changed): `None` then, and nothing is appended.
pub async fn execute_if_any<D, T>(
    store: &dyn EventStore,
    stream: &StreamId,
    context: &CommandContext,
    mut decide: impl FnMut(&D::State) -> Result<Decision<D::Event, T>, CommandError>,
) -> Result<Option<Done<T>>, CommandError>
where
    D: Decider,
{
    for _ in 0..ATTEMPTS {
        let loaded = load::<D>(store, stream).await?;
        let decision = decide(&loaded.state)?;
        if decision.events.is_empty() && decision.also.is_empty() && decision.secrets.is_empty() {
            return Ok(None);
        }
        let events = decision.events.iter().map(NewEvent::of);
        let request = AppendRequest {
            stream_id: stream.clone(),
            expected: ExpectedVersion::Exact(loaded.version),
            events: events.collect(),
            also: decision
                .also
                .into_iter()
                .map(|(stream_id, expected, events)| StreamAppend {
                    stream_id,
                    expected,
                    events,
                })
                .collect(),
            metadata: context.metadata.clone(),
            secrets: decision.secrets,
        };
        match store.append(request).await {
            Ok(outcome) => {
                return Ok(Some(Done {
                    value: decision.value,
                    outcome,
                }));
            }
            Err(StoreError::Conflict { stream_id, .. }) if stream_id == *stream => continue,
            Err(StoreError::Conflict { stream_id, .. }) => {
                return Err(CommandError::Taken { stream_id });
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(CommandError::Contention {
        stream_id: stream.clone(),
    })
}

/// Decides with a domain decider and maps its refusal.
pub fn decide<D: Decider>(
    command: &D::Command,
    state: &D::State,
    now: Timestamp,
) -> Result<Vec<D::Event>, CommandError> {
    D::decide(command, state, now).map_err(CommandError::rejected)
}
