//! Every verification of a world replayed from its log with the real
//! binary (`proofline log replay-verification`): the same outcome each
//! time. Another presentation, or a log changed by one byte, is refused.
//!
//! None of these worlds replays a nonce; a `nonce_replayed` record (the
//! store's refusal, not the verifier's) is taken as recorded.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use super::world::{Verified, World};
use crate::support::proofline;

/// Replays at once: the runs are processes, each reading the whole log.
const PARALLEL: usize = 2;
/// Up to this many verifications, each is replayed by a process of its
/// own; more (a thousand at once) are replayed this many to a process,
/// which reads the log once for all of them.
const ONE_BY_ONE: usize = 50;
const BATCH: usize = 250;

fn run<S: AsRef<OsStr>>(args: &[S]) -> Output {
    proofline(Path::new("/nonexistent/proofline-data"))
        .args(args)
        .output()
        .expect("run proofline")
}

fn said(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The world's log, exported with the operator's key into `dir`.
fn export(world: &World, dir: &Path) -> PathBuf {
    let log = dir.join("log.jsonl");
    let output = run(&[
        OsStr::new("log"),
        OsStr::new("export"),
        OsStr::new("--url"),
        OsStr::new(&world.base),
        OsStr::new("--key-file"),
        world.operator_key_file.as_os_str(),
        OsStr::new("--out"),
        log.as_os_str(),
    ]);
    assert!(output.status.success(), "export: {}", said(&output));
    log
}

/// `replay-verification` of `verified` with `presentation` (written to a
/// file of `dir` named `name`) and `extra` arguments.
fn replay(
    dir: &Path,
    name: &str,
    verified: &Verified,
    presentation: &str,
    extra: &[&OsStr],
) -> Output {
    let file = dir.join(name);
    std::fs::write(&file, presentation).unwrap();
    let mut args = vec![
        OsStr::new("log"),
        OsStr::new("replay-verification"),
        OsStr::new(&verified.id),
        OsStr::new("--presentation"),
        file.as_os_str(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// One `replay-verification` of every verification of `batch` (the
/// `first` of the world's on), from `log`: exit 0 and "same outcome" for
/// each.
fn replay_batch(dir: &Path, log: &Path, key: &str, first: usize, batch: &[Verified]) {
    let mut args: Vec<OsString> = vec!["log".into(), "replay-verification".into()];
    for (at, one) in (first..).zip(batch) {
        let file = dir.join(format!("{at}.presentation"));
        std::fs::write(&file, &one.presentation).unwrap();
        args.extend([one.id.as_str().into(), "--presentation".into(), file.into()]);
    }
    args.extend([
        "--log".into(),
        log.as_os_str().to_owned(),
        "--public-key".into(),
        key.into(),
    ]);
    let output = run(&args);
    let ids: Vec<&str> = batch.iter().map(|one| one.id.as_str()).collect();
    assert!(
        output.status.success(),
        "replay of verifications {ids:?}: {}",
        said(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.lines().filter(|l| *l == "same outcome").count(),
        batch.len(),
        "replay of verifications {ids:?}: {}",
        said(&output)
    );
}

fn same_outcome(output: &Output) -> bool {
    output.status.success() && String::from_utf8_lossy(&output.stdout).contains("same outcome")
}

/// Exports the world's log and replays from it every verification the
/// world made: each must exit 0 saying "same outcome".
pub async fn replay_all(world: &World) {
    let key = world.signed_key().await;
    let verified = world.verified.lock().unwrap().clone();
    assert!(!verified.is_empty(), "nothing to replay");
    let size = if verified.len() <= ONE_BY_ONE {
        1
    } else {
        BATCH
    };
    tokio::task::block_in_place(|| {
        let dir = tempfile::tempdir().unwrap();
        let log = export(world, dir.path());
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..PARALLEL {
                scope.spawn(|| {
                    loop {
                        let first = next.fetch_add(size, Ordering::Relaxed);
                        if first >= verified.len() {
                            break;
                        }
                        let batch = &verified[first..verified.len().min(first + size)];
                        replay_batch(dir.path(), &log, &key, first, batch);
                    }
                });
            }
        });
    });
}

/// A replay straight from the server (`--url`), and as JSON; a replayed
/// nonce, taken as recorded; then what is refused: another presentation
/// of the world (its nonce is not the recorded one; with the recorded
/// nonce, its digest is not), and an export with one byte of an event
/// changed.
pub async fn refusals(world: &World) {
    let before = world.verified.lock().unwrap().clone();
    let first = before.first().expect("a verification");
    let again = world
        .verify(&(first.presentation.clone(), first.nonce.clone()))
        .await;
    assert_eq!(again["reason"], "nonce_replayed", "{again}");
    let key = world.signed_key().await;
    let verified = world.verified.lock().unwrap().clone();
    let [first, second, ..] = verified.as_slice() else {
        panic!(
            "two verifications to swap are needed, not {}",
            verified.len()
        );
    };
    tokio::task::block_in_place(|| {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();

        let output = replay(
            dir,
            "url",
            first,
            &first.presentation,
            &[
                OsStr::new("--url"),
                OsStr::new(&world.base),
                OsStr::new("--key-file"),
                world.operator_key_file.as_os_str(),
                OsStr::new("--public-key"),
                OsStr::new(&key),
            ],
        );
        assert!(same_outcome(&output), "--url: {}", said(&output));

        let log = export(world, dir);
        // Without a key from outside the log, a same outcome proves only
        // the log's own integrity: exit 3, saying so.
        let output = replay(
            dir,
            "unkeyed",
            first,
            &first.presentation,
            &[OsStr::new("--log"), log.as_os_str()],
        );
        assert_eq!(output.status.code(), Some(3), "{}", said(&output));
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("not proven the service's"),
            "{}",
            said(&output)
        );
        let from_log = [
            OsStr::new("--log"),
            log.as_os_str(),
            OsStr::new("--public-key"),
            OsStr::new(&key),
        ];
        let mut json_args = from_log.to_vec();
        json_args.push(OsStr::new("--json"));
        let replayed_nonce = verified.last().unwrap();
        let output = replay(
            dir,
            "again",
            replayed_nonce,
            &replayed_nonce.presentation,
            &from_log,
        );
        assert!(same_outcome(&output), "nonce replayed: {}", said(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("as recorded: this lender had used the nonce before")
                && stdout.contains("reason=nonce_replayed"),
            "{stdout}"
        );

        let output = replay(dir, "json", first, &first.presentation, &json_args);
        assert!(output.status.success(), "--json: {}", said(&output));
        let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
        assert_eq!(report["same_outcome"], true, "{report}");
        assert_eq!(report["verification_id"], first.id.as_str(), "{report}");
        assert_eq!(report["recorded"], report["replayed"], "{report}");

        // Another presentation: the nonce its Key Binding JWT names is not
        // the recorded one.
        let output = replay(dir, "other", first, &second.presentation, &from_log);
        assert!(!output.status.success(), "{}", said(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("not the one recorded") && stderr.contains("nonce_sha256"),
            "{}",
            said(&output)
        );
        // With the recorded nonce, its digest is not the recorded one.
        let mut with_nonce = from_log.to_vec();
        with_nonce.extend([OsStr::new("--nonce"), OsStr::new(&first.nonce)]);
        let output = replay(dir, "other-nonce", first, &second.presentation, &with_nonce);
        assert!(!output.status.success(), "{}", said(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("not the one recorded") && stderr.contains("presentation_sha256"),
            "{}",
            said(&output)
        );

        // One byte of the verification's event changed.
        let text = std::fs::read_to_string(&log).unwrap();
        let digest = "\"presentation_sha256\":\"";
        let line = text
            .lines()
            .position(|l| l.contains(&first.id) && l.contains(digest))
            .expect("the verification's line");
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let at = lines[line].find(digest).unwrap() + digest.len();
        let byte = lines[line].as_bytes()[at];
        let changed = if byte == b'0' { "1" } else { "0" };
        lines[line].replace_range(at..=at, changed);
        let tampered = dir.join("tampered.jsonl");
        std::fs::write(&tampered, lines.join("\n") + "\n").unwrap();
        let output = replay(
            dir,
            "tampered",
            first,
            &first.presentation,
            &[OsStr::new("--log"), tampered.as_os_str()],
        );
        assert!(!output.status.success(), "{}", said(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("does not verify")
                && stderr.contains(&format!("(line {})", line + 1))
                && stderr.contains("changed"),
            "{}",
            said(&output)
        );
    });
}
