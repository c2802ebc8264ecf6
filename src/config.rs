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
use secrecy::{ExposeSecret, SecretString};

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./proofline-data";
pub const DEFAULT_PRESENTATION_MAX_AGE_SECONDS: u64 = 300;
const MAX_PRESENTATION_MAX_AGE_SECONDS: u64 = 3_600;
const DEFAULT_DATABASE_MAX_CONNECTIONS: u32 = 16;

/// Every variable the service reads, with what it means; `.env.sample` and
/// the README list the same (a test keeps them in step).
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "DATABASE_URL",
        "postgres://… for production; absent: embedded SQLite under the data directory",
    ),
    (
        "NATS_URL",
        "nats://host:4222 (comma-separated for a cluster); absent: embedded bus",
    ),
    (
        "PROOFLINE_BIND",
        "address to listen on (default 127.0.0.1:8080)",
    ),
    (
        "PROOFLINE_DATA_DIR",
        "embedded store and key files (default ./proofline-data)",
    ),
    (
        "PROOFLINE_SIGNING_KEY_FILE",
        "Ed25519 service key, PKCS#8 PEM (default <data dir>/signing.key)",
    ),
    (
        "PROOFLINE_SEALING_KEY_FILE",
        "AES key that seals webhook secrets, created on first start (default <data dir>/sealing.key)",
    ),
    (
        "PROOFLINE_OPERATOR_KEY_FILE",
        "operator API key, created on first start (default <data dir>/operator.key)",
    ),
    (
        "PROOFLINE_WEBHOOK_ALLOWED_NETWORKS",
        "CIDRs webhooks may reach despite the SSRF guard (default none)",
    ),
    (
        "PROOFLINE_TRUSTED_PROXIES",
        "CIDRs whose X-Forwarded-For is believed (default none)",
    ),
    (
        "PROOFLINE_PRESENTATION_MAX_AGE_SECONDS",
        "oldest accepted key-binding JWT, 1 to 3600 (default 300)",
    ),
    (
        "PROOFLINE_DATABASE_MAX_CONNECTIONS",
        "Postgres pool size, 2 to 1000 (default 16)",
    ),
    (
        "PROOFLINE_CORS_ALLOWED_ORIGINS",
        "origins allowed by CORS, comma-separated (default none: CORS off)",
    ),
    (
        "PROOFLINE_RATE_LIMIT_PER_KEY",
        "requests per second per API key, 0 unlimited (default 100)",
    ),
    (
        "PROOFLINE_FAILED_AUTH_PER_MINUTE",
        "failed authentications per minute per client address (default 30)",
    ),
    (
        "PROOFLINE_REQUEST_TIMEOUT_SECONDS",
        "longest a request may take, 1 to 300 (default 30)",
    ),
    (
        "PROOFLINE_MAX_BODY_BYTES",
        "largest request body (default 1048576)",
    ),
    (
        "PROOFLINE_PROJECTOR_MAX_LAG",
        "events a projector may trail the log before /health/ready fails (default 10000)",
    ),
    (
        "PROOFLINE_WEBHOOK_RETRY_SCHEDULE",
        "seconds between a webhook's attempts, comma-separated (default 5,30,120,600,3600,21600,43200)",
    ),
    (
        "PROOFLINE_WEBHOOK_CONNECT_TIMEOUT_SECONDS",
        "webhook connect timeout, 0.05 to 60 (default 5)",
    ),
    (
        "PROOFLINE_WEBHOOK_TIMEOUT_SECONDS",
        "webhook whole-request timeout, 0.05 to 120 (default 10)",
    ),
    (
        "PROOFLINE_WEBHOOK_PER_LENDER",
        "webhook requests in flight per lender, 1 to 64 (default 4)",
    ),
    (
        "PROOFLINE_EVENT_TAILS_PER_KEY",
        "live tails of the log (/v1/events/stream) one API key may hold, 1 to 1000 (default 4)",
    ),
    (
        "PROOFLINE_EVENT_TAILS_MAX",
        "live tails of the log open in all, 1 to 100000 (default 256)",
    ),
    (
        "PROOFLINE_CHECKPOINT_EVERY_SECONDS",
        "sign a log checkpoint within this many seconds of any new event, 1 to 86400 (default 5)",
    ),
    (
        "PROOFLINE_CHECKPOINT_EVERY_EVENTS",
        "sign a log checkpoint after this many new events, 1 to 100000000 (default 1000)",
    ),
    (
        "PROOFLINE_CHECKPOINT_EVERY",
        "deprecated: both of the above at once, for each one not set",
    ),
    ("PROOFLINE_LOG_FORMAT", "text or json (default text)"),
];

