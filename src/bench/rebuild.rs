//! `bench rebuild`: verification events in a scratch store, then every
//! read model rebuilt from them twice, with the rate and whether the two
//! rebuilds' checksums agree.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use proofline_commands::store::{AppendRequest, ExpectedVersion, NewEvent, StoreError};
use proofline_domain::lender::LenderId;
use proofline_domain::verification::{Outcome, Reason, Step};
use proofline_domain::verification_record::{Asked, VerificationId, VerificationRecord};
use proofline_projections::models;
use uuid::Uuid;

use super::{Scratch, progress};
use crate::config::Config;

/// `bench rebuild`: `events` verification events in a scratch store, then
/// every read model rebuilt from them twice, with the rate and whether the
/// checksums agree.
pub async fn rebuild(config: &Config, events: u64) -> anyhow::Result<()> {
    anyhow::ensure!(events >= 1, "--events must be at least 1");
    Scratch::run(config, false, async |scratch| run(scratch, events).await).await
}

async fn run(scratch: &Scratch, events: u64) -> anyhow::Result<()> {
    let store = scratch.store("log").await?;
    let live = scratch.read_db(4).await?;
    let rebuild_scratch = scratch.rebuild_scratch().await?;
    let filling = progress(
        events,
        "{bar:40} {pos}/{len} appending verifications {per_sec}",
    );
    let next = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..64 {
        let (store, next, filling) = (store.clone(), next.clone(), filling.clone());
        writers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= events {
                    return Ok::<(), StoreError>(());
                }
                let lender = LenderId::from_uuid(Uuid::from_u128(u128::from(i % 50) + 1));
                let nonce = Uuid::now_v7().to_string();
                let verified = !i.is_multiple_of(4);
                let outcome = Outcome {
                    failed_step: (!verified).then_some(Step::Revocation),
                    reason: (!verified).then_some(Reason::StatusRevoked),
                    steps: Vec::new(),
                    issuer: Some("did:example:issuer".into()),
                    kid: Some("key-1".into()),
                    vct: Some("https://credentials.example/identity".into()),
                    status: None,
                    key: None,
                    claims: None,
                    disclosed_paths: vec!["given_name".into(), "address.country".into()],
                };
                let asked = Asked {
                    lender_id: lender,
                    presentation: &nonce,
                    nonce: &nonce,
                    audience: "urn:proofline:bench",
                    required_claims: vec!["address.country".into()],
                    require_holder_binding: true,
                    at: proofline_domain::log::Timestamp::from_datetime(chrono::Utc::now()),
                };
                let id = VerificationId::for_nonce(lender, &nonce);
                let event = VerificationRecord::new(id, &asked, &outcome).into_event();
                store
                    .append(AppendRequest::new(
                        id.stream_id(),
                        ExpectedVersion::NoStream,
                        vec![NewEvent::of(&event)],
                    ))
                    .await?;
                filling.inc(1);
            }
        }));
    }
    for writer in writers {
        writer.await??;
    }
    filling.finish_and_clear();
    super::report::line(format!(
        "bench rebuild: {events} verification events ({})",
        scratch.describe()
    ));
    let projections = models::all();
    let first =
        crate::rebuild::rebuild_all(store.clone(), &live, &rebuild_scratch, &projections).await?;
    let second =
        crate::rebuild::rebuild_all(store.clone(), &live, &rebuild_scratch, &projections).await?;
    let mut same = true;
    for (a, b) in first.iter().zip(&second) {
        same &= a.checksum == b.checksum && a.rows == b.rows;
    }
    let (all_events, seconds): (u64, f64) =
        first.iter().chain(&second).fold((0, 0.0), |(n, s), r| {
            (n + r.events, s + r.elapsed.as_secs_f64())
        });
    super::report::line(format!(
        "every model rebuilt twice: {:.0} events/s per model on average; checksums {}",
        all_events as f64 / seconds.max(1e-9),
        if same { "identical" } else { "DIFFER" }
    ));
    super::report::set("store", scratch.kind());
    super::report::set("events", events);
    super::report::set(
        "events_per_second_per_model",
        all_events as f64 / seconds.max(1e-9),
    );
    super::report::set(
        "models",
        first
            .iter()
            .map(|r| {
                serde_json::json!({
                    "model": r.name,
                    "events_per_second": r.events as f64 / r.elapsed.as_secs_f64().max(1e-9),
                    "replayed_seconds": r.replayed.as_secs_f64(),
                    "seconds": r.elapsed.as_secs_f64(),
                    "rows": r.rows,
                })
            })
            .collect::<Vec<_>>(),
    );
    super::report::set("checksums_identical", same);
    anyhow::ensure!(same, "two rebuilds of the same log differ");
    live.close().await;
    store.close().await;
    Ok(())
}
