//! Status lists fetched from where issuers publish them
//! (draft-ietf-oauth-status-list), and kept in the log.
//!
//! A credential's `status.status_list.uri` that Proofline has no list for,
//! or whose list is older than its `ttl` (else the operator's maximum age),
//! is fetched through the one [`Fetcher`]. The token is accepted only if
//! signed by a current key of the credential's issuer, with `sub` equal to
//! the URI; a token unlike the last one logged for that URI is appended as
//! `StatusListFetched`, so every list a decision used is in the log. A
//! list that is due and cannot be fetched fails closed (REVOCATION
//! `status_list_unavailable`), unless the operator allows a grace past its
//! age. Lists the operator posted (`POST /v1/status-lists`) are used as
//! posted: they are for lists that cannot be fetched.
//!
//! When a list was last confirmed is kept per process, in memory: the log
//! holds changes only (a list fetched again unchanged is not news), and a
//! process that starts reads the time of the last change from it. Lists in
//! use are fetched again in the background before they fall due
//! ([`StatusListFetcher::refresh_due`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use proofline_domain::did::Did;
use proofline_domain::issuer::Issuer;
use proofline_domain::log::{Metadata, Timestamp};
use proofline_domain::status_list::{
    self, ListUri, StatusList, StatusListCommand, StatusListDecider,
};

use crate::fetch::{FetchKind, Fetcher, SingleFlight};
use crate::handler::{self, CommandContext, CommandError, Decision};
use crate::registry::Registry;
use crate::store::EventStore;

/// How old a fetched list without a `ttl` may be, unless the operator says
/// otherwise (`PROOFLINE_STATUS_LIST_MAX_AGE_SECONDS`).
pub const DEFAULT_MAX_AGE_SECONDS: u64 = 300;

/// Most lists whose last confirmation is remembered.
const MAX_REMEMBERED: usize = 4_096;

/// A list in use is fetched again in the background once this share of
/// its age limit (in quarters) has passed.
const REFRESH_AT_QUARTERS: i64 = 3;

/// A list not used for this long is no longer refreshed in the background.
const IN_USE_SECONDS: i64 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListSettings {
    /// The age limit of a list whose token has no `ttl`.
    pub max_age_seconds: u64,
    /// How long past its age limit a list that cannot be fetched is still
    /// used (0: fail closed at once).
    pub stale_grace_seconds: u64,
}

impl Default for ListSettings {
    fn default() -> Self {
        Self {
            max_age_seconds: DEFAULT_MAX_AGE_SECONDS,
            stale_grace_seconds: 0,
        }
    }
}

/// What the verifier is to use for a credential's list.
#[derive(Debug, Clone)]
pub enum ListAnswer {
    /// The list, as the log holds it (`None` inside: none is known).
    Use(Arc<Option<StatusList>>),
    /// The list is due and could not be fetched, or what was fetched was
    /// refused: why.
    Unavailable(String),
    /// What the issuer serves has expired (`exp` passed): why.
    Expired(String),
}

/// Why a list could not be fetched and taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfetched {
    /// The token served is past its `exp`.
    Expired(String),
    /// Anything else: no answer, refused, not the issuer's.
    Failed(String),
}

impl std::fmt::Display for Unfetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unfetched::Expired(why) | Unfetched::Failed(why) => f.write_str(why),
        }
    }
}

#[derive(Debug, Clone)]
struct Confirmed {
    /// When a fetch last found the list as the log holds it.
    at: Timestamp,
    /// The list's version then: a confirmation of one version says nothing
    /// of another.
    version: u64,
    ttl: Option<u64>,
    issuer: Did,
    last_used: Timestamp,
}

pub struct StatusListFetcher {
    store: Arc<dyn EventStore>,
    registry: Arc<Registry>,
    fetcher: Arc<Fetcher>,
    settings: ListSettings,
    confirmed: Mutex<HashMap<ListUri, Confirmed>>,
    /// One refresh per list and issuer whose keys check it.
    refreshes: SingleFlight<(ListUri, Did), Confirmation>,
}

fn seconds(at: Timestamp) -> i64 {
    at.as_datetime().timestamp()
}

impl StatusListFetcher {
    pub fn new(
        store: Arc<dyn EventStore>,
        registry: Arc<Registry>,
        fetcher: Arc<Fetcher>,
        settings: ListSettings,
    ) -> Self {
        Self {
            store,
            registry,
            fetcher,
            settings,
            confirmed: Mutex::default(),
            refreshes: SingleFlight::default(),
        }
    }

