//! The one outbound fetcher: everything Proofline reads from the internet
//! (status lists, DID documents, issuer metadata, JWK Sets, type metadata)
//! goes through [`Fetcher::get`].
//!
//! https only; the guard of [`crate::outbound`] (the webhooks' own, not a
//! copy) judges every address a name resolves to, at connection time;
//! connect and total timeouts; a size cap read as the body arrives; at
//! most one redirect, to https and past the same guard; no proxy. Two
//! callers asking for the same document at once share one request
//! (single-flight), which runs to its end even if they give up. Each
//! request is counted by kind and outcome (`proofline_fetch_total`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::outbound::{Guard, GuardRefusal};

/// Largest document fetched, unless the operator says otherwise
/// (`PROOFLINE_FETCH_MAX_BYTES`).
pub const DEFAULT_MAX_BYTES: usize = 1024 * 1024;

/// What a document is fetched as: a label of the metrics, and how the
/// request is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FetchKind {
    StatusList,
    DidDocument,
    IssuerMetadata,
    Jwks,
    TypeMetadata,
}

impl FetchKind {
    pub const ALL: [FetchKind; 5] = [
        FetchKind::StatusList,
        FetchKind::DidDocument,
        FetchKind::IssuerMetadata,
        FetchKind::Jwks,
        FetchKind::TypeMetadata,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FetchKind::StatusList => "status_list",
            FetchKind::DidDocument => "did_document",
            FetchKind::IssuerMetadata => "issuer_metadata",
            FetchKind::Jwks => "jwks",
            FetchKind::TypeMetadata => "type_metadata",
        }
    }

    /// The media types asked for.
    fn accept(self) -> &'static str {
        match self {
            FetchKind::StatusList => "application/statuslist+jwt",
            FetchKind::DidDocument => "application/did+json, application/json",
            FetchKind::IssuerMetadata | FetchKind::TypeMetadata => "application/json",
            FetchKind::Jwks => "application/jwk-set+json, application/json",
        }
    }
}

/// Why a document could not be fetched. Each says what a person needs to
/// put it right; none names the address a name resolved to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("{0} is not an https URL")]
    NotHttps(String),
    #[error("refused: {0}")]
    AddressRefused(String),
    #[error("redirect refused: {0}")]
    RedirectRefused(String),
    #[error("the document is larger than {0} bytes")]
    TooLarge(usize),
    #[error("no answer within the time limit")]
    Timeout,
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("the request failed: {0}")]
    Failed(String),
}

impl FetchError {
    /// The outcome label of the metrics; stable.
    pub fn code(&self) -> &'static str {
        match self {
            FetchError::NotHttps(_) => "not_https",
            FetchError::AddressRefused(_) => "address_refused",
            FetchError::RedirectRefused(_) => "redirect_refused",
            FetchError::TooLarge(_) => "too_large",
            FetchError::Timeout => "timeout",
            FetchError::Connect(_) => "connect_failed",
            FetchError::Status(_) => "http_status",
            FetchError::Failed(_) => "failed",
        }
    }
}

/// A document as it was fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The URL asked for.
    pub url: String,
    /// Where the answer came from (after a redirect, its target).
    pub final_url: String,
    pub status: u16,
    pub body: Vec<u8>,
    /// `Cache-Control: max-age` (0 for `no-store` or `no-cache`), if any.
    pub max_age: Option<u64>,
    pub fetched_at: chrono::DateTime<chrono::Utc>,
}

/// The fetcher's settings (`PROOFLINE_FETCH_*`).
#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub guard: Guard,
    pub max_bytes: usize,
}

