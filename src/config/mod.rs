//! The one typed configuration, read from the environment in `main` and
//! passed down. Every value is validated at start; a bad one stops the
//! process with a message that names the variable. Secrets (the database URL
//! may carry a password) are wrapped so they cannot be printed.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use proofline_api::ApiSettings;
use proofline_commands::store::postgres::PgStoreOptions;
use proofline_projections::relay::RelayOptions;
use proofline_projections::webhooks::ConsumerOptions;
use proofline_projections::webhooks::client::ClientOptions;
use secrecy::{ExposeSecret, SecretString};

mod fetch;
mod oid4vp;
mod reader;

pub use oid4vp::{ClientIdKind, Oid4vpConfig};

use reader::{Reader, bad};

const DEFAULT_BIND: &str = "127.0.0.1:8080";
const DEFAULT_DATA_DIR: &str = "./proofline-data";

/// Every variable the service reads, with what it means; `.env.sample` and
/// the README list the same, with the defaults [`Config::defaults`] gives
/// (a test keeps them in step).
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "DATABASE_URL",
        "postgres://… for production; absent: embedded SQLite under the data directory",
    ),
    (
        "DATABASE_READ_URL",
        "postgres://… of a streaming replica of DATABASE_URL that serves the query routes",
    ),
    (
        "NATS_URL",
        "nats://host:4222 (comma-separated for a cluster); absent: embedded bus",
    ),
    (
        "PROOFLINE_NATS_STREAM_REPLICAS",
        "copies of the JetStream stream a NATS cluster keeps, 1 to 5 (3 on a three-node cluster)",
    ),
    ("PROOFLINE_BIND", "address to listen on"),
    ("PROOFLINE_DATA_DIR", "embedded store and key files"),
    (
        "PROOFLINE_SIGNING_KEY_FILE",
        "Ed25519 service key, PKCS#8 PEM",
    ),
    (
        "PROOFLINE_SEALING_KEY_FILE",
        "AES key that seals webhook secrets, created on first start",
    ),
    (
        "PROOFLINE_OPERATOR_KEY_FILE",
        "operator API key, created on first start",
    ),
    (
        "PROOFLINE_WEBHOOK_ALLOWED_NETWORKS",
        "CIDRs webhooks may reach despite the SSRF guard",
    ),
    (
        "PROOFLINE_TRUSTED_PROXIES",
        "CIDRs whose X-Forwarded-For is believed",
    ),
    (
        "PROOFLINE_PRESENTATION_MAX_AGE_SECONDS",
        "oldest accepted key-binding JWT, 1 to 3600",
    ),
    (
        "PROOFLINE_DATABASE_MAX_CONNECTIONS",
        "Postgres pool size, 2 to 1000",
    ),
    (
        "PROOFLINE_CORS_ALLOWED_ORIGINS",
        "origins allowed by CORS, comma-separated (none: CORS off)",
    ),
    (
        "PROOFLINE_RATE_LIMIT_PER_KEY",
        "requests per second per API key, 0 unlimited",
    ),
    (
        "PROOFLINE_FAILED_AUTH_PER_MINUTE",
        "failed authentications per minute per client address",
    ),
    (
        "PROOFLINE_REQUEST_TIMEOUT_SECONDS",
        "longest a request may take, 1 to 300",
    ),
    ("PROOFLINE_MAX_BODY_BYTES", "largest request body"),
    (
        "PROOFLINE_PROJECTOR_MAX_LAG",
        "events a projector may trail the log before /health/ready fails",
    ),
    (
        "PROOFLINE_WEBHOOK_RETRY_SCHEDULE",
        "seconds between a webhook's attempts, comma-separated",
    ),
    (
        "PROOFLINE_WEBHOOK_CONNECT_TIMEOUT_SECONDS",
        "webhook connect timeout, 0.05 to 60",
    ),
    (
        "PROOFLINE_WEBHOOK_TIMEOUT_SECONDS",
        "webhook whole-request timeout, 0.05 to 120",
    ),
    (
        "PROOFLINE_WEBHOOK_PER_LENDER",
        "webhook requests in flight per lender, 1 to 64",
    ),
    (
        "PROOFLINE_EVENT_TAILS_PER_KEY",
        "live tails of the log (/v1/events/stream) one API key may hold, 1 to 1000",
    ),
    (
        "PROOFLINE_EVENT_TAILS_MAX",
        "live tails of the log open in all, 1 to 100000",
    ),
    (
        "PROOFLINE_CHECKPOINT_EVERY_SECONDS",
        "sign a log checkpoint within this many seconds of any new event, 1 to 86400",
    ),
    (
        "PROOFLINE_CHECKPOINT_EVERY_EVENTS",
        "sign a log checkpoint after this many new events, 1 to 100000000",
    ),
    (
        "PROOFLINE_LOG_ORIGIN",
        "the log's name in its signed checkpoint notes (C2SP tlog-checkpoint origin, e.g. log.example.com/proofline); required with DATABASE_URL",
    ),
    (
        "PROOFLINE_TLOG_PUBLIC_ENTRIES",
        "true: anyone may read the tlog-tiles entry bundles (the events); default: auditors and operators only",
    ),
    (
        "PROOFLINE_WITNESSES",
        "C2SP tlog-witness witnesses each checkpoint is submitted to: comma-separated `URL VKEY` pairs (the submission prefix, a space, the witness's cosignature/v1 verifier key); default none",
    ),
    (
        "PROOFLINE_CHECKPOINT_EVERY",
        "deprecated: both of the above at once, for each one not set",
    ),
    ("PROOFLINE_LOG_FORMAT", "text or json"),
    (
        "PROOFLINE_PUBLIC_URL",
        "public https base URL wallets reach (http for loopback only)",
    ),
    (
        "PROOFLINE_OID4VP_CLIENT_ID",
        "client_id prefix: decentralized_identifier, x509_hash, x509_san_dns[:<name>], redirect_uri",
    ),
    (
        "PROOFLINE_VERIFIER_KEY_FILE",
        "Ed25519 key that signs request objects (did:key), created on first start",
    ),
    (
        "PROOFLINE_OID4VP_X509_CHAIN_FILE",
        "PEM chain, leaf first, for an x509 client_id",
    ),
    (
        "PROOFLINE_OID4VP_X509_KEY_FILE",
        "PKCS#8 PEM P-256 key of the chain's leaf",
    ),
    (
        "PROOFLINE_OID4VP_RESULT_TTL_SECONDS",
        "seconds disclosed values are kept for the lender, 1 to 86400",
    ),
    (
        "PROOFLINE_OID4VP_RATE_PER_MINUTE",
        "requests per minute per address to the wallet endpoints, 0 unlimited",
    ),
    (
        "PROOFLINE_FETCH_ALLOWED_NETWORKS",
        "CIDRs trust documents may be fetched from despite the SSRF guard",
    ),
    (
        "PROOFLINE_FETCH_CA_FILE",
        "PEM roots trusted for fetching (TLS only, never issuer anchors)",
    ),
    (
        "PROOFLINE_FETCH_MAX_BYTES",
        "largest fetched document, 1024 to 16777216",
    ),
    (
        "PROOFLINE_STATUS_LIST_MAX_AGE_SECONDS",
        "age at which a fetched status list without ttl is fetched again, 1 to 86400",
    ),
    (
        "PROOFLINE_STATUS_LIST_STALE_GRACE_SECONDS",
        "how long past its age an unfetchable list is still used, 0 to 604800",
    ),
];

