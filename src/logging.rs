//! The process's log: text for a terminal, or JSON lines for a collector,
//! each line stamped with the role the process runs (`"role":"api"`).
//! Requests log inside a span holding their `request_id` and
//! `correlation_id` (the id their events carry).
//!
//! tracing-subscriber formats each event whole and writes it with one
//! `write_all`, so the role is added to that one buffer: a field every
//! line has, whichever task logged it (a span would be lost across
//! `tokio::spawn`).

use std::io::{self, Write};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Writes to stderr, each JSON line opened with `"role":"<role>",`.
#[derive(Clone, Copy)]
pub struct RoleStamped {
    role: &'static str,
}

pub struct StampedLine {
    role: &'static str,
}

impl Write for StampedLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut err = io::stderr().lock();
        match buf.strip_prefix(b"{") {
            Some(rest) => {
                let mut line = Vec::with_capacity(buf.len() + 16 + self.role.len());
                line.extend_from_slice(b"{\"role\":\"");
                line.extend_from_slice(self.role.as_bytes());
                line.extend_from_slice(b"\",");
                line.extend_from_slice(rest);
                err.write_all(&line)
            }
            None => err.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for RoleStamped {
    type Writer = StampedLine;

    fn make_writer(&'a self) -> Self::Writer {
        StampedLine { role: self.role }
    }
}

/// Installs the global subscriber; levels follow `RUST_LOG`.
pub fn init(format: LogFormat, role: &'static str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder
            .with_writer(io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .with_ansi(false)
            .with_writer(RoleStamped { role })
            .init(),
    }
}
