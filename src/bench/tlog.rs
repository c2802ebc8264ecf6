//! `bench tlog`: the transparency log at scale. A scratch log of
//! `--events` events (a million by default) is written in ordered batches
//! and the tree follower hashes it, both timed; then the API serves it in
//! this process and a second process (`proofline bench tlog-load`, hidden)
//! asks it, `--seconds` each: `/health/live` (the HTTP floor, the baseline
//! of the same run), inclusion proofs of random positions against the whole
//! tree from one client (the latency an auditor sees) and from `--clients`,
//! and random full hash tiles as tlog clients fetch them.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use proofline_api::{router, serve};
use proofline_commands::tree::TreeFollower;
use proofline_domain::log::{Envelope, EventHash, Metadata, Timestamp};
use serde_json::{Value, json};
use uuid::Uuid;

use super::append::verification_data;
use super::{Latencies, Scratch, api_state, progress, verification_stream};
use crate::config::Config;

/// What the load process asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlogLoad {
    /// `GET /health/live`.
    Live,
    /// `GET /v1/log/proofs/inclusion` of random positions at the whole size.
    Inclusion,
    /// `GET /tlog/tile/<L>/<N>` of random full tiles of levels 0 and 1.
    Tiles,
}

const BATCH: usize = 5_000;

pub async fn tlog(
    config: &Config,
    events: u64,
    seconds: u64,
    clients: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        events >= 65_536,
        "--events must be at least 65536 (one level-1 tile)"
    );
    anyhow::ensure!(seconds >= 1, "--seconds must be at least 1");
    anyhow::ensure!(clients >= 1, "--clients must be at least 1");
    Scratch::run(config, false, async |scratch| {
        run(scratch, events, seconds, clients).await
    })
    .await
}

async fn run(scratch: &Scratch, events: u64, seconds: u64, clients: usize) -> anyhow::Result<()> {
    let store = scratch.store("log").await?;
    super::report::line(format!(
        "bench tlog: {events} events; loads of {seconds} s from a second process, {clients} clients; {}",
        scratch.describe()
    ));
    let bar = progress(
        events,
        "{bar:40} {pos}/{len} events written {per_sec} eta {eta}",
    );
    let started = Instant::now();
    let now = Timestamp::from_datetime(chrono::Utc::now());
    let mut previous = EventHash::GENESIS;
    let mut batch = Vec::with_capacity(BATCH);
    for n in 0..events {
        let envelope = Envelope {
            position: n + 1,
            event_id: Uuid::now_v7(),
            stream_id: verification_stream(Uuid::now_v7()),
            stream_version: 1,
            event_type: "PresentationVerified".into(),
            schema_version: 1,
            data: verification_data(n),
            metadata: Metadata::default(),
            recorded_at: now,
            prev_hash: previous,
            hash: previous,
        }
        .seal();
        previous = envelope.hash;
        batch.push(envelope);
        if batch.len() == BATCH || n + 1 == events {
            store.import(&batch).await?;
            bar.inc(batch.len() as u64);
            batch.clear();
        }
    }
    bar.finish_and_clear();
    let written = started.elapsed();
    super::report::line(format!(
        "written: {events} chained events in {:.1} s ({:.0} events/s, ordered {BATCH}-row batches)",
        written.as_secs_f64(),
        events as f64 / written.as_secs_f64()
    ));

    let started = Instant::now();
    let head = TreeFollower::new()
        .catch_up(store.as_ref())
        .await?
        .context("the log is empty")?;
    let hashed = started.elapsed();
    anyhow::ensure!(head.size == events, "the tree covers {} events", head.size);
    super::report::line(format!(
        "tree: {events} leaves hashed and stored as tiles in {:.1} s ({:.0} events/s)",
        hashed.as_secs_f64(),
        events as f64 / hashed.as_secs_f64()
    ));

    let (state, operator) = api_state(store.clone()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router(state), async move {
        let _ = stopped.await;
    }));
    let files = tempfile::tempdir()?;
    let key_file = files.path().join("operator.key");
    super::write_secret(&key_file, &operator)?;
    let load = async |mode: TlogLoad, clients: usize| -> anyhow::Result<Value> {
        let exe = std::env::current_exe().context("cannot find this program to run the load")?;
        let mode_name = match mode {
            TlogLoad::Live => "live",
            TlogLoad::Inclusion => "inclusion",
            TlogLoad::Tiles => "tiles",
        };
        let output = tokio::process::Command::new(exe)
            .args(["bench", "tlog-load", "--base", &base, "--mode", mode_name])
            .arg("--key-file")
            .arg(&key_file)
            .args(["--size", &events.to_string()])
            .args(["--seconds", &seconds.to_string()])
            .args(["--clients", &clients.to_string()])
            .stderr(Stdio::inherit())
            .output()
            .await
            .context("cannot run the load process")?;
        if !output.status.success() {
            bail!("the load process failed ({})", output.status);
        }
        let line = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str(line.trim()).context("the load process printed no JSON line")
    };
    let rate =
        |v: &Value| v["count"].as_f64().unwrap_or(0.0) / v["seconds"].as_f64().unwrap_or(1.0);
    let line = |what: &str, v: &Value| {
        super::report::line(format!(
            "{what}: {:.0}/s (p50 {:.2} ms, p99 {:.2} ms; {} errors)",
            rate(v),
            v["p50_ms"].as_f64().unwrap_or_default(),
            v["p99_ms"].as_f64().unwrap_or_default(),
            v["errors"].as_u64().unwrap_or_default(),
        ));
    };
    let live = load(TlogLoad::Live, clients).await?;
    line(
        &format!("baseline, GET /health/live, {clients} clients"),
        &live,
    );
    let one = load(TlogLoad::Inclusion, 1).await?;
    line(
        &format!("inclusion proofs at tree size {events}, 1 client"),
        &one,
    );
    let many = load(TlogLoad::Inclusion, clients).await?;
    line(
        &format!("inclusion proofs at tree size {events}, {clients} clients"),
        &many,
    );
    let tiles = load(TlogLoad::Tiles, clients).await?;
    line(
        &format!("full hash tiles (levels 0 and 1, random), {clients} clients"),
        &tiles,
    );
    super::report::line(format!(
        "ratios to the baseline: inclusion proofs {:.2}, tiles {:.2}",
        rate(&many) / rate(&live).max(f64::MIN_POSITIVE),
        rate(&tiles) / rate(&live).max(f64::MIN_POSITIVE)
    ));
    for (key, figures) in [
        ("live", &live),
        ("inclusion_one_client", &one),
        ("inclusion", &many),
        ("tiles", &tiles),
    ] {
        super::report::set(key, figures);
    }
    super::report::set("store", scratch.kind());
    super::report::set("events", events);
    super::report::set(
        "written_events_per_second",
        events as f64 / written.as_secs_f64(),
    );
    super::report::set(
        "tree_events_per_second",
        events as f64 / hashed.as_secs_f64(),
    );
    let _ = stop.send(());
    let _ = server.await;
    store.close().await;
    Ok(())
}

