//! The operator's X.509 trust anchors for `x5c` issuers: added (the PEM
//! checked with the X.509 crate first), listed, removed; all on the one
//! stream `registry-trustanchors` (see `proofline_domain::trust_anchor`).

use std::sync::Arc;

use proofline_domain::trust_anchor::{
    self, Anchor, TrustAnchorCommand, TrustAnchorDecider, TrustAnchors,
};
use proofline_domain::values::Name;
use uuid::Uuid;

use crate::handler::{self, CommandContext, CommandError, Decision, Done};
use crate::lenders::Seal;
use crate::registry::Registry;
use crate::store::EventStore;
use crate::x5c::{self, X5cError};

/// Why a PEM is not taken as an anchor (shown to the operator).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the certificate is not a usable trust anchor: {0}")]
pub struct AnchorRefused(pub X5cError);

impl proofline_domain::decider::Rejection for AnchorRefused {
    fn kind(&self) -> proofline_domain::decider::RejectionKind {
        proofline_domain::decider::RejectionKind::Invalid
    }
}

/// Adds `pem` as a trust anchor named `name`.
pub async fn add(
    store: &dyn EventStore,
    context: &CommandContext,
    name: Name,
    pem: &str,
    seal: Seal<'_, Anchor>,
) -> Result<Done<Anchor>, CommandError> {
    let parsed =
        x5c::parse_anchor_pem(pem).map_err(|e| CommandError::rejected(AnchorRefused(e)))?;
    let anchor = Anchor {
        anchor_id: trust_anchor::anchor_id(&parsed.der),
        name,
        pem: pem.trim().to_owned(),
        subject: parsed.subject,
        not_after: parsed.not_after,
    };
    let command = TrustAnchorCommand::Add {
        anchor: anchor.clone(),
    };
    run(store, context, command, anchor, seal).await
}

/// Removes the anchor `anchor_id`: chains to it verify nothing from now on.
pub async fn remove(
    store: &dyn EventStore,
    context: &CommandContext,
    anchor_id: Uuid,
    seal: Seal<'_, ()>,
) -> Result<Done<()>, CommandError> {
    run(
        store,
        context,
        TrustAnchorCommand::Remove { anchor_id },
        (),
        seal,
    )
    .await
}

async fn run<T: Clone>(
    store: &dyn EventStore,
    context: &CommandContext,
    command: TrustAnchorCommand,
    value: T,
    seal: Seal<'_, T>,
) -> Result<Done<T>, CommandError> {
    handler::execute::<TrustAnchorDecider, T>(store, &trust_anchor::stream_id(), context, |state| {
        let events = handler::decide::<TrustAnchorDecider>(&command, state, context.now)?;
        Ok(Decision {
            secrets: seal(&value)?,
            ..Decision::events(events, value.clone())
        })
    })
    .await
}

/// The anchors in force, from the write side.
pub async fn list(registry: &Registry) -> Result<Arc<TrustAnchors>, CommandError> {
    registry.trust_anchors().await
}
