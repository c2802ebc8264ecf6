//! A PostgreSQL server of a test's own (initdb and pg_ctl in a temporary
//! directory, on a free loopback port), for tests that stop the database,
//! serve it over TLS, or stream it to a replica. The shared server on 5432
//! is never touched. Stopped (immediately) on drop.
//!
//! PostgreSQL refuses to run as root: when the test runs as root, every
//! command runs as the `postgres` user (`runuser`), and the directory is
//! handed to that user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The server's binaries: `PG_BIN_DIR`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout).
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir).expect(
        "PostgreSQL's server binaries (/usr/lib/postgresql/<version>/bin, or set PG_BIN_DIR)",
    )
}

fn output(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn running_as_root() -> bool {
    output(Command::new("id").arg("-u")).trim() == "0"
}

/// The TLS material a server is started with (PEM).
pub struct ServerTls {
    pub certificate: String,
    pub key: String,
}

pub struct PgServer {
    pub port: u16,
    dir: tempfile::TempDir,
    as_root: bool,
}

impl PgServer {
    /// initdb (trust authentication for local and loopback connections,
    /// replication included), then start on a free port.
    pub fn start(tls: Option<&ServerTls>) -> Self {
        let server = Self::empty();
        output(
            server
                .command("initdb")
                .args(["-A", "trust", "-U", "postgres", "-D"])
                .arg(server.data()),
        );
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             fsync = off\nmax_wal_senders = 4\nwal_level = replica\n",
            server.port,
            server.dir.path().display()
        );
        if let Some(tls) = tls {
            server.write_private("server.crt", &tls.certificate);
            server.write_private("server.key", &tls.key);
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        let path = server.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&path).expect("postgresql.conf");
        text.push_str(&conf);
        std::fs::write(&path, text).expect("write postgresql.conf");
        server.start_again();
        server
    }

    /// A hot standby streaming from `primary` (pg_basebackup -R), started.
    pub fn replica_of(primary: &PgServer) -> Self {
        let server = Self::empty();
        let data = server.data();
        server
            .command("pg_basebackup")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "-D",
            ])
            .arg(&data)
            .status()
            .ok()
            .filter(std::process::ExitStatus::success)
            .expect("pg_basebackup from the primary");
        let path = data.join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&path).expect("postgresql.auto.conf");
        text.push_str(&format!(
            "port = {}\nunix_socket_directories = '{}'\nhot_standby = on\n",
            server.port,
            server.dir.path().display()
        ));
        std::fs::write(&path, text).expect("write postgresql.auto.conf");
        server.start_again();
        server
    }

    fn empty() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir = tempfile::tempdir().expect("a temp dir");
        let as_root = running_as_root();
        if as_root {
            output(Command::new("chown").arg("postgres:").arg(dir.path()));
        }
        Self { port, dir, as_root }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let program = bin_dir().join(program);
        if self.as_root {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn write_private(&self, name: &str, text: &str) {
        let path = self.data().join(name);
        std::fs::write(&path, text).expect("write a key file");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod 0600");
        if self.as_root {
            output(Command::new("chown").arg("postgres:").arg(&path));
        }
    }

    /// The admin URL on `host` (`127.0.0.1` or `localhost`).
    pub fn url(&self, host: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres", self.port)
    }

    /// Stops at once (as a crash would: no checkpoint).
    pub fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.data())
            .output();
    }

    /// Starts (again) on the same port and data, and waits until it
    /// accepts connections.
    pub fn start_again(&self) {
        let log = self.dir.path().join("server.log");
        self.command("pg_ctl")
            .args(["start", "-w", "-t", "60", "-l"])
            .arg(&log)
            .arg("-D")
            .arg(self.data())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .unwrap_or_else(|| panic!("pg_ctl start failed: {}", self.log()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "postgres did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}
