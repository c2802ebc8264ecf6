//! `bench lag`: verification events appended at a steady rate, with the
//! projectors on the bus this configuration selects; how long each event
//! took from its append being called to the verifications read model
//! having applied it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proofline_projections::models::{self, Projection};
use proofline_projections::read_side::ReadSide;
use uuid::Uuid;

use super::{BenchBus, Latencies, Scratch, steady_verifications};
use crate::config::Config;

/// `bench lag`: verification events appended at `rate` per second for
/// `seconds`, with the projectors running on the bus this configuration
/// selects; prints how long each event took from its append returning to
/// the verifications read model having applied it.
///
/// Lag is measured from the call to append (so it includes the append).
pub async fn lag(config: &Config, rate: u64, seconds: u64) -> anyhow::Result<()> {
    anyhow::ensure!((1..=100_000).contains(&rate), "--rate must be 1 to 100000");
    anyhow::ensure!(
        (1..=3_600).contains(&seconds),
        "--seconds must be 1 to 3600"
    );
    Scratch::run(config, false, async |scratch| {
        run(config, scratch, rate, seconds).await
    })
    .await
}

async fn run(config: &Config, scratch: &Scratch, rate: u64, seconds: u64) -> anyhow::Result<()> {
    let store = scratch.store("log").await?;
    let read = scratch.read_db(4).await?;
    let bus = BenchBus::start(config, store.clone()).await?;
    let projections: Vec<Arc<dyn Projection>> = vec![Arc::new(models::Verifications)];
    let side = ReadSide::start_these(
        read.clone(),
        store.clone(),
        bus.bus.subscriptions(store.clone()),
        projections,
    )
    .await?;
    let mut applied = side.positions[0].1.clone();
    super::report::line(format!(
        "bench lag: {rate} verification events/s for {seconds} s, projector on {} ({})",
        bus.bus.describe(),
        scratch.describe()
    ));

    super::report::set("bus", bus.bus.describe());
    let appended: Arc<std::sync::Mutex<HashMap<u64, Instant>>> = Arc::default();
    let total = rate * seconds;
    let writer = {
        let appended = appended.clone();
        steady_verifications(
            store.clone(),
            rate,
            total,
            |n| Uuid::from_u128(u128::from(n % 10) + 1),
            move |_, position, started| {
                appended
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(position, started);
            },
        )
    };
    // When each position was applied; compared with when its append was
    // called once both are known.
    let mut applied_at: HashMap<u64, Instant> = HashMap::with_capacity(total as usize);
    let mut seen = 0u64;
    let deadline = Instant::now() + Duration::from_secs(seconds + 60);
    let mut writer = Some(writer);
    loop {
        let _ = tokio::time::timeout(Duration::from_millis(200), applied.changed()).await;
        let now = Instant::now();
        let reached = *applied.borrow();
        for position in seen + 1..=reached {
            applied_at.insert(position, now);
        }
        seen = seen.max(reached);
        if writer.as_ref().is_some_and(|w| w.is_finished()) {
            writer.take().expect("checked").await??;
        }
        let head = store.head().await?.map_or(0, |h| h.position);
        if writer.is_none() && seen >= head {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the projector reached {seen} of {head} in time"
        );
    }
    side.stop().await;
    bus.stop().await;
    let appended = appended.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let lags: Vec<Duration> = appended
        .iter()
        .filter_map(|(position, returned)| {
            applied_at
                .get(position)
                .map(|applied| applied.saturating_duration_since(*returned))
        })
        .collect();
    anyhow::ensure!(
        lags.len() as u64 == total,
        "only {} of {total} events were projected",
        lags.len()
    );
    let lags = Latencies::new(lags);
    super::report::line(format!(
        "projection lag (append called → read model applied): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {total} events",
        lags.ms(0.5),
        lags.ms(0.9),
        lags.ms(0.99),
        lags.ms(1.0)
    ));
    super::report::set("store", scratch.kind());
    super::report::set("rate", rate);
    super::report::set("events", total);
    super::report::set("lag_p50_ms", lags.ms(0.5));
    super::report::set("lag_p90_ms", lags.ms(0.9));
    super::report::set("lag_p99_ms", lags.ms(0.99));
    super::report::set("lag_max_ms", lags.ms(1.0));
    read.close().await;
    store.close().await;
    Ok(())
}