/// A bad value, named by its variable. The value itself is only repeated
/// when it is not a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

/// Where the event store lives.
#[derive(Clone)]
pub enum StoreLocation {
    /// SQLite under the data directory.
    Embedded { path: PathBuf },
    Postgres {
        url: SecretString,
        max_connections: u32,
    },
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Embedded { path } => {
                f.debug_struct("Embedded").field("path", path).finish()
            }
            StoreLocation::Postgres {
                max_connections, ..
            } => f
                .debug_struct("Postgres")
                .field("url", &"[redacted]")
                .field("max_connections", max_connections)
                .finish(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The configuration of one process. The settings each component takes
/// are kept as that component's own type, whose `Default` is where every
/// default lives.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreLocation,
    pub nats_url: Option<String>,
    /// A replica of the database for the query routes.
    pub read_replica_url: Option<SecretString>,
    /// Copies of the stream a JetStream cluster keeps.
    pub nats_stream_replicas: usize,
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub signing_key_file: PathBuf,
    /// The key that seals webhook secrets; the only key the webhooks role
    /// needs.
    pub sealing_key_file: PathBuf,
    pub operator_key_file: PathBuf,
    pub log_format: LogFormat,
    /// The HTTP layer's settings.
    pub api: ApiSettings,
    /// The webhook consumer's settings.
    pub webhooks: ConsumerOptions,
    /// The OpenID4VP verifier's settings.
    pub oid4vp: Oid4vpConfig,
    /// Whether `PROOFLINE_LOG_ORIGIN` was given (it must be, with Postgres,
    /// for the API role: a production log needs a name of its own).
    pub log_origin_given: bool,
    /// Set when the deprecated `PROOFLINE_CHECKPOINT_EVERY` was read, so the
    /// service can say so at start.
    pub deprecated_checkpoint_every: bool,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = VARIABLES
            .iter()
            .filter_map(|(name, _)| std::env::var(name).ok().map(|v| ((*name).to_owned(), v)))
            .collect();
        Self::from_vars(&vars)
    }

