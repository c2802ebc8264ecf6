//! `proofline rebuild [NAME]`: replay the store into fresh read-model
//! tables and swap them in, with a progress bar and a checksum per model.

use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use proofline_commands::store::EventStore;
use proofline_projections::db::ReadDb;
use proofline_projections::models::{self, Projection};
use proofline_projections::rebuild::{Rebuilt, Scratch, rebuild};

use crate::app::{self, Migrations};
use crate::config::{Config, StoreLocation};

/// The models `name` selects (all without a name).
pub fn select(name: Option<&str>) -> anyhow::Result<Vec<Arc<dyn Projection>>> {
    let all = models::all();
    match name {
        None => Ok(all),
        Some(name) => {
            let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
            let chosen: Vec<_> = all.iter().filter(|p| p.name() == name).cloned().collect();
            anyhow::ensure!(
                !chosen.is_empty(),
                "no read model named {name:?}; there are {}",
                names.join(", ")
            );
            Ok(chosen)
        }
    }
}

pub fn scratch_for(config: &Config) -> Scratch {
    match &config.store {
        StoreLocation::Embedded { .. } => Scratch::Sqlite {
            path: config.data_dir.join("read_models.rebuild.sqlite"),
        },
        StoreLocation::Postgres { url, .. } => {
            use secrecy::ExposeSecret;
            Scratch::Postgres {
                url: url.expose_secret().to_owned(),
            }
        }
    }
}

/// Rebuilds each model with a progress bar; prints a line per model.
pub async fn rebuild_all(
    store: Arc<dyn EventStore>,
    live: &ReadDb,
    scratch: &Scratch,
    projections: &[Arc<dyn Projection>],
) -> anyhow::Result<Vec<Rebuilt>> {
    let mut done = Vec::new();
    for projection in projections {
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template(
                "{msg:>14} {bar:40} {pos}/{len} events {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(projection.name());
        let progress = {
            let bar = bar.clone();
            move |at: u64, head: u64| {
                bar.set_length(head);
                bar.set_position(at);
            }
        };
        let rebuilt = rebuild(live, scratch, store.clone(), projection.as_ref(), &progress)
            .await
            .with_context(|| format!("rebuilding {}", projection.name()))?;
        bar.finish_and_clear();
        // A line for people (none under `bench --json`).
        crate::bench::report::line(format!(
            "{:>14}: {} events in {:.2} s (replayed in {:.2} s; {:.0} events/s), {} rows, up to position {}, checksum {}",
            rebuilt.name,
            rebuilt.events,
            rebuilt.elapsed.as_secs_f64(),
            rebuilt.replayed.as_secs_f64(),
            rebuilt.events as f64 / rebuilt.elapsed.as_secs_f64().max(1e-9),
            rebuilt.rows,
            rebuilt.position,
            rebuilt.checksum
        ));
        done.push(rebuilt);
    }
    Ok(done)
}

/// `proofline rebuild tree`: the Merkle tree recomputed from the log, its
/// missing nodes written and every stored one compared.
async fn rebuild_tree(config: &Config) -> anyhow::Result<()> {
    let store = app::open_store(config, Migrations::RequireCurrent).await?;
    let head = store.head().await?.map_or(0, |h| h.position);
    let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        let bar = indicatif::ProgressBar::new(head);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} events {per_sec} {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let outcome = proofline_commands::tree::rebuild(store.as_ref(), &|done| {
        if let Some(bar) = &bar {
            bar.set_position(done);
        }
    })
    .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    store.close().await;
    match outcome? {
        Some(done) => {
            use base64::Engine;
            println!(
                "tree: {} events hashed again, {} stored nodes equal to them; root {}",
                done.size,
                done.nodes,
                base64::engine::general_purpose::STANDARD.encode(done.root)
            );
        }
        None => println!("tree: the log is empty"),
    }
    Ok(())
}

/// `proofline rebuild [NAME]` against the configured store (`tree`: the
/// Merkle tree).
pub async fn run(config: &Config, name: Option<&str>) -> anyhow::Result<()> {
    if name == Some("tree") {
        return rebuild_tree(config).await;
    }
    let projections = select(name)?;
    let store = app::open_store(config, Migrations::RequireCurrent).await?;
    let live = app::open_read_models(config).await?;
    let scratch = scratch_for(config);
    let outcome = rebuild_all(store.clone(), &live, &scratch, &projections).await;
    if let Scratch::Sqlite { path } = &scratch {
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_file(path.with_extension("sqlite-wal"));
        let _ = std::fs::remove_file(path.with_extension("sqlite-shm"));
    }
    live.close().await;
    store.close().await;
    outcome.map(|_| ())
}
