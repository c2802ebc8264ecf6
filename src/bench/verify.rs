//! `bench verify`: verification as a deployment runs it. `proofline serve`
//! (every role: API, relay, projectors, webhooks) runs as a process of its
//! own on a scratch store, beside a nats-server of its own when `NATS_URL`
//! is set; the load comes from a third process (`bench verify-load`), each
//! presentation used once. Three loads: the peak (closed loop, `clients`
//! connections), the same with the trust fetched (a did:web issuer and a
//! fetched list, cached after the first), and an open loop at half the
//! peak rate (the latency a service not at its limit gives). For each: the
//! rate, p50/p99/p99.9, and the CPU each verification cost in each process
//! (from `/proc`: the service, every postgres process, the nats-server,
//! the load), counted until the read model has caught up. Then, the
//! service stopped, the pure verifier on one core with the trust the
//! service recorded, and the ratio of the two rates.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use proofline_commands::registry::Registry;
use proofline_commands::signing::ServiceKey;
use proofline_domain::did::Did;
use proofline_domain::status_list::ListUri;
use proofline_domain::verification::{self, ClaimPath, Profile, Request, Resolved};
use serde_json::{Value, json};

use super::procs::{self, Cpu};
use super::topology::Topology;
use super::{Scratch, fetched, report, write_secret};
use crate::config::Config;
use crate::https::LocalCa;
use crate::wallet::{self, DEMO_VCT, Issuer};

/// `bench verify`.
pub async fn verify(config: &Config, presentations: u64, clients: usize) -> anyhow::Result<()> {
    anyhow::ensure!(presentations >= 200, "--presentations must be at least 200");
    anyhow::ensure!(clients >= 1, "--clients must be at least 1");
    Scratch::run(config, false, async |scratch| {
        run(config, scratch, presentations, clients).await
    })
    .await
}

