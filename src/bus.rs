//! The bus a process uses: NATS JetStream when `NATS_URL` is set, else the
//! store itself (embedded mode, or Postgres without NATS).
//!
//! With NATS, the relay role publishes the log (one relay at a time: it
//! holds a Postgres advisory lock on a connection of its own, and a second
//! relay waits for it), and projectors read durable JetStream consumers,
//! `proofline-<model>`. Without NATS, projectors tail the store.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use proofline_commands::store::EventStore;
use proofline_domain::ids::Category;
use proofline_domain::log::Envelope;
use proofline_projections::jetstream::JetStreamSubscription;
use proofline_projections::read_side::{Subscribe, store_subscriptions};
use proofline_projections::relay::{Refusal, Relay, RelayOptions};
use proofline_projections::subscription::{Subscription, SubscriptionError};
use secrecy::ExposeSecret;
use sqlx::Connection;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cli::Role;
use crate::config::{Config, StoreLocation};

/// The advisory lock only the publishing relay holds (the store's writer
/// uses another key).
const RELAY_LOCK: i64 = 5_787_775_673_024_923_983;
/// The advisory lock of the webhook consumer that sends (one at a time, so
/// no two send the same due delivery).
pub const WEBHOOKS_LOCK: i64 = 5_787_775_673_024_923_984;

/// What the process started for the bus.
pub enum Bus {
    /// No NATS: projectors tail the store.
    Store,
    Nats(Box<NatsBus>),
}

pub struct NatsBus {
    client: async_nats::Client,
    options: RelayOptions,
    relay: Option<(watch::Sender<bool>, JoinHandle<()>)>,
    published: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// Why this process's relay refuses to publish, while it does.
    refusal: Option<Refusal>,
}

impl Bus {
    /// The subscriptions projectors read from.
    pub fn subscriptions(&self, store: Arc<dyn EventStore>) -> Subscribe {
        match self {
            Bus::Store => store_subscriptions(store),
            Bus::Nats(nats) => {
                let (client, options) = (nats.client.clone(), nats.options.clone());
                Arc::new(move |name, after, interest| {
                    let subscription = Lazy {
                        client: client.clone(),
                        options: options.clone(),
                        durable: format!("proofline-{name}"),
                        after,
                        interest,
                        inner: None,
                    };
                    Box::pin(async move { Box::new(subscription) as Box<dyn Subscription> })
                })
            }
        }
    }

    /// The readiness check of the bus: NATS connected, and this process's
    /// relay (if it relays) not refusing a stream that holds another log
    /// (none without NATS).
    pub fn probe(&self) -> Option<proofline_api::Probe> {
        let Bus::Nats(nats) = self else {
            return None;
        };
        let (client, refusal) = (nats.client.clone(), nats.refusal.clone());
        Some(Arc::new(move || {
            let (client, refusal) = (client.clone(), refusal.clone());
            Box::pin(async move {
                if let Some(why) = refusal
                    .as_ref()
                    .and_then(|r| r.read().unwrap_or_else(|p| p.into_inner()).clone())
                {
                    return Err(why);
                }
                match client.connection_state() {
                    async_nats::connection::State::Connected => {
                        Ok(serde_json::json!({"status": "ok"}))
                    }
                    other => Err(format!("NATS is {other:?}")),
                }
            })
        }))
    }

    /// The relay's published position, when this process relays.
    pub fn relay_position(&self) -> Option<Arc<std::sync::atomic::AtomicU64>> {
        match self {
            Bus::Nats(nats) => nats.published.clone(),
            Bus::Store => None,
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Bus::Store => "a tail of the store",
            Bus::Nats(_) => "NATS JetStream",
        }
    }

    pub async fn stop(self) {
        if let Bus::Nats(nats) = self {
            if let Some((stop, task)) = nats.relay {
                let _ = stop.send(true);
                let _ = task.await;
            }
            // With NATS gone a flush waits for a connection without end;
            // what it would have sent the relay sends again at the next
            // start (the stream drops the duplicates by Nats-Msg-Id).
            let _ = tokio::time::timeout(Duration::from_secs(2), nats.client.flush()).await;
        }
    }
}

/// A JetStream subscription opened on first use and reopened after a
/// failure, so a projector starts (and keeps its place) while NATS is down.
struct Lazy {
    client: async_nats::Client,
    options: RelayOptions,
    durable: String,
    after: u64,
    interest: &'static [Category],
    inner: Option<JetStreamSubscription>,
}

#[async_trait]
impl Subscription for Lazy {
    async fn next(&mut self) -> Result<Envelope, SubscriptionError> {
        if self.inner.is_none() {
            self.inner = Some(
                JetStreamSubscription::open(
                    self.client.clone(),
                    &self.options,
                    &self.durable,
                    self.after,
                    self.interest,
                )
                .await?,
            );
        }
        let inner = self.inner.as_mut().expect("opened above");
        match inner.next().await {
            Ok(envelope) => {
                self.after = self.after.max(envelope.position);
                Ok(envelope)
            }
            Err(error) => {
                self.inner = None;
                Err(error)
            }
        }
    }

    async fn ack(&mut self, position: u64) -> Result<(), SubscriptionError> {
        match self.inner.as_mut() {
            Some(inner) => inner.ack(position).await,
            None => Ok(()),
        }
    }
}

