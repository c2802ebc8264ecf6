//! `proofline serve --role …`: the API and the projectors as two processes
//! on one embedded store, as they would run against one Postgres.

use std::process::Command;

use crate::support::{Running, get, proofline};

#[tokio::test]
async fn an_api_process_and_a_projector_process_share_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let api = Running::start({
        let mut command = proofline(&data);
        command.args(["serve", "--role", "api"]);
        command
    });
    let projector = Running::start({
        let mut command = proofline(&data);
        command.args(["serve", "--role", "projector"]);
        command
    });

    // A verification through the API process.
    let output = proofline(&data)
        .args(["demo", "--url", &api.base])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let curl = stdout.lines().rfind(|l| l.starts_with("curl ")).unwrap();
    let answer = Command::new("sh").args(["-c", curl]).output().unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&answer.stdout).unwrap();
    assert_eq!(answer["verified"], true, "{answer}");
    let position = answer["position"].as_u64().unwrap();

    // Listed by the API from the read model the other process keeps.
    let key = std::fs::read_to_string(data.join("demo/lender.key")).unwrap();
    let listed: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/v1/verifications?min_position={position}",
            api.base
        ))
        .bearer_auth(key.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["items"][0]["verification_id"], answer["verification_id"],
        "{listed}"
    );

    // The projector process serves health and metrics only.
    let ready = get(&format!("{}/health/ready", projector.base)).await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert!(
        body["checks"]["projectors"]["verifications"]["position"]
            .as_u64()
            .unwrap()
            >= position
    );
    assert_eq!(
        get(&format!("{}/v1/verifications", projector.base))
            .await
            .status(),
        404
    );
    let (status, log) = projector.terminate();
    assert!(status.success(), "{log}");
    let (status, log) = api.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn roles_that_cannot_run_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let output = proofline(&dir.path().join("data"))
        .args(["serve", "--role", "relay"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("NATS_URL"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = proofline(&dir.path().join("data"))
        .args(["serve", "--role", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "a usage error");
}
