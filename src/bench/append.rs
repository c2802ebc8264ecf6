//! `bench append`: the store as commands use it. N tasks append M events in
//! all, one event of about 300 bytes per new stream (as a verification
//! does), through the group-commit writer. Then the very rows that were
//! stored are imported into a second, empty store in batches, one
//! transaction each, under the writer's lock, with the writer's own INSERT
//! and the chain checked: the ceiling of one ordered writer. The ratio of
//! the two says what grouping and planning cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use proofline_commands::store::{AppendRequest, ExpectedVersion, NewEvent, StoreError};
use proofline_commands::tree::TreeFollower;
use proofline_domain::log::{ChainVerifier, Envelope, Metadata};
use serde_json::json;
use uuid::Uuid;

use super::{Latencies, Scratch, progress, verification_stream};
use crate::config::Config;

pub async fn append(
    config: &Config,
    writers: usize,
    events: u64,
    raw_batch: usize,
    rounds: usize,
    keep: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(writers >= 1, "--writers must be at least 1");
    anyhow::ensure!(rounds >= 1, "--rounds must be at least 1");
    anyhow::ensure!(events >= 1, "--events must be at least 1");
    anyhow::ensure!(raw_batch >= 1, "--raw-batch must be at least 1");
    Scratch::run(config, keep, async |scratch| {
        run(scratch, writers, events, raw_batch, rounds).await
    })
    .await
}

/// The data of a verification-like event, about 300 bytes of JSON.
pub(super) fn verification_data(n: u64) -> serde_json::Value {
    json!({
        "verification_id": Uuid::now_v7(),
        "lender_id": Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001),
        "verified": !n.is_multiple_of(10),
        "failed_step": if n.is_multiple_of(10) { json!("REVOCATION") } else { json!(null) },
        "issuer": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
        "vct": "https://credentials.example/income",
        "disclosed_claims": ["given_name", "family_name", "address.country"],
        "presentation_sha256": format!("{:064x}", u128::from(n) * 0x9e37_79b9_7f4a_7c15),
    })
}

async fn run(
    scratch: &Scratch,
    writers: usize,
    events: u64,
    raw_batch: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    let store = scratch.store("log").await?;
    super::report::line(format!(
        "bench append: {writers} writers, {events} events ({})",
        scratch.describe()
    ));
    let alone = appends(&store, writers, events).await?;
    alone.print("store appends");
    super::report::set("store", scratch.kind());
    super::report::set("writers", writers);
    super::report::set("events", events);
    super::report::set("store_events_per_second", alone.rate());
    super::report::set("store_p50_ms", alone.latencies.ms(0.50));
    super::report::set("store_p99_ms", alone.latencies.ms(0.99));

    // Read everything back: it is both the check that the run was sound and
    // the rows for the raw measurement.
    let mut rows = Vec::with_capacity(events as usize);
    let mut chain = ChainVerifier::new();
    loop {
        let after = rows.last().map_or(0, |e: &Envelope| e.position);
        let page = store.read_all(after, 5_000).await?;
        if page.is_empty() {
            break;
        }
        for e in &page {
            chain
                .check(e)
                .context("the benchmark's log does not verify")?;
        }
        rows.extend(page);
    }
    anyhow::ensure!(
        rows.len() as u64 == events,
        "stored {} events, expected {events}",
        rows.len()
    );
    let bytes: usize = rows
        .iter()
        .map(|e| serde_json::to_vec(&e.data).map_or(0, |v| v.len()))
        .sum();
    super::report::line(format!(
        "chain verified: positions 1..{events} gapless, every hash recomputed; event data {} bytes on average",
        bytes / rows.len()
    ));
    store.close().await;

    // The same load on fresh stores with the Merkle tree's follower beside
    // the writers, ticking as the checkpoint signer's loop does (5 times a
    // second),
    // alternating with the store alone so that drift between rounds (the
    // database's own checkpoints, the page cache) falls on both.
    let mut ratios = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let alone_again = if round == 0 {
            alone.rate()
        } else {
            let store = scratch.store(&format!("alone{round}")).await?;
            let phase = appends(&store, writers, events).await?;
            store.close().await;
            phase.rate()
        };
        let (phase, lag, busy) =
            with_tree(scratch, &format!("tree{round}"), writers, events).await?;
        ratios.push(phase.rate() / alone_again);
        super::report::line(format!(
            "round {}: the store alone {alone_again:.0} events/s; with the tree follower {:.0} events/s \
             (per append p50 {:.2} ms, p99 {:.2} ms), ratio {:.2}; the follower busy {:.0} ms ({:.1} µs an event); \
             the tree complete {:.0} ms after the last append",
            round + 1,
            phase.rate(),
            phase.latencies.ms(0.50),
            phase.latencies.ms(0.99),
            phase.rate() / alone_again,
            busy.as_secs_f64() * 1000.0,
            busy.as_secs_f64() * 1e6 / events as f64,
            lag.as_secs_f64() * 1000.0
        ));
    }
    ratios.sort_by(f64::total_cmp);
    super::report::set("tree_follower_ratio_median", ratios[ratios.len() / 2]);
    super::report::line(format!(
        "with the tree follower / the store alone, median of {rounds} rounds: {:.2}",
        ratios[ratios.len() / 2]
    ));
    let rate = alone.rate();

    let raw = scratch.store("raw").await?;
    let started = Instant::now();
    for batch in rows.chunks(raw_batch) {
        raw.import(batch).await?;
    }
    let elapsed = started.elapsed();
    raw.close().await;
    let raw_rate = events as f64 / elapsed.as_secs_f64();
    super::report::line(format!(
        "ordered {raw_batch}-row batches, one transaction each (the writer's lock, INSERT and chain check): \
         {events} events in {:.2} s = {raw_rate:.0} events/s",
        elapsed.as_secs_f64()
    ));
    super::report::line(format!("ratio store/raw: {:.2}", rate / raw_rate));
    super::report::set("raw_events_per_second", raw_rate);
    super::report::set("ratio_store_to_raw", rate / raw_rate);
    Ok(())
}

