//! `bench verify`: the pure verifier on one core (trust resolved
//! beforehand), then `POST /v1/verifications` end to end over HTTP from
//! concurrent clients, each presentation verified and recorded, and the
//! ratio of the two.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::ProgressBar;
use proofline_api::{router, serve};
use proofline_commands::signing::ServiceKey;
use proofline_domain::did::Did;
use proofline_domain::status_list::ListUri;
use proofline_domain::verification::{self, ClaimPath, Profile, Request, Resolved};
use serde_json::json;

use super::{Latencies, Scratch, api_state_fetching, fetched, progress};
use crate::config::Config;
use crate::https::LocalCa;
use crate::wallet::{self, DEMO_VCT, Issuer};
use proofline_commands::outbound::read_pem_roots;

/// `bench verify`: the pure verifier on one core, then `POST
/// /v1/verifications` end to end over HTTP with `clients` concurrent
/// clients, and the ratio of the two. Runs against a scratch store, with
/// the per-key rate limit off.
pub async fn verify(config: &Config, presentations: u64, clients: usize) -> anyhow::Result<()> {
    anyhow::ensure!(presentations >= 100, "--presentations must be at least 100");
    anyhow::ensure!(clients >= 1, "--clients must be at least 1");
    Scratch::run(config, false, async |scratch| {
        run(scratch, presentations, clients).await
    })
    .await
}