impl Default for FetchSettings {
    fn default() -> Self {
        Self {
            guard: Guard {
                allowed_networks: Vec::new(),
                extra_roots: Vec::new(),
                connect_timeout: Duration::from_secs(5),
                timeout: Duration::from_secs(10),
            },
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// One run of `future` per key at a time: callers asking while it runs
/// wait for its result. The run is a task of its own, so it finishes, and
/// leaves the table, whoever stops waiting.
pub struct SingleFlight<K: Eq + std::hash::Hash, V> {
    in_flight: Table<K, V>,
}

impl<K: Eq + std::hash::Hash, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self {
            in_flight: Arc::default(),
        }
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Eq + std::hash::Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The result of the run for `key`: the one under way, else a new run
    /// of `future`. `lost` is the result if the run's task panics. The
    /// boolean says whether this caller joined a run already under way.
    pub async fn run<F>(
        &self,
        key: K,
        future: impl FnOnce() -> F,
        lost: fn(String) -> V,
    ) -> (V, bool)
    where
        F: std::future::Future<Output = V> + Send + 'static,
    {
        let (flight, joined) = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            match in_flight.get(&key) {
                Some(flight) => (flight.clone(), true),
                None => {
                    let leave = Leave {
                        table: self.in_flight.clone(),
                        key: Some(key.clone()),
                    };
                    let work = future();
                    let task = tokio::spawn(async move {
                        // The run leaves the table when its task ends, even
                        // by a panic, so a later caller starts afresh.
                        let _leave = leave;
                        work.await
                    });
                    let flight = async move { task.await.unwrap_or_else(|e| lost(e.to_string())) }
                        .boxed()
                        .shared();
                    in_flight.insert(key, flight.clone());
                    (flight, false)
                }
            }
        };
        (flight.await, joined)
    }
}

type Table<K, V> = Arc<Mutex<HashMap<K, Shared<BoxFuture<'static, V>>>>>;

/// Removes a run from its table when dropped.
struct Leave<K: Eq + std::hash::Hash, V> {
    table: Table<K, V>,
    key: Option<K>,
}

impl<K: Eq + std::hash::Hash, V> Drop for Leave<K, V> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.table
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
        }
    }
}

pub struct Fetcher {
    client: reqwest::Client,
    guard: Arc<Guard>,
    max_bytes: usize,
    flights: SingleFlight<(FetchKind, String), Result<Arc<Fetched>, FetchError>>,
}

impl Fetcher {
    pub fn new(settings: &FetchSettings) -> Result<Self, String> {
        let guard = Arc::new(settings.guard.clone());
        let policy_guard = guard.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            // `previous` holds the URL first asked for, then each redirect.
            if attempt.previous().len() > 1 {
                return attempt.error(RedirectRefusal("more than one redirect".into()));
            }
            let url = attempt.url().clone();
            if url.scheme() != "https" {
                return attempt.error(RedirectRefusal(format!(
                    "a redirect to {} (only https is fetched)",
                    url.scheme()
                )));
            }
            if let Some(why) = policy_guard.refuses_literal(&url) {
                return attempt.error(RedirectRefusal(why));
            }
            attempt.follow()
        });
        let client = guard
            .client(
                true,
                concat!("Proofline/", env!("CARGO_PKG_VERSION"), " (trust fetcher)"),
            )?
            .redirect(redirects)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            guard,
            max_bytes: settings.max_bytes,
            flights: SingleFlight::default(),
        })
    }

    /// Fetches `url` as `kind`. Callers asking for the same document while
    /// it is being fetched wait for that one request.
    pub async fn get(&self, kind: FetchKind, url: &str) -> Result<Arc<Fetched>, FetchError> {
        let (client, guard, max_bytes, owned) = (
            self.client.clone(),
            self.guard.clone(),
            self.max_bytes,
            url.to_owned(),
        );
        let (result, joined) = self
            .flights
            .run(
                (kind, url.to_owned()),
                move || async move {
                    let started = Instant::now();
                    let result = fetch(&client, &guard, max_bytes, kind, &owned).await;
                    let outcome = match &result {
                        Ok(_) => "ok",
                        Err(e) => e.code(),
                    };
                    metrics::counter!("proofline_fetch_total", "kind" => kind.as_str(), "outcome" => outcome)
                        .increment(1);
                    metrics::histogram!("proofline_fetch_duration_seconds", "kind" => kind.as_str())
                        .record(started.elapsed().as_secs_f64());
                    if let Err(e) = &result {
                        tracing::info!(kind = kind.as_str(), url = %owned, error = %e, "fetch failed");
                    }
                    result.map(Arc::new)
                },
                |e| Err(FetchError::Failed(format!("the fetch task ended: {e}"))),
            )
            .await;
        if joined {
            metrics::counter!("proofline_fetch_joined_total", "kind" => kind.as_str()).increment(1);
        }
        result
    }
}

/// A redirect the policy refused (recognized again in the error's sources).
#[derive(Debug)]
struct RedirectRefusal(String);

