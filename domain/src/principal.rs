//! Who is calling: the roles of the HTTP contract.

use std::fmt;

use crate::auditor::{AuditorEvent, AuditorId};
use crate::ids::{Category, StreamId};
use crate::lender::{LenderEvent, LenderId};
use crate::log::Envelope;
use crate::operator::OperatorEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Principal {
    Operator,
    Lender(LenderId),
    Auditor(AuditorId),
}

impl Principal {
    /// The principal a key's owning stream stands for.
    pub fn from_stream(stream: &StreamId) -> Option<Self> {
        match stream.kind()? {
            Category::Operator => Some(Principal::Operator),
            Category::Lender => LenderId::from_stream(stream).map(Principal::Lender),
            Category::Auditor => AuditorId::from_stream(stream).map(Principal::Auditor),
            _ => None,
        }
    }

    /// The stream of the principal's aggregate (which holds its keys).
    pub fn stream_id(&self) -> StreamId {
        match self {
            Principal::Operator => crate::operator::stream_id(),
            Principal::Lender(id) => id.stream_id(),
            Principal::Auditor(id) => id.stream_id(),
        }
    }

    pub fn role(&self) -> Role {
        match self {
            Principal::Operator => Role::Operator,
            Principal::Lender(_) => Role::Lender,
            Principal::Auditor(_) => Role::Auditor,
        }
    }

    /// How events name who caused them (`metadata.actor`).
    pub fn actor(&self) -> String {
        match self {
            Principal::Operator => "operator".to_owned(),
            Principal::Lender(id) => format!("lender:{id}"),
            Principal::Auditor(id) => format!("auditor:{id}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Operator,
    Lender,
    Auditor,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Operator => "operator",
            Role::Lender => "lender",
            Role::Auditor => "auditor",
        })
    }
}

/// An event of a principal's stream says whether it changes which keys
/// authenticate the principal (a cached authentication must then be
/// dropped). Each implementation is an exhaustive `match`: a new event
/// cannot be added without saying.
pub trait AffectsCredentials {
    fn affects_credentials(&self) -> bool;
}

/// Whether the stored event `envelope` changes which keys authenticate
/// anyone. An event of a principal's stream that cannot be read is taken
/// to change them: dropping a cached answer costs one argon2 check, keeping
/// a stale one could let a revoked key in.
pub fn affects_credentials(envelope: &Envelope) -> bool {
    fn judged<E: crate::decider::EventSchema + AffectsCredentials>(envelope: &Envelope) -> bool {
        envelope
            .decode::<E>()
            .map_or(true, |event| event.affects_credentials())
    }
    let Some(category) = envelope.stream_id.kind() else {
        return false;
    };
    match category {
        Category::Lender => judged::<LenderEvent>(envelope),
        Category::Auditor => judged::<AuditorEvent>(envelope),
        Category::Operator => judged::<OperatorEvent>(envelope),
        Category::Email
        | Category::Issuer
        | Category::Registry
        | Category::StatusList
        | Category::Verification
        | Category::Webhook
        | Category::Log
        | Category::Service
        | Category::PresentationRequest
        | Category::Oid4vp => false,
    }
}