    /// Whether `uri` is one Proofline fetches (https; the others can only
    /// be posted by the operator).
    pub fn fetches(uri: &ListUri) -> bool {
        uri.as_str().starts_with("https://")
    }

    /// The list as the log holds it, and whether it is due: never fetched,
    /// or older than its age limit. Lists the operator posted are never
    /// due. Marks the list as in use.
    pub async fn cached(
        &self,
        uri: &ListUri,
        now: Timestamp,
    ) -> Result<(Arc<Option<StatusList>>, Option<i64>), CommandError> {
        let state = self.registry.status_list(uri).await?;
        let age = match state.as_ref() {
            Some(list) if list.fetched_at.is_none() => return Ok((state, None)),
            Some(list) => {
                let mut confirmed = self.confirmed.lock().unwrap_or_else(|p| p.into_inner());
                let remembered = confirmed.get_mut(uri);
                let at = match remembered {
                    Some(entry) if entry.version == list.version => {
                        entry.last_used = now;
                        entry.at.max(list.fetched_at.unwrap_or(entry.at))
                    }
                    Some(entry) => {
                        entry.last_used = now;
                        list.fetched_at.unwrap_or(now)
                    }
                    None => list.fetched_at.unwrap_or(now),
                };
                Some(seconds(now).saturating_sub(seconds(at)))
            }
            None => None,
        };
        let due = match (state.as_ref(), age) {
            (None, _) => Some(i64::MAX),
            (Some(list), Some(age)) if age >= self.limit(list.ttl) => Some(age),
            _ => None,
        };
        Ok((state, due))
    }

    /// The age limit of a list with this `ttl`, in seconds.
    fn limit(&self, ttl: Option<u64>) -> i64 {
        i64::try_from(ttl.unwrap_or(self.settings.max_age_seconds)).unwrap_or(i64::MAX)
    }

    /// The list for a credential of `issuer` that names `uri`: the logged
    /// one while it is fresh, else fetched first (one fetch however many
    /// verifications ask at once).
    pub async fn list_for(
        &self,
        uri: &ListUri,
        issuer: &Issuer,
        now: Timestamp,
    ) -> Result<ListAnswer, CommandError> {
        let (state, due) = self.cached(uri, now).await?;
        let Some(age) = due else {
            return Ok(ListAnswer::Use(state));
        };
        match self.refresh(uri, &issuer.did).await {
            Ok(()) => Ok(ListAnswer::Use(self.registry.status_list(uri).await?)),
            Err(Unfetched::Expired(why)) => Ok(ListAnswer::Expired(why)),
            Err(Unfetched::Failed(why)) => {
                let grace = i64::try_from(self.settings.stale_grace_seconds).unwrap_or(i64::MAX);
                match state.as_ref() {
                    Some(list) if age < self.limit(list.ttl).saturating_add(grace) => {
                        tracing::warn!(uri = uri.as_str(), error = %why, "status list not refreshed; using the logged one within the grace");
                        Ok(ListAnswer::Use(state))
                    }
                    _ => Ok(ListAnswer::Unavailable(why)),
                }
            }
        }
    }

    /// Fetches `uri` now (once, whoever else asks meanwhile), checks the
    /// token against `issuer`'s current keys, and records it if it changed.
    pub async fn refresh(&self, uri: &ListUri, issuer: &Did) -> Result<(), Unfetched> {
        let work = {
            let (store, registry, fetcher) = (
                self.store.clone(),
                self.registry.clone(),
                self.fetcher.clone(),
            );
            let (uri, issuer) = (uri.clone(), issuer.clone());
            move || async move { fetch_and_record(store, registry, fetcher, uri, issuer).await }
        };
        let (result, _) = self
            .refreshes
            .run((uri.clone(), issuer.clone()), work, |e| {
                Err(Unfetched::Failed(format!("the refresh ended: {e}")))
            })
            .await;
        let (at, ttl, version) = result?;
        let mut confirmed = self.confirmed.lock().unwrap_or_else(|p| p.into_inner());
        if confirmed.len() >= MAX_REMEMBERED
            && !confirmed.contains_key(uri)
            && let Some(oldest) = confirmed
                .iter()
                .min_by_key(|(_, c)| c.last_used)
                .map(|(uri, _)| uri.clone())
        {
            confirmed.remove(&oldest);
        }
        let entry = confirmed.entry(uri.clone()).or_insert(Confirmed {
            at,
            version,
            ttl,
            issuer: issuer.clone(),
            last_used: at,
        });
        if version != entry.version {
            entry.at = at;
        }
        entry.at = entry.at.max(at);
        entry.version = version;
        entry.ttl = ttl;
        Ok(())
    }

