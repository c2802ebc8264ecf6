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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A JetStream cluster of nats-server processes on loopback ports, each
/// with a store of its own; nodes can be killed (SIGKILL) and started
/// again on the same ports and stores. Killed on drop.
pub struct NatsCluster {
    dir: tempfile::TempDir,
    nodes: Vec<ClusterNode>,
}

struct ClusterNode {
    name: String,
    port: u16,
    config: PathBuf,
    child: Option<Child>,
}

impl NatsCluster {
    /// Starts `size` nodes named `n1`, `n2`, … as cluster `proofline-test`
    /// and waits until each accepts clients.
    pub fn start(size: usize) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, route)| format!("nats-route://127.0.0.1:{route}"))
            .collect();
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(i, (port, route))| {
                let name = format!("n{}", i + 1);
                let store = dir.path().join(&name);
                let config = dir.path().join(format!("{name}.conf"));
                let text = format!(
                    "server_name: {name}\nlisten: \"127.0.0.1:{port}\"\n\
                     jetstream {{ store_dir: \"{}\" }}\n\
                     cluster {{\n  name: proofline-test\n  listen: \"127.0.0.1:{route}\"\n  routes: [{}]\n}}\n",
                    store.display(),
                    routes.join(", ")
                );
                std::fs::write(&config, text).expect("write a node's configuration");
                ClusterNode {
                    name,
                    port: *port,
                    config,
                    child: None,
                }
            })
            .collect();
        let mut cluster = Self { dir, nodes };
        for i in 0..size {
            cluster.start_node(i);
        }
        cluster
    }

    /// Every node's client URL, comma-separated (what `NATS_URL` takes).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The index of the node called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    pub fn name(&self, index: usize) -> &str {
        &self.nodes[index].name
    }

    /// Kills node `index` with SIGKILL, as a crash would.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `index` again on its ports and its store.
    pub fn start_node(&mut self, index: usize) {
        self.kill(index);
        let log = self
            .dir
            .path()
            .join(format!("{}.log", self.nodes[index].name));
        let node = &mut self.nodes[index];
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(&node.config)
            .arg("-l")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} ({e})", nats_server_binary()));
        node.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", node.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server {} did not start on {}",
                node.name,
                node.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What node `index` wrote to its log file.
    pub fn log(&self, index: usize) -> String {
        std::fs::read_to_string(
            self.dir
                .path()
                .join(format!("{}.log", self.nodes[index].name)),
        )
        .unwrap_or_default()
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
