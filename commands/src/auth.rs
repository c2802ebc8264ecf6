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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use proofline_domain::api_key::ApiKey;
use proofline_domain::auditor::AuditorDecider;
use proofline_domain::ids::StreamId;
use proofline_domain::lender::{KeyValidity, LenderDecider, LenderState};
use proofline_domain::log::Timestamp;
use proofline_domain::operator::OperatorDecider;
use proofline_domain::principal::Principal;
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
/// Event types after which a principal's cached keys are dropped.
const KEY_EVENTS: &[&str] = &[
    "ApiKeyRotated",
    "ApiKeyRevoked",
    "ApiKeyIssued",
    "LenderDeactivated",
    "LenderReactivated",
    "OperatorKeyIssued",
    "AuditorRegistered",
];

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
}

pub struct Authenticator {
    store: Arc<dyn EventStore>,
    cache: RwLock<Cache>,
    inflight: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    hashing: Semaphore,
    verifications: AtomicU64,
    ttl: Duration,
}

impl Authenticator {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            store,
            cache: RwLock::default(),
            inflight: Mutex::default(),
            hashing: Semaphore::new(cores),
            verifications: AtomicU64::new(0),
            ttl: DEFAULT_TTL,
        }
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
        let gate = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            inflight.entry(digest).or_default().clone()
        };
        let result = {
            let _turn = gate.lock().await;
            match self.lookup(&digest, now) {
                Some(hit) => Ok(hit),
                None => self.verify(&key, digest, now).await,
            }
        };
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&digest);
        result
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
        let valid_until = self
            .key_state(&principal, &record.stream_id, key.prefix(), now)
            .await?;
        let authenticated = Arc::new(Authenticated {
            principal,
            key_prefix: KeyPrefix::from(key),
        });
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        cache.entries.insert(
            digest,
            Entry {
                authenticated: authenticated.clone(),
                valid_until,
                cached_at: Instant::now(),
            },
        );
        let digests = cache.by_stream.entry(record.stream_id).or_default();
        if !digests.contains(&digest) {
            digests.push(digest);
        }
        Ok(authenticated)
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
                match handler::load::<AuditorDecider>(store, stream).await?.state {
                    Some(auditor) if auditor.key_is_valid(prefix) => Ok(None),
                    _ => Err(AuthError::Invalid),
                }
            }
            Principal::Lender(_) => {
                match handler::load::<LenderDecider>(store, stream).await?.state {
                    LenderState::Registered(lender) => match lender.key_validity(prefix, now) {
                        KeyValidity::Valid { until } => Ok(until),
                        KeyValidity::Inactive => Err(AuthError::Inactive),
                        KeyValidity::Invalid => Err(AuthError::Invalid),
                    },
                    LenderState::Unregistered => Err(AuthError::Invalid),
                }
            }
        }
    }

    /// Drops every cached key of a principal's stream.
    pub fn invalidate_stream(&self, stream: &StreamId) {
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
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

/// Follows the log from its current head and drops cached keys of every
/// principal whose keys or status change, whichever process made the change.
/// Runs until the store fails; the caller restarts or logs it.
pub async fn watch_invalidations(
    authenticator: Arc<Authenticator>,
    store: Arc<dyn EventStore>,
) -> Result<(), StoreError> {
    let head = store.head().await?.map_or(0, |h| h.position);
    let mut tail = Tail::new(store, head);
    loop {
        let event = tail.next().await?;
        if KEY_EVENTS.contains(&event.event_type.as_str()) {
            authenticator.invalidate_stream(&event.stream_id);
        }
    }
}