async fn run(scratch: &Scratch, count: u64, clients: usize) -> anyhow::Result<()> {
    let store = scratch.store("log").await?;
    // The fetched-trust issuer's CA, trusted for fetching from loopback.
    let ca = LocalCa::new("Proofline Bench CA")?;
    let mut fetch = proofline_commands::fetch::FetchSettings::default();
    fetch.guard.extra_roots = read_pem_roots(&ca.pem()).map_err(anyhow::Error::msg)?;
    fetch.guard.allowed_networks = vec!["127.0.0.0/8".parse()?, "::1/128".parse()?];
    let (state, operator) = api_state_fetching(store.clone(), fetch).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router(state.clone()), async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let post = |path: &str, key: &str, body: serde_json::Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };

    // The world: an issuer with a status list, a lender, a holder.
    let issuer = Issuer::new(ServiceKey::generate()?);
    let holder = ServiceKey::generate()?;
    let answer = post(
        "/v1/issuers",
        &operator,
        json!({"did": issuer.did.as_str(), "name": "Bench Issuer", "credential_types": [DEMO_VCT]}),
    )
    .await?;
    anyhow::ensure!(
        answer.status() == 201,
        "registering the issuer: {}",
        answer.status()
    );
    let uri = "https://status.bench.example/1";
    let now = chrono::Utc::now().timestamp();
    let answer = post(
        "/v1/status-lists",
        &operator,
        json!({"uri": uri, "token": issuer.status_list(uri, &[0; 1024], now - 10)}),
    )
    .await?;
    anyhow::ensure!(
        answer.status() == 201,
        "publishing the list: {}",
        answer.status()
    );
    let answer = post(
        "/v1/lenders",
        &operator,
        json!({"name": "Bench Lending", "contact_email": "bench@lender.example"}),
    )
    .await?;
    anyhow::ensure!(
        answer.status() == 201,
        "registering the lender: {}",
        answer.status()
    );
    let lender: serde_json::Value = answer.json().await?;
    let lender_key = lender["api_key"].as_str().unwrap_or_default().to_owned();
    let audience = lender["audience"].as_str().unwrap_or_default().to_owned();
    // The steady state: the key checked once (argon2) before the burst. A
    // burst with a key the service has not checked yet is charged to the
    // failed-authentication budget until the first check ends.
    let me = client
        .get(format!("{base}/v1/lenders/me"))
        .bearer_auth(&lender_key)
        .send()
        .await?;
    anyhow::ensure!(me.status() == 200, "the lender's key: {}", me.status());

    // One credential, presented `count` times with distinct nonces, as a
    // wallet does for each lender's request.
    let (claims, concealed) = wallet::demo_claims();
    let (issued, disclosures) = issuer.issue(
        &holder.verifying_key(),
        claims,
        concealed,
        Some((uri, 7)),
        now - 60,
    );
    let generating = ProgressBar::new(count).with_message("presenting");
    let presentations: Arc<Vec<(String, String)>> = Arc::new(
        (0..count)
            .map(|_| {
                generating.inc(1);
                let nonce = wallet::random_token();
                let presentation =
                    wallet::present_to(&holder, &issued, &disclosures, &nonce, &audience, now);
                (presentation, nonce)
            })
            .collect(),
    );
    generating.finish_and_clear();
    let size = presentations[0].0.len();
    println!(
        "bench verify: {count} presentations of {size} bytes ({} disclosures), {}",
        disclosures.len(),
        scratch.describe()
    );

    // 1. The pure verifier, one thread, trust resolved beforehand.
    let did = Did::parse(issuer.did.as_str())?;
    let registered = state.registry.issuer(&did).await?;
    anyhow::ensure!(registered.is_some(), "the issuer is not in the registry");
    let list = state.registry.status_list(&ListUri::parse(uri)?).await?;
    anyhow::ensure!(list.is_some(), "the list is not in the registry");
    let required = vec![ClaimPath::parse("address.country").map_err(anyhow::Error::msg)?];
    let timed = presentations.clone();
    let audience_of_timed = audience.clone();
    let at = proofline_domain::log::Timestamp::from_datetime(chrono::Utc::now());
    let (verified, elapsed) = tokio::task::spawn_blocking(move || {
        let trust = Resolved {
            issuer: registered.as_ref().as_ref(),
            list: list.as_ref().as_ref(),
            list_unavailable: None,
            list_expired: None,
            keys_unavailable: None,
            x5c: None,
            type_metadata_invalid: None,
        };
        let started = Instant::now();
        let mut verified = 0u64;
        for (presentation, nonce) in timed.iter() {
            let request = Request {
                nonce,
                audience: &audience_of_timed,
                required_claims: &required,
                require_holder_binding: true,
                max_age_seconds: verification::DEFAULT_MAX_AGE_SECONDS as i64,
                now: at,
                profile: Profile::SdJwtVc,
            };
            verified += u64::from(verification::verify(presentation, &request, &trust).verified());
        }
        (verified, started.elapsed())
    })
    .await?;
    anyhow::ensure!(
        verified == count,
        "only {verified} of {count} verified in process"
    );
    let per_core = count as f64 / elapsed.as_secs_f64();
    println!(
        "verifier, one core: {per_core:.0} presentations/s ({:.1} µs each)",
        elapsed.as_secs_f64() * 1e6 / count as f64
    );

    // 2. End to end: POST /v1/verifications, `clients` at a time; then the
    // same with the trust fetched (a did:web issuer and a fetched list,
    // cached after the first verification), in halves taken in turn so
    // that both see the same machine.
    let fetched = fetched::World::start(
        &client,
        &base,
        &operator,
        &lender_key,
        &ca,
        &audience,
        presentations.len(),
    )
    .await?;
    let half = presentations.len() / 2;
    let mut registered_runs = Vec::new();
    let mut fetched_runs = Vec::new();
    // Registered first, then fetched first: neither always runs on the
    // larger store.
    for round in 0..2 {
        let range = round * half..(round + 1) * half;
        let registered_half = &presentations[range.clone()];
        let fetched_half = &fetched.presentations[range];
        let order = if round == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for fetched_trust in order {
            let (runs, half) = if fetched_trust {
                (&mut fetched_runs, fetched_half)
            } else {
                (&mut registered_runs, registered_half)
            };
            runs.push(end_to_end(&client, &base, &lender_key, half, clients).await?);
        }
    }
    let registered = Run::merge(registered_runs);
    let fetched_run = Run::merge(fetched_runs);
    let end_to_end = registered.rate();
    println!(
        "POST /v1/verifications, {clients} clients, registered trust: {end_to_end:.0} verifications/s (p50 {:.1} ms, p99 {:.1} ms), every one recorded",
        registered.latencies.ms(0.5),
        registered.latencies.ms(0.99)
    );
    println!(
        "POST /v1/verifications, {clients} clients, fetched trust (did:web key, fetched list, cached): {:.0} verifications/s (p50 {:.1} ms, p99 {:.1} ms)",
        fetched_run.rate(),
        fetched_run.latencies.ms(0.5),
        fetched_run.latencies.ms(0.99)
    );
    println!(
        "ratio fetched / registered trust: {:.3}",
        fetched_run.rate() / end_to_end
    );
    println!(
        "ratio end to end / verifier on one core: {:.2}",
        end_to_end / per_core
    );
    let _ = stop.send(());
    let _ = server.await;
    store.close().await;
    Ok(())
}

