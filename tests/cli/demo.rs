//! `proofline demo` on a fresh embedded install, then the curl it prints,
//! run by a shell as a user would paste it; and `--serve-issuer`, whose
//! did:web issuer the service fetches from once told to trust its CA.

use std::process::Command;

use crate::support::{Running, mode, proofline};

fn demo(data: &std::path::Path, base: &str) -> String {
    let output = proofline(data)
        .args(["demo", "--url", base])
        .output()
        .expect("run proofline demo");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .rfind(|line| line.starts_with("curl "))
        .unwrap_or_else(|| panic!("no curl printed:\n{stdout}"))
        .to_owned()
}

fn sh(line: &str) -> String {
    let output = Command::new("sh")
        .args(["-c", line])
        .output()
        .expect("run sh");
    assert!(
        output.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_demo_curl_verifies_once_and_a_second_demo_reuses_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let service = Running::start(proofline(&data));

    let curl = demo(&data, &service.base);
    let first = sh(&curl);
    assert!(first.contains(r#""verified":true"#), "{first}");
    assert!(first.contains(r#""given_name":"Ada""#), "{first}");
    assert!(!first.contains("1815-12-10"), "the birthdate stays hidden");
    let again = sh(&curl);
    assert!(again.contains(r#""verified":false"#), "{again}");
    assert!(again.contains(r#""reason":"nonce_replayed""#), "{again}");

    let lender_key = std::fs::read_to_string(data.join("demo/lender.key")).unwrap();
    assert_eq!(mode(&data.join("demo/lender.key")), 0o600);
    assert_eq!(mode(&data.join("demo/issuer.key")), 0o600);
    assert!(
        !curl.contains(lender_key.trim()),
        "the key is read from its file"
    );

    // Again: the same lender and issuer, a fresh nonce.
    let second = demo(&data, &service.base);
    assert!(sh(&second).contains(r#""verified":true"#));
    assert_eq!(
        std::fs::read_to_string(data.join("demo/lender.key")).unwrap(),
        lender_key
    );
    let (_, log) = service.terminate();
    assert!(
        !log.contains(lender_key.trim()),
        "the lender key is never logged"
    );
}

#[test]
fn the_demo_runs_a_wallet_flow_with_a_qr_code() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let service = Running::start(proofline(&data));
    let output = proofline(&data)
        .args(["demo", "--url", &service.base, "--oid4vp"])
        .output()
        .expect("run proofline demo --oid4vp");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let link = stdout
        .lines()
        .find(|l| l.starts_with("openid4vp://?client_id=decentralized_identifier"))
        .unwrap_or_else(|| panic!("no link printed:\n{stdout}"));
    assert!(link.contains("request_uri="), "{link}");
    assert!(stdout.contains('█'), "a QR code in half blocks");
    assert!(stdout.contains("posted: 200"), "{stdout}");
    let result = &stdout[stdout.find("the lender reads:").expect("the result")..];
    assert!(result.contains(r#""status": "verified""#), "{result}");
    assert!(result.contains(r#""family_name": "Lovelace""#), "{result}");
    assert!(!result.contains("1815-12-10"), "only what was asked");
    assert_eq!(mode(&data.join("verifier.key")), 0o600);
}

/// `proofline demo --serve-issuer --once` on any free port: whether it
/// succeeded, and what it said (stdout, then stderr).
fn serve_issuer_demo(data: &std::path::Path, base: &str) -> (bool, String) {
    let output = proofline(data)
        .args(["demo", "--url", base, "--serve-issuer", "--once"])
        .args(["--issuer-bind", "127.0.0.1:0"])
        .output()
        .expect("run proofline demo --serve-issuer");
    let said = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

/// Every event of type `kind` in the log, read as the operator.
async fn events(base: &str, operator_key: &str, kind: &str) -> Vec<serde_json::Value> {
    proofline_projections::webhooks::client::install_crypto_provider();
    let client = reqwest::Client::new();
    let (mut found, mut after) = (Vec::new(), 0);
    loop {
        let page: serde_json::Value = client
            .get(format!("{base}/v1/events?after={after}&limit=500"))
            .bearer_auth(operator_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let events = page["events"].as_array().cloned().unwrap_or_default();
        let Some(last) = events.last() else {
            return found;
        };
        after = last["position"].as_u64().unwrap();
        found.extend(events.into_iter().filter(|e| e["type"] == kind));
    }
}

#[test]
fn the_demo_serves_a_did_web_issuer_whose_documents_the_service_fetches() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ca = data.join("demo-issuer/ca.pem");

    // A service not told to trust the demo's CA: the demo says how to
    // restart it, naming the CA file it has just made.
    let service = Running::start(proofline(&data));
    let (succeeded, said) = serve_issuer_demo(&data, &service.base);
    assert!(!succeeded, "{said}");
    assert!(
        said.contains(&format!("PROOFLINE_FETCH_CA_FILE='{}'", ca.display())),
        "{said}"
    );
    assert!(
        said.contains("PROOFLINE_FETCH_ALLOWED_NETWORKS=127.0.0.0/8,::1/128 proofline serve"),
        "{said}"
    );
    let pem = std::fs::read_to_string(&ca).expect("the CA certificate is kept");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert_eq!(mode(&data.join("demo-issuer")), 0o700);
    assert_eq!(mode(&data.join("demo-issuer/ca.key")), 0o600);
    service.terminate();

    // The same data, a service that trusts the CA and may reach loopback.
    let mut command = proofline(&data);
    command
        .env("PROOFLINE_FETCH_CA_FILE", &ca)
        .env("PROOFLINE_FETCH_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128");
    let service = Running::start(command);
    let (succeeded, said) = serve_issuer_demo(&data, &service.base);
    assert!(succeeded, "{said}\nthe service said:\n{}", service.log());
    assert!(said.contains("verified: "), "{said}");
    assert!(said.lines().any(|l| l.starts_with("curl ")), "{said}");
    assert_eq!(
        std::fs::read_to_string(&ca).unwrap(),
        pem,
        "the CA of the first run is reused"
    );
    let list_uri = said
        .lines()
        .find_map(|l| l.strip_prefix("issued a credential pointing at "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no list URI said:\n{said}"))
        .to_owned();
    assert!(
        list_uri.starts_with("https://localhost:") && list_uri.ends_with("/status/1"),
        "{list_uri}"
    );
    let operator_key = std::fs::read_to_string(data.join("operator.key")).unwrap();
    let fetched = tokio::runtime::Runtime::new().unwrap().block_on(events(
        &service.base,
        operator_key.trim(),
        "StatusListFetched",
    ));
    assert!(
        fetched
            .iter()
            .any(|e| e["data"]["uri"] == list_uri.as_str()),
        "no StatusListFetched for {list_uri}: {fetched:?}"
    );
}
