//! Who is calling: the roles of the HTTP contract.

use std::fmt;

use crate::auditor::AuditorId;
use crate::ids::StreamId;
use crate::lender::LenderId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Principal {
    Operator,
    Lender(LenderId),
    Auditor(AuditorId),
}

impl Principal {
    /// The principal a key's owning stream stands for.
    pub fn from_stream(stream: &StreamId) -> Option<Self> {
        match stream.category() {
            "operator" => Some(Principal::Operator),
            "lender" => LenderId::from_stream(stream).map(Principal::Lender),
            "auditor" => AuditorId::from_stream(stream).map(Principal::Auditor),
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
