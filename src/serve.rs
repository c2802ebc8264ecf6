//! `proofline serve`: open the store, make sure the keys exist, serve HTTP
//! until SIGTERM or Ctrl-C, then finish requests in flight and the appends
//! already queued before exiting.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use proofline_api::{ApiSettings, AppState, ops_router, router, serve, spawn_background};
use proofline_commands::handler::CommandContext;
use proofline_commands::keys::{self, OperatorKeyState};
use proofline_commands::sealing::SealingKey;
use proofline_commands::store::EventStore;
use proofline_commands::{service_keys, signing, webhooks};
use proofline_domain::log::Metadata;
use proofline_projections::models::{self, Projection};
use proofline_projections::read_side::ReadSide;
use proofline_projections::webhooks::{ConsumerOptions, WebhookConsumer, WebhookDeliveries};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::app::{self, Migrations};
use crate::cli::{Role, ServeArgs};
use crate::config::{Config, StoreLocation};

pub async fn run(config: Config, args: ServeArgs) -> anyhow::Result<()> {
    let role = args.role;
    if role == Role::Relay && config.nats_url.is_none() {
        anyhow::bail!("--role relay publishes to NATS: set NATS_URL");
    }
    let migrations = if args.no_migrate {
        Migrations::RequireCurrent
    } else {
        Migrations::Apply
    };
    if config.deprecated_checkpoint_every {
        tracing::warn!(
            "PROOFLINE_CHECKPOINT_EVERY is deprecated: use PROOFLINE_CHECKPOINT_EVERY_SECONDS and PROOFLINE_CHECKPOINT_EVERY_EVENTS"
        );
    }
    if role.serves_api()
        && matches!(config.store, StoreLocation::Postgres { .. })
        && !config.log_origin_given
    {
        anyhow::bail!(
            "PROOFLINE_LOG_ORIGIN is required with DATABASE_URL: the name this log signs its checkpoints under, \
             unique to this deployment (for example log.example.com/proofline)"
        );
    }
    let store = app::open_store(&config, migrations).await?;
    tracing::info!(store = %config.describe_store(), ?role, "event store open");

    // Only the API signs (receipts) and authenticates; other roles answer
    // health and metrics, with a throwaway key that signs nothing. Webhook
    // secrets are sealed with a key of their own, the one key the webhooks
    // role holds: it talks to lenders' endpoints, and must not be able to
    // sign receipts or checkpoints.
    let (service_key, webhook_sealing_key) = if role.serves_api() {
        let (service_key, created) = signing::load_or_create(&config.signing_key_file)?;
        if created {
            tracing::info!(path = %config.signing_key_file.display(), kid = %service_key.kid(),
                "created the service signing key");
        }
        let (sealing_key, created) = SealingKey::load_or_create(&config.sealing_key_file)?;
        if created {
            tracing::info!(path = %config.sealing_key_file.display(),
                "created the key that seals webhook secrets");
        }
        let legacy = SealingKey::legacy(service_key.derive_key(webhooks::LEGACY_SEALING_PURPOSE));
        let moved = webhooks::reseal(store.as_ref(), &legacy, &sealing_key).await?;
        if moved > 0 {
            tracing::info!(moved, "sealed webhook secrets again with the sealing key");
        }
        report_operator_key(&store, &config).await?;
        let context = CommandContext::now(Metadata::default());
        if service_keys::activate(store.as_ref(), &service_key, &context).await? {
            tracing::info!(kid = %service_key.kid(), "recorded the service signing key in the log");
        }
        (service_key, sealing_key)
    } else if role.delivers_webhooks() {
        // Opens the webhook secrets the API sealed: the same sealing key.
        let sealing_key = SealingKey::load(&config.sealing_key_file)?.with_context(|| {
            format!(
                "the webhooks role opens webhook secrets with the sealing key, \
                 and {} does not exist; give it the API's PROOFLINE_SEALING_KEY_FILE",
                config.sealing_key_file.display()
            )
        })?;
        (signing::ServiceKey::generate()?, sealing_key)
    } else {
        (signing::ServiceKey::generate()?, SealingKey::generate()?)
    };
    let webhook_sealing_key = Arc::new(webhook_sealing_key);

    // Handlers first: a SIGTERM that arrives once we say we are listening
    // must be a graceful stop, not the default action.
    let shutdown = shutdown_signal()?;
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "listening on http://{address}");

    let read_db = if role.serves_api() || role.projects() || role.delivers_webhooks() {
        Some(app::open_read_models(&config).await?)
    } else {
        None
    };
    let bus = crate::bus::start(&config, role, store.clone()).await?;
    // The deliveries model goes with the webhook consumer (which it
    // wakes); the other models with the projector role.
    let projections: Vec<_> = models::all()
        .into_iter()
        .filter(|p| {
            let deliveries = p.name() == WebhookDeliveries.name();
            if deliveries {
                role.delivers_webhooks()
            } else {
                role.projects()
            }
        })
        .collect();
    let read_side = match &read_db {
        Some(db) if !projections.is_empty() => {
            let side = ReadSide::start_these(
                db.clone(),
                store.clone(),
                bus.subscriptions(store.clone()),
                projections,
            )
            .await
            .context("cannot start the projectors")?;
            tracing::info!(source = bus.describe(), "projectors started");
            Some(side)
        }
        _ => None,
    };
    let consumer = match (&read_db, role.delivers_webhooks()) {
        (Some(db), true) => {
            let consumer = WebhookConsumer::new(
                store.clone(),
                db.clone(),
                webhook_sealing_key.clone(),
                consumer_options(&config),
            )
            .map_err(anyhow::Error::msg)
            .context("cannot make the webhook HTTP client")?;
            let wake = read_side.as_ref().and_then(|side| {
                side.positions
                    .iter()
                    .find(|(name, _)| *name == WebhookDeliveries.name())
                    .map(|(_, position)| position.clone())
            });
            // One consumer sends at a time (Postgres advisory lock); the
            // others wait to take over.
            let lock_url = match &config.store {
                StoreLocation::Postgres { url, .. } => Some(url.expose_secret().to_owned()),
                StoreLocation::Embedded { .. } => None,
            };
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let consumer = Arc::new(consumer);
            let task = tokio::spawn(crate::bus::while_leading(
                crate::bus::WEBHOOKS_LOCK,
                "webhooks",
                lock_url,
                stopped,
                move |until| {
                    let (consumer, wake) = (consumer.clone(), wake.clone());
                    async move { consumer.run(wake, until).await }
                },
            ));
            Some((stop, task))
        }
        _ => None,
    };
    let mut state = AppState::new(
        store.clone(),
        Arc::new(service_key),
        webhook_sealing_key.clone(),
        api_settings(&config),
    );
    if role.serves_api() {
        let (identity, settings) = crate::app::verifier_identity(&config, address)?;
        tracing::info!(client_id = %identity.client_id(), public_url = %settings.public_url,
            "OpenID4VP verifier ready");
        state = state.with_oid4vp(identity, settings);
    }
    if let Some(db) = &read_db {
        state = state.with_read_models(db.clone());
    }
    if role.serves_api()
        && let Some(replica) = app::open_read_replica(&config).await?
    {
        tracing::info!("query routes read from the replica of DATABASE_READ_URL");
        state = state.with_read_replica(replica);
    }
    // API instances on one Postgres share one budget per key and per
    // client address, kept there.
    if role.serves_api()
        && let StoreLocation::Postgres { url, .. } = &config.store
        && let Some(breaker) = state.store.breaker().cloned()
    {
        let options = proofline_commands::store::postgres::PgStoreOptions {
            max_connections: 4,
            ..Default::default()
        };
        let pool = proofline_commands::store::postgres::connect_pool(url, &options).await?;
        state = state.with_shared_limits(pool, breaker);
    }
    if let Some(probe) = bus.probe() {
        state = state.with_probe("nats", probe);
    }
    if let Some(position) = bus.relay_position() {
        state = state.with_gauge("proofline_relay_position", position);
    }
    let (app, background) = if role.serves_api() {
        (router(state.clone()), Some(spawn_background(&state)))
    } else {
        (ops_router(state), None)
    };
    let served = serve(listener, app, shutdown).await;
    if let Some(background) = background {
        background.abort();
    }
    // What talks to NATS and lenders stops within one bound in all: with
    // NATS gone, a projector's or the relay's JetStream request is retried
    // without end, and a SIGTERM must still end the process (an
    // orchestrator kills it 30 s later). What is left undone is redone from
    // the log at the next start.
    let deadline = tokio::time::Instant::now() + STOP_BOUND;
    if let Some((stop, task)) = consumer {
        // Requests in flight end within the webhook timeout and are recorded.
        let _ = stop.send(true);
        bounded("the webhook consumer", deadline, async {
            let _ = task.await;
        })
        .await;
    }
    if let Some(side) = read_side {
        bounded("the projectors", deadline, side.stop()).await;
    }
    bounded("the NATS bus", deadline, bus.stop()).await;
    if let Some(db) = read_db {
        db.close().await;
    }
    tracing::info!("stopped accepting requests; finishing queued appends");
    store.close().await;
    served.context("the HTTP server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// How long the parts that talk to NATS and lenders may take to stop,
/// together.
const STOP_BOUND: Duration = Duration::from_secs(15);

/// Waits for `stopping` until `deadline`, then leaves it, saying so.
async fn bounded(what: &str, deadline: tokio::time::Instant, stopping: impl Future<Output = ()>) {
    if tokio::time::timeout_at(deadline, stopping).await.is_err() {
        tracing::warn!(
            part = what,
            "did not stop in time; leaving it (the log has everything it would have done)"
        );
    }
}

pub fn consumer_options(config: &Config) -> ConsumerOptions {
    config.webhooks.clone()
}

pub fn api_settings(config: &Config) -> ApiSettings {
    config.api.clone()
}

async fn report_operator_key(store: &Arc<dyn EventStore>, config: &Config) -> anyhow::Result<()> {
    let path = config.operator_key_file.display();
    match keys::ensure_operator_key(store, &config.operator_key_file).await? {
        OperatorKeyState::Created { prefix } => tracing::info!(%path, %prefix,
            "created the operator API key; it is in that file (mode 0600) and nowhere else"),
        OperatorKeyState::Registered { prefix } => {
            tracing::info!(%path, %prefix, "registered the operator API key from its file")
        }
        OperatorKeyState::InUse { prefix } => tracing::info!(%prefix, "operator API key in place"),
        OperatorKeyState::RegisteredElsewhere { prefix } => tracing::info!(%path, %prefix,
            "an operator API key is registered, but its file is not here"),
        OperatorKeyState::Mismatch {
            file_prefix,
            registered_prefix,
        } => tracing::warn!(%path,
            %file_prefix, %registered_prefix,
            "the operator key file does not hold the registered operator key; it will not authenticate"),
    }
    Ok(())
}

/// Installs the handlers now and returns a future that resolves on SIGTERM
/// (what orchestrators send) or Ctrl-C.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM received; shutting down"),
            _ = interrupt.recv() => tracing::info!("interrupt received; shutting down"),
        }
    })
}
