//! What handlers share, and the settings of the HTTP layer.

use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use proofline_commands::auth::Authenticator;
use proofline_commands::fetch::{FetchSettings, Fetcher};
use proofline_commands::fetched_keys::KeyResolver;
use proofline_commands::fetched_lists::{ListSettings, StatusListFetcher};
use proofline_commands::oid4vp::identity::VerifierIdentity;
use proofline_commands::oid4vp::{FlowSettings, Flows};
use proofline_commands::registry::Registry;
use proofline_commands::sealing::SealingKey;
use proofline_commands::signing::ServiceKey;
use proofline_commands::store::EventStore;
use proofline_commands::type_metadata::TypeMetadata;
use proofline_commands::verifications::Verifier;
use proofline_projections::db::ReadDb;

use crate::limits::Limits;
use crate::tails::Tails;

/// The HTTP layer's settings, from the service's configuration.
/// The origin of an embedded log's checkpoints when none is configured.
pub const DEFAULT_LOG_ORIGIN: &str = "localhost/proofline";

#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Origins allowed by CORS; empty means CORS is off.
    pub cors_allowed_origins: Vec<String>,
    /// Longest a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Largest request body.
    pub body_limit_bytes: usize,
    /// Requests per second each API key may make (bursts of twice that).
    pub requests_per_key_per_second: u32,
    /// Failed authentications per minute from one client address.
    pub failed_auth_per_minute: u32,
    /// How old a presentation's Key Binding JWT may be.
    pub presentation_max_age: Duration,
    /// Events a projector may trail the log before readiness fails.
    pub projector_max_lag: u64,
    /// Networks webhooks may reach despite the SSRF guard.
    pub webhook_allowed_networks: Vec<IpNet>,
    /// Live tails of the log one API key may have open.
    pub tails_per_key: usize,
    /// Live tails of the log open in all.
    pub tails_total: usize,
    /// How often a live tail checks that its key is still valid.
    pub tail_recheck: Duration,
    /// A signed checkpoint within this many seconds of any new event.
    pub checkpoint_every_seconds: u64,
    /// A signed checkpoint after this many new events.
    pub checkpoint_every_events: u64,
    /// Requests per minute per address to the wallet-facing endpoints.
    pub oid4vp_rate_per_minute: u32,
    /// The log's name in its checkpoint notes (`PROOFLINE_LOG_ORIGIN`).
    pub log_origin: String,
    /// Whether anyone may read the tlog-tiles entry bundles.
    pub tlog_public_entries: bool,
    /// Witnesses each new checkpoint is submitted to.
    pub witnesses: Vec<proofline_commands::witnesses::Witness>,
    /// The one outbound fetcher (status lists, issuer keys, type metadata).
    pub fetch: FetchSettings,
    /// How fresh fetched status lists must be.
    pub status_lists: ListSettings,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            cors_allowed_origins: Vec::new(),
            request_timeout: Duration::from_secs(30),
            body_limit_bytes: 1024 * 1024,
            requests_per_key_per_second: 100,
            failed_auth_per_minute: 30,
            presentation_max_age: Duration::from_secs(
                proofline_domain::verification::DEFAULT_MAX_AGE_SECONDS,
            ),
            projector_max_lag: 10_000,
            webhook_allowed_networks: Vec::new(),
            tails_per_key: 4,
            tails_total: 256,
            tail_recheck: Duration::from_secs(60),
            checkpoint_every_seconds: 5,
            checkpoint_every_events: 1_000,
            oid4vp_rate_per_minute: 600,
            log_origin: DEFAULT_LOG_ORIGIN.to_owned(),
            tlog_public_entries: false,
            witnesses: Vec::new(),
            fetch: FetchSettings::default(),
            status_lists: ListSettings::default(),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn EventStore>,
    pub auth: Arc<Authenticator>,
    /// The trust registry, read from the write side.
    pub registry: Arc<Registry>,
    pub service_key: Arc<ServiceKey>,
    pub settings: Arc<ApiSettings>,
    pub limits: Arc<Limits>,
    /// The live tails open.
    pub tails: Arc<Tails>,
    /// The key idempotency records are sealed with (derived from the
    /// service key).
    pub idempotency_master: Arc<[u8; 32]>,
    /// Verifies and records presentations.
    pub verifier: Arc<Verifier>,
    /// Status lists fetched by URI (the verifier's; refreshed in the
    /// background).
    pub lists: Arc<StatusListFetcher>,
    /// Seals webhook signing secrets: the sealing key, not derived from the
    /// service key (the webhooks role holds it alone).
    pub webhook_sealing_key: Arc<SealingKey>,
    /// The OpenID4VP verifier.
    pub flows: Arc<Flows>,
    /// The read models, when this process serves queries from them.
    pub read: Option<ReadDb>,
    /// The same read models on a streaming replica (`DATABASE_READ_URL`),
    /// for the query routes.
    pub read_replica: Option<ReadDb>,
    /// More readiness checks (the bus, when configured), by name.
    pub probes: Vec<(&'static str, Probe)>,
    /// More gauges for `/metrics` (such as the relay's position).
    pub gauges: Vec<(&'static str, Arc<std::sync::atomic::AtomicU64>)>,
}

/// A readiness check: `Ok` with details, or why the service is not ready.
pub type Probe = Arc<
    dyn Fn() -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<serde_json::Value, String>> + Send>,
        > + Send
        + Sync,
>;

impl AppState {
    pub fn new(
        store: Arc<dyn EventStore>,
        service_key: Arc<ServiceKey>,
        webhook_sealing_key: Arc<SealingKey>,
        settings: ApiSettings,
    ) -> Self {
        let idempotency_master =
            Arc::new(service_key.derive_key("proofline idempotency records v1"));
        let registry = Arc::new(Registry::new(store.clone()));
        // The settings' roots were checked when the configuration was read.
        let fetcher = Arc::new(
            Fetcher::new(&settings.fetch).expect("the fetcher's settings were checked when read"),
        );
        let lists = Arc::new(StatusListFetcher::new(
            store.clone(),
            registry.clone(),
            fetcher.clone(),
            settings.status_lists,
        ));
        let keys = Arc::new(KeyResolver::new(store.clone(), fetcher.clone()));
        let types = Arc::new(TypeMetadata::new(fetcher));
        let verifier = Arc::new(
            Verifier::new(
                store.clone(),
                registry.clone(),
                service_key.clone(),
                i64::try_from(settings.presentation_max_age.as_secs()).unwrap_or(i64::MAX),
            )
            .with_fetched_lists(lists.clone())
            .with_key_resolver(keys)
            .with_type_metadata(types),
        );
        // A verifier identity of its own for this process until the
        // service's is set ([`AppState::with_oid4vp`]).
        let identity = ServiceKey::generate()
            .map(VerifierIdentity::did_key)
            .expect("the OS random source works");
        let flows = Arc::new(Flows::new(
            store.clone(),
            verifier.clone(),
            Arc::new(identity),
            webhook_sealing_key.clone(),
            FlowSettings {
                public_url: url::Url::parse("http://127.0.0.1:8080/").expect("a valid URL"),
                result_ttl_seconds: 600,
            },
        ));
        Self {
            lists,
            auth: Arc::new(Authenticator::new(store.clone())),
            verifier,
            flows,
            registry,
            webhook_sealing_key,
            read: None,
            read_replica: None,
            probes: Vec::new(),
            gauges: Vec::new(),
            limits: Arc::new(Limits::new(&settings)),
            tails: Arc::new(Tails::new(settings.tails_per_key, settings.tails_total)),
            settings: Arc::new(settings),
            store,
            service_key,
            idempotency_master,
        }
    }
}

impl AppState {
    /// Adds a readiness check.
    pub fn with_probe(mut self, name: &'static str, probe: Probe) -> Self {
        self.probes.push((name, probe));
        self
    }

    /// Keeps the per-key and failed-authentication budgets in the Postgres
    /// of `pool`, one for every API instance on it; `breaker` watches that
    /// server (the store's).
    pub fn with_shared_limits(
        mut self,
        pool: sqlx::PgPool,
        breaker: proofline_commands::store::breaker::Breaker,
    ) -> Self {
        self.limits = Arc::new(
            Limits::new(&self.settings)
                .shared(crate::shared_limits::SharedBudgets::new(pool, breaker)),
        );
        self
    }

    /// Adds a gauge to `/metrics`.
    pub fn with_gauge(
        mut self,
        name: &'static str,
        value: Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        self.gauges.push((name, value));
        self
    }

    /// Serves queries from `read`.
    /// The deployment's OpenID4VP verifier: its identity and public URL.
    pub fn with_oid4vp(mut self, identity: VerifierIdentity, settings: FlowSettings) -> Self {
        self.flows = Arc::new(Flows::new(
            self.store.clone(),
            self.verifier.clone(),
            Arc::new(identity),
            self.webhook_sealing_key.clone(),
            settings,
        ));
        self
    }

    /// Serves the query routes from `replica`, a streaming replica of the
    /// read models' database.
    pub fn with_read_replica(mut self, replica: ReadDb) -> Self {
        self.read_replica = Some(replica);
        self
    }

    pub fn with_read_models(mut self, read: ReadDb) -> Self {
        self.read = Some(read);
        self
    }
}
