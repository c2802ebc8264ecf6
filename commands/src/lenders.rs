//! The lender commands: register, rotate and revoke keys, deactivate and
//! reactivate.
//!
//! Every function takes a `seal`: it turns what the command decided into
//! secrets written in the same transaction as the events (the HTTP layer
//! uses it for idempotent answers). [`no_seal`] writes none.

use proofline_domain::api_key::ApiKey;
use proofline_domain::decider::{Decider, Rejection, RejectionKind};
use proofline_domain::ids::StreamId;
use proofline_domain::lender::{
    GracePeriod, Lender, LenderCommand, LenderDecider, LenderId, LenderState, ReservationEvent,
};
use proofline_domain::log::Timestamp;
use proofline_domain::values::{Audiences, ContactEmail, KeyPrefix, Name};
use uuid::Uuid;

use crate::handler::{self, CommandContext, CommandError, Decision, Done};
use crate::keys::{self, KeyError};
use crate::store::{EventStore, ExpectedVersion, NewEvent, SecretWrite};

/// Extra secrets from a command's decided value.
pub type Seal<'a, V> = &'a (dyn Fn(&V) -> Result<Vec<SecretWrite>, CommandError> + Send + Sync);

/// A seal that adds nothing.
pub fn no_seal<V>(_: &V) -> Result<Vec<SecretWrite>, CommandError> {
    Ok(Vec::new())
}

/// A freshly generated API key and the secrets row of its hash.
#[derive(Clone)]
pub struct NewKey {
    pub api_key: ApiKey,
    pub(crate) secret: SecretWrite,
}

impl NewKey {
    /// A key from the OS random source, hashed with argon2id on the blocking
    /// pool.
    pub async fn generate() -> Result<Self, KeyError> {
        let api_key = keys::generate_api_key()?;
        let secret = keys::hashed_key_secret(&api_key).await?;
        Ok(Self { api_key, secret })
    }

    pub fn prefix(&self) -> KeyPrefix {
        KeyPrefix::from(&self.api_key)
    }
}

/// What a registration decided.
#[derive(Debug, Clone)]
pub struct Registered {
    pub lender_id: LenderId,
    pub audiences: Audiences,
}

pub struct Registration {
    pub name: Name,
    pub contact_email: ContactEmail,
    /// `None`: the one audience `urn:proofline:lender:<id>`.
    pub audiences: Option<Audiences>,
}

/// What the log's other streams refuse of a registration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// The email's reservation stream exists: another lender has it.
    #[error("contact_email is already registered to a lender")]
    ContactEmailTaken,
}

impl Rejection for RegistrationError {
    fn kind(&self) -> RejectionKind {
        match self {
            RegistrationError::ContactEmailTaken => RejectionKind::Conflict,
        }
    }
}

pub async fn register(
    store: &dyn EventStore,
    context: &CommandContext,
    registration: &Registration,
    key: &NewKey,
    seal: Seal<'_, Registered>,
) -> Result<Done<Registered>, CommandError> {
    let lender_id = LenderId::from_uuid(Uuid::now_v7());
    let audiences = registration.audiences.clone().unwrap_or_else(|| {
        Audiences::single(proofline_domain::lender::default_audience(lender_id))
    });
    let command = LenderCommand::Register {
        lender_id,
        name: registration.name.clone(),
        contact_email: registration.contact_email.clone(),
        audiences: audiences.clone(),
        key_prefix: key.prefix(),
    };
    let reservation = registration.contact_email.reservation_stream();
    let result = handler::execute::<LenderDecider, Registered>(
        store,
        &lender_id.stream_id(),
        context,
        |state| {
            let events = handler::decide::<LenderDecider>(&command, state, context.now)?;
            let reserved = ReservationEvent::ContactEmailReserved { lender_id };
            let value = Registered {
                lender_id,
                audiences: audiences.clone(),
            };
            let mut secrets = vec![key.secret.clone()];
            secrets.extend(seal(&value)?);
            Ok(Decision {
                events,
                also: vec![(
                    reservation.clone(),
                    ExpectedVersion::NoStream,
                    vec![NewEvent::of(&reserved)],
                )],
                secrets,
                value,
            })
        },
    )
    .await;
    match result {
        Err(CommandError::Taken { stream_id }) if stream_id == reservation => {
            Err(CommandError::rejected(RegistrationError::ContactEmailTaken))
        }
        other => other,
    }
}

/// The lender's state now, read from its stream (the write side).
pub async fn get(
    store: &dyn EventStore,
    lender_id: LenderId,
) -> Result<Option<Lender>, CommandError> {
    match handler::load::<LenderDecider>(store, &lender_id.stream_id())
        .await?
        .state
    {
        LenderState::Registered(lender) => Ok(Some(lender)),
        LenderState::Unregistered => Ok(None),
    }
}

/// What a rotation decided.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub previous_key_valid_until: Timestamp,
}

pub async fn rotate_key(
    store: &dyn EventStore,
    context: &CommandContext,
    lender_id: LenderId,
    using: KeyPrefix,
    grace: GracePeriod,
    key: &NewKey,
    seal: Seal<'_, Rotated>,
) -> Result<Done<Rotated>, CommandError> {
    let command = LenderCommand::RotateKey {
        new_prefix: key.prefix(),
        grace,
        using,
    };
    rotate::<LenderDecider>(
        store,
        &lender_id.stream_id(),
        context,
        &command,
        key,
        seal,
        |event| match event {
            proofline_domain::lender::LenderEvent::ApiKeyRotated {
                previous_valid_until,
                ..
            } => Some(*previous_valid_until),
            _ => None,
        },
    )
    .await
}

/// Runs a key rotation of any principal's aggregate `D`: the new key's hash
/// is written with the events, and the answer says until when the previous
/// key is valid (read from the rotation event by `valid_until`).
pub(crate) async fn rotate<D: Decider>(
    store: &dyn EventStore,
    stream: &StreamId,
    context: &CommandContext,
    command: &D::Command,
    key: &NewKey,
    seal: Seal<'_, Rotated>,
    valid_until: impl Fn(&D::Event) -> Option<Timestamp>,
) -> Result<Done<Rotated>, CommandError> {
    handler::execute::<D, Rotated>(store, stream, context, |state| {
        let events = handler::decide::<D>(command, state, context.now)?;
        let value = Rotated {
            previous_key_valid_until: events.iter().find_map(&valid_until).unwrap_or(context.now),
        };
        let mut secrets = vec![key.secret.clone()];
        secrets.extend(seal(&value)?);
        Ok(Decision {
            secrets,
            ..Decision::events(events, value)
        })
    })
    .await
}

/// Runs a lender command whose answer is only its position.
pub async fn run(
    store: &dyn EventStore,
    context: &CommandContext,
    lender_id: LenderId,
    command: LenderCommand,
    seal: Seal<'_, ()>,
) -> Result<Done<()>, CommandError> {
    handler::execute::<LenderDecider, ()>(store, &lender_id.stream_id(), context, |state| {
        let events = handler::decide::<LenderDecider>(&command, state, context.now)?;
        Ok(Decision {
            secrets: seal(&())?,
            ..Decision::events(events, ())
        })
    })
    .await
}
