//! `bench verify-load` (hidden): the load of `bench verify`, as a process
//! of its own. It POSTs each request body of a file (JSON Lines, one
//! verification request each, each used once) to `/v1/verifications`,
//! either from `clients` connections as fast as answers come (closed
//! loop), or at a fixed rate whatever the answers do (open loop: each
//! latency counts from when its request was due, so a stall is not hidden).
//! Prints one JSON line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::Latencies;
use super::procs;

pub struct VerifyLoadArgs {
    pub base: String,
    pub key_file: PathBuf,
    pub requests: PathBuf,
    pub clients: usize,
    /// Requests per second; 0 for a closed loop.
    pub rate: u64,
}

/// What one request came to: its latency, its position if it verified,
/// else why not.
type Outcome = (Duration, Result<u64, String>);

async fn post(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: axum::body::Bytes,
    due: Instant,
) -> Outcome {
    let answer = client
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    let outcome = match answer {
        Err(error) => Err(format!("no answer ({error})")),
        Ok(answer) => {
            let status = answer.status().as_u16();
            let body = answer.json::<serde_json::Value>().await.unwrap_or_default();
            match (status, &body["verified"]) {
                (201, serde_json::Value::Bool(true)) => Ok(body["position"].as_u64().unwrap_or(0)),
                (201, _) => Err(format!("rejected: {}", body["reason"])),
                (code, _) => Err(format!("{code} {}", body["code"])),
            }
        }
    };
    (due.elapsed(), outcome)
}

pub async fn verify_load(args: VerifyLoadArgs) -> anyhow::Result<()> {
    let key = std::fs::read_to_string(&args.key_file)?.trim().to_owned();
    let bodies: Arc<Vec<axum::body::Bytes>> = Arc::new(
        std::fs::read_to_string(&args.requests)?
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| axum::body::Bytes::from(l.to_owned()))
            .collect(),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients.max(1))
        .build()?;
    let url = format!("{}/v1/verifications", args.base);
    let started = Instant::now();
    let outcomes: Vec<Outcome> = if args.rate == 0 {
        let next = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..args.clients.max(1))
            .map(|_| {
                let (client, url, key, bodies, next) = (
                    client.clone(),
                    url.clone(),
                    key.clone(),
                    bodies.clone(),
                    next.clone(),
                );
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                        mine.push(post(&client, &url, &key, body.clone(), Instant::now()).await);
                    }
                    mine
                })
            })
            .collect();
        let mut all = Vec::with_capacity(bodies.len());
        for task in tasks {
            all.extend(task.await?);
        }
        all
    } else {
        let every = Duration::from_secs_f64(1.0 / args.rate as f64);
        let mut tasks = Vec::with_capacity(bodies.len());
        for (n, body) in bodies.iter().enumerate() {
            let due = started + every * n as u32;
            tokio::time::sleep_until(due.into()).await;
            let (client, url, key, body) = (client.clone(), url.clone(), key.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                post(&client, &url, &key, body, due).await
            }));
        }
        let mut all = Vec::with_capacity(bodies.len());
        for task in tasks {
            all.push(task.await?);
        }
        all
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut max_position = 0;
    let mut latencies = Vec::with_capacity(outcomes.len());
    for (latency, outcome) in outcomes {
        latencies.push(latency);
        match outcome {
            Ok(position) => max_position = max_position.max(position),
            Err(why) => *failures.entry(why).or_default() += 1,
        }
    }
    let count = latencies.len();
    let latencies = Latencies::new(latencies);
    let cpu = procs::own_cpu();
    println!(
        "{}",
        json!({
            "count": count,
            "errors": failures.values().sum::<u64>(),
            "failures": failures,
            "seconds": seconds,
            "p50_ms": latencies.ms(0.50),
            "p99_ms": latencies.ms(0.99),
            "p999_ms": latencies.ms(0.999),
            "max_ms": latencies.ms(1.0),
            "max_position": max_position,
            "cpu_user_s": cpu.user,
            "cpu_system_s": cpu.system,
        })
    );
    Ok(())
}
