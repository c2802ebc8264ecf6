//! The trust registry's commands: issuers and status lists.
//!
//! Registering an issuer also appends, in the same atomic append, an entry
//! to the catalog stream `registry-issuers`: one small stream in which an
//! auditor or analyst finds every issuer ever registered. (The API lists
//! issuers from the `issuers` read model.)

use proofline_domain::decider::EventSchema;
use proofline_domain::did::Did;
use proofline_domain::ids::{Category, StreamId};
use proofline_domain::issuer::{
    IssuerCommand, IssuerDecider, IssuerId, KeySource, RegisteredKey, Vct,
};
use proofline_domain::status_list::{self, ListUri, StatusListCommand, StatusListDecider};
use proofline_domain::values::Name;
use serde::{Deserialize, Serialize};

use crate::handler::{self, CommandContext, CommandError, Decision, Done};
use crate::lenders::Seal;
use crate::registry::Registry;
use crate::store::{EventStore, ExpectedVersion, NewEvent};

/// The catalog of registered issuers.
pub fn catalog_stream() -> StreamId {
    StreamId::singleton(Category::Registry, Some("issuers"))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum CatalogEvent {
    IssuerListed { issuer_id: IssuerId, did: Did },
}

impl EventSchema for CatalogEvent {}

/// An issuer to register: what `IssuerCommand::Register` carries.
#[derive(Debug, Clone)]
pub struct NewIssuer {
    pub did: Did,
    pub name: Name,
    pub keys: Vec<RegisteredKey>,
    pub credential_types: Option<Vec<Vct>>,
    /// `None`: the default sources.
    pub key_sources: Option<Vec<KeySource>>,
}

/// Registers an issuer, and lists it in the catalog in the same append.
pub async fn register(
    store: &dyn EventStore,
    context: &CommandContext,
    issuer: NewIssuer,
    seal: Seal<'_, IssuerId>,
) -> Result<Done<IssuerId>, CommandError> {
    let did = &issuer.did;
    let issuer_id = IssuerId::for_did(did);
    let listed = CatalogEvent::IssuerListed {
        issuer_id,
        did: did.clone(),
    };
    let command = IssuerCommand::Register {
        did: did.clone(),
        name: issuer.name,
        keys: issuer.keys,
        credential_types: issuer.credential_types,
        key_sources: issuer.key_sources,
    };
    handler::execute::<IssuerDecider, IssuerId>(store, &issuer_id.stream_id(), context, |state| {
        let events = handler::decide::<IssuerDecider>(&command, state, context.now)?;
        let catalog = NewEvent::of(&listed);
        Ok(Decision {
            also: vec![(catalog_stream(), ExpectedVersion::Any, vec![catalog])],
            secrets: seal(&issuer_id)?,
            ..Decision::events(events, issuer_id)
        })
    })
    .await
}

/// Any other issuer command, on the issuer with this DID.
pub async fn run(
    store: &dyn EventStore,
    context: &CommandContext,
    did: &Did,
    command: IssuerCommand,
    seal: Seal<'_, ()>,
) -> Result<Done<()>, CommandError> {
    let stream = IssuerId::for_did(did).stream_id();
    handler::execute::<IssuerDecider, ()>(store, &stream, context, |state| {
        let events = handler::decide::<IssuerDecider>(&command, state, context.now)?;
        Ok(Decision {
            secrets: seal(&())?,
            ..Decision::events(events, ())
        })
    })
    .await
}

/// Publishes a status list token for `uri`, after checking it against the
/// current state of its issuer. The issuer is the token's `iss`, or the DID
/// of its `kid`; when the token names neither, the issuer the list already
/// belongs to, or `issuer_hint` from the request.
pub async fn publish_status_list(
    store: &dyn EventStore,
    registry: &Registry,
    context: &CommandContext,
    uri: &ListUri,
    token: &str,
    issuer_hint: Option<Did>,
    seal: Seal<'_, ()>,
) -> Result<Done<()>, CommandError> {
    let rejected = |error: status_list::StatusListError| CommandError::rejected(error);
    let did = match status_list::claimed_issuer(token) {
        Ok(did) => did,
        Err(status_list::StatusListError::NoIssuer) => {
            let current = registry
                .status_list(uri)
                .await?
                .as_ref()
                .as_ref()
                .map(|list| list.issuer.clone());
            current
                .or(issuer_hint)
                .ok_or_else(|| rejected(status_list::StatusListError::NoIssuer))?
        }
        Err(other) => return Err(rejected(other)),
    };
    let issuer = registry
        .issuer_now(&did)
        .await?
        .ok_or_else(|| rejected(status_list::StatusListError::UnknownIssuer))?;
    let list = status_list::verify_token(token, uri, &issuer, context.now).map_err(rejected)?;
    let command = StatusListCommand::Publish { list };
    handler::execute::<StatusListDecider, ()>(store, &uri.stream_id(), context, |state| {
        let events = handler::decide::<StatusListDecider>(&command, state, context.now)?;
        Ok(Decision {
            secrets: seal(&())?,
            ..Decision::events(events, ())
        })
    })
    .await
}