impl std::fmt::Display for RedirectRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RedirectRefusal {}

async fn fetch(
    client: &reqwest::Client,
    guard: &Guard,
    max_bytes: usize,
    kind: FetchKind,
    url: &str,
) -> Result<Fetched, FetchError> {
    let parsed = url::Url::parse(url).map_err(|_| FetchError::NotHttps(url.to_owned()))?;
    if parsed.scheme() != "https" {
        return Err(FetchError::NotHttps(url.to_owned()));
    }
    if let Some(why) = guard.refuses_literal(&parsed) {
        return Err(FetchError::AddressRefused(why));
    }
    let mut response = client
        .get(parsed)
        .header(reqwest::header::ACCEPT, kind.accept())
        .send()
        .await
        .map_err(|e| classify(&e))?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        return Err(FetchError::Status(status));
    }
    if response
        .content_length()
        .is_some_and(|length| length > max_bytes as u64)
    {
        return Err(FetchError::TooLarge(max_bytes));
    }
    let max_age = max_age(response.headers());
    let final_url = response.url().to_string();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
        if body.len() + chunk.len() > max_bytes {
            return Err(FetchError::TooLarge(max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        url: url.to_owned(),
        final_url,
        status,
        body,
        max_age,
        fetched_at: chrono::Utc::now(),
    })
}

/// `max-age` of `Cache-Control`; 0 for `no-store` and `no-cache`.
fn max_age(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let value = headers.get(reqwest::header::CACHE_CONTROL)?.to_str().ok()?;
    let mut found = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(0);
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            found = seconds.trim_matches('"').parse().ok();
        }
    }
    found
}

/// What went wrong, found in the error's sources: the guard's refusal, the
/// redirect policy's, a time-out, a connection failure.
fn classify(error: &reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refusal) = e.downcast_ref::<GuardRefusal>() {
            return FetchError::AddressRefused(refusal.to_string());
        }
        if let Some(refusal) = e.downcast_ref::<RedirectRefusal>() {
            return FetchError::RedirectRefused(refusal.0.clone());
        }
        source = e.source();
    }
    let cause = || crate::report::root_cause(error).to_string();
    if error.is_timeout() {
        FetchError::Timeout
    } else if error.is_connect() {
        FetchError::Connect(cause())
    } else if error.is_redirect() {
        FetchError::RedirectRefused(cause())
    } else {
        FetchError::Failed(cause())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_run_that_panics_leaves_the_table() {
        let flights: SingleFlight<u8, Result<u8, String>> = SingleFlight::default();
        let (first, _) = flights
            .run(1, || async { panic!("a parser bug") }, Err)
            .await;
        assert!(first.is_err());
        let (second, joined) = flights.run(1, || async { Ok(7) }, Err).await;
        assert_eq!(
            (second, joined),
            (Ok(7), false),
            "a new run, not the panicked one"
        );
    }

    #[test]
    fn cache_control_gives_the_age() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(max_age(&headers), None);
        headers.insert(
            reqwest::header::CACHE_CONTROL,
            "public, max-age=120".parse().unwrap(),
        );
        assert_eq!(max_age(&headers), Some(120));
        headers.insert(
            reqwest::header::CACHE_CONTROL,
            "max-age=120, no-cache".parse().unwrap(),
        );
        assert_eq!(max_age(&headers), Some(0));
    }

    #[tokio::test]
    async fn only_https_is_fetched_and_literal_addresses_are_judged_first() {
        let fetcher = Fetcher::new(&FetchSettings::default()).unwrap();
        let plain = fetcher
            .get(FetchKind::StatusList, "http://example.com/list")
            .await;
        assert!(matches!(plain, Err(FetchError::NotHttps(_))), "{plain:?}");
        let loopback = fetcher
            .get(FetchKind::StatusList, "https://127.0.0.1:9/list")
            .await;
        assert!(
            matches!(loopback, Err(FetchError::AddressRefused(_))),
            "{loopback:?}"
        );
        let metadata = fetcher
            .get(FetchKind::Jwks, "https://[::ffff:169.254.169.254]/jwks")
            .await;
        assert!(
            matches!(metadata, Err(FetchError::AddressRefused(_))),
            "{metadata:?}"
        );
    }
}
