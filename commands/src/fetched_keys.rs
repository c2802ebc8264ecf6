//! Issuer keys resolved from the documents issuers publish, and kept in
//! the log.
//!
//! For each fetched source an issuer allows (`did` for did:web, `metadata`
//! for an https issuer), the key set is resolved when the log holds none
//! yet, when the last resolution is older than the document's HTTP caching
//! allows (`Cache-Control: max-age`, held within [60 s, 24 h]; 5 minutes
//! without one), or when a credential names a kid the set lacks (at most
//! once a minute, so made-up kids cannot make Proofline fetch at will). A
//! set unlike the last one of its source is appended as
//! `IssuerKeysResolved` (the document's URL and SHA-256, the keys); a key
//! gone from the source stops verifying from then on. While a source
//! cannot be reached the set the log holds stays in use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use proofline_domain::did::Did;
use proofline_domain::discovery::{self, MetadataKeys};
use proofline_domain::issuer::{
    IssuerCommand, IssuerDecider, IssuerError, KeySource, RegisteredKey,
};
use proofline_domain::log::{Metadata, Timestamp};
use sha2::{Digest, Sha256};

use crate::fetch::{FetchKind, Fetched, Fetcher, SingleFlight};
use crate::handler::{self, CommandContext, CommandError, Decision};
use crate::store::EventStore;

/// Bounds on how long a resolved set is used before it is resolved again.
pub const MIN_AGE_SECONDS: i64 = 60;
pub const MAX_AGE_SECONDS: i64 = 86_400;
/// How long a set is used when its document says nothing of caching.
pub const DEFAULT_AGE_SECONDS: i64 = 300;

/// Most (issuer, source) pairs remembered.
const MAX_REMEMBERED: usize = 4_096;

#[derive(Debug, Clone)]
struct Remembered {
    /// When a resolution last confirmed the set the log holds.
    confirmed_at: Option<Timestamp>,
    /// How long that set may be used.
    max_age: i64,
    /// When a resolution was last tried, whatever came of it.
    tried_at: Timestamp,
    /// Why the last try failed, if it did.
    failed: Option<String>,
}

type Resolution = Result<(Timestamp, i64), String>;

/// What [`KeyResolver::ensure`] found.
#[derive(Debug, Default)]
pub struct Ensured {
    /// Why a source that had to be resolved could not be.
    pub unavailable: Option<String>,
    /// Whether a resolution was tried (then the issuer is read again: one
    /// that changed the keys moved the log).
    pub tried: bool,
    /// Sources whose last set outlived the longest caching allowed and
    /// could not be confirmed: their keys verify nothing for now.
    pub expired: Vec<KeySource>,
}

pub struct KeyResolver {
    store: Arc<dyn EventStore>,
    fetcher: Arc<Fetcher>,
    remembered: Mutex<HashMap<(Did, KeySource), Remembered>>,
    flights: SingleFlight<(Did, KeySource), Resolution>,
}

fn seconds(at: Timestamp) -> i64 {
    at.as_datetime().timestamp()
}

impl KeyResolver {
    pub fn new(store: Arc<dyn EventStore>, fetcher: Arc<Fetcher>) -> Self {
        Self {
            store,
            fetcher,
            remembered: Mutex::default(),
            flights: SingleFlight::default(),
        }
    }

