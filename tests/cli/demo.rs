//! `proofline demo` on a fresh embedded install, then the curl it prints,
//! run by a shell as a user would paste it.

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