/// A timed run of verifications over HTTP.
struct Run {
    count: usize,
    elapsed: std::time::Duration,
    latencies: Latencies,
}

impl Run {
    fn merge(runs: Vec<Run>) -> Run {
        let mut all = Vec::new();
        let (mut count, mut elapsed) = (0, std::time::Duration::ZERO);
        for run in runs {
            count += run.count;
            elapsed += run.elapsed;
            all.extend(run.latencies.into_inner());
        }
        Run {
            count,
            elapsed,
            latencies: Latencies::new(all),
        }
    }

    fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }
}

/// POSTs every presentation to `/v1/verifications`, `clients` at a time;
/// fails unless every one verifies.
async fn end_to_end(
    client: &reqwest::Client,
    base: &str,
    lender_key: &str,
    presentations: &[(String, String)],
    clients: usize,
) -> anyhow::Result<Run> {
    let presentations: Arc<Vec<(String, String)>> = Arc::new(presentations.to_vec());
    let count = presentations.len() as u64;
    let next = Arc::new(AtomicU64::new(0));
    let progress = progress(
        count,
        "{bar:40} {pos}/{len} POST /v1/verifications {per_sec}",
    );
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (client, base, key, presentations, next, progress) = (
            client.clone(),
            base.to_owned(),
            lender_key.to_owned(),
            presentations.clone(),
            next.clone(),
            progress.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((presentation, nonce)) = presentations.get(i as usize) else {
                    return (latencies, failures);
                };
                let sent = Instant::now();
                let answer = client
                    .post(format!("{base}/v1/verifications"))
                    .bearer_auth(&key)
                    .json(&json!({"presentation": presentation, "nonce": nonce, "required_claims": ["address.country"]}))
                    .send()
                    .await;
                // Why a request did not verify, if it did not.
                let failure = match answer {
                    Err(error) => Some(format!("no answer ({error})")),
                    Ok(answer) => {
                        let status = answer.status();
                        let body = answer.json::<serde_json::Value>().await.unwrap_or_default();
                        match (status.as_u16(), &body["verified"]) {
                            (201, serde_json::Value::Bool(true)) => None,
                            (201, _) => Some(format!("rejected: {}", body["reason"])),
                            (code, _) => Some(format!("{code} {}", body["code"])),
                        }
                    }
                };
                latencies.push(sent.elapsed());
                if let Some(why) = failure {
                    *failures.entry(why).or_default() += 1;
                }
                progress.inc(1);
            }
        }));
    }
    let mut latencies = Vec::with_capacity(count as usize);
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    for task in tasks {
        let (mine, failed) = task.await?;
        latencies.extend(mine);
        for (why, n) in failed {
            *failures.entry(why).or_default() += n;
        }
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    let failed: u64 = failures.values().sum();
    anyhow::ensure!(
        failed == 0,
        "{failed} of {count} requests did not verify: {failures:?}"
    );
    let latencies = Latencies::new(latencies);
    Ok(Run {
        count: count as usize,
        elapsed,
        latencies,
    })
}