    /// Resolves the sources of `issuer` that are due, for a credential
    /// naming `kid`.
    pub async fn ensure(
        &self,
        issuer: &proofline_domain::issuer::Issuer,
        kid: Option<&str>,
        now: Timestamp,
    ) -> Ensured {
        let mut tried = false;
        let mut expired = Vec::new();
        let kid_known = issuer.key(kid).is_ok();
        let mut failures = Vec::new();
        for source in issuer.fetched_sources().collect::<Vec<_>>() {
            let set = issuer.resolved_by(source);
            let remembered = self
                .remembered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&(issuer.did.clone(), source))
                .cloned();
            let confirmed = [
                set.map(|s| s.resolved_at),
                remembered.as_ref().and_then(|r| r.confirmed_at),
            ]
            .into_iter()
            .flatten()
            .max();
            let max_age = remembered
                .as_ref()
                .map_or(DEFAULT_AGE_SECONDS, |r| r.max_age);
            let stale = confirmed.is_none_or(|at| seconds(now) - seconds(at) >= max_age);
            // A source is tried at most once a minute, whatever asks.
            let may_try = remembered
                .as_ref()
                .is_none_or(|r| seconds(now) - seconds(r.tried_at) >= MIN_AGE_SECONDS);
            // A set not confirmed for the longest any document may be
            // cached verifies nothing more until its source answers again.
            let outlived = confirmed.is_none_or(|at| seconds(now) - seconds(at) >= MAX_AGE_SECONDS);
            let failed = if (stale || !kid_known) && may_try {
                tried = true;
                self.resolve(&issuer.did, source, now).await.err()
            } else {
                remembered.and_then(|r| r.failed)
            };
            if let Some(why) = failed {
                tracing::warn!(issuer = issuer.did.as_str(), source = source.as_str(), error = %why, "issuer keys not resolved");
                failures.push(format!("{}: {why}", source.as_str()));
                if outlived && set.is_some() {
                    expired.push(source);
                }
            }
        }
        Ensured {
            unavailable: (!failures.is_empty()).then(|| failures.join("; ")),
            tried,
            expired,
        }
    }

    /// Resolves `source` of `did` now (once, whoever else asks meanwhile)
    /// and records the set if it changed.
    pub async fn resolve(
        &self,
        did: &Did,
        source: KeySource,
        now: Timestamp,
    ) -> Result<(), String> {
        let work = {
            let (store, fetcher, did) = (self.store.clone(), self.fetcher.clone(), did.clone());
            move || async move { resolve_and_record(store, fetcher, did, source).await }
        };
        let (result, _) = self
            .flights
            .run((did.clone(), source), work, |e| {
                Err(format!("the resolution ended: {e}"))
            })
            .await;
        let mut remembered = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
        if remembered.len() >= MAX_REMEMBERED && !remembered.contains_key(&(did.clone(), source)) {
            remembered.clear();
        }
        let entry = remembered
            .entry((did.clone(), source))
            .or_insert(Remembered {
                confirmed_at: None,
                max_age: DEFAULT_AGE_SECONDS,
                tried_at: now,
                failed: None,
            });
        entry.tried_at = now;
        entry.failed = result.as_ref().err().cloned();
        let (at, max_age) = result?;
        entry.confirmed_at = Some(at);
        entry.max_age = max_age;
        Ok(())
    }
}

/// How long a document may be used, from its caching headers.
fn age_of(fetched: &Fetched) -> i64 {
    fetched
        .max_age
        .map_or(DEFAULT_AGE_SECONDS, |age| {
            i64::try_from(age).unwrap_or(MAX_AGE_SECONDS)
        })
        .clamp(MIN_AGE_SECONDS, MAX_AGE_SECONDS)
}

fn json_of(fetched: &Fetched) -> Result<serde_json::Value, String> {
    serde_json::from_slice(&fetched.body).map_err(|e| format!("{} is not JSON: {e}", fetched.url))
}

/// The keys `source` gives `did`: the document they were read from, its
/// digest, the keys, and how long they may be used.
async fn keys_of(
    fetcher: &Fetcher,
    did: &Did,
    source: KeySource,
) -> Result<(Arc<Fetched>, Vec<RegisteredKey>, i64), String> {
    match source {
        KeySource::Did => {
            let url = discovery::did_web_url(did).map_err(|e| e.to_string())?;
            let fetched = fetcher
                .get(FetchKind::DidDocument, &url)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            let keys = discovery::keys_of_did_document(did, &json_of(&fetched)?)
                .map_err(|e| e.to_string())?;
            let age = age_of(&fetched);
            Ok((fetched, keys, age))
        }
        KeySource::Metadata => {
            let url = discovery::issuer_metadata_url(did.as_str()).map_err(|e| e.to_string())?;
            let fetched = fetcher
                .get(FetchKind::IssuerMetadata, &url)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            match discovery::keys_of_issuer_metadata(did.as_str(), &json_of(&fetched)?)
                .map_err(|e| e.to_string())?
            {
                MetadataKeys::Jwks(keys) => {
                    let age = age_of(&fetched);
                    Ok((fetched, keys, age))
                }
                MetadataKeys::JwksUri(jwks_uri) => {
                    let jwks = fetcher
                        .get(FetchKind::Jwks, &jwks_uri)
                        .await
                        .map_err(|e| format!("{jwks_uri}: {e}"))?;
                    let keys =
                        discovery::keys_of_jwks(&json_of(&jwks)?).map_err(|e| e.to_string())?;
                    let age = age_of(&fetched).min(age_of(&jwks));
                    Ok((jwks, keys, age))
                }
            }
        }
        KeySource::Registered | KeySource::X5c => {
            Err(format!("{} keys are not fetched", source.as_str()))
        }
    }
}