    /// Reads from a map, so tests never touch the process environment.
    /// Empty values count as absent.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::read(&Reader::new(vars))
    }

    /// Every variable's default, as text, from the components' own
    /// defaults: what the README and `.env.sample` must say.
    pub fn defaults() -> Vec<(&'static str, String)> {
        let none = HashMap::new();
        let reader = Reader::new(&none);
        Self::read(&reader).expect("the defaults are a valid configuration");
        reader.defaults()
    }

    fn read(r: &Reader<'_>) -> Result<Self, ConfigError> {
        let data_dir = PathBuf::from(
            r.get("PROOFLINE_DATA_DIR", DEFAULT_DATA_DIR)
                .unwrap_or(DEFAULT_DATA_DIR),
        );
        let store = read_store(r, &data_dir)?;
        let nats_url = read_nats(r)?;
        let read_replica_url = read_replica(r, &store)?;
        let nats_stream_replicas = r.number(
            "PROOFLINE_NATS_STREAM_REPLICAS",
            RelayOptions::default().replicas as u64,
            1..=5,
        )? as usize;
        let bind_text = r
            .get("PROOFLINE_BIND", DEFAULT_BIND)
            .unwrap_or(DEFAULT_BIND);
        let bind = bind_text.parse().map_err(|_| {
            bad(
                "PROOFLINE_BIND",
                format!("{bind_text:?} is not an address with a port, like 127.0.0.1:8080"),
            )
        })?;
        let api = read_api(r)?;
        let legacy = api.1;
        let webhooks = read_webhooks(r, &api.0.webhook_allowed_networks)?;
        let log_format = match r.get("PROOFLINE_LOG_FORMAT", "text") {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(bad(
                    "PROOFLINE_LOG_FORMAT",
                    format!("{other:?} is neither text nor json"),
                ));
            }
        };
        let oid4vp = oid4vp::read(r, &data_dir)?;
        Ok(Config {
            oid4vp,
            store,
            nats_url,
            read_replica_url,
            nats_stream_replicas,
            bind,
            signing_key_file: r.file("PROOFLINE_SIGNING_KEY_FILE", &data_dir, "signing.key"),
            sealing_key_file: r.file("PROOFLINE_SEALING_KEY_FILE", &data_dir, "sealing.key"),
            operator_key_file: r.file("PROOFLINE_OPERATOR_KEY_FILE", &data_dir, "operator.key"),
            data_dir,
            log_format,
            api: api.0,
            webhooks,
            deprecated_checkpoint_every: legacy,
            log_origin_given: r
                .get("PROOFLINE_LOG_ORIGIN", proofline_api::DEFAULT_LOG_ORIGIN)
                .is_some(),
        })
    }

    /// One line for the start-up log, without secrets.
    pub fn describe_store(&self) -> String {
        match &self.store {
            StoreLocation::Embedded { path } => format!("embedded SQLite at {}", path.display()),
            StoreLocation::Postgres { url, .. } => match url::Url::parse(url.expose_secret()) {
                Ok(u) => format!(
                    "Postgres at {}:{}{}",
                    u.host_str().unwrap_or("?"),
                    u.port().unwrap_or(5432),
                    u.path()
                ),
                Err(_) => "Postgres".to_owned(),
            },
        }
    }
}

