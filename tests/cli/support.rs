//! Spawning `proofline` and reading what it says.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest wait for the service to start or stop.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Every variable the service reads is removed first, so the developer's
/// environment cannot leak into a test.
pub fn proofline(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_proofline"));
    for (name, _) in proofline::config::VARIABLES {
        command.env_remove(name);
    }
    command
        .env_remove("RUST_LOG")
        .env("PROOFLINE_DATA_DIR", data_dir)
        .env("PROOFLINE_BIND", "127.0.0.1:0");
    command
}

pub struct Running {
    child: Child,
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Running {
    /// Starts the service and waits until it says where it listens.
    pub fn start(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn proofline");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (found, address) = mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(at) = line.find("listening on http://") {
                        let rest = &line[at + "listening on http://".len()..];
                        let addr = rest
                            .split(|c: char| c.is_whitespace() || c == '"')
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                        let _ = found.send(addr);
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        match address.recv_timeout(PATIENCE) {
            Ok(addr) => Self {
                child,
                base: format!("http://{addr}"),
                log,
            },
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "proofline did not start; it said:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Let the reader thread drain the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return (status, self.log());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "proofline did not stop within {PATIENCE:?} of SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn get(url: &str) -> reqwest::Response {
    proofline_projections::webhooks::client::install_crypto_provider();
    reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// Runs `demo` (`proofline demo --url …`, configured by the caller), then
/// the curl it prints: the verification's answer, which must say verified.
pub fn verify_with_demo(demo: &mut Command) -> serde_json::Value {
    let output = demo.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let curl = stdout.lines().rfind(|l| l.starts_with("curl ")).unwrap();
    let answer = Command::new("sh").args(["-c", curl]).output().unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&answer.stdout).unwrap();
    assert_eq!(answer["verified"], true, "{answer}");
    answer
}

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}