/// Starts what `role` needs of the bus.
pub async fn start(config: &Config, role: Role, store: Arc<dyn EventStore>) -> anyhow::Result<Bus> {
    let options = RelayOptions {
        replicas: config.nats_stream_replicas,
        ..RelayOptions::default()
    };
    start_with(config, role, store, options).await
}

/// Options that log in as the user of `NATS_URL`'s first server, if it
/// names one (`nats://user:password@host:4222`): async-nats does not read
/// credentials from the URLs it connects to.
fn nats_login(urls: &str) -> async_nats::ConnectOptions {
    let first = urls.split(',').next().unwrap_or_default().trim();
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    match url::Url::parse(first) {
        Ok(url) if !url.username().is_empty() => {
            async_nats::ConnectOptions::with_user_and_password(
                decode(url.username()),
                decode(url.password().unwrap_or_default()),
            )
        }
        _ => async_nats::ConnectOptions::new(),
    }
}

/// Starts what `role` needs of the bus, on the stream and subjects of
/// `options` (a benchmark's own, or the service's).
pub async fn start_with(
    config: &Config,
    role: Role,
    store: Arc<dyn EventStore>,
    options: RelayOptions,
) -> anyhow::Result<Bus> {
    let Some(url) = &config.nats_url else {
        return Ok(Bus::Store);
    };
    let client = nats_login(url)
        .name("proofline")
        .retry_on_initial_connect()
        // One address or several (a cluster), comma-separated; a plain
        // string would be read as one address.
        .connect(url.split(',').map(str::trim).collect::<Vec<_>>())
        .await
        .context("NATS_URL is not a usable NATS address")?;
    let (mut published, mut refusal) = (None, None);
    let relay = if role.relays() {
        let (stop, stopped) = watch::channel(false);
        let relay = Relay::new(store, client.clone(), options.clone());
        published = Some(relay.published());
        refusal = Some(relay.refusal());
        let lock_url = match &config.store {
            StoreLocation::Postgres { url, .. } => Some(url.expose_secret().to_owned()),
            StoreLocation::Embedded { .. } => None,
        };
        let task = tokio::spawn(lead_and_relay(relay, lock_url, stopped));
        Some((stop, task))
    } else {
        None
    };
    Ok(Bus::Nats(Box::new(NatsBus {
        client,
        options,
        relay,
        published,
        refusal,
    })))
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Runs the relay while this process holds the relay lock (Postgres), or
/// always (embedded: one process owns the files).
async fn lead_and_relay(relay: Relay, lock_url: Option<String>, stop: watch::Receiver<bool>) {
    let relay = Arc::new(relay);
    while_leading(RELAY_LOCK, "relay", lock_url, stop, move |until| {
        let relay = relay.clone();
        async move { relay.run_shared(until).await }
    })
    .await;
}

/// A future that ends when the process stops or the lock is lost.
pub type Until = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Runs `work` while this process holds the advisory lock `key` on the
/// Postgres at `lock_url` (one leader among replicas; the others wait and
/// take over when its connection dies), or always when there is no
/// Postgres (embedded: one process owns the files).
pub async fn while_leading<F, Fut>(
    key: i64,
    what: &'static str,
    lock_url: Option<String>,
    stop: watch::Receiver<bool>,
    work: F,
) where
    F: Fn(Until) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(url) = lock_url else {
        tracing::info!(role = what, "running (no other instance to share with)");
        work(Box::pin(stopped(stop))).await;
        return;
    };
    loop {
        let mut lock = match take_lock(&url, key, what, stop.clone()).await {
            Some(lock) => lock,
            None => return,
        };
        tracing::info!(role = what, "{what} lock taken; running");
        let (lost_tx, lost_rx) = watch::channel(false);
        let watchdog = async {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if sqlx::query("SELECT 1").execute(&mut lock).await.is_err() {
                    let _ = lost_tx.send(true);
                    return;
                }
            }
        };
        let stop_or_lost: Until = {
            let (stop, lost) = (stop.clone(), lost_rx.clone());
            Box::pin(async move {
                tokio::select! {
                    _ = stopped(stop) => {}
                    _ = stopped(lost) => {}
                }
            })
        };
        // The watchdog only ends when the lock is lost, which also ends
        // `work`; waiting for `work` lets it finish what it has in flight.
        let run = work(stop_or_lost);
        tokio::pin!(run);
        tokio::select! {
            _ = &mut run => {}
            _ = watchdog => run.await,
        }
        if *stop.borrow() {
            let _ = lock.close().await;
            return;
        }
        tracing::warn!(
            role = what,
            "{what} lock lost (its database connection failed); waiting to take it again"
        );
    }
}

/// Waits for the advisory lock `key`; `None` when stopped first.
async fn take_lock(
    url: &str,
    key: i64,
    what: &'static str,
    stop: watch::Receiver<bool>,
) -> Option<sqlx::PgConnection> {
    loop {
        if *stop.borrow() {
            return None;
        }
        match sqlx::PgConnection::connect(url).await {
            Ok(mut conn) => {
                let taken: Result<bool, _> = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(key)
                    .fetch_one(&mut conn)
                    .await;
                if let Ok(true) = taken {
                    return Some(conn);
                }
                let _ = conn.close().await;
                tracing::debug!(role = what, "another instance leads; waiting");
            }
            Err(error) => {
                tracing::warn!(role = what, %error, "cannot reach the database for the lock")
            }
        }
        let mut stop = stop.clone();
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return None,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}
