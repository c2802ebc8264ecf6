//! `bench oid4vp`: OpenID4VP flows end to end (the lender creates a
//! request, the wallet fetches and checks it, presents and posts, the
//! lender reads the result), against a baseline measured in the same run:
//! the same presentations handed over directly (`POST /v1/verifications`).
//!
//! The service runs in this process on a scratch store; the load comes
//! from a second process (`proofline bench oid4vp-load`, hidden), which
//! prints its figures as one JSON line: the two never share a runtime or a
//! core's scheduler, and the load's own work (signing Key Binding JWTs,
//! checking request objects) is not charged to the service's figures.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use proofline_api::{router, serve};
use proofline_commands::oid4vp::FlowSettings;
use proofline_commands::oid4vp::identity::VerifierIdentity;
use proofline_commands::signing::ServiceKey;
use serde_json::{Value, json};

use super::{Latencies, Scratch, api_state};
use crate::config::Config;
use crate::oid4vp_wallet::{self, Behaviour, Credential, HolderKey};
use crate::wallet::{self, DEMO_VCT, Issuer};

/// What the load process is told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Load {
    /// Create, fetch, post, read: whole OpenID4VP flows.
    Flows,
    /// `POST /v1/verifications` of presentations made by the load itself.
    Direct,
}

/// `bench oid4vp`.
pub async fn oid4vp(config: &Config, flows: u64, clients: usize) -> anyhow::Result<()> {
    anyhow::ensure!(flows >= 50, "--flows must be at least 50");
    anyhow::ensure!(clients >= 1, "--clients must be at least 1");
    Scratch::run(config, false, async |scratch| {
        run(scratch, flows, clients).await
    })
    .await
}

