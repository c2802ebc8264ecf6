//! The trust registry as the verifier reads it: issuers and status lists,
//! from the write side (their aggregates), cached.
//!
//! Each cached aggregate remembers the stream version it has reached and the
//! head of its category of stream (issuers, lists: `store::heads`) it was
//! last checked at, and is handed out shared (`Arc`), never copied. Streams
//! found empty (a DID or URI nobody registered) are cached too, at most
//! [`MAX_MISSES`] of them. A lookup while its category's head has not moved
//! costs nothing (verifications, the bulk of the log, do not move it);
//! after it moved, only the events past the cached version are read. Within
//! a process the heads move the moment a command commits, so a suspension
//! or a new list is seen by the next verification; other processes'
//! commands are seen as soon as their NOTIFY arrives.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use proofline_domain::decider::Decider;
use proofline_domain::did::Did;
use proofline_domain::ids::StreamId;
use proofline_domain::issuer::{Issuer, IssuerDecider, IssuerId};
use proofline_domain::status_list::{ListUri, StatusList, StatusListDecider};
use proofline_domain::trust_anchor::{self, TrustAnchorDecider, TrustAnchors};

use crate::handler::CommandError;
use crate::store::EventStore;

/// Most streams found empty (an unknown DID or list URI) that are
/// remembered; past that, the remembered misses are forgotten, so that
/// presentations naming made-up issuers cannot grow the cache without bound.
pub const MAX_MISSES: usize = 4_096;

struct Cached<S> {
    state: Arc<S>,
    version: u64,
    /// The head of the stream's category when it was read.
    checked_at_head: u64,
}

struct Entries<S> {
    by_stream: HashMap<StreamId, Cached<S>>,
    /// How many of `by_stream` are empty streams (version 0).
    misses: usize,
}

impl<S> Default for Entries<S> {
    fn default() -> Self {
        Self {
            by_stream: HashMap::new(),
            misses: 0,
        }
    }
}

struct Cache<D: Decider> {
    entries: RwLock<Entries<<D as Decider>::State>>,
    /// Pages read from the store.
    reads: AtomicU64,
}

impl<D: Decider> Default for Cache<D> {
    fn default() -> Self {
        Self {
            entries: RwLock::default(),
            reads: AtomicU64::new(0),
        }
    }
}

impl<D> Cache<D>
where
    D: Decider,
    D::State: Clone + Send + Sync + 'static,
{
    /// The aggregate's state, shared (never copied: a status list can be
    /// megabytes), refreshed if the log moved since it was read. A refresh
    /// reads only the events past the cached version, and copies the state
    /// only when there are some.
    async fn get(
        &self,
        store: &dyn EventStore,
        stream: &StreamId,
        force: bool,
    ) -> Result<Arc<D::State>, CommandError> {
        let head = store.watch_category_heads().borrow().of_stream(stream);
        let (cached, mut version) = {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            match entries.by_stream.get(stream) {
                Some(cached) if cached.checked_at_head == head && !force => {
                    return Ok(cached.state.clone());
                }
                Some(cached) => (Some(cached.state.clone()), cached.version),
                None => (None, 0),
            }
        };
        let mut evolved: Option<D::State> = None;
        loop {
            self.reads.fetch_add(1, Ordering::Relaxed);
            let page = store.read_stream(stream, version, 1_000).await?;
            let done = page.len() < 1_000;
            for envelope in page {
                let event = envelope.decode::<D::Event>()?;
                let state = evolved
                    .take()
                    .unwrap_or_else(|| cached.as_deref().cloned().unwrap_or_default());
                evolved = Some(D::evolve(state, &event));
                version = envelope.stream_version;
            }
            if done {
                break;
            }
        }
        let state = match (evolved, cached) {
            (Some(state), _) => Arc::new(state),
            (None, Some(unchanged)) => unchanged,
            (None, None) => Arc::new(D::State::default()),
        };
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if version == 0 && !entries.by_stream.contains_key(stream) {
            if entries.misses >= MAX_MISSES {
                entries.by_stream.retain(|_, c| c.version > 0);
                entries.misses = 0;
            }
            entries.misses += 1;
        }
        let was_miss = entries
            .by_stream
            .insert(
                stream.clone(),
                Cached {
                    state: state.clone(),
                    version,
                    checked_at_head: head,
                },
            )
            .is_some_and(|old| old.version == 0);
        if was_miss && version > 0 {
            entries.misses = entries.misses.saturating_sub(1);
        }
        Ok(state)
    }

    fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_stream
            .len()
    }
}

pub struct Registry {
    store: Arc<dyn EventStore>,
    issuers: Cache<IssuerDecider>,
    lists: Cache<StatusListDecider>,
    anchors: Cache<TrustAnchorDecider>,
}

