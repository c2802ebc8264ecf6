//! The auditor commands.

use proofline_domain::auditor::{AuditorCommand, AuditorDecider, AuditorId};
use proofline_domain::values::Name;
use uuid::Uuid;

use crate::handler::{self, CommandContext, CommandError, Decision, Done};
use crate::lenders::{NewKey, Seal};
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
