//! The bus a process uses: NATS JetStream when `NATS_URL` is set, else the
//! store itself (embedded mode, or Postgres without NATS).

use std::sync::Arc;

use proofline_commands::store::EventStore;
use proofline_projections::read_side::{Subscribe, store_subscriptions};

use crate::cli::Role;
use crate::config::Config;

/// What the process started for the bus.
pub enum Bus {
    /// No NATS: projectors tail the store.
    Store,
}

impl Bus {
    /// The subscriptions projectors read from.
    pub fn subscriptions(&self, store: Arc<dyn EventStore>) -> Subscribe {
        match self {
            Bus::Store => store_subscriptions(store),
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Bus::Store => "a tail of the store",
        }
    }

    pub async fn stop(self) {}
}

/// The bus for a benchmark: like `serve --role all` would start it.
pub async fn start_for_bench(config: &Config, store: Arc<dyn EventStore>) -> anyhow::Result<Bus> {
    start(config, Role::All, store).await
}

/// Starts what `role` needs of the bus.
pub async fn start(config: &Config, role: Role, store: Arc<dyn EventStore>) -> anyhow::Result<Bus> {
    let _ = (role, store);
    if config.nats_url.is_some() {
        tracing::warn!(
            "NATS_URL is set, but this build does not publish to NATS yet; projectors tail the store"
        );
    }
    Ok(Bus::Store)
}