async fn run(scratch: &Scratch, flows: u64, clients: usize) -> anyhow::Result<()> {
    let store = scratch.store("log").await?;
    let (state, operator) = api_state(store.clone()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let state = state.with_oid4vp(
        VerifierIdentity::did_key(ServiceKey::generate()?),
        FlowSettings {
            public_url: url::Url::parse(&base)?,
            result_ttl_seconds: 600,
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router(state), async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let post = |path: &str, key: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let issuer = Issuer::new(ServiceKey::generate()?);
    let answer = post(
        "/v1/issuers",
        &operator,
        json!({"did": issuer.did.as_str(), "name": "Bench Issuer", "credential_types": [DEMO_VCT]}),
    )
    .await?;
    anyhow::ensure!(answer.status() == 201, "the issuer: {}", answer.status());
    let answer = post(
        "/v1/lenders",
        &operator,
        json!({"name": "Bench Lending", "contact_email": "bench@lender.example"}),
    )
    .await?;
    anyhow::ensure!(answer.status() == 201, "the lender: {}", answer.status());
    let lender: Value = answer.json().await?;
    let files = tempfile::tempdir()?;
    let write = |name: &str, text: &str| -> anyhow::Result<std::path::PathBuf> {
        let path = files.path().join(name);
        super::write_secret(&path, text)?;
        Ok(path)
    };
    let lender_key = write("lender.key", lender["api_key"].as_str().unwrap_or_default())?;
    let holder = ServiceKey::generate()?;
    let (claims, concealed) = wallet::demo_claims();
    let now = chrono::Utc::now().timestamp();
    let (issued, _) = issuer.issue(&holder.verifying_key(), claims, concealed, None, now - 60);
    let credential = write("credential.sd-jwt", &issued)?;
    let holder_key = write("holder.key", &holder.to_pem()?)?;
    super::report::line(format!(
        "bench oid4vp: {flows} flows, {clients} clients, the load from a second process; {}",
        scratch.describe()
    ));
    let audience = lender["audience"].as_str().unwrap_or_default();
    let mut figures = Vec::new();
    for load in [Load::Direct, Load::Flows] {
        let answer = load_process(
            &base,
            &lender_key,
            &credential,
            &holder_key,
            audience,
            load,
            flows,
            clients,
        )
        .await?;
        figures.push(answer);
    }
    let (direct, whole) = (&figures[0], &figures[1]);
    let rate =
        |v: &Value| v["count"].as_f64().unwrap_or(0.0) / v["seconds"].as_f64().unwrap_or(1.0);
    super::report::line(format!(
        "baseline, POST /v1/verifications: {:.0} verifications/s (p50 {:.1} ms, p99 {:.1} ms)",
        rate(direct),
        direct["p50_ms"].as_f64().unwrap_or_default(),
        direct["p99_ms"].as_f64().unwrap_or_default(),
    ));
    super::report::line(format!(
        "OpenID4VP flows (create, fetch, post, read): {:.0} flows/s (a flow p50 {:.1} ms, p99 {:.1} ms)",
        rate(whole),
        whole["flow_p50_ms"].as_f64().unwrap_or_default(),
        whole["flow_p99_ms"].as_f64().unwrap_or_default(),
    ));
    super::report::line(format!(
        "the wallet's POST /oid4vp/response: p50 {:.1} ms, p99 {:.1} ms",
        whole["p50_ms"].as_f64().unwrap_or_default(),
        whole["p99_ms"].as_f64().unwrap_or_default(),
    ));
    super::report::line(format!(
        "ratio flows/s / direct verifications/s: {:.2}",
        rate(whole) / rate(direct).max(f64::MIN_POSITIVE)
    ));
    super::report::set("store", scratch.kind());
    super::report::set("direct", direct);
    super::report::set("flows", whole);
    super::report::set(
        "ratio_flows_to_direct",
        rate(whole) / rate(direct).max(f64::MIN_POSITIVE),
    );
    let _ = stop.send(());
    let _ = server.await;
    store.close().await;
    Ok(())
}

/// Runs `proofline bench oid4vp-load` and reads its JSON line.
#[allow(clippy::too_many_arguments)]
async fn load_process(
    base: &str,
    lender_key: &Path,
    credential: &Path,
    holder_key: &Path,
    audience: &str,
    load: Load,
    flows: u64,
    clients: usize,
) -> anyhow::Result<Value> {
    let exe = std::env::current_exe().context("cannot find this program to run the load")?;
    let mode = match load {
        Load::Flows => "flows",
        Load::Direct => "direct",
    };
    let output = tokio::process::Command::new(exe)
        .args(["bench", "oid4vp-load", "--base", base, "--mode", mode])
        .arg("--lender-key-file")
        .arg(lender_key)
        .arg("--credential")
        .arg(credential)
        .arg("--holder-key")
        .arg(holder_key)
        .args(["--audience", audience])
        .args([
            "--flows",
            &flows.to_string(),
            "--clients",
            &clients.to_string(),
        ])
        .stderr(Stdio::inherit())
        .output()
        .await
        .context("cannot run the load process")?;
    if !output.status.success() {
        bail!("the load process failed ({})", output.status);
    }
    let line = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(line.trim()).context("the load process printed no JSON line")
}

/// What `bench oid4vp-load` is given.
pub struct LoadArgs {
    pub base: String,
    pub mode: Load,
    pub lender_key_file: std::path::PathBuf,
    pub credential: std::path::PathBuf,
    pub holder_key: std::path::PathBuf,
    pub audience: String,
    pub flows: u64,
    pub clients: usize,
}

/// `bench oid4vp-load`: the load, as a process of its own; prints one JSON
/// line (`count`, `seconds`, `p50_ms`/`p99_ms` of the timed request, and
/// for flows `flow_p50_ms`/`flow_p99_ms`).
pub async fn load(args: LoadArgs) -> anyhow::Result<()> {
    let key = std::fs::read_to_string(&args.lender_key_file)?
        .trim()
        .to_owned();
    let issued = std::fs::read_to_string(&args.credential)?.trim().to_owned();
    let pem = std::fs::read_to_string(&args.holder_key)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    // The lender's key checked once (argon2) before the burst.
    let me = client
        .get(format!("{}/v1/lenders/me", args.base))
        .bearer_auth(&key)
        .send()
        .await?;
    anyhow::ensure!(me.status() == 200, "the lender's key: {}", me.status());
    let shared = Arc::new((
        client,
        key,
        issued,
        pem,
        args.base.clone(),
        args.audience.clone(),
    ));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let (shared, next, count, mode) = (shared.clone(), next.clone(), args.flows, args.mode);
        tasks.push(tokio::spawn(async move {
            let (client, key, issued, pem, base, audience) = &*shared;
            let mut timed = Vec::new();
            let mut whole = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let credential = Credential {
                    issued: issued.clone(),
                    key: HolderKey::from_pem(pem)?,
                };
                let flow = Instant::now();
                match mode {
                    Load::Direct => {
                        let nonce = wallet::random_token();
                        let presentation = oid4vp_wallet::present_paths(
                            &credential,
                            &[vec!["given_name".into()], vec!["family_name".into()]],
                            &nonce,
                            audience,
                        )?;
                        let answer = client
                            .post(format!("{base}/v1/verifications"))
                            .bearer_auth(key)
                            .json(&json!({"presentation": presentation, "nonce": nonce}))
                            .send()
                            .await?;
                        let body: Value = answer.json().await?;
                        anyhow::ensure!(body["verified"] == true, "not verified: {body}");
                        timed.push(flow.elapsed());
                    }
                    Load::Flows => {
                        let query = json!({"credentials": [{"id": "identity", "format": "dc+sd-jwt",
                            "meta": {"vct_values": [DEMO_VCT]},
                            "claims": [{"path": ["given_name"]}, {"path": ["family_name"]}]}]});
                        let created: Value = client
                            .post(format!("{base}/v1/presentation-requests"))
                            .bearer_auth(key)
                            .json(&json!({"dcql_query": query}))
                            .send()
                            .await?
                            .json()
                            .await?;
                        let link = created["authorization_request"]
                            .as_str()
                            .unwrap_or_default();
                        let posted = oid4vp_wallet::answer(
                            client,
                            link,
                            &[credential],
                            &Behaviour::default(),
                        )
                        .await?;
                        anyhow::ensure!(posted.status == 200, "the post: {}", posted.body);
                        timed.push(posted.post_took);
                        let id = created["request_id"].as_str().unwrap_or_default();
                        let result: Value = client
                            .get(format!("{base}/v1/presentation-requests/{id}"))
                            .bearer_auth(key)
                            .send()
                            .await?
                            .json()
                            .await?;
                        anyhow::ensure!(result["status"] == "verified", "not verified: {result}");
                        whole.push(flow.elapsed());
                    }
                }
            }
            Ok::<_, anyhow::Error>((timed, whole))
        }));
    }
    let (mut timed, mut whole): (Vec<Duration>, Vec<Duration>) = (Vec::new(), Vec::new());
    for task in tasks {
        let (t, w) = task.await??;
        timed.extend(t);
        whole.extend(w);
    }
    let seconds = started.elapsed().as_secs_f64();
    let count = timed.len();
    let timed = Latencies::new(timed);
    let mut line = json!({"count": count, "seconds": seconds,
        "p50_ms": timed.ms(0.5), "p99_ms": timed.ms(0.99)});
    if !whole.is_empty() {
        let whole = Latencies::new(whole);
        line["flow_p50_ms"] = json!(whole.ms(0.5));
        line["flow_p99_ms"] = json!(whole.ms(0.99));
    }
    println!("{line}");
    Ok(())
}
