//! `proofline bench --json`: the figures as one JSON object, from a bench
//! in one process (`auth`) and from the production topology (`verify`:
//! `proofline serve` and the load as processes of their own).

use serde_json::Value;

use crate::support::proofline;

fn bench_json(args: &[&str]) -> Value {
    let data = tempfile::tempdir().unwrap();
    let output = proofline(data.path())
        .args(["bench", "--json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "bench {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        stdout.lines().count(),
        1,
        "one line of JSON, no other: {stdout}"
    );
    serde_json::from_str(&stdout).unwrap()
}

fn positive(figures: &Value, pointer: &str) -> f64 {
    let value = figures
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} is missing from {figures}"));
    assert!(value > 0.0, "{pointer} = {value}");
    value
}

#[test]
fn bench_auth_prints_its_figures_as_json() {
    let figures = bench_json(&["auth", "--requests", "2000"]);
    assert_eq!(figures["store"], "sqlite");
    positive(&figures, "/cache_hit_us");
    positive(&figures, "/request_p50_us");
    // The first request with the key pays the one argon2 verification;
    // the thousands after it hit the cache.
    assert_eq!(figures["argon2_verifications"], 1);
}

#[test]
fn bench_verify_measures_the_service_as_processes() {
    let figures = bench_json(&["verify", "--presentations", "200", "--clients", "4"]);
    assert_eq!(figures["store"], "sqlite");
    assert_eq!(figures["nats"], false);
    assert_eq!(figures["end_to_end"]["count"], 200);
    assert_eq!(figures["fetched_trust"]["count"], 100);
    assert_eq!(figures["half_peak"]["count"], 100);
    let rate = positive(&figures, "/end_to_end/per_second");
    let p50 = positive(&figures, "/end_to_end/p50_ms");
    assert!(positive(&figures, "/end_to_end/p999_ms") >= p50);
    // The service did the work, in its own process; the load in another.
    positive(
        &figures,
        "/end_to_end/cpu_ms_per_verification/proofline/user_ms",
    );
    assert!(figures["end_to_end"]["cpu_ms_per_verification"]["load"].is_object());
    assert!(figures["end_to_end"]["cpu_ms_per_verification"]["postgres"].is_null());
    assert!(positive(&figures, "/peak_rss_bytes") > 1024.0 * 1024.0);
    let one_core = positive(&figures, "/verifier_one_core_per_s");
    let ratio = positive(&figures, "/ratio_end_to_end_to_one_core");
    assert!((ratio - rate / one_core).abs() < 1e-9 * ratio.max(1.0) + 1e-12);
}