fn read_store(r: &Reader<'_>, data_dir: &std::path::Path) -> Result<StoreLocation, ConfigError> {
    let max_connections = r.number(
        "PROOFLINE_DATABASE_MAX_CONNECTIONS",
        u64::from(PgStoreOptions::default().max_connections),
        2..=1000,
    )? as u32;
    let Some(url) = r.get("DATABASE_URL", "(embedded)") else {
        return Ok(StoreLocation::Embedded {
            path: data_dir.join("proofline.sqlite"),
        });
    };
    let parsed =
        url::Url::parse(url).map_err(|e| bad("DATABASE_URL", format!("not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(bad(
            "DATABASE_URL",
            format!(
                "scheme {:?} is not supported: use postgres://…, or leave DATABASE_URL unset for the embedded store",
                parsed.scheme()
            ),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("DATABASE_URL", "the URL names no host"));
    }
    Ok(StoreLocation::Postgres {
        url: SecretString::from(url.to_owned()),
        max_connections,
    })
}

fn read_replica(
    r: &Reader<'_>,
    store: &StoreLocation,
) -> Result<Option<SecretString>, ConfigError> {
    let Some(url) = r.get("DATABASE_READ_URL", "none") else {
        return Ok(None);
    };
    if matches!(store, StoreLocation::Embedded { .. }) {
        return Err(bad(
            "DATABASE_READ_URL",
            "a read replica needs DATABASE_URL (the embedded store has none)",
        ));
    }
    let parsed =
        url::Url::parse(url).map_err(|e| bad("DATABASE_READ_URL", format!("not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") || parsed.host_str().is_none() {
        return Err(bad(
            "DATABASE_READ_URL",
            "use postgres://host/database of a replica of DATABASE_URL",
        ));
    }
    Ok(Some(SecretString::from(url.to_owned())))
}

fn read_nats(r: &Reader<'_>) -> Result<Option<String>, ConfigError> {
    let Some(list) = r.get("NATS_URL", "(embedded)") else {
        return Ok(None);
    };
    for server in list.split(',').map(str::trim) {
        let parsed = url::Url::parse(server)
            .map_err(|e| bad("NATS_URL", format!("{server:?} is not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "nats" | "tls" | "ws" | "wss") {
            return Err(bad(
                "NATS_URL",
                format!("{server:?}: use nats://, tls://, ws:// or wss://"),
            ));
        }
    }
    Ok(Some(list.to_owned()))
}

/// The HTTP layer's settings, and whether the deprecated
/// `PROOFLINE_CHECKPOINT_EVERY` was read.
fn read_api(r: &Reader<'_>) -> Result<(ApiSettings, bool), ConfigError> {
    let d = ApiSettings::default();
    // `PROOFLINE_CHECKPOINT_EVERY` was both a count and seconds (300 by
    // default, so a fresh install had no signed head for minutes); it
    // stays as an alias for whichever of the two is not set.
    let legacy = r.optional_number("PROOFLINE_CHECKPOINT_EVERY", 1..=86_400)?;
    let (fetch, status_lists) = fetch::read(r)?;
    let settings = ApiSettings {
        trusted_proxies: r.networks("PROOFLINE_TRUSTED_PROXIES")?,
        cors_allowed_origins: read_origins(r)?,
        request_timeout: Duration::from_secs(r.number(
            "PROOFLINE_REQUEST_TIMEOUT_SECONDS",
            d.request_timeout.as_secs(),
            1..=300,
        )?),
        body_limit_bytes: r.number(
            "PROOFLINE_MAX_BODY_BYTES",
            d.body_limit_bytes as u64,
            1024..=16 * 1024 * 1024,
        )? as usize,
        requests_per_key_per_second: r.number(
            "PROOFLINE_RATE_LIMIT_PER_KEY",
            u64::from(d.requests_per_key_per_second),
            0..=1_000_000,
        )? as u32,
        failed_auth_per_minute: r.number(
            "PROOFLINE_FAILED_AUTH_PER_MINUTE",
            u64::from(d.failed_auth_per_minute),
            1..=100_000,
        )? as u32,
        presentation_max_age: Duration::from_secs(r.number(
            "PROOFLINE_PRESENTATION_MAX_AGE_SECONDS",
            d.presentation_max_age.as_secs(),
            1..=3_600,
        )?),
        projector_max_lag: r.number(
            "PROOFLINE_PROJECTOR_MAX_LAG",
            d.projector_max_lag,
            1..=100_000_000,
        )?,
        webhook_allowed_networks: r.networks("PROOFLINE_WEBHOOK_ALLOWED_NETWORKS")?,
        tails_per_key: r.number(
            "PROOFLINE_EVENT_TAILS_PER_KEY",
            d.tails_per_key as u64,
            1..=1_000,
        )? as usize,
        tails_total: r.number(
            "PROOFLINE_EVENT_TAILS_MAX",
            d.tails_total as u64,
            1..=100_000,
        )? as usize,
        checkpoint_every_seconds: r.number(
            "PROOFLINE_CHECKPOINT_EVERY_SECONDS",
            legacy.unwrap_or(d.checkpoint_every_seconds),
            1..=86_400,
        )?,
        checkpoint_every_events: r.number(
            "PROOFLINE_CHECKPOINT_EVERY_EVENTS",
            legacy.unwrap_or(d.checkpoint_every_events),
            1..=100_000_000,
        )?,
        log_origin: read_origin(r)?.unwrap_or(d.log_origin),
        tlog_public_entries: match r.get("PROOFLINE_TLOG_PUBLIC_ENTRIES", "false") {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(bad(
                    "PROOFLINE_TLOG_PUBLIC_ENTRIES",
                    format!("{other:?} is neither true nor false"),
                ));
            }
        },
        witnesses: fetch::witnesses(r)?,
        oid4vp_rate_per_minute: r.number(
            "PROOFLINE_OID4VP_RATE_PER_MINUTE",
            u64::from(d.oid4vp_rate_per_minute),
            0..=1_000_000,
        )? as u32,
        fetch,
        status_lists,
        ..d
    };
    Ok((settings, legacy.is_some()))
}

/// `PROOFLINE_LOG_ORIGIN`, if given: a C2SP note key name (no spaces, no
/// `+`), which checkpoints name as their origin.
fn read_origin(r: &Reader<'_>) -> Result<Option<String>, ConfigError> {
    let Some(origin) = r.get("PROOFLINE_LOG_ORIGIN", proofline_api::DEFAULT_LOG_ORIGIN) else {
        return Ok(None);
    };
    if proofline_domain::note::check_name(origin).is_err() || origin.len() > 200 {
        return Err(bad(
            "PROOFLINE_LOG_ORIGIN",
            format!(
                "{origin:?} is not a log origin: up to 200 characters, no spaces or '+', like log.example.com/proofline"
            ),
        ));
    }
    Ok(Some(origin.to_owned()))
}

fn read_webhooks(r: &Reader<'_>, allowed: &[IpNet]) -> Result<ConsumerOptions, ConfigError> {
    let d = ConsumerOptions::default();
    let schedule = r.seconds_list(
        "PROOFLINE_WEBHOOK_RETRY_SCHEDULE",
        &d.schedule,
        0.01..=86_400.0,
    )?;
    if schedule.len() > 32 {
        return Err(bad(
            "PROOFLINE_WEBHOOK_RETRY_SCHEDULE",
            "at most 32 retries",
        ));
    }
    Ok(ConsumerOptions {
        client: ClientOptions {
            connect_timeout: r.seconds(
                "PROOFLINE_WEBHOOK_CONNECT_TIMEOUT_SECONDS",
                d.client.connect_timeout,
                0.05..=60.0,
            )?,
            timeout: r.seconds(
                "PROOFLINE_WEBHOOK_TIMEOUT_SECONDS",
                d.client.timeout,
                0.05..=120.0,
            )?,
            allowed_networks: allowed.to_vec(),
        },
        schedule,
        per_lender: r.number("PROOFLINE_WEBHOOK_PER_LENDER", d.per_lender as u64, 1..=64)? as usize,
        ..d
    })
}

fn read_origins(r: &Reader<'_>) -> Result<Vec<String>, ConfigError> {
    let Some(list) = r.get("PROOFLINE_CORS_ALLOWED_ORIGINS", "none (CORS off)") else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| match url::Url::parse(origin) {
            Ok(u)
                if matches!(u.scheme(), "http" | "https")
                    && u.path() == "/"
                    && u.query().is_none() =>
            {
                Ok(origin.trim_end_matches('/').to_owned())
            }
            _ => Err(bad(
                "PROOFLINE_CORS_ALLOWED_ORIGINS",
                format!("{origin:?} is not an origin like https://app.example"),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_run_embedded_on_localhost() {
        let config = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(config.bind, "127.0.0.1:8080".parse().unwrap());
        assert!(
            matches!(&config.store, StoreLocation::Embedded { path } if path == &PathBuf::from("./proofline-data/proofline.sqlite"))
        );
        assert_eq!(
            config.operator_key_file,
            PathBuf::from("./proofline-data/operator.key")
        );
        assert_eq!(
            config.signing_key_file,
            PathBuf::from("./proofline-data/signing.key")
        );
        assert_eq!(config.api.presentation_max_age, Duration::from_secs(300));
        assert_eq!(
            (
                config.api.requests_per_key_per_second,
                config.api.failed_auth_per_minute
            ),
            (100, 30)
        );
        assert_eq!(config.api.request_timeout, Duration::from_secs(30));
        assert_eq!(config.api.body_limit_bytes, 1024 * 1024);
        assert!(config.api.cors_allowed_origins.is_empty());
        assert!(config.nats_url.is_none());
        assert!(config.api.trusted_proxies.is_empty());
    }

    #[test]
    fn checkpoints_are_due_within_seconds_and_the_old_variable_is_an_alias() {
        let fresh = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(
            (
                fresh.api.checkpoint_every_seconds,
                fresh.api.checkpoint_every_events
            ),
            (5, 1_000)
        );
        assert!(!fresh.deprecated_checkpoint_every);
        let old = Config::from_vars(&vars(&[("PROOFLINE_CHECKPOINT_EVERY", "300")])).unwrap();
        assert_eq!(
            (
                old.api.checkpoint_every_seconds,
                old.api.checkpoint_every_events
            ),
            (300, 300)
        );
        assert!(old.deprecated_checkpoint_every);
        let mixed = Config::from_vars(&vars(&[
            ("PROOFLINE_CHECKPOINT_EVERY", "300"),
            ("PROOFLINE_CHECKPOINT_EVERY_SECONDS", "2"),
        ]))
        .unwrap();
        assert_eq!(
            (
                mixed.api.checkpoint_every_seconds,
                mixed.api.checkpoint_every_events
            ),
            (2, 300),
            "the new names win"
        );
        for (name, value) in [
            ("PROOFLINE_CHECKPOINT_EVERY_SECONDS", "0"),
            ("PROOFLINE_CHECKPOINT_EVERY_EVENTS", "lots"),
            ("PROOFLINE_CHECKPOINT_EVERY", "0"),
        ] {
            let error = Config::from_vars(&vars(&[(name, value)])).unwrap_err();
            assert_eq!(error.variable, name);
        }
    }

    #[test]
    fn reads_every_variable() {
        let config = Config::from_vars(&vars(&[
            (
                "DATABASE_URL",
                "postgres://app:pw@db.internal:5433/proofline",
            ),
            ("NATS_URL", "nats://a:4222, nats://b:4222"),
            ("PROOFLINE_BIND", "0.0.0.0:9000"),
            ("PROOFLINE_DATA_DIR", "/var/lib/proofline"),
            ("PROOFLINE_OPERATOR_KEY_FILE", "/run/secrets/operator"),
            (
                "PROOFLINE_WEBHOOK_ALLOWED_NETWORKS",
                "10.1.0.0/16, 192.168.1.7",
            ),
            ("PROOFLINE_TRUSTED_PROXIES", "::1"),
            ("PROOFLINE_PRESENTATION_MAX_AGE_SECONDS", "120"),
            ("PROOFLINE_DATABASE_MAX_CONNECTIONS", "40"),
            ("PROOFLINE_LOG_FORMAT", "json"),
            (
                "PROOFLINE_CORS_ALLOWED_ORIGINS",
                "https://app.example, http://localhost:3000/",
            ),
            ("PROOFLINE_RATE_LIMIT_PER_KEY", "0"),
        ]))
        .unwrap();
        assert_eq!(
            config.api.cors_allowed_origins,
            vec!["https://app.example", "http://localhost:3000"]
        );
        assert_eq!(config.api.requests_per_key_per_second, 0);
        assert!(matches!(
            config.store,
            StoreLocation::Postgres {
                max_connections: 40,
                ..
            }
        ));
        assert_eq!(
            config.describe_store(),
            "Postgres at db.internal:5433/proofline"
        );
        assert_eq!(
            config.signing_key_file,
            PathBuf::from("/var/lib/proofline/signing.key")
        );
        assert_eq!(
            config.operator_key_file,
            PathBuf::from("/run/secrets/operator")
        );
        assert_eq!(config.api.webhook_allowed_networks.len(), 2);
        assert_eq!(
            config.api.webhook_allowed_networks[1].to_string(),
            "192.168.1.7/32"
        );
        assert_eq!(config.api.trusted_proxies[0].to_string(), "::1/128");
        assert_eq!(config.api.presentation_max_age, Duration::from_secs(120));
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(
            !format!("{config:?}").contains("pw@"),
            "Debug never shows the database password"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases = [
            ("PROOFLINE_BIND", "localhost"),
            ("DATABASE_URL", "mysql://x/y"),
            ("DATABASE_URL", "not a url"),
            ("NATS_URL", "http://x:4222"),
            ("PROOFLINE_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("PROOFLINE_WEBHOOK_ALLOWED_NETWORKS", "internal"),
            ("PROOFLINE_PRESENTATION_MAX_AGE_SECONDS", "0"),
            ("PROOFLINE_PRESENTATION_MAX_AGE_SECONDS", "86400"),
            ("PROOFLINE_DATABASE_MAX_CONNECTIONS", "1"),
            ("PROOFLINE_LOG_FORMAT", "xml"),
            ("PROOFLINE_CORS_ALLOWED_ORIGINS", "https://app.example/path"),
            ("PROOFLINE_RATE_LIMIT_PER_KEY", "-1"),
            ("PROOFLINE_FAILED_AUTH_PER_MINUTE", "0"),
            ("PROOFLINE_REQUEST_TIMEOUT_SECONDS", "301"),
            ("PROOFLINE_MAX_BODY_BYTES", "10"),
        ];
        for (name, value) in cases {
            let error = Config::from_vars(&vars(&[(name, value)])).unwrap_err();
            assert_eq!(error.variable, name, "{name}={value}");
        }
    }

    #[test]
    fn the_database_password_is_not_echoed_in_errors() {
        let error =
            Config::from_vars(&vars(&[("DATABASE_URL", "mysql://u:hunter2@h/db")])).unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn empty_values_count_as_absent() {
        let config = Config::from_vars(&vars(&[("DATABASE_URL", ""), ("NATS_URL", " ")])).unwrap();
        assert!(matches!(config.store, StoreLocation::Embedded { .. }));
        assert!(config.nats_url.is_none());
    }

    #[test]
    fn every_variable_read_is_listed_so_the_environment_reaches_it() {
        let source = [include_str!("mod.rs"), include_str!("reader.rs")].concat();
        let listed: Vec<&str> = VARIABLES.iter().map(|(name, _)| *name).collect();
        for piece in source.split('"').skip(1).step_by(2) {
            if piece.starts_with("PROOFLINE_")
                && piece.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            {
                assert!(
                    listed.contains(&piece),
                    "{piece} is read but not in VARIABLES"
                );
            }
        }
    }

    #[test]
    fn a_read_replica_needs_postgres() {
        let refused = Config::from_vars(&vars(&[("DATABASE_READ_URL", "postgres://r/db")]))
            .err()
            .unwrap();
        assert_eq!(refused.variable, "DATABASE_READ_URL");
        let config = Config::from_vars(&vars(&[
            ("DATABASE_URL", "postgres://p/db"),
            ("DATABASE_READ_URL", "postgres://r/db"),
        ]))
        .unwrap();
        assert!(config.read_replica_url.is_some());
    }
}
