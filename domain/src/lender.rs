//! The Lender aggregate: registration, API keys (rotation with a grace
//! period, revocation), activation.
//!
//! Invariants, all in [`LenderDecider::decide`]:
//! - a lender registers once;
//! - only an active lender rotates, and only with its current key;
//! - at most one previous key, valid until its grace ends (at most 7 days);
//!   a second rotation replaces it;
//! - revoking ends the previous key now; the current key cannot be revoked,
//!   only rotated away;
//! - deactivation and reactivation each need the opposite state;
//! - suspension and unsuspension too: a lender is active, suspended or
//!   deactivated. Only an active lender is suspended; deactivation ends a
//!   suspension. A suspended lender's keys authenticate nothing and it
//!   changes nothing, but unlike a deactivated one it keeps its webhook
//!   (deliveries go on) and its data.
//!
//! Contact emails are unique across lenders. That is not a rule of one
//! lender's stream: the command handler appends, in the same atomic append,
//! a reservation to the stream [`ContactEmail::reservation_stream`] with
//! `no_stream`, so the store's concurrency control enforces it.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::decider::{Decider, EventSchema, Rejection, RejectionKind};
use crate::ids::{Category, StreamId};
pub use crate::key_ring::{DEFAULT_GRACE_SECONDS, GracePeriod, MAX_GRACE_SECONDS};
use crate::key_ring::{KeyRing, KeyRingError};
use crate::log::Timestamp;
use crate::principal::AffectsCredentials;
use crate::values::{Audience, Audiences, ContactEmail, KeyPrefix, Name, WebhookUrl};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LenderId(Uuid);

impl LenderId {
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    pub fn stream_id(&self) -> StreamId {
        StreamId::of(Category::Lender, self.0)
    }

    /// The lender a `lender-<uuid>` stream belongs to.
    pub fn from_stream(stream: &StreamId) -> Option<Self> {
        stream.uuid_of(Category::Lender).map(Self)
    }
}

impl fmt::Display for LenderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The audience given to a lender that names none.
pub fn default_audience(id: LenderId) -> Audience {
    Audience::parse(&format!("urn:proofline:lender:{id}")).expect("a valid audience")
}

#[derive(Debug, Clone, PartialEq)]
pub enum LenderCommand {
    Register {
        lender_id: LenderId,
        name: Name,
        contact_email: ContactEmail,
        audiences: Audiences,
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
    Deactivate,
    Reactivate,
    Suspend,
    Unsuspend,
    /// Sets (or replaces) the webhook; its signing secret is kept outside
    /// the log by the command handler.
    ConfigureWebhook {
        url: WebhookUrl,
    },
    RemoveWebhook,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum LenderEvent {
    LenderRegistered {
        lender_id: LenderId,
        name: Name,
        contact_email: ContactEmail,
        /// The default audience: the first of `audiences`.
        audience: Audience,
        /// Every audience the lender may verify for (absent in events
        /// written before lenders had several: then `audience` alone).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        audiences: Vec<Audience>,
    },
    ApiKeyIssued {
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
    LenderDeactivated {
        deactivated_at: Timestamp,
    },
    LenderReactivated {
        reactivated_at: Timestamp,
    },
    LenderSuspended {
        suspended_at: Timestamp,
    },
    LenderUnsuspended {
        unsuspended_at: Timestamp,
    },
    WebhookConfigured {
        url: WebhookUrl,
        configured_at: Timestamp,
    },
    WebhookRemoved {
        removed_at: Timestamp,
    },
}

impl EventSchema for LenderEvent {}

impl AffectsCredentials for LenderEvent {
    fn affects_credentials(&self) -> bool {
        match self {
            // The key is issued by the `ApiKeyIssued` that follows.
            LenderEvent::LenderRegistered { .. } => false,
            LenderEvent::ApiKeyIssued { .. }
            | LenderEvent::ApiKeyRotated { .. }
            | LenderEvent::ApiKeyRevoked { .. }
            | LenderEvent::LenderDeactivated { .. }
            | LenderEvent::LenderReactivated { .. }
            | LenderEvent::LenderSuspended { .. }
            | LenderEvent::LenderUnsuspended { .. } => true,
            LenderEvent::WebhookConfigured { .. } | LenderEvent::WebhookRemoved { .. } => false,
        }
    }
}

/// The event of the email reservation stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum ReservationEvent {
    ContactEmailReserved { lender_id: LenderId },
}

impl EventSchema for ReservationEvent {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lender {
    pub id: LenderId,
    pub name: Name,
    pub contact_email: ContactEmail,
    /// What Key Binding JWTs presented to this lender may name as `aud`;
    /// no lender can verify a presentation made for another.
    pub audiences: Audiences,
    pub active: bool,
    /// Suspended by the operator: no key authenticates until unsuspended.
    pub suspended: bool,
    /// The current key (set by the `ApiKeyIssued` that always follows
    /// registration) and a previous one in its grace.
    pub keys: KeyRing,
    pub webhook: Option<WebhookUrl>,
}

// A state lives for one command or one cache entry; boxing it would only
// add an allocation to every load.
#[expect(
    clippy::large_enum_variant,
    reason = "short-lived aggregate state; boxing would add an allocation per load"
)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LenderState {
    #[default]
    Unregistered,
    Registered(Lender),
}

/// Whether a key authenticates its lender at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyValidity {
    /// Valid; `until` is the end of its grace for a previous key.
    Valid { until: Option<Timestamp> },
    /// The lender is deactivated.
    Inactive,
    /// The lender is suspended.
    Suspended,
    /// Rotated away and past its grace, or revoked, or never this lender's.
    Invalid,
}

impl Lender {
    /// Whether the lender may change its keys or its webhook.
    fn may_change(&self) -> Result<(), LenderError> {
        if !self.active {
            return Err(LenderError::Deactivated);
        }
        if self.suspended {
            return Err(LenderError::Suspended);
        }
        Ok(())
    }