async fn resolve_and_record(
    store: Arc<dyn EventStore>,
    fetcher: Arc<Fetcher>,
    did: Did,
    source: KeySource,
) -> Resolution {
    let (fetched, keys, max_age) = keys_of(&fetcher, &did, source).await?;
    let resolved_at = Timestamp::from_datetime(fetched.fetched_at);
    let command = IssuerCommand::RecordResolution {
        source,
        source_url: fetched.url.clone(),
        document_sha256: hex::encode(Sha256::digest(&fetched.body)),
        keys,
        resolved_at,
    };
    let context = CommandContext {
        now: Timestamp::from_datetime(Utc::now()),
        metadata: Metadata {
            actor: Some("proofline:fetcher".into()),
            ..Metadata::default()
        },
    };
    let stream = proofline_domain::issuer::IssuerId::for_did(&did).stream_id();
    match handler::execute_if_any::<IssuerDecider, ()>(store.as_ref(), &stream, &context, |state| {
        let events = handler::decide::<IssuerDecider>(&command, state, context.now)?;
        Ok(Decision::events(events, ()))
    })
    .await
    {
        Ok(Some(done)) => {
            tracing::info!(
                issuer = did.as_str(),
                source = source.as_str(),
                position = done.position(),
                "issuer keys changed; recorded"
            );
            Ok((resolved_at, max_age))
        }
        Ok(None) => Ok((resolved_at, max_age)),
        Err(CommandError::Rejected(rejected)) => Err(rejected
            .downcast_ref::<IssuerError>()
            .map_or_else(|| "refused".to_owned(), ToString::to_string)),
        Err(other) => Err(format!("the keys could not be recorded: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::FetchSettings;
    use crate::store::sqlite::{self, SqliteEventStore};
    use proofline_domain::decider::Decider;
    use proofline_domain::issuer::{IssuerCommand, Kid};
    use proofline_domain::jose::PublicKey;
    use proofline_domain::values::Name;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_datetime(chrono::DateTime::from_timestamp(seconds, 0).unwrap())
    }

    /// A did:web issuer whose document is no longer reachable (here: the
    /// guard refuses loopback) keeps its last keys while they may be
    /// cached, and loses them past the longest caching allowed.
    #[tokio::test]
    async fn keys_that_cannot_be_confirmed_for_a_day_verify_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.sqlite");
        let pool = sqlite::connect_pool(&path).await.unwrap();
        crate::migrate::apply_sqlite(&pool).await.unwrap();
        let store: Arc<dyn EventStore> =
            Arc::new(SqliteEventStore::open(pool, &path).await.unwrap());
        let fetcher = Arc::new(Fetcher::new(&FetchSettings::default()).unwrap());
        let resolver = KeyResolver::new(store, fetcher);
        let did = Did::parse("did:web:localhost%3A9").unwrap();
        let key = RegisteredKey {
            kid: Kid::parse("did:web:localhost%3A9#key-1").unwrap(),
            jwk: PublicKey::Ed25519(
                crate::signing::ServiceKey::generate()
                    .unwrap()
                    .verifying_key(),
            )
            .to_jwk(),
        };
        let events = [
            IssuerCommand::Register {
                did: did.clone(),
                name: Name::parse("name", "Gone").unwrap(),
                keys: vec![],
                credential_types: None,
                key_sources: Some(vec![KeySource::Did]),
            },
            IssuerCommand::RecordResolution {
                source: KeySource::Did,
                source_url: "https://localhost:9/.well-known/did.json".into(),
                document_sha256: String::new(),
                keys: vec![key],
                resolved_at: at(1_000),
            },
        ]
        .iter()
        .fold(Vec::new(), |mut history, command| {
            let state = IssuerDecider::fold(&history);
            history.extend(IssuerDecider::decide(command, &state, at(1_000)).unwrap());
            history
        });
        let issuer = IssuerDecider::fold(&events).unwrap();
        let kid = Some("did:web:localhost%3A9#key-1");
        // An hour on: stale, not reachable, still within a day.
        let early = resolver.ensure(&issuer, kid, at(1_000 + 3_600)).await;
        assert!(early.tried && early.unavailable.is_some(), "{early:?}");
        assert!(early.expired.is_empty(), "{early:?}");
        // A day on: the set outlived its caching and is dropped.
        let late = resolver
            .ensure(&issuer, kid, at(1_000 + MAX_AGE_SECONDS + 60))
            .await;
        assert_eq!(late.expired, vec![KeySource::Did], "{late:?}");
        assert!(late.unavailable.unwrap().contains("loopback"));
    }
}
