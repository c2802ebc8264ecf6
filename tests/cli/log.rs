//! `proofline log export` and `log verify`: an export verifies offline, and
//! each kind of tampering is named at its position.

use std::path::Path;

use crate::support::{Running, proofline};

/// Runs `log verify` with no database, no data directory and no network.
/// `log verify` without a key: `(exited 0, output)`; a file that is intact
/// exits 3 (self-attested), so `false` here.
fn verify(file: &Path) -> (bool, String) {
    let output = proofline(Path::new("/nonexistent/proofline-data"))
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
        .args(["log", "verify"])
        .arg(file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn verify_with(file: &Path, extra: &[&str]) -> (bool, String) {
    let output = proofline(Path::new("/nonexistent/proofline-data"))
        .args(["log", "verify"])
        .arg(file)
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Runs a command that must succeed; its output.
fn succeeds(command: &mut std::process::Command) -> std::process::Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn write(dir: &Path, name: &str, lines: &[String]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn refused(dir: &Path, name: &str, lines: &[String], expected: &str) {
    let (ok, text) = verify(&write(dir, name, lines));
    assert!(!ok, "{name}: {text}");
    assert!(
        text.contains(expected),
        "{name}: wanted {expected:?} in {text}"
    );
}

#[tokio::test]
async fn an_export_verifies_offline_and_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Running::start({
        let mut command = proofline(&data);
        command.arg("serve");
        command
    });
    succeeds(proofline(&data).args(["demo", "--url", &server.base]));

    // With the defaults, a checkpoint covers the demo's events within
    // seconds (PROOFLINE_CHECKPOINT_EVERY_SECONDS, 5).
    let operator = std::fs::read_to_string(data.join("operator.key")).unwrap();
    proofline_projections::webhooks::client::install_crypto_provider();
    let client = reqwest::Client::new();
    let page: serde_json::Value = client
        .get(format!("{}/v1/events?after=0&limit=1000", server.base))
        .bearer_auth(operator.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let head = page["head"].as_u64().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let latest = loop {
        let answer = client
            .get(format!("{}/v1/log/checkpoints/latest", server.base))
            .bearer_auth(operator.trim())
            .send()
            .await
            .unwrap();
        if answer.status() == 200 {
            let latest: serde_json::Value = answer.json().await.unwrap();
            if latest["position"].as_u64() >= Some(head) {
                break latest;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a checkpoint is signed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        latest["jws"].as_str().unwrap().split('.').count(),
        3,
        "{latest}"
    );
    let key: serde_json::Value = client
        .get(format!("{}/v1/log/public-key", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public_key = key["public_key"].as_str().unwrap().to_owned();

    // Through the API, with the operator's key from its file.
    let through_api = dir.path().join("api.jsonl");
    succeeds(
        proofline(&data)
            .args(["log", "export", "--url", &server.base, "--key-file"])
            .arg(data.join("operator.key"))
            .arg("--out")
            .arg(&through_api),
    );
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");

    // From the store.
    let exported = dir.path().join("log.jsonl");
    succeeds(
        proofline(&data)
            .args(["log", "export", "--out"])
            .arg(&exported),
    );
    let text = std::fs::read_to_string(&exported).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert!(lines.len() >= 8, "the demo wrote events: {}", lines.len());
    let api_text = std::fs::read_to_string(&through_api).unwrap();
    assert!(
        text.starts_with(&api_text) && !api_text.is_empty(),
        "the API serves the envelopes as stored"
    );

    // Without a key from outside the file: intact, but only self-attested,
    // with an exit status of its own.
    let output = proofline(Path::new("/nonexistent/proofline-data"))
        .args(["log", "verify"])
        .arg(&exported)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(3), "{said}");
    assert!(
        said.contains(&format!("ok: {} events", lines.len())),
        "{said}"
    );
    assert!(said.contains("signed checkpoints verified"), "{said}");
    assert!(
        said.contains("integrity only, signatures self-attested"),
        "{said}"
    );
    let (ok, said) = verify_with(&exported, &["--public-key", &public_key]);
    assert!(ok, "{said}");
    assert!(!said.contains("self-attested"), "{said}");

    // A rewritten export that brings its own key: a ServiceKeyActivated and
    // a checkpoint signed by it, chained onto the real file. On its own
    // word it holds together (exit 3, never 0); against the service's key
    // its checkpoint is refused; with both keys given, each checkpoint is
    // checked with the key of its kid.
    let forger = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let forged_file = append_forged_checkpoint(dir.path(), &lines, &forger);
    let (ok, said) = verify(&forged_file);
    assert!(!ok && said.contains("self-attested"), "{said}");
    let (ok, said) = verify_with(&forged_file, &["--public-key", &public_key]);
    assert!(
        !ok && said.contains("bad signature") && said.contains("none of the --public-key keys"),
        "{said}"
    );
    let forger_public = proofline_domain::jose::b64url_encode(forger.verifying_key().as_bytes());
    let (ok, said) = verify_with(
        &forged_file,
        &["--public-key", &public_key, "--public-key", &forger_public],
    );
    assert!(ok, "several keys, each by its kid: {said}");
    let stranger = proofline_domain::jose::b64url_encode(
        ed25519_dalek::SigningKey::from_bytes(&[9; 32])
            .verifying_key()
            .as_bytes(),
    );
    let (ok, said) = verify_with(&exported, &["--public-key", &stranger]);
    assert!(!ok && said.contains("bad signature"), "{said}");

    // A forged checkpoint: another hash, the envelope re-hashed so that the
    // chain itself holds up to it.
    let at = lines
        .iter()
        .position(|l| l.contains("\"LogCheckpointSigned\""))
        .expect("a checkpoint in the export");
    let mut forged_lines = lines[..=at].to_vec();
    let mut forged: proofline_domain::log::Envelope = serde_json::from_str(&lines[at]).unwrap();
    forged.data["hash"] = "1".repeat(64).into();
    forged.hash = forged.compute_hash();
    let position = forged.position;
    forged_lines[at] = serde_json::to_string(&forged).unwrap();
    refused(
        dir.path(),
        "forged.jsonl",
        &forged_lines,
        &format!("position {position}: bad signature"),
    );

    // One changed byte (the first letter of the event type at position 4).
    let mut changed = lines.clone();
    let at = changed[3].find("\"type\":\"").unwrap() + "\"type\":\"".len();
    let byte = changed[3].as_bytes()[at];
    changed[3].replace_range(at..=at, &((byte ^ 0x20) as char).to_string());
    refused(dir.path(), "changed.jsonl", &changed, "position 4: changed");

    // A removed line.
    let mut removed = lines.clone();
    removed.remove(3);
    refused(dir.path(), "removed.jsonl", &removed, "position 4: missing");

    // An inserted line: a forged copy of position 5 slipped in before it.
    let mut inserted = lines.clone();
    let mut forged: serde_json::Value = serde_json::from_str(&lines[4]).unwrap();
    forged["data"]["forged"] = true.into();
    inserted.insert(4, forged.to_string());
    refused(
        dir.path(),
        "inserted.jsonl",
        &inserted,
        "position 5: inserted",
    );

    // A repeated line.
    let mut repeated = lines.clone();
    repeated.insert(6, lines[5].clone());
    refused(
        dir.path(),
        "repeated.jsonl",
        &repeated,
        "position 6: inserted",
    );

    // Two swapped lines.
    let mut swapped = lines.clone();
    swapped.swap(3, 4);
    refused(
        dir.path(),
        "swapped.jsonl",
        &swapped,
        "position 4: reordered",
    );

    // An event changed and re-hashed: its successor no longer links to it.
    let mut rehashed = lines.clone();
    let mut envelope: proofline_domain::log::Envelope = serde_json::from_str(&lines[3]).unwrap();
    envelope.data["forged"] = true.into();
    envelope.hash = envelope.compute_hash();
    rehashed[3] = serde_json::to_string(&envelope).unwrap();
    refused(
        dir.path(),
        "rehashed.jsonl",
        &rehashed,
        "position 4: changed",
    );

    // A partial export (--after) verifies from its first event on.
    let tail = write(dir.path(), "tail.jsonl", &lines[4..]);
    // (Its checkpoints need the key: the file starts after the key event.)
    let (ok, said) = verify_with(&tail, &["--public-key", &public_key]);
    assert!(ok, "{said}");
    assert!(said.contains("positions 5 to"), "{said}");
}

/// `lines` and two more events chained onto them: a ServiceKeyActivated of
/// `forger`'s key and a checkpoint of the head signed with it.
fn append_forged_checkpoint(
    dir: &Path,
    lines: &[String],
    forger: &ed25519_dalek::SigningKey,
) -> std::path::PathBuf {
    use ed25519_dalek::Signer;
    use proofline_domain::checkpoint::{Checkpoint, kid_of};
    use proofline_domain::decider::EventSchema;
    use proofline_domain::log::{Envelope, Timestamp};
    let last: Envelope = serde_json::from_str(lines.last().unwrap()).unwrap();
    let kid = kid_of(&forger.verifying_key());
    let now = Timestamp::from_datetime(chrono::Utc::now());
    let next = |previous: &Envelope,
                stream: &str,
                version: u64,
                encoded: proofline_domain::decider::EncodedEvent| {
        Envelope {
            position: previous.position + 1,
            event_id: uuid::Uuid::now_v7(),
            stream_id: proofline_domain::ids::StreamId::parse(stream).unwrap(),
            stream_version: version,
            event_type: encoded.event_type,
            schema_version: encoded.schema_version,
            data: encoded.data,
            metadata: Default::default(),
            recorded_at: now,
            prev_hash: previous.hash,
            hash: previous.hash,
        }
        .seal()
    };
    let key_event = proofline_commands::service_keys::ServiceKeyEvent::ServiceKeyActivated {
        kid: kid.clone(),
        public_key: proofline_domain::jose::b64url_encode(forger.verifying_key().as_bytes()),
        did: proofline_domain::did::Did::from_ed25519(&forger.verifying_key()),
        activated_at: now,
    };
    let versions = |stream: &str| {
        lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Envelope>(l).ok())
            .filter(|e| e.stream_id.as_str() == stream)
            .count() as u64
    };
    let activated = next(
        &last,
        "service-keys",
        versions("service-keys") + 1,
        key_event.encode(),
    );
    let checkpoint = Checkpoint {
        position: activated.position,
        hash: activated.hash,
        signed_at: now,
    };
    let signature = forger.sign(checkpoint.signing_input(&kid).as_bytes());
    let signed = next(
        &activated,
        "log-checkpoints",
        versions("log-checkpoints") + 1,
        checkpoint.event(&kid, &signature.to_bytes(), None).encode(),
    );
    let mut all = lines.to_vec();
    all.push(serde_json::to_string(&activated).unwrap());
    all.push(serde_json::to_string(&signed).unwrap());
    write(dir, "forged-key.jsonl", &all)
}

/// The checksum lines of `proofline rebuild`, by model.
fn checksums(data: &Path) -> Vec<(String, String)> {
    let mut command = proofline(data);
    command.arg("rebuild");
    checksums_with(command)
}

fn checksums_with(mut command: std::process::Command) -> Vec<(String, String)> {
    let output = succeeds(&mut command);
    let mut sums: Vec<(String, String)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let (model, rest) = line.split_once(':')?;
            let sum = rest.rsplit_once("checksum ")?.1;
            Some((model.trim().to_owned(), sum.trim().to_owned()))
        })
        .collect();
    sums.sort();
    sums
}

#[tokio::test]
async fn an_imported_log_rebuilds_to_the_same_read_models() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Running::start({
        let mut command = proofline(&data);
        command.arg("serve");
        command
    });
    succeeds(proofline(&data).args(["demo", "--url", &server.base]));
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
    let exported = dir.path().join("log.jsonl");
    succeeds(
        proofline(&data)
            .args(["log", "export", "--out"])
            .arg(&exported),
    );

    // A broken chain is refused, and nothing is written.
    let text = std::fs::read_to_string(&exported).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(2, 3);
    let broken = dir.path().join("broken.jsonl");
    std::fs::write(&broken, lines.join("\n") + "\n").unwrap();
    let refused_dir = dir.path().join("refused");
    let output = proofline(&refused_dir)
        .args(["log", "import"])
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("position 3: reordered"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !refused_dir.join("events.sqlite").exists(),
        "nothing written"
    );

    // Imported into a fresh store, the log replays to the same read models.
    let copy = dir.path().join("copy");
    succeeds(proofline(&copy).args(["log", "import"]).arg(&exported));
    let again = proofline(&copy)
        .args(["log", "import"])
        .arg(&exported)
        .output()
        .unwrap();
    assert!(!again.status.success(), "only into an empty store");
    let original = checksums(&data);
    assert!(original.len() >= 5, "{original:?}");
    assert_eq!(checksums(&copy), original);

    // And exports again byte for byte.
    let reexported = dir.path().join("again.jsonl");
    let output = proofline(&copy)
        .args(["log", "export", "--out"])
        .arg(&reexported)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(std::fs::read_to_string(&reexported).unwrap(), text);

    // The same into Postgres.
    #[cfg(feature = "service-tests")]
    {
        let database = proofline_testkit::TestDatabase::create().await;
        let pg = dir.path().join("pg");
        let with_pg = |args: &[&str]| {
            let mut command = proofline(&pg);
            command
                .env("DATABASE_URL", database.url())
                .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
                .args(args);
            command
        };
        succeeds(with_pg(&["log", "import"]).arg(&exported));
        assert_eq!(checksums_with(with_pg(&["rebuild"])), original);
        let from_pg = dir.path().join("pg.jsonl");
        succeeds(with_pg(&["log", "export", "--out"]).arg(&from_pg));
        assert_eq!(std::fs::read_to_string(&from_pg).unwrap(), text);
    }
}