impl Registry {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            issuers: Cache::default(),
            lists: Cache::default(),
            anchors: Cache::default(),
        }
    }

    /// The issuer with this DID, as the log says now (shared with the
    /// cache: `None` inside when it is not registered).
    pub async fn issuer(&self, did: &Did) -> Result<Arc<Option<Issuer>>, CommandError> {
        self.issuers
            .get(
                self.store.as_ref(),
                &IssuerId::for_did(did).stream_id(),
                false,
            )
            .await
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

    /// The status list published at `uri` (shared with the cache, never
    /// copied: `None` inside when none is).
    pub async fn status_list(
        &self,
        uri: &ListUri,
    ) -> Result<Arc<Option<StatusList>>, CommandError> {
        self.lists
            .get(self.store.as_ref(), &uri.stream_id(), false)
            .await
    }

    /// The X.509 trust anchors in force (shared with the cache).
    pub async fn trust_anchors(&self) -> Result<Arc<TrustAnchors>, CommandError> {
        self.anchors
            .get(self.store.as_ref(), &trust_anchor::stream_id(), false)
            .await
    }

    /// How many issuers and lists are cached (found or not).
    pub fn cached(&self) -> (usize, usize) {
        (self.issuers.len(), self.lists.len())
    }

    /// How many pages of issuer, list and anchor streams were read from
    /// the store.
    pub fn store_reads(&self) -> u64 {
        [&self.issuers.reads, &self.lists.reads, &self.anchors.reads]
            .iter()
            .map(|r| r.load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{self, SqliteEventStore};
    use crate::store::{AppendRequest, ExpectedVersion, NewEvent};
    use proofline_domain::jose::b64url_encode;
    use proofline_domain::status_list::StatusListEvent;

    async fn store() -> (Arc<dyn EventStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.sqlite");
        let pool = sqlite::connect_pool(&path).await.unwrap();
        crate::migrate::apply_sqlite(&pool).await.unwrap();
        (
            Arc::new(SqliteEventStore::open(pool, &path).await.unwrap()),
            dir,
        )
    }

    /// A list as the log holds one (the token's signature was checked when
    /// it was published; here it is only read).
    async fn publish(store: &dyn EventStore, uri: &ListUri, iat: i64, statuses: &[u8]) {
        let payload = serde_json::json!({"status_list": {"bits": 1, "lst": proofline_domain::status_list::encode_lst(statuses, 1)}});
        let token = format!(
            "{}.{}.c2ln",
            b64url_encode(br#"{"alg":"EdDSA"}"#),
            b64url_encode(serde_json::to_vec(&payload).unwrap())
        );
        let event = StatusListEvent::StatusListPublished {
            uri: uri.clone(),
            issuer: Did::parse("did:web:issuer.example").unwrap(),
            kid: proofline_domain::issuer::Kid::parse("k1").unwrap(),
            iat,
            exp: None,
            ttl: None,
            bits: 1,
            token,
        };
        store
            .append(AppendRequest::new(
                uri.stream_id(),
                ExpectedVersion::Any,
                vec![NewEvent::of(&event)],
            ))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn lists_are_shared_not_copied_and_copied_only_when_they_change() {
        let (store, _dir) = store().await;
        let registry = Registry::new(store.clone());
        let uri = ListUri::parse("https://issuer.example/status/1").unwrap();
        publish(store.as_ref(), &uri, 1, &[0; 4096]).await;
        let first = registry.status_list(&uri).await.unwrap();
        let again = registry.status_list(&uri).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again), "shared while the head stands");
        assert_eq!(registry.store_reads(), 1);
        // Verifications move the log's head, not the lists': nothing is read.
        let verification = StreamId::of(
            proofline_domain::ids::Category::Verification,
            uuid::Uuid::now_v7(),
        );
        store
            .append(AppendRequest::new(
                verification,
                ExpectedVersion::Any,
                vec![NewEvent::new("Tested", 1, serde_json::json!({}))],
            ))
            .await
            .unwrap();
        let unmoved = registry.status_list(&uri).await.unwrap();
        assert!(Arc::ptr_eq(&first, &unmoved));
        assert_eq!(registry.store_reads(), 1, "no read for a verification");
        // Another list moves the lists' head: the list is checked, not copied.
        publish(
            store.as_ref(),
            &ListUri::parse("https://issuer.example/status/2").unwrap(),
            1,
            &[0],
        )
        .await;
        let after_move = registry.status_list(&uri).await.unwrap();
        assert!(Arc::ptr_eq(&first, &after_move), "unchanged, still shared");
        assert_eq!(registry.store_reads(), 2);
        publish(store.as_ref(), &uri, 2, &[1; 4096]).await;
        let newer = registry.status_list(&uri).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &newer));
        assert_eq!(newer.as_ref().as_ref().unwrap().version, 2);
    }

    #[tokio::test]
    async fn misses_are_remembered_up_to_a_bound() {
        let (store, _dir) = store().await;
        let registry = Registry::new(store);
        for n in 0..(MAX_MISSES + 500) {
            let did = Did::parse(&format!("did:web:nobody-{n}.example")).unwrap();
            assert!(registry.issuer(&did).await.unwrap().is_none());
        }
        let (issuers, _) = registry.cached();
        assert!(issuers <= MAX_MISSES, "{issuers} misses cached");
    }
}