    pub fn key_validity(&self, prefix: &str, now: Timestamp) -> KeyValidity {
        if !self.active {
            return KeyValidity::Inactive;
        }
        if self.suspended {
            return KeyValidity::Suspended;
        }
        match self.keys.validity(prefix, now) {
            Some(until) => KeyValidity::Valid { until },
            None => KeyValidity::Invalid,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LenderError {
    #[error("the lender is already registered")]
    AlreadyRegistered,
    #[error("no such lender")]
    NotFound,
    #[error("the lender is deactivated")]
    Deactivated,
    #[error("the lender is already active")]
    AlreadyActive,
    #[error("the lender is already deactivated")]
    AlreadyDeactivated,
    #[error("the lender is suspended")]
    Suspended,
    #[error("the lender is already suspended")]
    AlreadySuspended,
    #[error("the lender is not suspended")]
    NotSuspended,
    #[error("only the current key may rotate or revoke keys")]
    NotCurrentKey,
    #[error("the grace period is at most {max_seconds} seconds")]
    GraceTooLong { max_seconds: u64 },
    #[error("the current key cannot be revoked; rotate it first")]
    CannotRevokeCurrentKey,
    #[error("no such key in its grace period")]
    KeyNotFound,
    #[error("no webhook is configured")]
    NoWebhook,
}

impl From<KeyRingError> for LenderError {
    fn from(error: KeyRingError) -> Self {
        match error {
            KeyRingError::NotCurrentKey => LenderError::NotCurrentKey,
            KeyRingError::GraceTooLong { max_seconds } => LenderError::GraceTooLong { max_seconds },
            KeyRingError::CannotRevokeCurrentKey => LenderError::CannotRevokeCurrentKey,
            KeyRingError::KeyNotFound => LenderError::KeyNotFound,
        }
    }
}

impl Rejection for LenderError {
    fn kind(&self) -> RejectionKind {
        match self {
            LenderError::AlreadyRegistered
            | LenderError::Deactivated
            | LenderError::AlreadyActive
            | LenderError::AlreadyDeactivated
            | LenderError::Suspended
            | LenderError::AlreadySuspended
            | LenderError::NotSuspended
            | LenderError::CannotRevokeCurrentKey => RejectionKind::Conflict,
            LenderError::NotFound | LenderError::KeyNotFound | LenderError::NoWebhook => {
                RejectionKind::NotFound
            }
            LenderError::NotCurrentKey => RejectionKind::Forbidden,
            LenderError::GraceTooLong { .. } => RejectionKind::Invalid,
        }
    }
}

pub struct LenderDecider;

impl Decider for LenderDecider {
    type Command = LenderCommand;
    type Event = LenderEvent;
    type State = LenderState;
    type Error = LenderError;

    fn decide(
        command: &LenderCommand,
        state: &LenderState,
        now: Timestamp,
    ) -> Result<Vec<LenderEvent>, LenderError> {
        let lender = match (command, state) {
            (
                LenderCommand::Register {
                    lender_id,
                    name,
                    contact_email,
                    audiences,
                    key_prefix,
                },
                LenderState::Unregistered,
            ) => {
                return Ok(vec![
                    LenderEvent::LenderRegistered {
                        lender_id: *lender_id,
                        name: name.clone(),
                        contact_email: contact_email.clone(),
                        audience: audiences.first().clone(),
                        audiences: audiences.as_slice().to_vec(),
                    },
                    LenderEvent::ApiKeyIssued {
                        key_prefix: key_prefix.clone(),
                        issued_at: now,
                    },
                ]);
            }
            (LenderCommand::Register { .. }, LenderState::Registered(_)) => {
                return Err(LenderError::AlreadyRegistered);
            }
            (_, LenderState::Unregistered) => return Err(LenderError::NotFound),
            (_, LenderState::Registered(lender)) => lender,
        };
        match command {
            LenderCommand::Register { .. } => Err(LenderError::AlreadyRegistered),
            LenderCommand::RotateKey {
                new_prefix,
                grace,
                using,
            } => {
                lender.may_change()?;
                let rotation = lender.keys.rotate(using, *grace, now)?;
                Ok(vec![LenderEvent::ApiKeyRotated {
                    new_prefix: new_prefix.clone(),
                    issued_at: now,
                    previous_prefix: rotation.previous_prefix,
                    previous_valid_until: rotation.previous_valid_until,
                    dropped_prefix: rotation.dropped_prefix,
                }])
            }
            LenderCommand::RevokeKey { prefix, using } => {
                if lender.suspended {
                    return Err(LenderError::Suspended);
                }
                lender.keys.revoke(prefix, using, now)?;
                Ok(vec![LenderEvent::ApiKeyRevoked {
                    key_prefix: prefix.clone(),
                    revoked_at: now,
                }])
            }
            LenderCommand::Deactivate => {
                if !lender.active {
                    return Err(LenderError::AlreadyDeactivated);
                }
                Ok(vec![LenderEvent::LenderDeactivated {
                    deactivated_at: now,
                }])
            }
            LenderCommand::Reactivate => {
                if lender.active {
                    return Err(LenderError::AlreadyActive);
                }
                Ok(vec![LenderEvent::LenderReactivated {
                    reactivated_at: now,
                }])
            }
            LenderCommand::Suspend => {
                if !lender.active {
                    return Err(LenderError::Deactivated);
                }
                if lender.suspended {
                    return Err(LenderError::AlreadySuspended);
                }
                Ok(vec![LenderEvent::LenderSuspended { suspended_at: now }])
            }
            LenderCommand::Unsuspend => {
                if !lender.suspended {
                    return Err(LenderError::NotSuspended);
                }
                Ok(vec![LenderEvent::LenderUnsuspended {
                    unsuspended_at: now,
                }])
            }
            LenderCommand::ConfigureWebhook { url } => {
                lender.may_change()?;
                Ok(vec![LenderEvent::WebhookConfigured {
                    url: url.clone(),
                    configured_at: now,
                }])
            }
            LenderCommand::RemoveWebhook => {
                if lender.webhook.is_none() {
                    return Err(LenderError::NoWebhook);
                }
                Ok(vec![LenderEvent::WebhookRemoved { removed_at: now }])
            }
        }
    }

    fn evolve(state: LenderState, event: &LenderEvent) -> LenderState {
        match (state, event) {
            (
                LenderState::Unregistered,
                LenderEvent::LenderRegistered {
                    lender_id,
                    name,
                    contact_email,
                    audience,
                    audiences,
                },
            ) => LenderState::Registered(Lender {
                id: *lender_id,
                name: name.clone(),
                contact_email: contact_email.clone(),
                // A registration decided the list; an older event without
                // one had its single audience.
                audiences: Audiences::new(audiences.clone())
                    .unwrap_or_else(|_| Audiences::single(audience.clone())),
                active: true,
                suspended: false,
                keys: KeyRing::default(),
                webhook: None,
            }),
            (LenderState::Registered(mut lender), event) => {
                match event {
                    LenderEvent::LenderRegistered { .. } => {}
                    LenderEvent::ApiKeyIssued {
                        key_prefix,
                        issued_at,
                    } => lender.keys.issued(key_prefix, *issued_at),
                    LenderEvent::ApiKeyRotated {
                        new_prefix,
                        issued_at,
                        previous_valid_until,
                        ..
                    } => lender
                        .keys
                        .rotated(new_prefix, *issued_at, *previous_valid_until),
                    LenderEvent::ApiKeyRevoked { key_prefix, .. } => {
                        lender.keys.revoked(key_prefix)
                    }
                    // Deactivation is the stronger state: it ends a
                    // suspension.
                    LenderEvent::LenderDeactivated { .. } => {
                        lender.active = false;
                        lender.suspended = false;
                    }
                    LenderEvent::LenderReactivated { .. } => lender.active = true,
                    LenderEvent::LenderSuspended { .. } => lender.suspended = true,
                    LenderEvent::LenderUnsuspended { .. } => lender.suspended = false,
                    LenderEvent::WebhookConfigured { url, .. } => {
                        lender.webhook = Some(url.clone());
                    }
                    LenderEvent::WebhookRemoved { .. } => lender.webhook = None,
                }
                LenderState::Registered(lender)
            }
            // An event before registration cannot have been decided; ignore it.
            (state, _) => state,
        }
    }
}