/// What `bench tlog-load` is given.
pub struct TlogLoadArgs {
    pub base: String,
    pub mode: TlogLoad,
    pub key_file: std::path::PathBuf,
    pub size: u64,
    pub seconds: u64,
    pub clients: usize,
}

/// The C2SP tile path of index `n`: groups of three digits, all but the
/// last prefixed with `x`.
fn tile_path(n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    let mut rest = n / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

/// xorshift64*: the load's positions, no need for more.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// `bench tlog-load`: the load, as a process of its own; prints one JSON
/// line (`count`, `errors`, `seconds`, `p50_ms`, `p99_ms`).
pub async fn tlog_load(args: TlogLoadArgs) -> anyhow::Result<()> {
    let key = std::fs::read_to_string(&args.key_file)?.trim().to_owned();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.clients)
        .map(|c| {
            let (client, key, base) = (client.clone(), key.clone(), args.base.clone());
            let (mode, size) = (args.mode, args.size);
            tokio::spawn(async move {
                let mut state =
                    0x9e37_79b9_7f4a_7c15_u64 ^ (c as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let r = next(&mut state);
                    let request = match mode {
                        TlogLoad::Live => client.get(format!("{base}/health/live")),
                        TlogLoad::Inclusion => client
                            .get(format!(
                                "{base}/v1/log/proofs/inclusion?position={}&tree_size={size}",
                                r % size + 1
                            ))
                            .bearer_auth(&key),
                        TlogLoad::Tiles => {
                            let (level, width) = if r.is_multiple_of(4) {
                                (1, size / 65_536)
                            } else {
                                (0, size / 256)
                            };
                            let index = (r >> 8) % width.max(1);
                            client.get(format!("{base}/tlog/tile/{level}/{}", tile_path(index)))
                        }
                    };
                    let sent = Instant::now();
                    match request.send().await {
                        Ok(answer) if answer.status().is_success() => {
                            let _ = answer.bytes().await;
                            latencies.push(sent.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut all, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (latencies, failed) = task.await?;
        all.extend(latencies);
        errors += failed;
    }
    let seconds = started.elapsed().as_secs_f64();
    let count = all.len();
    let latencies = Latencies::new(all);
    println!(
        "{}",
        json!({
            "count": count,
            "errors": errors,
            "seconds": seconds,
            "p50_ms": latencies.ms(0.50),
            "p99_ms": latencies.ms(0.99),
        })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tile_paths_are_groups_of_three_digits() {
        for (n, path) in [
            (0, "000"),
            (5, "005"),
            (999, "999"),
            (1000, "x001/000"),
            (1_234_067, "x001/x234/067"),
        ] {
            assert_eq!(super::tile_path(n), path);
            assert_eq!(
                proofline_api::routes::tlog::parse_tile_path(path).map(|t| t.index),
                Some(n)
            );
        }
    }
}
