//! What operators watch: every metric the Grafana dashboard and the
//! Prometheus rules under `deploy/` name is one `/metrics` exports, and the
//! JSON log of a run (requests, commands, a webhook, a wallet's refusal)
//! names the role and the request and holds no secret.

use std::path::Path;
use std::time::{Duration, Instant};

use proofline_testkit::nats::NatsServer;

use crate::support::{Running, get, proofline, verify_with_demo};

/// Metric names (histograms by their base name) in Prometheus text.
fn exported(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(base_name)
        .collect()
}

fn base_name(name: &str) -> String {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
        .to_owned()
}

/// The queries of a dashboard (JSON: every `expr`, `query` and
/// `definition`) or of a rule file (YAML: every `expr:`, block scalars
/// included).
fn queries(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    if path.extension().is_some_and(|x| x == "json") {
        fn walk(value: &serde_json::Value, found: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, value) in map {
                        match (key.as_str(), value) {
                            ("expr" | "query" | "definition", serde_json::Value::String(q)) => {
                                found.push(q.clone());
                            }
                            _ => walk(value, found),
                        }
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        walk(&serde_json::from_str(&text).unwrap(), &mut found);
        return found;
    }
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            let block = lines[i + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || indent(l) > indent(line))
                .copied()
                .collect::<Vec<_>>()
                .join("\n");
            found.push(block);
        } else {
            found.push(rest.to_owned());
        }
    }
    found
}

/// Every metric the queries of a dashboard or rule file name (a scrape
/// configuration names none).
fn named_in(path: &Path) -> Vec<String> {
    queries(path)
        .iter()
        .flat_map(|q| q.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|t| t.starts_with("proofline_") || t.starts_with("http_"))
        .map(base_name)
        .collect()
}

fn files(dir: &str, extension: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut found: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no *.{extension} in {}", dir.display());
    found
}

async fn metrics_text(base: &str) -> String {
    get(&format!("{base}/metrics")).await.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alerts_name_exported_metrics_and_logs_hold_no_secret() {
    proofline_projections::webhooks::client::install_crypto_provider();
    let database = proofline_testkit::TestDatabase::create().await;
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = |command: &mut std::process::Command| {
        command
            .env("DATABASE_URL", database.url())
            .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
            .env("NATS_URL", nats.url());
    };
    let mut serve = proofline(&data);
    env(&mut serve);
    serve
        .env("PROOFLINE_LOG_FORMAT", "json")
        .env("PROOFLINE_CHECKPOINT_EVERY_SECONDS", "1")
        .env("PROOFLINE_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
        .env(
            "RUST_LOG",
            "debug,sqlx=warn,h2=info,hyper=info,hyper_util=info,rustls=info,async_nats=info",
        )
        .arg("serve");
    let service = Running::start(serve);
    let base = service.base.clone();

    // A run: a lender, an issuer, a verification (the demo), a webhook
    // endpoint with its secret, a wallet's response that matches nothing.
    let mut demo = proofline(&data);
    env(&mut demo);
    verify_with_demo(demo.args(["demo", "--url", &base]));
    let lender_key = std::fs::read_to_string(data.join("demo/lender.key")).unwrap();
    let http = reqwest::Client::new();
    let webhook: serde_json::Value = http
        .put(format!("{base}/v1/lenders/me/webhook"))
        .bearer_auth(lender_key.trim())
        .json(&serde_json::json!({"url": "https://127.0.0.1:9/proofline"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let webhook_secret = webhook["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("a webhook secret: {webhook}"))
        .to_owned();
    let refused = http
        .post(format!("{base}/oid4vp/response"))
        .form(&[("state", "nothing-of-ours")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);

    // A checkpoint signed, the relay at the head.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = metrics_text(&base).await;
        let names = exported(&text);
        if names.contains("proofline_checkpoint_timestamp_seconds")
            && names.contains("proofline_relay_lag_events")
        {
            break text;
        }
        assert!(Instant::now() < deadline, "no checkpoint or relay: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let names = exported(&text);
    let mut used = std::collections::BTreeSet::new();
    for path in files("deploy/grafana", "json")
        .into_iter()
        .chain(files("deploy/prometheus", "yml"))
    {
        for name in named_in(&path) {
            assert!(
                names.contains(&name),
                "{} names {name}, which /metrics does not export:\n{text}",
                path.display()
            );
            used.insert(name);
        }
    }
    for wanted in [
        "http_request_duration_seconds",
        "proofline_verifications_total",
        "proofline_store_append_batch_events",
        "proofline_store_append_duration_seconds",
        "proofline_relay_lag_events",
        "proofline_projector_lag_events",
        "proofline_webhook_deliveries_total",
        "proofline_fetch_total",
        "proofline_checkpoint_timestamp_seconds",
    ] {
        assert!(used.contains(wanted), "the dashboards never use {wanted}");
    }
    assert!(
        text.contains(r#"proofline_verifications_total{outcome="verified",failed_step="none"} 1"#),
        "{text}"
    );

    // The log: JSON lines, each naming the role; requests with their ids;
    // no key or secret of the run anywhere in it.
    let (_, log) = service.terminate();
    let mut request_lines = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(value["role"], "all", "{line}");
        if let Some(span) = value.get("span").filter(|s| s["name"] == "request") {
            assert!(span["request_id"].is_string(), "{line}");
            assert_eq!(span["correlation_id"], span["request_id"], "{line}");
            request_lines += 1;
        }
    }
    assert!(request_lines > 0, "no request logged: {log}");
    let mut secrets = vec![
        lender_key.trim().to_owned(),
        webhook_secret,
        std::fs::read_to_string(data.join("operator.key"))
            .unwrap()
            .trim()
            .to_owned(),
    ];
    for key_file in ["signing.key", "sealing.key", "verifier.key"] {
        let text = std::fs::read_to_string(data.join(key_file)).unwrap_or_default();
        secrets.extend(
            text.lines()
                .filter(|l| !l.starts_with("-----") && l.len() >= 16)
                .map(str::to_owned),
        );
    }
    assert!(secrets.len() >= 5, "the run's secrets were found");
    // The tail of each: keys begin with a public prefix that may be logged.
    for secret in &secrets {
        let tail = &secret[secret.len() - 16..];
        assert!(
            !log.contains(tail),
            "the log holds a secret (one of {} checked)",
            secrets.len()
        );
    }
}
