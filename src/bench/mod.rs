//! `proofline bench`: benchmarks that print figures.
//!
//! Every benchmark runs in a scratch database (Postgres) or directory
//! (embedded) that it drops afterwards, never in the service's own log, and
//! on a NATS stream of its own when `NATS_URL` is set.
//!
//! # Layout
//!
//! - `append.rs`: the store as commands use it, against the ceiling of one
//!   ordered writer.
//! - `auth.rs`: what authentication costs once a key is cached.
//! - `verify.rs`: verification end to end in the production topology
//!   (`topology.rs`: `proofline serve` and a nats-server as processes of
//!   their own), the load from a second process (`verify_load.rs`), CPU
//!   and memory by process (`procs.rs`), against the pure verifier on one
//!   core.
//! - `rebuild.rs`: rebuilding every read model, twice.
//! - `lag.rs`: projection lag at a steady append rate.
//! - `webhooks.rs`: webhook latency from append to receipt.
//! - `oid4vp.rs`: OpenID4VP flows end to end against direct verification,
//!   the load from a second process.
//! - this file: the scratch place, latency percentiles, and the steady
//!   stream of verification events `lag` and `webhooks` append.

mod append;
mod auth;
mod fetched;
mod lag;
mod oid4vp;
mod procs;
mod rebuild;
pub mod report;
mod tlog;
mod topology;
mod verify;
mod verify_load;
mod webhooks;

pub use append::append;
pub use auth::auth;
pub use lag::lag;
pub use oid4vp::{Load, LoadArgs, load as oid4vp_load, oid4vp};
pub use rebuild::rebuild;
pub use tlog::{TlogLoad, TlogLoadArgs, tlog, tlog_load};
pub use verify::verify;
pub use verify_load::{VerifyLoadArgs, verify_load};
pub use webhooks::webhooks;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use proofline_commands::migrate;
use proofline_commands::store::postgres::{self, PgEventStore, PgStoreOptions};
use proofline_commands::store::sqlite::{self, SqliteEventStore};
use proofline_commands::store::{AppendRequest, EventStore, ExpectedVersion, NewEvent, StoreError};
use proofline_domain::ids::{Category, StreamId};
use proofline_projections::db::ReadDb;
use proofline_projections::relay::RelayOptions;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

use crate::app;
use crate::bus::{self, Bus};
use crate::cli::Role;
use crate::config::{Config, StoreLocation};

/// Where a benchmark writes: a scratch database per store it opens
/// (Postgres) or a scratch directory (embedded), all removed afterwards
/// unless kept.
struct Scratch {
    place: Place,
    /// The scratch databases made so far, to drop.
    databases: Mutex<Vec<String>>,
    name: String,
}

enum Place {
    Postgres { admin: SecretString },
    Sqlite { dir: tempfile::TempDir },
}

impl Scratch {
    async fn create(config: &Config) -> anyhow::Result<Self> {
        let name = format!("proofline_bench_{}", Uuid::now_v7().simple());
        let place = match &config.store {
            StoreLocation::Embedded { .. } => {
                app::ensure_data_dir(config)?;
                let dir = tempfile::Builder::new()
                    .prefix("bench-")
                    .tempdir_in(&config.data_dir)
                    .context("cannot create a scratch directory in the data directory")?;
                Place::Sqlite { dir }
            }
            StoreLocation::Postgres { url, .. } => Place::Postgres { admin: url.clone() },
        };
        Ok(Self {
            place,
            databases: Mutex::default(),
            name,
        })
    }

    /// Runs `bench` in a scratch place for `config`, then removes it.
    async fn run<T>(
        config: &Config,
        keep: bool,
        bench: impl AsyncFnOnce(&Scratch) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let scratch = Self::create(config).await?;
        let outcome = bench(&scratch).await;
        scratch.finish(keep).await?;
        outcome
    }

    /// `postgres` or `sqlite`.
    fn kind(&self) -> &'static str {
        if self.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    fn is_postgres(&self) -> bool {
        matches!(self.place, Place::Postgres { .. })
    }

    /// The embedded scratch's directory.
    fn directory(&self) -> Option<std::path::PathBuf> {
        match &self.place {
            Place::Sqlite { dir } => Some(dir.path().to_owned()),
            Place::Postgres { .. } => None,
        }
    }

    /// The database `proofline serve` is to use (None: embedded, in
    /// [`Self::directory`]).
    async fn serve_store(&self) -> anyhow::Result<Option<SecretString>> {
        match &self.place {
            Place::Postgres { admin } => Ok(Some(self.database(admin, "log").await?)),
            Place::Sqlite { .. } => Ok(None),
        }
    }

    /// The event store a `proofline serve` on this scratch wrote, opened
    /// here once it has stopped.
    async fn served_store(&self) -> anyhow::Result<Arc<dyn EventStore>> {
        self.store(if self.is_postgres() {
            "log"
        } else {
            "proofline"
        })
        .await
    }

