//! A nats-server of a test's own, for tests that stop and start the bus:
//! a free port, a JetStream store directory that survives restarts, killed
//! on drop. The shared server on 4222 is never touched.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The nats-server binary: `NATS_SERVER_BIN`, else `nats-server` on PATH
/// (Debian puts it in /usr/sbin).
pub fn nats_server_binary() -> String {
    std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| {
        for candidate in ["/usr/sbin/nats-server", "/usr/bin/nats-server"] {
            if std::path::Path::new(candidate).exists() {
                return candidate.to_owned();
            }
        }
        "nats-server".to_owned()
    })
}

pub struct NatsServer {
    pub port: u16,
    store_dir: tempfile::TempDir,
    child: Option<Child>,
    /// A configuration file and environment to start with.
    config: Option<(PathBuf, Vec<(String, String)>)>,
}

impl NatsServer {
    /// Starts a server with JetStream and waits until it accepts clients.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut server = Self {
            port,
            store_dir: tempfile::tempdir().expect("a temp dir"),
            child: None,
            config: None,
        };
        server.restart();
        server
    }

    /// Starts a server from a configuration file (its port, store
    /// directory and monitoring port overridden), with `env` set.
    pub fn start_with_config(config: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let store_dir = tempfile::tempdir().expect("a temp dir");
        // nats-server refuses -sd next to a store_dir of the file: a copy
        // of the file names the test's directory instead.
        let text = std::fs::read_to_string(config).expect("the configuration file");
        let js_dir = store_dir.path().join("js");
        let copied: String = text
            .lines()
            .map(|line| {
                if line.trim_start().starts_with("store_dir:") {
                    format!("  store_dir: \"{}\"", js_dir.display())
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let copy = store_dir.path().join("nats.conf");
        std::fs::write(&copy, copied).expect("write the configuration copy");
        let mut server = Self {
            port,
            store_dir,
            child: None,
            config: Some((
                copy,
                env.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            )),
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn store_dir(&self) -> PathBuf {
        self.store_dir.path().to_owned()
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store directory.
    pub fn restart(&mut self) {
        self.stop();
        let mut command = Command::new(nats_server_binary());
        if let Some((config, env)) = &self.config {
            let monitor = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port");
            command
                .arg("-c")
                .arg(config)
                .args(["-m", &monitor.to_string()])
                .envs(env.iter().map(|(k, v)| (k, v)));
        } else {
            command.arg("-js").arg("-sd").arg(self.store_dir.path());
        }
        let child = command
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); install nats-server or set NATS_SERVER_BIN",
                    nats_server_binary()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
