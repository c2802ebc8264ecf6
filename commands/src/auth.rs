//! Who holds this API key, and may they act now?
//!
//! The first time a key is seen: its public prefix finds the argon2id hash
//! in the secrets table, one argon2 verification runs on the blocking pool
//! (at most a few at once, so guessing cannot eat every core), and the
//! owner's aggregate says whether the key is current, in its grace, or no
//! longer valid. A success is cached in memory under the SHA-256 of the key,
//! so every later request with it costs a hash and a map lookup.
//!
//! An entry is dropped when its grace ends (checked on every hit), when its
//! owner's keys or status change (the command handlers of this process call
//! [`Authenticator::invalidate_stream`], and [`watch_invalidations`] does it
//! for commands of other processes, from the log), and after a time to live
//! that bounds how stale it can be if that watch ever falls behind.
//!
//! Two races are closed: an invalidation that lands between reading the
//! owner's aggregate and caching the answer (each principal's stream has a
//! generation, bumped by every invalidation; an answer is cached only if
//! the generation it was read under is still current), and changes made
//! while the watch was down (it resumes from the last position it saw, not
//! from the head). Argon2 work is bounded twice: a few verifications at
//! once (one per core), and a queue of at most `max_queue` waiting behind
//! them, past which a caller is told to come back ([`AuthError::Busy`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use proofline_domain::api_key::ApiKey;
use proofline_domain::auditor::AuditorDecider;
use proofline_domain::ids::StreamId;
use proofline_domain::lender::{KeyValidity, LenderDecider, LenderState};
use proofline_domain::log::Timestamp;
use proofline_domain::operator::OperatorDecider;
use proofline_domain::principal::{self, Principal};
use proofline_domain::values::KeyPrefix;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::handler::{self, CommandError};
use crate::keys::{API_KEY_SECRET, api_key_secret_id, verify_api_key};
use crate::store::tail::Tail;
use crate::store::{EventStore, StoreError};

/// The longest an entry lives without being confirmed by the log.
const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Argon2 verifications that may wait for a core, by default.
pub const DEFAULT_MAX_QUEUE: usize = 64;

/// A caller whose key checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub principal: Principal,
    pub key_prefix: KeyPrefix,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("the credentials are not a Proofline API key")]
    Malformed,
    /// Unknown, wrong, rotated past its grace, or revoked: callers are not
    /// told which.
    #[error("the API key is not valid")]
    Invalid,
    #[error("the key's owner is deactivated")]
    Inactive,
    #[error("cannot check credentials now")]
    Unavailable(#[source] StoreError),
    /// Too many key checks are waiting already; retry shortly.
    #[error("too many API keys are being checked; retry shortly")]
    Busy,
}

impl From<StoreError> for AuthError {
    fn from(error: StoreError) -> Self {
        AuthError::Unavailable(error)
    }
}

impl From<CommandError> for AuthError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Store(e) => AuthError::Unavailable(e),
            other => AuthError::Unavailable(StoreError::corrupt("principal", other)),
        }
    }
}

struct Entry {
    authenticated: Arc<Authenticated>,
    valid_until: Option<Timestamp>,
    cached_at: Instant,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<[u8; 32], Entry>,
    by_stream: HashMap<StreamId, Vec<[u8; 32]>>,
    /// Bumped by every invalidation of a stream.
    generations: HashMap<StreamId, u64>,
}

impl Cache {
    fn generation(&self, stream: &StreamId) -> u64 {
        self.generations.get(stream).copied().unwrap_or(0)
    }
}

type Gates = Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>;

/// A caller's place in the single flight of one key: removes the key's gate
/// when the last caller leaves, even a caller whose request was cancelled.
struct Turn<'a> {
    gates: &'a Gates,
    digest: [u8; 32],
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        // The map's reference and ours: nobody else waits on this gate.
        if let Some(current) = gates.get(&self.digest)
            && Arc::ptr_eq(current, &self.gate)
            && Arc::strong_count(&self.gate) <= 2
        {
            gates.remove(&self.digest);
        }
    }
}

/// A place in the argon2 queue, given back on drop.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub struct Authenticator {
    store: Arc<dyn EventStore>,
    cache: RwLock<Cache>,
    inflight: Gates,
    hashing: Semaphore,
    /// Verifications running or waiting for a core.
    queued: AtomicUsize,
    max_queue: usize,
    verifications: AtomicU64,
    ttl: Duration,
    /// The last log position [`watch_invalidations`] handled (or the head
    /// when this was made): where a restarted watch resumes.
    watched: AtomicU64,
}

