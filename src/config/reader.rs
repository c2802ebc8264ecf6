//! Reading variables: the one place where a variable's name, its accepted
//! range and its default meet. Every read notes the default it fell back
//! to, so the documentation of the defaults is the code's own
//! ([`super::Config::defaults`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use super::ConfigError;

pub(super) fn bad(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

pub(super) struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    /// Every variable read, with its default as text.
    noted: RefCell<Vec<(&'static str, String)>>,
}

impl<'a> Reader<'a> {
    pub fn new(vars: &'a HashMap<String, String>) -> Self {
        Self {
            vars,
            noted: RefCell::default(),
        }
    }

    /// The defaults noted so far, by variable.
    pub fn defaults(self) -> Vec<(&'static str, String)> {
        self.noted.into_inner()
    }

    fn note(&self, name: &'static str, default: impl Display) {
        self.noted.borrow_mut().push((name, default.to_string()));
    }

    /// The value of `name`, trimmed; empty counts as absent. `default`
    /// says, for the documentation, what absent means.
    pub fn get(&self, name: &'static str, default: &str) -> Option<&'a str> {
        self.note(name, default);
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// A whole number within `range`, `default` when absent.
    pub fn number(
        &self,
        name: &'static str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        match self.get(name, &default.to_string()) {
            None => Ok(default),
            Some(v) => parse_number(name, v, &range),
        }
    }

    /// A whole number within `range`, or none when absent.
    pub fn optional_number(
        &self,
        name: &'static str,
        range: RangeInclusive<u64>,
    ) -> Result<Option<u64>, ConfigError> {
        self.get(name, "none")
            .map(|v| parse_number(name, v, &range))
            .transpose()
    }

    /// Seconds within `range` (fractions allowed), `default` when absent.
    pub fn seconds(
        &self,
        name: &'static str,
        default: Duration,
        range: RangeInclusive<f64>,
    ) -> Result<Duration, ConfigError> {
        match self.get(name, &seconds_text(default)) {
            None => Ok(default),
            Some(v) => parse_seconds(name, v, &range),
        }
    }

    /// A comma-separated list of seconds, each within `range`.
    pub fn seconds_list(
        &self,
        name: &'static str,
        default: &[Duration],
        range: RangeInclusive<f64>,
    ) -> Result<Vec<Duration>, ConfigError> {
        let text: Vec<String> = default.iter().map(|d| seconds_text(*d)).collect();
        match self.get(name, &text.join(",")) {
            None => Ok(default.to_vec()),
            Some(list) => list
                .split(',')
                .map(|item| parse_seconds(name, item, &range))
                .collect(),
        }
    }

    /// A comma-separated list of CIDRs (a bare address is a single-host
    /// network); none when absent.
    pub fn networks(&self, name: &'static str) -> Result<Vec<IpNet>, ConfigError> {
        let Some(value) = self.get(name, "none") else {
            return Ok(Vec::new());
        };
        value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        bad(
                            name,
                            format!("{item:?} is not a CIDR like 10.0.0.0/8 or an IP address"),
                        )
                    })
            })
            .collect()
    }

    /// A file's path, `<data dir>/<default>` when absent.
    pub fn file(&self, name: &'static str, data_dir: &Path, default: &str) -> PathBuf {
        self.get(name, &format!("<data dir>/{default}"))
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join(default))
    }
}

fn seconds_text(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds.fract() == 0.0 {
        format!("{seconds:.0}")
    } else {
        seconds.to_string()
    }
}

fn parse_number(
    name: &'static str,
    text: &str,
    range: &RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    text.parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            bad(
                name,
                format!(
                    "{text:?} is not a number from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        })
}

fn parse_seconds(
    name: &'static str,
    text: &str,
    range: &RangeInclusive<f64>,
) -> Result<Duration, ConfigError> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| range.contains(v))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            bad(
                name,
                format!(
                    "{text:?} is not a number of seconds from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        })
}
