//! What a bench prints: lines for people, or with `bench --json` one JSON
//! object of its figures at the end instead (the lines then go nowhere).
//! One sink per process, started by `proofline bench`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};

struct Report {
    json: bool,
    figures: BTreeMap<String, Value>,
}

static REPORT: Mutex<Report> = Mutex::new(Report {
    json: false,
    figures: BTreeMap::new(),
});

fn report() -> std::sync::MutexGuard<'static, Report> {
    REPORT.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts a bench's report: lines, or figures as JSON.
pub fn start(json: bool) {
    let mut report = report();
    report.json = json;
    report.figures.clear();
}

/// A line for people (printed now unless the report is JSON).
pub fn line(text: impl std::fmt::Display) {
    if !report().json {
        println!("{text}");
    }
}

/// A figure under `key` (dotted keys are kept as they are).
pub fn set(key: &str, value: impl serde::Serialize) {
    report().figures.insert(
        key.to_owned(),
        serde_json::to_value(value).unwrap_or_default(),
    );
}

/// Ends the report: with JSON, prints the figures as one object.
pub fn finish() {
    let report = report();
    if report.json {
        println!("{}", json!(report.figures));
    }
}

/// A load's figures under `key`, and their line.
pub(super) fn load(key: &str, run: &super::verify::Figures, what: &str) {
    let cpu: BTreeMap<&str, Value> = run
        .cpu
        .iter()
        .map(|(process, cpu)| {
            (
                *process,
                json!({"user_ms": cpu.user * 1e3, "system_ms": cpu.system * 1e3}),
            )
        })
        .collect();
    let total: f64 = run.cpu.values().map(|c| c.total()).sum();
    set(
        key,
        json!({
            "count": run.count,
            "per_second": run.rate,
            "p50_ms": run.p50_ms,
            "p99_ms": run.p99_ms,
            "p999_ms": run.p999_ms,
            "catch_up_ms": run.catch_up.as_secs_f64() * 1e3,
            "cpu_ms_per_verification": cpu,
            "cpu_ms_per_verification_total": total * 1e3,
        }),
    );
    let by_process: Vec<String> = run
        .cpu
        .iter()
        .map(|(process, cpu)| {
            format!(
                "{process} {:.3} ({:.0} % system)",
                cpu.total() * 1e3,
                100.0 * cpu.system / cpu.total().max(f64::MIN_POSITIVE)
            )
        })
        .collect();
    line(format!(
        "{what}: {:.0}/s (p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms; read model caught up {:.0} ms after the last answer)\n  \
         CPU ms per verification: {:.3} in all: {}",
        run.rate,
        run.p50_ms,
        run.p99_ms,
        run.p999_ms,
        run.catch_up.as_secs_f64() * 1e3,
        total * 1e3,
        by_process.join(", ")
    ));
}
