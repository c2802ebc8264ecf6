//! The production topology of a benchmark: `proofline serve` (every role)
//! as a process of its own on the scratch store, and, when `NATS_URL` is
//! set, a `nats-server` of its own (from `PATH`, JetStream in a scratch
//! directory) so that no run shares a stream with another.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use secrecy::ExposeSecret;
use tokio::process::{Child, Command};

use super::Scratch;
use crate::config::Config;

pub struct Topology {
    pub base: String,
    /// The operator's API key, as `serve` wrote it on first start.
    pub operator: String,
    serve: Child,
    nats: Option<Child>,
    log: PathBuf,
    _files: tempfile::TempDir,
}

/// A free loopback port (bound, then let go: the child binds it next).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The last lines of `log`, to say why a child stopped.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl Topology {
    /// Starts the topology for `config` on `scratch`; the service trusts
    /// the PEM roots `fetch_ca` for fetching from loopback.
    pub async fn start(config: &Config, scratch: &Scratch, fetch_ca: &str) -> anyhow::Result<Self> {
        let files = tempfile::Builder::new()
            .prefix("proofline-bench-")
            .tempdir()?;
        let ca_file = files.path().join("fetch-ca.pem");
        std::fs::write(&ca_file, fetch_ca)?;
        let mut nats = None;
        let mut env: Vec<(String, String)> = Vec::new();
        if config.nats_url.is_some() {
            let port = free_port()?;
            let dir = files.path().join("jetstream");
            let log = std::fs::File::create(files.path().join("nats.log"))?;
            let child = Command::new("nats-server")
                .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
                .arg(&dir)
                .stdout(log.try_clone()?)
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .context(
                    "NATS_URL is set: bench runs a nats-server of its own, and none is on PATH",
                )?;
            nats = Some(child);
            let url = format!("nats://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(20);
            while async_nats::connect(url.as_str()).await.is_err() {
                if Instant::now() > deadline {
                    bail!(
                        "the bench's nats-server did not start: {}",
                        tail(&files.path().join("nats.log"))
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            env.push(("NATS_URL".into(), url));
        }
        let data_dir = match scratch.serve_store().await? {
            Some(url) => {
                env.push(("DATABASE_URL".into(), url.expose_secret().to_owned()));
                files.path().join("data")
            }
            None => scratch
                .directory()
                .context("an embedded scratch has a directory")?,
        };
        let port = free_port()?;
        let log = files.path().join("serve.log");
        let out = std::fs::File::create(&log)?;
        let exe = std::env::current_exe().context("cannot find this program to serve")?;
        let serve = Command::new(exe)
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env("PROOFLINE_DATA_DIR", &data_dir)
            .env("PROOFLINE_BIND", format!("127.0.0.1:{port}"))
            .env("PROOFLINE_LOG_ORIGIN", "bench.example/proofline")
            .env("PROOFLINE_RATE_LIMIT_PER_KEY", "0")
            .env("PROOFLINE_FETCH_CA_FILE", &ca_file)
            .env("PROOFLINE_FETCH_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
            .envs(env)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start proofline serve")?;
        let mut topology = Self {
            base: format!("http://127.0.0.1:{port}"),
            operator: String::new(),
            serve,
            nats,
            log,
            _files: files,
        };
        topology.wait_ready().await?;
        topology.operator = std::fs::read_to_string(data_dir.join("operator.key"))
            .context("serve wrote no operator key")?
            .trim()
            .to_owned();
        Ok(topology)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.serve.try_wait()? {
                bail!("proofline serve stopped ({status}):\n{}", tail(&self.log));
            }
            let ready = client
                .get(format!("{}/health/ready", self.base))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "proofline serve was not ready in 120 s:\n{}",
                    tail(&self.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The service's process id.
    pub fn serve_pid(&self) -> u32 {
        self.serve.id().unwrap_or_default()
    }

    /// The bench's nats-server's process id, if it runs one.
    pub fn nats_pid(&self) -> Option<u32> {
        self.nats.as_ref().and_then(Child::id)
    }

    /// Stops the service with SIGTERM (it finishes what it holds) and the
    /// nats-server after it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        for child in std::iter::once(&mut self.serve).chain(self.nats.as_mut()) {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
            match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
                Ok(status) => {
                    status?;
                }
                Err(_) => child.kill().await?,
            }
        }
        Ok(())
    }
}
