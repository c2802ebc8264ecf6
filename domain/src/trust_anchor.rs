//! The X.509 roots the operator trusts for `x5c` issuers: one small stream,
//! `registry-trustanchors`, whose state is the set of anchors in force.
//!
//! An anchor's id derives from its certificate (the SHA-256 of its DER), so
//! one root is registered once. The certificate is parsed outside the
//! domain (the commands crate, with an X.509 crate); the events keep the
//! PEM whole, so the log alone says which roots a decision trusted.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::decider::{Decider, EventSchema, Rejection, RejectionKind};
use crate::ids::{Category, StreamId, derived_uuid};
use crate::log::Timestamp;
use crate::values::Name;

/// Most anchors in force at once.
pub const MAX_ANCHORS: usize = 64;

/// The stream of the trust anchors.
pub fn stream_id() -> StreamId {
    StreamId::singleton(Category::Registry, Some("trustanchors"))
}

/// An anchor's id: derived from its certificate's DER.
pub fn anchor_id(der: &[u8]) -> Uuid {
    derived_uuid(&[b"proofline trust anchor", der])
}

/// An anchor as registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Anchor {
    pub anchor_id: Uuid,
    pub name: Name,
    /// The certificate, PEM.
    pub pem: String,
    /// Its subject, as the X.509 crate writes it (RFC 4514).
    pub subject: String,
    /// Its notAfter, Unix seconds.
    pub not_after: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TrustAnchorCommand {
    Add { anchor: Anchor },
    Remove { anchor_id: Uuid },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum TrustAnchorEvent {
    TrustAnchorAdded {
        #[serde(flatten)]
        anchor: Anchor,
        added_at: Timestamp,
    },
    TrustAnchorRemoved {
        anchor_id: Uuid,
        removed_at: Timestamp,
    },
}

impl EventSchema for TrustAnchorEvent {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustAnchorError {
    #[error("this certificate is a trust anchor already")]
    AlreadyAdded,
    #[error("no trust anchor has this id")]
    NotFound,
    #[error("at most {MAX_ANCHORS} trust anchors")]
    TooMany,
}

impl Rejection for TrustAnchorError {
    fn kind(&self) -> RejectionKind {
        match self {
            TrustAnchorError::AlreadyAdded => RejectionKind::Conflict,
            TrustAnchorError::NotFound => RejectionKind::NotFound,
            TrustAnchorError::TooMany => RejectionKind::Invalid,
        }
    }
}

/// The anchors in force, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrustAnchors {
    pub anchors: Vec<(Anchor, Timestamp)>,
}

pub struct TrustAnchorDecider;

impl Decider for TrustAnchorDecider {
    type Command = TrustAnchorCommand;
    type Event = TrustAnchorEvent;
    type State = TrustAnchors;
    type Error = TrustAnchorError;

    fn decide(
        command: &TrustAnchorCommand,
        state: &TrustAnchors,
        now: Timestamp,
    ) -> Result<Vec<TrustAnchorEvent>, TrustAnchorError> {
        let find = |id: &Uuid| state.anchors.iter().any(|(a, _)| a.anchor_id == *id);
        match command {
            TrustAnchorCommand::Add { anchor } => {
                if find(&anchor.anchor_id) {
                    return Err(TrustAnchorError::AlreadyAdded);
                }
                if state.anchors.len() >= MAX_ANCHORS {
                    return Err(TrustAnchorError::TooMany);
                }
                Ok(vec![TrustAnchorEvent::TrustAnchorAdded {
                    anchor: anchor.clone(),
                    added_at: now,
                }])
            }
            TrustAnchorCommand::Remove { anchor_id } => {
                if !find(anchor_id) {
                    return Err(TrustAnchorError::NotFound);
                }
                Ok(vec![TrustAnchorEvent::TrustAnchorRemoved {
                    anchor_id: *anchor_id,
                    removed_at: now,
                }])
            }
        }
    }

    fn evolve(mut state: TrustAnchors, event: &TrustAnchorEvent) -> TrustAnchors {
        match event {
            TrustAnchorEvent::TrustAnchorAdded { anchor, added_at } => {
                state.anchors.push((anchor.clone(), *added_at));
            }
            TrustAnchorEvent::TrustAnchorRemoved { anchor_id, .. } => {
                state.anchors.retain(|(a, _)| a.anchor_id != *anchor_id);
            }
        }
        state
    }
}
