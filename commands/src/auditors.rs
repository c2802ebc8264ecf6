//! The auditor commands: register, rotate its key, revoke the previous one.

use proofline_domain::auditor::{AuditorCommand, AuditorDecider, AuditorEvent, AuditorId};
use proofline_domain::key_ring::GracePeriod;
use proofline_domain::values::{KeyPrefix, Name};
use uuid::Uuid;

use crate::handler::{self, CommandContext, CommandError, Decision, Done};
use crate::lenders::{NewKey, Rotated, Seal};
use crate::store::EventStore;

#[derive(Debug, Clone)]
pub struct AuditorRegistered {
    pub auditor_id: AuditorId,
}

pub async fn register(
    store: &dyn EventStore,
    context: &CommandContext,
    name: &Name,
    key: &NewKey,
    seal: Seal<'_, AuditorRegistered>,
) -> Result<Done<AuditorRegistered>, CommandError> {
    let auditor_id = AuditorId::from_uuid(Uuid::now_v7());
    let command = AuditorCommand::Register {
        auditor_id,
        name: name.clone(),
        key_prefix: key.prefix(),
    };
    handler::execute::<AuditorDecider, AuditorRegistered>(
        store,
        &auditor_id.stream_id(),
        context,
        |state| {
            let events = handler::decide::<AuditorDecider>(&command, state, context.now)?;
            let value = AuditorRegistered { auditor_id };
            let mut secrets = vec![key.secret.clone()];
            secrets.extend(seal(&value)?);
            Ok(Decision {
                secrets,
                ..Decision::events(events, value)
            })
        },
    )
    .await
}

/// Rotates the auditor's key (asked with its current key `using`); the old
/// key keeps working for `grace`.
pub async fn rotate_key(
    store: &dyn EventStore,
    context: &CommandContext,
    auditor_id: AuditorId,
    using: KeyPrefix,
    grace: GracePeriod,
    key: &NewKey,
    seal: Seal<'_, Rotated>,
) -> Result<Done<Rotated>, CommandError> {
    let command = AuditorCommand::RotateKey {
        new_prefix: key.prefix(),
        grace,
        using,
    };
    crate::lenders::rotate::<AuditorDecider>(
        store,
        &auditor_id.stream_id(),
        context,
        &command,
        key,
        seal,
        |event| match event {
            AuditorEvent::ApiKeyRotated {
                previous_valid_until,
                ..
            } => Some(*previous_valid_until),
            _ => None,
        },
    )
    .await
}

/// Ends the auditor's previous key now (asked with its current key).
pub async fn revoke_key(
    store: &dyn EventStore,
    context: &CommandContext,
    auditor_id: AuditorId,
    prefix: KeyPrefix,
    using: KeyPrefix,
) -> Result<Done<()>, CommandError> {
    let command = AuditorCommand::RevokeKey { prefix, using };
    handler::execute::<AuditorDecider, ()>(store, &auditor_id.stream_id(), context, |state| {
        let events = handler::decide::<AuditorDecider>(&command, state, context.now)?;
        Ok(Decision::events(events, ()))
    })
    .await
}
