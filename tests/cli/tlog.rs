//! The transparency log from outside, as an auditor or a regulator meets
//! it: a verification's evidence checked offline by `log verify-evidence`,
//! each forgery named; `log consistency` across 10k appends and against a
//! copy whose past was rewritten, served by a second process; and a kill -9
//! during appends, after which the tree is complete up to the head.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::support::{PATIENCE, Running, proofline};

const ORIGIN: &str = "test.example/proofline";

/// The service on `data` (and on Postgres when `database` is given), with
/// no per-key rate limit and a checkpoint every second.
fn serve(data: &Path, database: Option<&str>) -> Running {
    let mut command = proofline(data);
    command
        .env("PROOFLINE_RATE_LIMIT_PER_KEY", "0")
        .env("PROOFLINE_CHECKPOINT_EVERY_SECONDS", "1")
        .env("PROOFLINE_LOG_ORIGIN", ORIGIN)
        .arg("serve");
    if let Some(url) = database {
        command.env("DATABASE_URL", url);
    }
    Running::start(command)
}

/// Runs `proofline ARGS` against `data`: (exited 0, stdout and stderr).
fn run(data: &Path, args: &[&str]) -> (bool, String) {
    run_with(proofline(data).args(args))
}

fn run_with(command: &mut std::process::Command) -> (bool, String) {
    let output = command.output().expect("run proofline");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn client() -> reqwest::Client {
    proofline_projections::webhooks::client::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn key_in(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// `GET url` (with `key` as bearer, if given), as JSON.
async fn get_json(url: &str, key: Option<&str>) -> Value {
    let mut request = client().get(url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap().json().await.unwrap()
}

async fn head(base: &str, key: &str) -> u64 {
    let page = get_json(&format!("{base}/v1/events?after=0&limit=1"), Some(key)).await;
    page["head"].as_u64().expect("a head")
}

/// The tree size a checkpoint note signs (its second line).
fn size_of(note: &str) -> u64 {
    note.lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect(note)
}

/// Waits for the note at `/tlog/checkpoint` to be `good`; `what` names it.
async fn note_when(base: &str, what: &str, good: impl AsyncFn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = client()
            .get(format!("{base}/tlog/checkpoint"))
            .send()
            .await
            .unwrap();
        if answer.status() == 200 {
            let note = answer.text().await.unwrap();
            if good(&note).await {
                return note;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of {what} within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for `/tlog/checkpoint` to sign a tree of at least `size` events.
async fn note_covering(base: &str, size: u64) -> String {
    note_when(base, &format!("{size} events"), async |note| {
        size_of(note) >= size
    })
    .await
}

/// Waits for `/tlog/checkpoint` to sign every event of the log but the
/// trailing checkpoints and cosignatures (a checkpoint never covers
/// itself), as the checkpointer's rule has it.
async fn note_of_head(base: &str, key: &str) -> String {
    note_when(base, "the head", async |note| {
        let url = format!("{base}/v1/events?after={}&limit=100", size_of(note));
        let after = get_json(&url, Some(key)).await;
        let events = after["events"].as_array().expect("events");
        events.iter().all(|e| {
            e["stream_id"]
                .as_str()
                .is_some_and(|s| s.starts_with("log-"))
        })
    })
    .await
}

/// The log's published keys: (`public_key`, `note_vkey`).
async fn log_keys(base: &str) -> (String, String) {
    let keys = get_json(&format!("{base}/v1/log/public-key"), None).await;
    let vkey = keys["note_vkey"].as_str().unwrap().to_owned();
    assert!(vkey.starts_with(&format!("{ORIGIN}+")), "{keys}");
    (keys["public_key"].as_str().unwrap().to_owned(), vkey)
}

/// Registers `lenders` lenders, then has one task a lender suspend and
/// unsuspend it until `total` such events are appended; a request that
/// fails ends its task. The number appended (acknowledged with a 200).
async fn churn(base: &str, operator: &str, lenders: usize, total: u64) -> u64 {
    let appended = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..lenders {
        let answer: Value = client()
            .post(format!("{base}/v1/lenders"))
            .bearer_auth(operator)
            .json(&json!({"name": format!("Lender {n}"), "contact_email": format!("l{n}@example.com")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = answer["lender_id"]
            .as_str()
            .expect("a lender id")
            .to_owned();
        let (base, operator, appended) = (base.to_owned(), operator.to_owned(), appended.clone());
        tasks.spawn(async move {
            let client = client();
            for action in ["suspend", "unsuspend"].iter().cycle() {
                if appended.load(std::sync::atomic::Ordering::SeqCst) >= total {
                    return;
                }
                let sent = client
                    .post(format!("{base}/v1/lenders/{id}/{action}"))
                    .bearer_auth(&operator)
                    .send()
                    .await;
                match sent {
                    Ok(answer) if answer.status() == 200 => {
                        appended.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    _ => return,
                }
            }
        });
    }
    tasks.join_all().await;
    appended.load(std::sync::atomic::Ordering::SeqCst)
}

fn write_json(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path
}

/// `log verify-evidence` on `evidence` must fail, saying `why`.
fn refused(dir: &Path, name: &str, evidence: &Value, key: &str, why: &str) {
    let path = write_json(dir, name, evidence);
    let (ok, text) = run(
        dir,
        &[
            "log",
            "verify-evidence",
            path.to_str().unwrap(),
            "--public-key",
            key,
        ],
    );
    assert!(!ok, "{name}: accepted: {text}");
    assert!(text.contains(why), "{name}: wanted {why:?} in {text}");
}

/// Runs the demo's curl, as a lender would: its answer.
fn verify_by_curl(curl: &str) -> Value {
    let output = std::process::Command::new("sh")
        .args(["-c", curl])
        .output()
        .unwrap();
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).expect("the verification's answer")
}

async fn evidence(base: &str, key: &str, id: &str, tree_above: u64) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = client()
            .get(format!("{base}/v1/verifications/{id}/evidence"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        if status == 200 && body["inclusion"]["tree_size"].as_u64() > Some(tree_above) {
            return body;
        }
        assert!(
            status == 200 || status == 409,
            "evidence of {id}: {status} {body}"
        );
        assert!(Instant::now() < deadline, "no evidence of {id}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn evidence_verifies_offline_and_each_forgery_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&data, None);
    let (ok, text) = run(&data, &["demo", "--url", &server.base]);
    assert!(ok, "{text}");
    let curl = text
        .lines()
        .rfind(|line| line.starts_with("curl "))
        .expect(&text);
    let first = verify_by_curl(curl);
    let second = verify_by_curl(curl);
    assert_eq!(
        (&first["verified"], &second["verified"]),
        (&json!(true), &json!(false))
    );
    let lender = key_in(&data.join("demo/lender.key"));
    let (public_key, vkey) = log_keys(&server.base).await;
    let id = first["verification_id"].as_str().unwrap();
    let other = second["verification_id"].as_str().unwrap();

    // Once a checkpoint covers it (within a second here), the lender's
    // evidence verifies with either form of the log's key, offline.
    let fresh = evidence(&server.base, &lender, id, 0).await;
    let path = write_json(dir.path(), "evidence.json", &fresh);
    for key in [&public_key, &vkey] {
        let (ok, text) = run(
            dir.path(),
            &[
                "log",
                "verify-evidence",
                path.to_str().unwrap(),
                "--public-key",
                key,
            ],
        );
        assert!(ok, "{text}");
        assert!(
            text.contains(&format!(
                "ok: verification {id} (verified) is the event at position {}",
                first["position"]
            )),
            "{text}"
        );
        assert!(text.contains(ORIGIN), "{text}");
    }

    // One byte of the envelope changed.
    let mut changed = fresh.clone();
    let name = changed["envelope"]["data"]["lender_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bytes = name.into_bytes();
    bytes[0] = if bytes[0] == b'0' { b'1' } else { b'0' };
    changed["envelope"]["data"]["lender_id"] = json!(String::from_utf8(bytes).unwrap());
    refused(
        dir.path(),
        "changed.json",
        &changed,
        &public_key,
        "the envelope was changed",
    );

    // The same change with the envelope's hash made again: no longer the
    // leaf the signed tree holds.
    let mut resealed = changed.clone();
    let envelope: proofline_domain::log::Envelope =
        serde_json::from_value(resealed["envelope"].clone()).unwrap();
    resealed["envelope"] = serde_json::to_value(envelope.seal()).unwrap();
    refused(
        dir.path(),
        "resealed.json",
        &resealed,
        &public_key,
        "the inclusion proof does not lead from the envelope to the signed root",
    );

    // A proof from another tree size: the log grew, a later checkpoint
    // signs a larger tree, and the earlier proof is put beside its note.
    verify_by_curl(curl);
    let later = evidence(
        &server.base,
        &lender,
        id,
        fresh["inclusion"]["tree_size"].as_u64().unwrap(),
    )
    .await;
    let path = write_json(dir.path(), "later.json", &later);
    assert!(
        run(
            dir.path(),
            &[
                "log",
                "verify-evidence",
                path.to_str().unwrap(),
                "--public-key",
                &public_key
            ]
        )
        .0
    );
    let mut mixed = later.clone();
    mixed["inclusion"] = fresh["inclusion"].clone();
    refused(
        dir.path(),
        "mixed.json",
        &mixed,
        &public_key,
        "the proof is for another tree",
    );
    // Its hashes under the later size: they do not reach the later root.
    mixed["inclusion"]["tree_size"] = later["inclusion"]["tree_size"].clone();
    refused(
        dir.path(),
        "relabelled.json",
        &mixed,
        &public_key,
        "does not lead from the envelope to the signed root",
    );

    // A forged note signature: one bit of it flipped.
    let note = fresh["checkpoint"]["note"].as_str().unwrap();
    let (body, signature_line) = note.trim_end().rsplit_once('\n').unwrap();
    let (prefix, signature) = signature_line.rsplit_once(' ').unwrap();
    let mut signature = STANDARD.decode(signature).unwrap();
    *signature.last_mut().unwrap() ^= 1;
    let mut forged = fresh.clone();
    forged["checkpoint"]["note"] =
        json!(format!("{body}\n{prefix} {}\n", STANDARD.encode(signature)));
    refused(
        dir.path(),
        "forged.json",
        &forged,
        &public_key,
        "the checkpoint note does not verify with the given key",
    );

    // The receipt of another verification, with this one's envelope.
    let another = evidence(&server.base, &lender, other, 0).await;
    let mut swapped = fresh.clone();
    swapped["receipt"] = another["receipt"].clone();
    refused(
        dir.path(),
        "swapped.json",
        &swapped,
        &public_key,
        "the receipt is not this verification's",
    );

    // Another log's key.
    let stranger = proofline_domain::jose::b64url_encode(
        ed25519_dalek::SigningKey::from_bytes(&[7; 32])
            .verifying_key()
            .as_bytes(),
    );
    refused(
        dir.path(),
        "stranger.json",
        &fresh,
        &stranger,
        "the checkpoint note does not verify with the given key",
    );
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
}

/// `log consistency ARGS --since KEPT` against `base`.
fn consistency(data: &Path, base: &str, kept: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["log", "consistency", "--url", base, "--key-file"];
    let key_file = data.join("operator.key");
    args.push(key_file.to_str().unwrap());
    args.extend(["--since", kept.to_str().unwrap()]);
    args.extend(extra);
    run(data, &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_holds_across_10k_appends_and_fails_for_a_rewritten_past() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&data, None);
    let operator = key_in(&data.join("operator.key"));
    let kept = note_covering(&server.base, 1).await;
    let kept_path = dir.path().join("kept.note");
    std::fs::write(&kept_path, &kept).unwrap();
    let (public_key, vkey) = log_keys(&server.base).await;

    let appended = churn(&server.base, &operator, 64, 10_000).await;
    assert!(appended >= 10_000, "{appended}");
    let latest = note_of_head(&server.base, &operator).await;
    for extra in [
        &[][..],
        &["--public-key", &public_key],
        &["--public-key", &vkey],
    ] {
        let (ok, text) = consistency(&data, &server.base, &kept_path, extra);
        assert!(ok, "{text}");
        let grew = format!("grew from {} to ", size_of(&kept));
        assert!(text.contains(&grew), "{text}");
        let to: u64 = text[text.find(&grew).unwrap() + grew.len()..]
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            to >= size_of(&latest) && to >= size_of(&kept) + 10_000,
            "{text}"
        );
    }
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");

    // The same log with one early event changed and the chain sealed
    // again, its checkpoints (which would betray it) and its operator
    // left out, served by a second process with the same signing key.
    let exported = dir.path().join("log.jsonl");
    let (ok, text) = run(
        &data,
        &["log", "export", "--out", exported.to_str().unwrap()],
    );
    assert!(ok, "{text}");
    let left_out = [
        proofline_domain::checkpoint::stream(),
        proofline_domain::operator::stream_id(),
    ];
    let mut previous = proofline_domain::log::EventHash::GENESIS;
    let mut changed = false;
    let mut lines = Vec::new();
    for line in std::fs::read_to_string(&exported).unwrap().lines() {
        let mut envelope: proofline_domain::log::Envelope = serde_json::from_str(line).unwrap();
        if left_out.contains(&envelope.stream_id) {
            continue;
        }
        if !changed && envelope.event_type == "LenderRegistered" {
            envelope.data["name"] = json!("Lender rewritten");
            changed = true;
        }
        envelope.position = lines.len() as u64 + 1;
        envelope.prev_hash = previous;
        let envelope = envelope.seal();
        previous = envelope.hash;
        lines.push(serde_json::to_string(&envelope).unwrap());
    }
    assert!(changed);
    let rewritten = dir.path().join("rewritten.jsonl");
    std::fs::write(&rewritten, lines.join("\n") + "\n").unwrap();
    let copy = dir.path().join("copy");
    let (ok, text) = run(&copy, &["log", "import", rewritten.to_str().unwrap()]);
    assert!(ok, "{text}");
    std::fs::copy(data.join("signing.key"), copy.join("signing.key")).unwrap();
    let second = serve(&copy, None);
    let copy_operator = key_in(&copy.join("operator.key"));
    let copy_head = head(&second.base, &copy_operator).await;
    assert!(copy_head > size_of(&kept));
    let copy_note = note_of_head(&second.base, &copy_operator).await;
    assert!(size_of(&copy_note) > size_of(&kept));
    assert_eq!(log_keys(&second.base).await.0, public_key, "the same key");
    let (ok, text) = consistency(&copy, &second.base, &kept_path, &[]);
    assert!(!ok, "a rewritten past passed: {text}");
    assert!(
        text.contains(&format!(
            "the log is not the one of the kept checkpoint (from {} to ",
            size_of(&kept),
        )),
        "{text}"
    );
    // Its own checkpoints are consistent with each other all the same.
    let copy_kept = dir.path().join("copy.note");
    std::fs::write(&copy_kept, &copy_note).unwrap();
    let (ok, text) = consistency(&copy, &second.base, &copy_kept, &[]);
    assert!(ok, "{text}");
    let (status, log) = second.terminate();
    assert!(status.success(), "{log}");
}

/// kill -9 while appends are under way; after a restart the service signs
/// a checkpoint of the whole log, the tree it stored is the tree of the
/// events, and `log verify` agrees with every note.
async fn a_kill_during_appends_leaves_a_complete_tree(database: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let with_store = |args: &[&str]| {
        let mut command = proofline(&data);
        command.env("PROOFLINE_LOG_ORIGIN", ORIGIN).args(args);
        if let Some(url) = database {
            command.env("DATABASE_URL", url);
        }
        command
    };
    let server = serve(&data, database);
    let operator = key_in(&data.join("operator.key"));
    let (public_key, _) = log_keys(&server.base).await;
    let base = server.base.clone();
    let load = {
        let operator = operator.clone();
        tokio::spawn(async move { churn(&base, &operator, 8, u64::MAX).await })
    };
    let deadline = Instant::now() + PATIENCE;
    while head(&server.base, &operator).await < 600 {
        assert!(Instant::now() < deadline, "appends under way");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(server); // SIGKILL
    let appended = load.await.unwrap();
    assert!(appended >= 500, "{appended}");

    let server = serve(&data, database);
    let restarted = head(&server.base, &operator).await;
    assert!(
        restarted > appended,
        "{restarted} after {appended} acknowledged"
    );
    note_of_head(&server.base, &operator).await;
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");

    // Every node the service stored is the node of the events.
    let (ok, text) = run_with(&mut with_store(&["rebuild", "tree"]));
    assert!(ok, "{text}");
    assert!(text.contains("stored nodes equal to them"), "{text}");
    let exported = dir.path().join("log.jsonl");
    let (ok, text) = run_with(&mut with_store(&[
        "log",
        "export",
        "--out",
        exported.to_str().unwrap(),
    ]));
    assert!(ok, "{text}");
    // The tree recomputed from the export has every signed note's root,
    // the one signed after the restart included.
    let (ok, text) = run_with(
        with_store(&[
            "log",
            "verify",
            exported.to_str().unwrap(),
            "--public-key",
            &public_key,
        ])
        .env_remove("DATABASE_URL"),
    );
    assert!(ok, "{text}");
    assert!(text.contains("checkpoint notes match it"), "{text}");
    assert!(!text.contains("; 0 checkpoint notes"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_appends_leaves_a_complete_tree_on_sqlite() {
    a_kill_during_appends_leaves_a_complete_tree(None).await;
}

#[cfg(feature = "service-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_appends_leaves_a_complete_tree_on_postgres() {
    let database = proofline_testkit::TestDatabase::create().await;
    a_kill_during_appends_leaves_a_complete_tree(Some(database.url())).await;
}
