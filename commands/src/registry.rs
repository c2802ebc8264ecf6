//! The trust registry as the verifier reads it: issuers and status lists,
//! from the write side (their aggregates), cached.
//!
//! Each cached aggregate remembers the stream version it has reached and the
//! log head it was last checked at. A lookup while the head has not moved
//! costs nothing; after it moved, only the events past the cached version
//! are read. Within a process the head moves the moment a command commits,
//! so a suspension or a new list is seen by the next verification; other
//! processes' commands are seen as soon as their NOTIFY (or the store's
//! poll) arrives.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use proofline_domain::decider::{Decider, EventSchema};
use proofline_domain::did::Did;
use proofline_domain::ids::StreamId;
use proofline_domain::issuer::{Issuer, IssuerDecider, IssuerId};
use proofline_domain::status_list::{ListUri, StatusList, StatusListDecider};

use crate::handler::CommandError;
use crate::issuers::{CatalogEvent, catalog_stream};
use crate::store::EventStore;

struct Cached<S> {
    state: Option<Arc<S>>,
    version: u64,
    checked_at_head: u64,
}

struct Cache<D: Decider> {
    entries: RwLock<HashMap<StreamId, Cached<<D as Decider>::State>>>,
}

impl<D: Decider> Default for Cache<D> {
    fn default() -> Self {
        Self {
            entries: RwLock::default(),
        }
    }
}

impl<D> Cache<D>
where
    D: Decider,
    D::State: Clone + Send + Sync + 'static,
{
    /// The aggregate's state, refreshed if the log moved since it was read.
    async fn get(
        &self,
        store: &dyn EventStore,
        stream: &StreamId,
        force: bool,
    ) -> Result<Arc<D::State>, CommandError> {
        let head = *store.watch_head().borrow();
        let (mut state, mut version) = {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            match entries.get(stream) {
                Some(cached) if cached.checked_at_head == head && !force => {
                    if let Some(state) = &cached.state {
                        return Ok(state.clone());
                    }
                    (D::State::default(), cached.version)
                }
                Some(cached) => (
                    cached.state.as_deref().cloned().unwrap_or_default(),
                    cached.version,
                ),
                None => (D::State::default(), 0),
            }
        };
        loop {
            let page = store.read_stream(stream, version, 1_000).await?;
            let done = page.len() < 1_000;
            for envelope in page {
                let event = D::Event::decode(
                    &envelope.event_type,
                    envelope.schema_version,
                    &envelope.data,
                )?;
                state = D::evolve(state, &event);
                version = envelope.stream_version;
            }
            if done {
                break;
            }
        }
        let state = Arc::new(state);
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                stream.clone(),
                Cached {
                    state: Some(state.clone()),
                    version,
                    checked_at_head: head,
                },
            );
        Ok(state)
    }
}

pub struct Registry {
    store: Arc<dyn EventStore>,
    issuers: Cache<IssuerDecider>,
    lists: Cache<StatusListDecider>,
}

impl Registry {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            issuers: Cache::default(),
            lists: Cache::default(),
        }
    }

    /// The issuer with this DID, as the log says now.
    pub async fn issuer(&self, did: &Did) -> Result<Option<Issuer>, CommandError> {
        let state = self
            .issuers
            .get(
                self.store.as_ref(),
                &IssuerId::for_did(did).stream_id(),
                false,
            )
            .await?;
        Ok(state.as_ref().clone())
    }

    /// The issuer, read through to the store whatever the cache says (for
    /// commands that must not act on a stale view).
    pub async fn issuer_now(&self, did: &Did) -> Result<Option<Issuer>, CommandError> {
        let state = self
            .issuers
            .get(
                self.store.as_ref(),
                &IssuerId::for_did(did).stream_id(),
                true,
            )
            .await?;
        Ok(state.as_ref().clone())
    }

    /// The status list published at `uri`, if any.
    pub async fn status_list(&self, uri: &ListUri) -> Result<Option<StatusList>, CommandError> {
        let state = self
            .lists
            .get(self.store.as_ref(), &uri.stream_id(), false)
            .await?;
        Ok(state.as_ref().clone())
    }

    /// Every registered issuer, in registration order.
    pub async fn issuers(&self) -> Result<Vec<Issuer>, CommandError> {
        let mut dids = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .store
                .read_stream(&catalog_stream(), after, 1_000)
                .await?;
            let done = page.len() < 1_000;
            for envelope in page {
                let CatalogEvent::IssuerListed { did, .. } = CatalogEvent::decode(
                    &envelope.event_type,
                    envelope.schema_version,
                    &envelope.data,
                )?;
                dids.push(did);
                after = envelope.stream_version;
            }
            if done {
                break;
            }
        }
        let mut issuers = Vec::with_capacity(dids.len());
        for did in dids {
            if let Some(issuer) = self.issuer(&did).await? {
                issuers.push(issuer);
            }
        }
        Ok(issuers)
    }
}