impl Authenticator {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let head = *store.watch_head().borrow();
        Self {
            store,
            cache: RwLock::default(),
            inflight: Mutex::default(),
            hashing: Semaphore::new(cores),
            queued: AtomicUsize::new(0),
            max_queue: DEFAULT_MAX_QUEUE,
            verifications: AtomicU64::new(0),
            ttl: DEFAULT_TTL,
            watched: AtomicU64::new(head),
        }
    }

    /// At most `max_queue` verifications wait for a core; more are
    /// [`AuthError::Busy`].
    pub fn with_max_queue(mut self, max_queue: usize) -> Self {
        self.max_queue = max_queue.max(1);
        self
    }

    /// Entries live at most `ttl` without the log confirming them.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Whether this key checked out before and nothing has invalidated it
    /// since (its entry may be past its time to live, which only means it is
    /// checked again): such a caller is never held back by the failed-auth
    /// limits.
    pub fn known(&self, presented: &str, now: Timestamp) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        cache
            .entries
            .get(&digest)
            .is_some_and(|entry| entry.valid_until.is_none_or(|until| until > now))
    }

    /// Single-flight gates currently held (for tests: none once every
    /// request has ended, even cancelled ones).
    pub fn gates_in_use(&self) -> usize {
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// How many argon2 verifications ran: the expensive path.
    pub fn argon2_verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// The cached answer for a key, if fresh. This is the steady-state path.
    pub fn cached(&self, presented: &str, now: Timestamp) -> Option<Arc<Authenticated>> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.lookup(&digest, now)
    }

    fn lookup(&self, digest: &[u8; 32], now: Timestamp) -> Option<Arc<Authenticated>> {
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        let entry = cache.entries.get(digest)?;
        let fresh = entry.valid_until.is_none_or(|until| until > now)
            && entry.cached_at.elapsed() < self.ttl;
        fresh.then(|| entry.authenticated.clone())
    }

    pub async fn authenticate(
        &self,
        presented: &str,
        now: Timestamp,
    ) -> Result<Arc<Authenticated>, AuthError> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        if let Some(hit) = self.lookup(&digest, now) {
            return Ok(hit);
        }
        let key = ApiKey::parse(presented).map_err(|_| AuthError::Malformed)?;
        // One verification per key at a time: concurrent first requests with
        // the same key wait for the first one's answer instead of hashing too.
        let turn = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            Turn {
                gates: &self.inflight,
                digest,
                gate: inflight.entry(digest).or_default().clone(),
            }
        };
        let _held = turn.gate.lock().await;
        match self.lookup(&digest, now) {
            Some(hit) => Ok(hit),
            None => self.verify(&key, digest, now).await,
        }
    }

    async fn verify(
        &self,
        key: &ApiKey,
        digest: [u8; 32],
        now: Timestamp,
    ) -> Result<Arc<Authenticated>, AuthError> {
        let record = self.store.secret(&api_key_secret_id(key.prefix())).await?;
        let Some(record) = record.filter(|r| r.kind == API_KEY_SECRET) else {
            return Err(AuthError::Invalid);
        };
        let matches = {
            if self.queued.fetch_add(1, Ordering::AcqRel) >= self.max_queue {
                self.queued.fetch_sub(1, Ordering::AcqRel);
                return Err(AuthError::Busy);
            }
            let _queued = Queued(&self.queued);
            let _permit = self
                .hashing
                .acquire()
                .await
                .map_err(|_| AuthError::Invalid)?;
            let (key, phc) = (key.clone(), record.material.expose_secret().to_owned());
            self.verifications.fetch_add(1, Ordering::Relaxed);
            tokio::task::spawn_blocking(move || verify_api_key(&key, &phc))
                .await
                .unwrap_or(false)
        };
        if !matches {
            return Err(AuthError::Invalid);
        }
        let principal = Principal::from_stream(&record.stream_id).ok_or(AuthError::Invalid)?;
        // The generation the owner's state is read under: if an
        // invalidation lands before the answer is cached, it is not cached.
        let generation = self
            .cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .generation(&record.stream_id);
        let valid_until = self
            .key_state(&principal, &record.stream_id, key.prefix(), now)
            .await?;
        let authenticated = Arc::new(Authenticated {
            principal,
            key_prefix: KeyPrefix::from(key),
        });
        self.remember(
            digest,
            &record.stream_id,
            generation,
            &authenticated,
            valid_until,
        );
        Ok(authenticated)
    }

    /// Caches an answer read under `generation` of its owner's stream,
    /// unless an invalidation bumped it since.
    fn remember(
        &self,
        digest: [u8; 32],
        stream: &StreamId,
        generation: u64,
        authenticated: &Arc<Authenticated>,
        valid_until: Option<Timestamp>,
    ) {
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.generation(stream) != generation {
            return;
        }
        cache.entries.insert(
            digest,
            Entry {
                authenticated: authenticated.clone(),
                valid_until,
                cached_at: Instant::now(),
            },
        );
        let digests = cache.by_stream.entry(stream.clone()).or_default();
        if !digests.contains(&digest) {
            digests.push(digest);
        }
    }

    /// Whether the owner's aggregate accepts this key now, and until when.
    async fn key_state(
        &self,
        principal: &Principal,
        stream: &StreamId,
        prefix: &str,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, AuthError> {
        let store = self.store.as_ref();
        match principal {
            Principal::Operator => {
                let operator = handler::load::<OperatorDecider>(store, stream).await?.state;
                if operator.key_is_valid(prefix) {
                    Ok(None)
                } else {
                    Err(AuthError::Invalid)
                }
            }
            Principal::Auditor(_) => {
                match handler::load::<AuditorDecider>(store, stream)
                    .await?
                    .state
                    .and_then(|auditor| auditor.key_validity(prefix, now))
                {
                    Some(until) => Ok(until),
                    None => Err(AuthError::Invalid),
                }
            }
            Principal::Lender(_) => {
                match handler::load::<LenderDecider>(store, stream).await?.state {
                    LenderState::Registered(lender) => match lender.key_validity(prefix, now) {
                        KeyValidity::Valid { until } => Ok(until),
                        KeyValidity::Inactive | KeyValidity::Suspended => Err(AuthError::Inactive),
                        KeyValidity::Invalid => Err(AuthError::Invalid),
                    },
                    LenderState::Unregistered => Err(AuthError::Invalid),
                }
            }
        }
    }

    /// Whether an authenticated key is still valid now, by its owner's
    /// aggregate (no argon2): for long-lived requests (a tail of the log)
    /// to check again while they last.
    pub async fn still_valid(
        &self,
        authenticated: &Authenticated,
        now: Timestamp,
    ) -> Result<bool, AuthError> {
        let stream = authenticated.principal.stream_id();
        match self
            .key_state(
                &authenticated.principal,
                &stream,
                authenticated.key_prefix.as_str(),
                now,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(AuthError::Invalid | AuthError::Inactive) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Drops every cached key of a principal's stream.
    pub fn invalidate_stream(&self, stream: &StreamId) {
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        *cache.generations.entry(stream.clone()).or_default() += 1;
        if let Some(digests) = cache.by_stream.remove(stream) {
            for digest in digests {
                cache.entries.remove(&digest);
            }
        }
    }

    /// How many keys are cached (for metrics and tests).
    pub fn cached_keys(&self) -> usize {
        self.cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .entries
            .len()
    }
}

/// Follows the log and drops cached keys of every principal whose keys or
/// status change, whichever process made the change. It starts where the
/// last watch of this authenticator stopped (or at the head when the
/// authenticator was made), so nothing that happened while it was down is
/// missed. Runs until the store fails; the caller restarts it.
pub async fn watch_invalidations(
    authenticator: Arc<Authenticator>,
    store: Arc<dyn EventStore>,
) -> Result<(), StoreError> {
    let from = authenticator.watched.load(Ordering::Acquire);
    let mut tail = Tail::new(store, from);
    loop {
        let event = tail.next().await?;
        if principal::affects_credentials(&event) {
            authenticator.invalidate_stream(&event.stream_id);
        }
        authenticator
            .watched
            .fetch_max(event.position, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{self, SqliteEventStore};

    #[tokio::test]
    async fn an_answer_read_before_an_invalidation_is_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.sqlite");
        let pool = sqlite::connect_pool(&path).await.unwrap();
        crate::migrate::apply_sqlite(&pool).await.unwrap();
        let store: Arc<dyn EventStore> =
            Arc::new(SqliteEventStore::open(pool, &path).await.unwrap());
        let auth = Authenticator::new(store);
        let stream = StreamId::parse("lender-0190a0a0-0000-7000-8000-000000000001").unwrap();
        let authenticated = Arc::new(Authenticated {
            principal: Principal::from_stream(&stream).unwrap(),
            key_prefix: KeyPrefix::parse("0123456789abcdef").unwrap(),
        });
        // Read under generation 0; a rotation invalidates before the answer
        // is stored: it must not be stored.
        let generation = auth.cache.read().unwrap().generation(&stream);
        auth.invalidate_stream(&stream);
        auth.remember([1; 32], &stream, generation, &authenticated, None);
        assert_eq!(auth.cached_keys(), 0);
        // Read under the current generation, it is.
        let generation = auth.cache.read().unwrap().generation(&stream);
        auth.remember([1; 32], &stream, generation, &authenticated, None);
        assert_eq!(auth.cached_keys(), 1);
    }
}