/// A signed checkpoint within this many seconds of any new event.
pub const DEFAULT_CHECKPOINT_EVERY_SECONDS: u64 = 5;
/// A signed checkpoint after this many new events.
pub const DEFAULT_CHECKPOINT_EVERY_EVENTS: u64 = 1_000;

/// A bad value, named by its variable. The value itself is only repeated
/// when it is not a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

fn bad(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
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

#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreLocation,
    pub nats_url: Option<String>,
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub signing_key_file: PathBuf,
    /// The key that seals webhook secrets; the only key the webhooks role
    /// needs.
    pub sealing_key_file: PathBuf,
    pub operator_key_file: PathBuf,
    pub webhook_allowed_networks: Vec<IpNet>,
    pub trusted_proxies: Vec<IpNet>,
    pub presentation_max_age: Duration,
    pub log_format: LogFormat,
    pub cors_allowed_origins: Vec<String>,
    pub rate_limit_per_key: u32,
    pub failed_auth_per_minute: u32,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    /// Events a projector may trail the log before readiness fails.
    pub projector_max_lag: u64,
    pub webhook_retry_schedule: Vec<Duration>,
    pub webhook_connect_timeout: Duration,
    pub webhook_timeout: Duration,
    pub webhook_per_lender: usize,
    /// Live tails of the log per API key, and in all.
    pub event_tails_per_key: usize,
    pub event_tails_max: usize,
    /// A checkpoint within this long of any new event.
    pub checkpoint_every_seconds: u64,
    /// A checkpoint after this many new events.
    pub checkpoint_every_events: u64,
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
        let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());

        let data_dir = PathBuf::from(get("PROOFLINE_DATA_DIR").unwrap_or(DEFAULT_DATA_DIR));
        let file = |name: &'static str, default: &str| -> PathBuf {
            get(name)
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join(default))
        };

        let max_connections = match get("PROOFLINE_DATABASE_MAX_CONNECTIONS") {
            None => DEFAULT_DATABASE_MAX_CONNECTIONS,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (2..=1000).contains(&n) => n,
                _ => {
                    return Err(bad(
                        "PROOFLINE_DATABASE_MAX_CONNECTIONS",
                        format!("{v:?} is not a number from 2 to 1000"),
                    ));
                }
            },
        };
        let store = match get("DATABASE_URL") {
            None => StoreLocation::Embedded {
                path: data_dir.join("proofline.sqlite"),
            },
            Some(url) => {
                let parsed = url::Url::parse(url)
                    .map_err(|e| bad("DATABASE_URL", format!("not a URL ({e})")))?;
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
                StoreLocation::Postgres {
                    url: SecretString::from(url.to_owned()),
                    max_connections,
                }
            }
        };

        let nats_url = match get("NATS_URL") {
            None => None,
            Some(list) => {
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
                Some(list.to_owned())
            }
        };

        let bind_text = get("PROOFLINE_BIND").unwrap_or(DEFAULT_BIND);
        let bind = bind_text.parse().map_err(|_| {
            bad(
                "PROOFLINE_BIND",
                format!("{bind_text:?} is not an address with a port, like 127.0.0.1:8080"),
            )
        })?;

        let presentation_max_age = match get("PROOFLINE_PRESENTATION_MAX_AGE_SECONDS") {
            None => DEFAULT_PRESENTATION_MAX_AGE_SECONDS,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (1..=MAX_PRESENTATION_MAX_AGE_SECONDS).contains(&n) => n,
                _ => {
                    return Err(bad(
                        "PROOFLINE_PRESENTATION_MAX_AGE_SECONDS",
                        format!(
                            "{v:?} is not a number of seconds from 1 to {MAX_PRESENTATION_MAX_AGE_SECONDS}"
                        ),
                    ));
                }
            },
        };

        let number = |name: &'static str,
                      default: u64,
                      range: std::ops::RangeInclusive<u64>|
         -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if range.contains(&n) => Ok(n),
                    _ => Err(bad(
                        name,
                        format!(
                            "{v:?} is not a number from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    )),
                },
            }
        };
        let rate_limit_per_key = number("PROOFLINE_RATE_LIMIT_PER_KEY", 100, 0..=1_000_000)? as u32;
        let failed_auth_per_minute =
            number("PROOFLINE_FAILED_AUTH_PER_MINUTE", 30, 1..=100_000)? as u32;
        let projector_max_lag = number("PROOFLINE_PROJECTOR_MAX_LAG", 10_000, 1..=100_000_000)?;
        let request_timeout =
            Duration::from_secs(number("PROOFLINE_REQUEST_TIMEOUT_SECONDS", 30, 1..=300)?);
        let max_body_bytes = number(
            "PROOFLINE_MAX_BODY_BYTES",
            1024 * 1024,
            1024..=16 * 1024 * 1024,
        )? as usize;
        let seconds = |name: &'static str, text: &str, range: std::ops::RangeInclusive<f64>| {
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| range.contains(v))
                .map(Duration::from_secs_f64)
                .ok_or_else(|| {
                    bad(
                        name,
                        format!(
                            "{text:?} is not a number of seconds from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    )
                })
        };
        let webhook_retry_schedule = match get("PROOFLINE_WEBHOOK_RETRY_SCHEDULE") {
            None => proofline_domain::webhook_delivery::DEFAULT_RETRY_SCHEDULE.to_vec(),
            Some(list) => list
                .split(',')
                .map(|item| seconds("PROOFLINE_WEBHOOK_RETRY_SCHEDULE", item, 0.01..=86_400.0))
                .collect::<Result<Vec<_>, _>>()?,
        };
        if webhook_retry_schedule.len() > 32 {
            return Err(bad(
                "PROOFLINE_WEBHOOK_RETRY_SCHEDULE",
                "at most 32 retries",
            ));
        }
        let webhook_connect_timeout = match get("PROOFLINE_WEBHOOK_CONNECT_TIMEOUT_SECONDS") {
            None => Duration::from_secs(5),
            Some(v) => seconds("PROOFLINE_WEBHOOK_CONNECT_TIMEOUT_SECONDS", v, 0.05..=60.0)?,
        };
        let webhook_timeout = match get("PROOFLINE_WEBHOOK_TIMEOUT_SECONDS") {
            None => Duration::from_secs(10),
            Some(v) => seconds("PROOFLINE_WEBHOOK_TIMEOUT_SECONDS", v, 0.05..=120.0)?,
        };
        let webhook_per_lender = number("PROOFLINE_WEBHOOK_PER_LENDER", 4, 1..=64)? as usize;
        let event_tails_per_key = number("PROOFLINE_EVENT_TAILS_PER_KEY", 4, 1..=1_000)? as usize;
        let event_tails_max = number("PROOFLINE_EVENT_TAILS_MAX", 256, 1..=100_000)? as usize;
        // `PROOFLINE_CHECKPOINT_EVERY` was both a count and seconds (300 by
        // default, so a fresh install had no signed head for minutes); it
        // stays as an alias for whichever of the two is not set.
        let legacy =
            number("PROOFLINE_CHECKPOINT_EVERY", 0, 1..=86_400).map(|n| (n > 0).then_some(n))?;
        let checkpoint_every_seconds = number(
            "PROOFLINE_CHECKPOINT_EVERY_SECONDS",
            legacy.unwrap_or(DEFAULT_CHECKPOINT_EVERY_SECONDS),
            1..=86_400,
        )?;
        let checkpoint_every_events = number(
            "PROOFLINE_CHECKPOINT_EVERY_EVENTS",
            legacy.unwrap_or(DEFAULT_CHECKPOINT_EVERY_EVENTS),
            1..=100_000_000,
        )?;
        let cors_allowed_origins = match get("PROOFLINE_CORS_ALLOWED_ORIGINS") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
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
                .collect::<Result<_, _>>()?,
        };

        let log_format = match get("PROOFLINE_LOG_FORMAT") {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(bad(
                    "PROOFLINE_LOG_FORMAT",
                    format!("{other:?} is neither text nor json"),
                ));
            }
        };

        Ok(Config {
            store,
            nats_url,
            bind,
            signing_key_file: file("PROOFLINE_SIGNING_KEY_FILE", "signing.key"),
            sealing_key_file: file("PROOFLINE_SEALING_KEY_FILE", "sealing.key"),
            operator_key_file: file("PROOFLINE_OPERATOR_KEY_FILE", "operator.key"),
            data_dir,
            webhook_allowed_networks: networks(
                get("PROOFLINE_WEBHOOK_ALLOWED_NETWORKS"),
                "PROOFLINE_WEBHOOK_ALLOWED_NETWORKS",
            )?,
            trusted_proxies: networks(
                get("PROOFLINE_TRUSTED_PROXIES"),
                "PROOFLINE_TRUSTED_PROXIES",
            )?,
            presentation_max_age: Duration::from_secs(presentation_max_age),
            log_format,
            cors_allowed_origins,
            rate_limit_per_key,
            failed_auth_per_minute,
            request_timeout,
            max_body_bytes,
            projector_max_lag,
            webhook_retry_schedule,
            webhook_connect_timeout,
            webhook_timeout,
            webhook_per_lender,
            event_tails_per_key,
            event_tails_max,
            checkpoint_every_seconds,
            checkpoint_every_events,
            deprecated_checkpoint_every: legacy.is_some(),
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

/// A comma-separated list of CIDRs; a bare address is a single-host network.
fn networks(value: Option<&str>, variable: &'static str) -> Result<Vec<IpNet>, ConfigError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    bad(
                        variable,
                        format!("{item:?} is not a CIDR like 10.0.0.0/8 or an IP address"),
                    )
                })
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
        assert_eq!(config.presentation_max_age, Duration::from_secs(300));
        assert_eq!(
            (config.rate_limit_per_key, config.failed_auth_per_minute),
            (100, 30)
        );
        assert_eq!(config.request_timeout, Duration::from_secs(30));
        assert_eq!(config.max_body_bytes, 1024 * 1024);
        assert!(config.cors_allowed_origins.is_empty());
        assert!(config.nats_url.is_none());
        assert!(config.trusted_proxies.is_empty());
    }

    #[test]
    fn checkpoints_are_due_within_seconds_and_the_old_variable_is_an_alias() {
        let fresh = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(
            (
                fresh.checkpoint_every_seconds,
                fresh.checkpoint_every_events
            ),
            (5, 1_000)
        );
        assert!(!fresh.deprecated_checkpoint_every);
        let old = Config::from_vars(&vars(&[("PROOFLINE_CHECKPOINT_EVERY", "300")])).unwrap();
        assert_eq!(
            (old.checkpoint_every_seconds, old.checkpoint_every_events),
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
                mixed.checkpoint_every_seconds,
                mixed.checkpoint_every_events
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
            config.cors_allowed_origins,
            vec!["https://app.example", "http://localhost:3000"]
        );
        assert_eq!(config.rate_limit_per_key, 0);
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
        assert_eq!(config.webhook_allowed_networks.len(), 2);
        assert_eq!(
            config.webhook_allowed_networks[1].to_string(),
            "192.168.1.7/32"
        );
        assert_eq!(config.trusted_proxies[0].to_string(), "::1/128");
        assert_eq!(config.presentation_max_age, Duration::from_secs(120));
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
        let source = include_str!("config.rs");
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
}
