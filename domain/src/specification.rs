//! Given/when/then for deciders, in the shape of fmodel-rust's
//! `specification.rs`: the events that happened (given), one command at a
//! time (when), and what must follow (then): the new events, the exact
//! rejection, or the state they lead to.
//!
//! ```
//! use proofline_domain::operator::{OperatorCommand, OperatorDecider, OperatorError, OperatorEvent};
//! use proofline_domain::specification::given;
//! # use proofline_domain::{log::Timestamp, values::KeyPrefix};
//! # let now = Timestamp::parse("2026-12-01T00:00:00Z").unwrap();
//! # let prefix = KeyPrefix::parse("0123456789abcdef").unwrap();
//! let issue = OperatorCommand::IssueKey { key_prefix: prefix.clone() };
//! let issued = OperatorEvent::OperatorKeyIssued { key_prefix: prefix };
//! given::<OperatorDecider>([])
//!     .when(issue.clone(), now)
//!     .then([issued.clone()]);
//! given::<OperatorDecider>([issued])
//!     .when(issue, now)
//!     .then_error(OperatorError::AlreadyIssued);
//! ```
//!
//! Every assertion is `#[track_caller]`, so a failure points at the test's
//! line, not at this file.

use std::fmt::Debug;

use crate::decider::Decider;
use crate::log::Timestamp;

/// The history a command is decided against.
pub struct Given<D: Decider> {
    history: Vec<D::Event>,
}

/// Starts a specification from the events that happened.
pub fn given<D: Decider>(events: impl IntoIterator<Item = D::Event>) -> Given<D> {
    Given {
        history: events.into_iter().collect(),
    }
}

impl<D: Decider> Given<D> {
    /// Decides `command` at `now` against the state the history folds to.
    pub fn when(self, command: D::Command, now: Timestamp) -> Then<D> {
        let state = D::fold(&self.history);
        let decided = D::decide(&command, &state, now);
        Then {
            history: self.history,
            decided,
        }
    }
}

/// What a command decided, to be asserted on.
pub struct Then<D: Decider> {
    history: Vec<D::Event>,
    decided: Result<Vec<D::Event>, D::Error>,
}

impl<D: Decider> Then<D>
where
    D::Event: Clone + Debug + PartialEq,
    D::Error: Debug + PartialEq,
{
    /// The command was accepted with exactly `expected`; answers the whole
    /// history (given and new), to continue from.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = D::Event>) -> Vec<D::Event> {
        let expected: Vec<D::Event> = expected.into_iter().collect();
        match self.decided {
            Ok(events) => {
                assert_eq!(events, expected, "the command decided other events");
                let mut history = self.history;
                history.extend(events);
                history
            }
            Err(error) => panic!("expected {expected:?}, but the command was refused: {error:?}"),
        }
    }

    /// The command was refused with exactly `expected`.
    #[track_caller]
    pub fn then_error(self, expected: D::Error) {
        match self.decided {
            Ok(events) => panic!("expected the rejection {expected:?}, but it decided {events:?}"),
            Err(error) => assert_eq!(error, expected, "the command was refused otherwise"),
        }
    }

    /// The command was accepted, whatever its events; answers the whole
    /// history (given and new), to continue from.
    #[track_caller]
    pub fn accepted(self) -> Vec<D::Event> {
        match self.decided {
            Ok(events) => {
                let mut history = self.history;
                history.extend(events);
                history
            }
            Err(error) => panic!("expected the command to be accepted, but: {error:?}"),
        }
    }

    /// The command was accepted and its events lead to `expected`.
    #[track_caller]
    pub fn then_state(self, expected: D::State) -> D::State
    where
        D::State: Debug + PartialEq,
    {
        let state = self.state();
        assert_eq!(state, expected, "the events lead to another state");
        state
    }

    /// The state the command's events lead to (it must be accepted), for
    /// assertions on a part of it.
    #[track_caller]
    pub fn state(self) -> D::State {
        D::fold(&self.accepted())
    }

    /// The decision itself, for the rare test that asserts on both arms.
    pub fn decided(self) -> Result<Vec<D::Event>, D::Error> {
        self.decided
    }
}