async fn run(config: &Config, scratch: &Scratch, count: u64, clients: usize) -> anyhow::Result<()> {
    let ca = LocalCa::new("Proofline Bench CA")?;
    let topology = Topology::start(config, scratch, &ca.pem()).await?;
    let (base, operator) = (topology.base.clone(), topology.operator.clone());
    let client = reqwest::Client::new();
    let post = |path: &str, key: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let created = async |what: &str, answer: reqwest::Response| -> anyhow::Result<Value> {
        anyhow::ensure!(answer.status() == 201, "{what}: {}", answer.status());
        Ok(answer.json().await?)
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
    created("registering the issuer", answer).await?;
    let uri = "https://status.bench.example/1";
    let now = chrono::Utc::now().timestamp();
    let answer = post(
        "/v1/status-lists",
        &operator,
        json!({"uri": uri, "token": issuer.status_list(uri, &[0; 1024], now - 10)}),
    )
    .await?;
    created("publishing the list", answer).await?;
    let answer = post(
        "/v1/lenders",
        &operator,
        json!({"name": "Bench Lending", "contact_email": "bench@lender.example"}),
    )
    .await?;
    let lender = created("registering the lender", answer).await?;
    let lender_key = lender["api_key"].as_str().unwrap_or_default().to_owned();
    let audience = lender["audience"].as_str().unwrap_or_default().to_owned();
    // The steady state: the key checked once (argon2) before the load.
    let me = client
        .get(format!("{base}/v1/lenders/me"))
        .bearer_auth(&lender_key)
        .send()
        .await?;
    anyhow::ensure!(me.status() == 200, "the lender's key: {}", me.status());

    // One credential, presented with a fresh nonce for every request: the
    // peak's, then the half rate's.
    let (claims, concealed) = wallet::demo_claims();
    let (issued, disclosures) = issuer.issue(
        &holder.verifying_key(),
        claims,
        concealed,
        Some((uri, 7)),
        now - 60,
    );
    let half = count / 2;
    let generating = ProgressBar::new(count + half).with_message("presenting");
    let presentations: Vec<(String, String)> = (0..count + half)
        .map(|_| {
            generating.inc(1);
            let nonce = wallet::random_token();
            let presentation =
                wallet::present_to(&holder, &issued, &disclosures, &nonce, &audience, now);
            (presentation, nonce)
        })
        .collect();
    generating.finish_and_clear();
    let fetched = fetched::World::start(
        &client,
        &base,
        &operator,
        &lender_key,
        &ca,
        &audience,
        half as usize,
    )
    .await?;
    let files = tempfile::tempdir()?;
    let key_file = files.path().join("lender.key");
    write_secret(&key_file, &lender_key)?;
    let (peak_set, half_set) = presentations.split_at(count as usize);
    for (name, set) in [
        ("peak", peak_set),
        ("half", half_set),
        ("fetched", &fetched.presentations[..]),
    ] {
        write_requests(&files.path().join(name), set)?;
    }
    report::set("store", scratch.kind());
    report::set("nats", config.nats_url.is_some());
    report::set("clients", clients);
    report::line(format!(
        "bench verify: {count} presentations of {} bytes ({} disclosures), each used once; \
         proofline serve (every role) on {}{}; load from a second process, {clients} connections",
        peak_set[0].0.len(),
        disclosures.len(),
        scratch.describe(),
        if config.nats_url.is_some() {
            ", with a nats-server of its own"
        } else {
            ", embedded bus"
        }
    ));

    let load = Load {
        topology: &topology,
        client: &client,
        key_file: &key_file,
        lender_key: &lender_key,
        postgres: scratch.is_postgres(),
    };
    let peak = load.run(&files.path().join("peak"), clients, 0).await?;
    report::load(
        "end_to_end",
        &peak,
        "POST /v1/verifications, registered trust, peak",
    );
    let fetched_run = load.run(&files.path().join("fetched"), clients, 0).await?;
    report::load(
        "fetched_trust",
        &fetched_run,
        "POST /v1/verifications, fetched trust (did:web key, fetched list, cached), peak",
    );
    let half_rate = ((peak.rate / 2.0) as u64).max(1);
    let halfway = load
        .run(&files.path().join("half"), clients, half_rate)
        .await?;
    report::load(
        "half_peak",
        &halfway,
        &format!("POST /v1/verifications at half the peak ({half_rate}/s, open loop)"),
    );
    let rss = procs::peak_rss(topology.serve_pid()).unwrap_or_default();
    report::set("peak_rss_bytes", rss);
    report::line(format!(
        "peak RSS of proofline serve: {:.0} MiB",
        rss as f64 / (1024.0 * 1024.0)
    ));
    topology.stop().await?;
    drop(fetched);

    // The pure verifier, one thread, with the trust the service recorded.
    let store = scratch.served_store().await?;
    let registry = Registry::new(store.clone());
    let registered = registry.issuer(&Did::parse(issuer.did.as_str())?).await?;
    anyhow::ensure!(registered.is_some(), "the issuer is not in the log");
    let list = registry.status_list(&ListUri::parse(uri)?).await?;
    anyhow::ensure!(list.is_some(), "the list is not in the log");
    store.close().await;
    let timed: Arc<Vec<(String, String)>> = Arc::new(peak_set.to_vec());
    let (verified, elapsed) = tokio::task::spawn_blocking(move || {
        let required = vec![ClaimPath::parse("address.country").expect("a claim path")];
        let trust = Resolved {
            issuer: registered.as_ref().as_ref(),
            list: list.as_ref().as_ref(),
            list_unavailable: None,
            list_expired: None,
            keys_unavailable: None,
            x5c: None,
            type_metadata_invalid: None,
        };
        let at = proofline_domain::log::Timestamp::from_datetime(chrono::Utc::now());
        let started = Instant::now();
        let mut verified = 0u64;
        for (presentation, nonce) in timed.iter() {
            let request = Request {
                nonce,
                audience: &audience,
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
    report::set("verifier_one_core_per_s", per_core);
    report::line(format!(
        "verifier, one core: {per_core:.0} presentations/s ({:.1} µs each)",
        elapsed.as_secs_f64() * 1e6 / count as f64
    ));
    let ratio = peak.rate / per_core;
    report::set("ratio_end_to_end_to_one_core", ratio);
    report::set("ratio_fetched_to_registered", fetched_run.rate / peak.rate);
    report::line(format!(
        "ratio end to end / verifier on one core: {ratio:.3}; fetched / registered trust: {:.3}",
        fetched_run.rate / peak.rate
    ));
    Ok(())
}

/// Each presentation as the body of one request, one per line.
fn write_requests(path: &Path, set: &[(String, String)]) -> anyhow::Result<()> {
    let mut text = String::new();
    for (presentation, nonce) in set {
        text.push_str(
            &json!({"presentation": presentation, "nonce": nonce, "required_claims": ["address.country"]})
                .to_string(),
        );
        text.push('\n');
    }
    Ok(std::fs::write(path, text)?)
}

/// What one load came to.
pub(super) struct Figures {
    pub rate: f64,
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// From the last answer until the read model held every verification.
    pub catch_up: Duration,
    /// CPU per verification, by process.
    pub cpu: BTreeMap<&'static str, Cpu>,
}

struct Load<'a> {
    topology: &'a Topology,
    client: &'a reqwest::Client,
    key_file: &'a Path,
    lender_key: &'a str,
    postgres: bool,
}

/// CPU spent so far, by process.
struct Readings {
    serve: Cpu,
    nats: Cpu,
    postgres: BTreeMap<u32, Cpu>,
}

impl Load<'_> {
    fn read(&self) -> Readings {
        Readings {
            serve: procs::cpu(self.topology.serve_pid()),
            nats: self.topology.nats_pid().map(procs::cpu).unwrap_or_default(),
            postgres: if self.postgres {
                procs::cpu_of_named("postgres")
            } else {
                BTreeMap::new()
            },
        }
    }

    /// Runs the load process over the requests in `file`; waits for the
    /// read model to hold every verification.
    async fn run(&self, file: &Path, clients: usize, rate: u64) -> anyhow::Result<Figures> {
        let before = self.read();
        let exe = std::env::current_exe().context("cannot find this program to run the load")?;
        let output = tokio::process::Command::new(exe)
            .args(["bench", "verify-load", "--base", &self.topology.base])
            .arg("--key-file")
            .arg(self.key_file)
            .arg("--requests")
            .arg(file)
            .args([
                "--clients",
                &clients.to_string(),
                "--rate",
                &rate.to_string(),
            ])
            .stderr(Stdio::inherit())
            .output()
            .await
            .context("cannot run the load process")?;
        if !output.status.success() {
            bail!("the load process failed ({})", output.status);
        }
        let answered = Instant::now();
        let line = String::from_utf8_lossy(&output.stdout);
        let load: Value =
            serde_json::from_str(line.trim()).context("the load process printed no JSON line")?;
        let count = load["count"].as_u64().unwrap_or_default();
        anyhow::ensure!(
            load["errors"].as_u64() == Some(0),
            "{} of {count} requests did not verify: {}",
            load["errors"],
            load["failures"]
        );
        self.caught_up(load["max_position"].as_u64().unwrap_or_default())
            .await?;
        let catch_up = answered.elapsed();
        let after = self.read();
        let per = |cpu: Cpu| Cpu {
            user: cpu.user / count as f64,
            system: cpu.system / count as f64,
        };
        let mut cpu = BTreeMap::new();
        cpu.insert("proofline", per(after.serve.since(before.serve)));
        if self.postgres {
            cpu.insert(
                "postgres",
                per(procs::spent_by_named(&before.postgres, &after.postgres)),
            );
        }
        if self.topology.nats_pid().is_some() {
            cpu.insert("nats-server", per(after.nats.since(before.nats)));
        }
        cpu.insert(
            "load",
            per(Cpu {
                user: load["cpu_user_s"].as_f64().unwrap_or_default(),
                system: load["cpu_system_s"].as_f64().unwrap_or_default(),
            }),
        );
        let ms = |key: &str| load[key].as_f64().unwrap_or_default();
        Ok(Figures {
            rate: count as f64 / ms("seconds").max(f64::MIN_POSITIVE),
            count,
            p50_ms: ms("p50_ms"),
            p99_ms: ms("p99_ms"),
            p999_ms: ms("p999_ms"),
            catch_up,
            cpu,
        })
    }

    /// Waits until the verifications read model reached `position`.
    async fn caught_up(&self, position: u64) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let answer = self
                .client
                .get(format!(
                    "{}/v1/verifications?min_position={position}&limit=1",
                    self.topology.base
                ))
                .bearer_auth(self.lender_key)
                .send()
                .await?;
            if answer.status().is_success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the read model did not reach position {position} in 300 s");
            }
        }
    }
}