/// One append phase on the fresh store `label` with the tree follower
/// ticking beside it five times a second, as the checkpoint signer's loop
/// runs it; how long after the last append the tree covered the log, and
/// how long the follower worked in all (wall time inside its catch-ups).
async fn with_tree(
    scratch: &Scratch,
    label: &str,
    writers: usize,
    events: u64,
) -> anyhow::Result<(Phase, std::time::Duration, std::time::Duration)> {
    let store = scratch.store(label).await?;
    let stop = Arc::new(tokio::sync::Notify::new());
    let follower = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tree = TreeFollower::new();
            let mut busy = std::time::Duration::ZERO;
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let started = Instant::now();
                        tree.catch_up(store.as_ref()).await?;
                        busy += started.elapsed();
                    }
                    _ = stop.notified() => return Ok::<_, anyhow::Error>((tree, busy)),
                }
            }
        })
    };
    let phase = appends(&store, writers, events).await?;
    stop.notify_one();
    let (mut tree, busy) = follower.await??;
    let last = Instant::now();
    let head = tree.catch_up(store.as_ref()).await?;
    anyhow::ensure!(
        head.as_ref().map(|h| h.size) == Some(events),
        "the tree does not cover the log"
    );
    let lag = last.elapsed();
    store.close().await;
    Ok((phase, lag, busy))
}

/// What one append phase measured.
struct Phase {
    events: u64,
    elapsed: std::time::Duration,
    latencies: Latencies,
    transactions: u64,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self, what: &str) {
        super::report::line(format!(
            "{what}: {} events in {:.2} s = {:.0} events/s \
             (per append p50 {:.2} ms, p99 {:.2} ms; {} transactions, {:.1} events each)",
            self.events,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.latencies.ms(0.50),
            self.latencies.ms(0.99),
            self.transactions,
            self.events as f64 / self.transactions as f64,
        ));
    }
}

/// `writers` tasks append `events` events in all, one per new stream.
async fn appends(
    store: &Arc<dyn proofline_commands::store::EventStore>,
    writers: usize,
    events: u64,
) -> anyhow::Result<Phase> {
    let progress = progress(events, "{bar:40} {pos}/{len} events {per_sec} eta {eta}");
    let tickets = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (store, tickets, progress) = (store.clone(), tickets.clone(), progress.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let n = tickets.fetch_add(1, Ordering::Relaxed);
                    if n >= events {
                        return Ok::<_, StoreError>(latencies);
                    }
                    let event = NewEvent::new("PresentationVerified", 1, verification_data(n));
                    let request = AppendRequest::new(
                        verification_stream(Uuid::now_v7()),
                        ExpectedVersion::NoStream,
                        vec![event],
                    )
                    .with_metadata(Metadata {
                        actor: Some("bench".into()),
                        correlation_id: Some(Uuid::now_v7().to_string()),
                        ..Metadata::default()
                    });
                    let sent = Instant::now();
                    store.append(request).await?;
                    latencies.push(sent.elapsed());
                    progress.inc(1);
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(events as usize);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    Ok(Phase {
        events,
        elapsed,
        latencies: Latencies::new(latencies),
        transactions: store
            .writer_stats()
            .transactions
            .load(Ordering::Relaxed)
            .max(1),
    })
}