    fn describe(&self) -> String {
        match &self.place {
            Place::Postgres { .. } => format!("postgres, scratch database {}", self.name),
            Place::Sqlite { dir } => format!("sqlite, scratch file in {}", dir.path().display()),
        }
    }

    /// The URL of the scratch database `label` (created on first use).
    async fn database(&self, admin: &SecretString, label: &str) -> anyhow::Result<SecretString> {
        let name = match label {
            "log" => self.name.clone(),
            other => format!("{}_{other}", self.name),
        };
        let known = self
            .databases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&name);
        if !known {
            let mut conn = sqlx::PgConnection::connect(admin.expose_secret())
                .await
                .context("cannot reach the database of DATABASE_URL")?;
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut conn)
                .await
                .context("bench needs a database user that may CREATE DATABASE")?;
            let _ = conn.close().await;
            self.databases
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(name.clone());
        }
        let mut url = url::Url::parse(admin.expose_secret())?;
        url.set_path(&name);
        Ok(SecretString::from(url.to_string()))
    }

    /// A fresh, migrated event store: `log` is the benchmark's own; any
    /// other label is a second, empty one beside it.
    async fn store(&self, label: &str) -> anyhow::Result<Arc<dyn EventStore>> {
        Ok(match &self.place {
            Place::Postgres { admin } => {
                let url = self.database(admin, label).await?;
                let options = PgStoreOptions {
                    max_connections: 8,
                    ..PgStoreOptions::default()
                };
                let pool = postgres::connect_pool(&url, &options).await?;
                migrate::apply_postgres(&pool).await?;
                Arc::new(PgEventStore::open(pool).await?)
            }
            Place::Sqlite { dir } => {
                let path = dir.path().join(format!("{label}.sqlite"));
                let pool = sqlite::connect_pool(&path).await?;
                migrate::apply_sqlite(&pool).await?;
                Arc::new(SqliteEventStore::open(pool, &path).await?)
            }
        })
    }

    /// The read models' database beside the `log` store.
    async fn read_db(&self, connections: u32) -> anyhow::Result<ReadDb> {
        Ok(match &self.place {
            Place::Sqlite { dir } => ReadDb::sqlite(&dir.path().join("read.sqlite")).await?,
            Place::Postgres { admin } => {
                let url = self.database(admin, "log").await?;
                ReadDb::postgres(url.expose_secret(), connections).await?
            }
        })
    }

    /// Where `proofline rebuild` builds its fresh tables.
    async fn rebuild_scratch(&self) -> anyhow::Result<proofline_projections::rebuild::Scratch> {
        use proofline_projections::rebuild::Scratch as RebuildScratch;
        Ok(match &self.place {
            Place::Sqlite { dir } => RebuildScratch::Sqlite {
                path: dir.path().join("rebuild.sqlite"),
            },
            Place::Postgres { admin } => RebuildScratch::Postgres {
                url: self
                    .database(admin, "log")
                    .await?
                    .expose_secret()
                    .to_owned(),
            },
        })
    }

    async fn finish(self, keep: bool) -> anyhow::Result<()> {
        let databases = self
            .databases
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        match self.place {
            Place::Sqlite { dir } => {
                if keep {
                    report::line(format!("kept {}", dir.keep().display()));
                }
            }
            Place::Postgres { admin } => {
                if keep {
                    report::line(format!("kept databases {}", databases.join(", ")));
                    return Ok(());
                }
                let mut conn = sqlx::PgConnection::connect(admin.expose_secret()).await?;
                for name in databases {
                    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                        .execute(&mut conn)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

/// The bus of a benchmark: as `serve --role all` starts it, but on a
/// JetStream stream and subjects of its own, deleted when it stops, so the
/// service's stream is never touched.
struct BenchBus {
    bus: Bus,
    stream: Option<(String, String)>,
}

impl BenchBus {
    async fn start(config: &Config, store: Arc<dyn EventStore>) -> anyhow::Result<Self> {
        let id = Uuid::now_v7().simple().to_string();
        let options = RelayOptions {
            stream: format!("PROOFLINE_BENCH_{id}"),
            subject_prefix: format!("proofline.bench{id}"),
            ..RelayOptions::default()
        };
        let stream = config
            .nats_url
            .clone()
            .map(|url| (url, options.stream.clone()));
        let bus = bus::start_with(config, Role::All, store, options).await?;
        Ok(Self { bus, stream })
    }

    async fn stop(self) {
        self.bus.stop().await;
        if let Some((url, stream)) = self.stream
            && let Ok(client) = async_nats::connect(url.as_str()).await
        {
            let _ = async_nats::jetstream::new(client)
                .delete_stream(&stream)
                .await;
        }
    }
}

/// Writes `secret` to a new file only its owner may read.
fn write_secret(path: &std::path::Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(secret.as_bytes())?;
    Ok(())
}

/// Latencies of one run, sorted, for percentiles.
struct Latencies(Vec<Duration>);

impl Latencies {
    fn new(mut all: Vec<Duration>) -> Self {
        all.sort_unstable();
        Self(all)
    }

    /// The `q` quantile (0 to 1, nearest rank), in milliseconds.
    fn ms(&self, q: f64) -> f64 {
        self.at(q).as_secs_f64() * 1e3
    }

    /// The `q` quantile, in microseconds.
    fn us(&self, q: f64) -> f64 {
        self.at(q).as_secs_f64() * 1e6
    }

    fn at(&self, q: f64) -> Duration {
        let Some(last) = self.0.len().checked_sub(1) else {
            return Duration::ZERO;
        };
        self.0[(last as f64 * q.clamp(0.0, 1.0)).round() as usize]
    }
}

/// A progress bar of `total` steps with `template` (indicatif's).
fn progress(total: u64, template: &str) -> ProgressBar {
    ProgressBar::new(total).with_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}

/// A verification stream of its own: one per event, as a verification is.
fn verification_stream(id: Uuid) -> StreamId {
    StreamId::of(Category::Verification, id)
}

/// Appends `total` verification events (one new stream each) at `rate`
/// per second, not waiting for an append before the next tick; `lender`
/// picks the n-th event's lender, and `record` hears of each stored event
/// with its id, position and when its append was called.
fn steady_verifications(
    store: Arc<dyn EventStore>,
    rate: u64,
    total: u64,
    lender: impl Fn(u64) -> Uuid + Send + 'static,
    record: impl Fn(Uuid, u64, Instant) + Clone + Send + 'static,
) -> tokio::task::JoinHandle<Result<(), StoreError>> {
    tokio::spawn(async move {
        use futures::StreamExt;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut pending = futures::stream::FuturesUnordered::new();
        for n in 0..total {
            tick.tick().await;
            let (store, record) = (store.clone(), record.clone());
            let lender = lender(n);
            pending.push(async move {
                let id = Uuid::now_v7();
                let event =
                    NewEvent::new("PresentationVerified", 1, verification_event(id, lender));
                let event_id = event.event_id;
                let started = Instant::now();
                let outcome = store
                    .append(AppendRequest::new(
                        verification_stream(id),
                        ExpectedVersion::NoStream,
                        vec![event],
                    ))
                    .await?;
                record(event_id, outcome.last_position, started);
                Ok::<(), StoreError>(())
            });
            while let std::task::Poll::Ready(Some(done)) = futures::poll!(pending.next()) {
                done?;
            }
        }
        while let Some(done) = pending.next().await {
            done?;
        }
        Ok(())
    })
}

/// A verification event's data, as the read models read it.
fn verification_event(id: Uuid, lender: Uuid) -> serde_json::Value {
    json!({
        "verification_id": id,
        "lender_id": lender,
        "verified": true,
        "failed_step": null,
        "reason": null,
        "steps": [],
        "issuer": "did:example:issuer",
        "kid": "key-1",
        "vct": "https://credentials.example/identity",
        "disclosed_claims": ["given_name"],
        "presentation_sha256": "0".repeat(64),
        "nonce_sha256": "1".repeat(64),
        "audience": "urn:proofline:bench",
        "required_claims": [],
        "require_holder_binding": true,
        "status": null,
        "verified_at": proofline_domain::log::Timestamp::from_datetime(chrono::Utc::now()),
    })
}

/// The API's state over `store`, with an operator key and the per-key rate
/// limit off; the operator's key.
async fn api_state(
    store: Arc<dyn EventStore>,
) -> anyhow::Result<(proofline_api::AppState, String)> {
    api_state_fetching(store, proofline_commands::fetch::FetchSettings::default()).await
}

/// [`api_state`], fetching trust with `fetch`.
async fn api_state_fetching(
    store: Arc<dyn EventStore>,
    fetch: proofline_commands::fetch::FetchSettings,
) -> anyhow::Result<(proofline_api::AppState, String)> {
    use proofline_commands::keys::ensure_operator_key;
    use proofline_commands::sealing::SealingKey;
    use proofline_commands::signing::ServiceKey;

    let keys = tempfile::tempdir()?;
    let file = keys.path().join("operator.key");
    ensure_operator_key(&store, &file).await?;
    let operator = std::fs::read_to_string(&file)?.trim().to_owned();
    let settings = proofline_api::ApiSettings {
        requests_per_key_per_second: 0,
        oid4vp_rate_per_minute: 0,
        fetch,
        ..proofline_api::ApiSettings::default()
    };
    let state = proofline_api::AppState::new(
        store,
        Arc::new(ServiceKey::generate()?),
        Arc::new(SealingKey::generate()?),
        settings,
    );
    Ok((state, operator))
}