    /// Fetches again the lists used lately whose age has passed three
    /// quarters of their limit, so that verifications seldom wait for a
    /// fetch. Returns how many were refreshed.
    pub async fn refresh_due(&self, now: Timestamp) -> usize {
        let due: Vec<(ListUri, Did)> = {
            let confirmed = self.confirmed.lock().unwrap_or_else(|p| p.into_inner());
            confirmed
                .iter()
                .filter(|(_, c)| seconds(now) - seconds(c.last_used) < IN_USE_SECONDS)
                .filter(|(_, c)| {
                    let age = seconds(now) - seconds(c.at);
                    age.saturating_mul(4) >= self.limit(c.ttl).saturating_mul(REFRESH_AT_QUARTERS)
                })
                .map(|(uri, c)| (uri.clone(), c.issuer.clone()))
                .collect()
        };
        let mut refreshed = 0;
        for (uri, issuer) in due {
            match self.refresh(&uri, &issuer).await {
                Ok(()) => refreshed += 1,
                Err(why) => {
                    tracing::warn!(uri = uri.as_str(), error = %why, "background refresh of a status list failed")
                }
            }
        }
        refreshed
    }
}

/// When the list was confirmed, its `ttl`, and the version the log holds.
type Confirmation = Result<(Timestamp, Option<u64>, u64), Unfetched>;

async fn fetch_and_record(
    store: Arc<dyn EventStore>,
    registry: Arc<Registry>,
    fetcher: Arc<Fetcher>,
    uri: ListUri,
    issuer: Did,
) -> Confirmation {
    let fetched = fetcher
        .get(FetchKind::StatusList, uri.as_str())
        .await
        .map_err(|e| Unfetched::Failed(e.to_string()))?;
    let fetched_at = Timestamp::from_datetime(fetched.fetched_at);
    let token = std::str::from_utf8(&fetched.body)
        .map_err(|_| Unfetched::Failed("the answer is not a token (not UTF-8)".to_owned()))?
        .trim();
    let current = registry
        .issuer_now(&issuer)
        .await
        .map_err(|e| Unfetched::Failed(format!("the issuer could not be read: {e}")))?
        .ok_or_else(|| Unfetched::Failed(format!("{issuer} is not in the trust registry")))?;
    let refused = |e: status_list::StatusListError| format!("the fetched list was refused: {e}");
    let list =
        status_list::verify_token(token, &uri, &current, fetched_at).map_err(|e| match e {
            status_list::StatusListError::Expired => Unfetched::Expired(refused(e)),
            other => Unfetched::Failed(refused(other)),
        })?;
    let ttl = list.ttl;
    let command = StatusListCommand::RecordFetch {
        list,
        fetched_at,
        http_status: fetched.status,
    };
    let context = CommandContext {
        now: Timestamp::from_datetime(Utc::now()),
        metadata: Metadata {
            actor: Some("proofline:fetcher".into()),
            ..Metadata::default()
        },
    };
    let recorded = handler::execute_if_any::<StatusListDecider, ()>(
        store.as_ref(),
        &uri.stream_id(),
        &context,
        |state| {
            let events = handler::decide::<StatusListDecider>(&command, state, context.now)?;
            Ok(Decision::events(events, ()))
        },
    )
    .await;
    match recorded {
        Ok(done) => {
            if let Some(done) = &done {
                tracing::info!(
                    uri = uri.as_str(),
                    position = done.position(),
                    "status list changed; recorded"
                );
            }
            let version = registry
                .status_list(&uri)
                .await
                .map_err(|e| Unfetched::Failed(format!("the list could not be read back: {e}")))?
                .as_ref()
                .as_ref()
                .map_or(0, |list| list.version);
            Ok((fetched_at, ttl, version))
        }
        Err(CommandError::Rejected(rejected)) => Err(Unfetched::Failed(refused(
            rejected
                .downcast_ref::<status_list::StatusListError>()
                .cloned()
                .unwrap_or(status_list::StatusListError::NotNewer),
        ))),
        Err(other) => Err(Unfetched::Failed(format!(
            "the fetched list could not be recorded: {other}"
        ))),
    }
}
