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
    keep: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(writers >= 1, "--writers must be at least 1");
    anyhow::ensure!(events >= 1, "--events must be at least 1");
    anyhow::ensure!(raw_batch >= 1, "--raw-batch must be at least 1");
    Scratch::run(config, keep, async |scratch| {
        run(scratch, writers, events, raw_batch).await
    })
    .await
}

/// The data of a verification-like event, about 300 bytes of JSON.
fn verification_data(n: u64) -> serde_json::Value {
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
) -> anyhow::Result<()> {
    let store = scratch.store("log").await?;
    println!(
        "bench append: {writers} writers, {events} events ({})",
        scratch.describe()
    );

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
    let latencies = Latencies::new(latencies);
    let transactions = store
        .writer_stats()
        .transactions
        .load(Ordering::Relaxed)
        .max(1);
    let rate = events as f64 / elapsed.as_secs_f64();
    println!(
        "store appends: {events} events in {:.2} s = {rate:.0} events/s \
         (per append p50 {:.2} ms, p99 {:.2} ms; {transactions} transactions, {:.1} events each)",
        elapsed.as_secs_f64(),
        latencies.ms(0.50),
        latencies.ms(0.99),
        events as f64 / transactions as f64,
    );

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
    println!(
        "chain verified: positions 1..{events} gapless, every hash recomputed; event data {} bytes on average",
        bytes / rows.len()
    );
    store.close().await;

    let raw = scratch.store("raw").await?;
    let started = Instant::now();
    for batch in rows.chunks(raw_batch) {
        raw.import(batch).await?;
    }
    let elapsed = started.elapsed();
    raw.close().await;
    let raw_rate = events as f64 / elapsed.as_secs_f64();
    println!(
        "ordered {raw_batch}-row batches, one transaction each (the writer's lock, INSERT and chain check): \
         {events} events in {:.2} s = {raw_rate:.0} events/s",
        elapsed.as_secs_f64()
    );
    println!("ratio store/raw: {:.2}", rate / raw_rate);
    Ok(())
}
