//! The cases of the HTTP contract for the transparency log: signed
//! checkpoint notes, inclusion and consistency proofs, C2SP tiles and entry
//! bundles, and a verification's evidence. Every hash is checked against
//! one computed here from the envelopes `/v1/events` returns.

use std::future::Future;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proofline_api::ApiSettings;
use proofline_domain::jose::testing::TestKey;
use proofline_domain::log::{Timestamp, canonical_json};
use proofline_domain::merkle::{self, Hash, leaf_hash, verify_consistency, verify_inclusion};
use proofline_domain::note;
use proofline_domain::verification_record::VerificationId;
use serde_json::{Value, json};

use crate::cases::email;
use crate::support::{Answer, TestApp};
use crate::webhook_support::until;
use crate::world::{fresh_nonce, now, open_receipt, world};

/// A checkpoint a second after anything new, and a request budget no case
/// here spends.
fn eager() -> ApiSettings {
    ApiSettings {
        checkpoint_every_events: 1,
        checkpoint_every_seconds: 1,
        requests_per_key_per_second: 10_000,
        ..ApiSettings::default()
    }
}

/// No checkpoint for an hour, whatever is appended.
fn idle() -> ApiSettings {
    ApiSettings {
        checkpoint_every_events: 1_000_000,
        checkpoint_every_seconds: 3_600,
        ..ApiSettings::default()
    }
}

fn hash(b64: &Value) -> Hash {
    STANDARD
        .decode(b64.as_str().expect("a base64 hash"))
        .expect("standard base64")
        .try_into()
        .expect("32 bytes")
}

fn hashes(list: &Value) -> Vec<Hash> {
    list.as_array()
        .expect("a list of hashes")
        .iter()
        .map(hash)
        .collect()
}

/// The leaf hash of an envelope as `/v1/events` shows it: SHA-256(0x00 ‖
/// its RFC 8785 bytes).
fn leaf_of(envelope: &Value) -> Hash {
    leaf_hash(canonical_json(envelope).unwrap().as_bytes())
}

async fn head(app: &TestApp) -> u64 {
    app.store.head().await.unwrap().map_or(0, |h| h.position)
}

async fn register_auditor(app: &TestApp) -> String {
    app.register_auditor("Tree Audit").await
}

/// Polls the latest checkpoint until it covers `position`.
async fn checkpoint_covering(app: &TestApp, key: &str, position: u64) -> Value {
    until(&format!("a checkpoint covering {position}"), || async {
        let answer = app.get("/v1/log/checkpoints/latest", Some(key)).await;
        assert!(matches!(answer.status, 200 | 404), "{}", answer.text);
        (answer.body["position"].as_u64() >= Some(position)).then_some(answer.body)
    })
    .await
}

/// Opens a checkpoint note with nothing but the published `note_vkey`.
async fn open_note(app: &TestApp, text: &str) -> note::Checkpoint {
    let keys = app.get("/v1/log/public-key", None).await;
    assert_eq!(keys.status, 200, "{}", keys.text);
    let vkey = keys.body["note_vkey"].as_str().expect("a note_vkey");
    let log = note::Verifier::parse(vkey).expect("the vkey parses");
    assert_eq!(log.name, app.state.settings.log_origin);
    let (checkpoint, opened) = note::Checkpoint::open(text, &log, &[]).expect("the note opens");
    assert_eq!(opened.note(), text, "the note round-trips");
    checkpoint
}

/// The first `n` envelopes, as an auditor pages them.
async fn envelopes(app: &TestApp, key: &str, n: u64) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    while (out.len() as u64) < n {
        let page = app
            .get(
                &format!("/v1/events?after={}&limit=1000", out.len()),
                Some(key),
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        let events = page.body["events"].as_array().unwrap();
        assert!(!events.is_empty(), "the log has {n} events");
        out.extend(events.iter().cloned());
    }
    out.truncate(n as usize);
    for (i, envelope) in out.iter().enumerate() {
        assert_eq!(envelope["position"], i as u64 + 1);
    }
    out
}

/// A log with commands in it, a signed checkpoint covering them, and what an
/// auditor reads of it.
struct Covered {
    app: TestApp,
    auditor: String,
    lender: String,
    /// `/v1/log/checkpoints/latest`.
    latest: Value,
    checkpoint: note::Checkpoint,
    /// The envelopes the checkpoint covers, and their leaf hashes.
    envelopes: Vec<Value>,
    leaves: Vec<Hash>,
}

async fn covered<F, Fut>(open: F) -> Covered
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(eager()).await;
    let auditor = register_auditor(&app).await;
    let (_, lender) = app.register_lender(&email()).await;
    for _ in 0..3 {
        app.register_lender(&email()).await;
    }
    let position = head(&app).await;
    let latest = checkpoint_covering(&app, &auditor, position).await;
    let checkpoint = open_note(&app, latest["note"].as_str().expect("a note")).await;
    let envelopes = envelopes(&app, &auditor, checkpoint.size).await;
    let leaves = envelopes.iter().map(leaf_of).collect();
    Covered {
        app,
        auditor,
        lender,
        latest,
        checkpoint,
        envelopes,
        leaves,
    }
}

async fn get_bytes(app: &TestApp, path: &str, key: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut request = app.client.get(format!("{}{path}", app.base));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        content_type,
        response.bytes().await.unwrap().to_vec(),
    )
}

fn assert_problem(answer: &Answer, status: u16, code: &str, what: &str) {
    assert_eq!(
        (answer.status, answer.code()),
        (status, code),
        "{what}: {}",
        answer.text
    );
    assert!(answer.is_problem(), "{what}");
}

pub async fn tlog_checkpoints_are_signed_notes_of_the_tree_over_the_head<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let Covered {
        app,
        auditor,
        latest,
        checkpoint,
        envelopes,
        leaves,
        ..
    } = covered(open).await;
    let size = checkpoint.size;
    assert_eq!(latest["position"], size);
    assert_eq!(latest["tree_size"], size);
    assert_eq!(latest["root_hash"], STANDARD.encode(checkpoint.root));
    assert_eq!(
        checkpoint.root,
        merkle::root(&leaves),
        "the root of the log"
    );
    assert_eq!(latest["hash"], envelopes[size as usize - 1]["hash"]);
    assert_eq!(latest["signature"], latest["jws"]);
    let keys = app.get("/v1/log/public-key", None).await;
    let signed = open_receipt(latest["jws"].as_str().unwrap(), &keys.body);
    assert_eq!(signed["position"], size);

    // /tlog/checkpoint serves the same note to anyone (compared while no
    // newer checkpoint is signed between the two reads).
    let (served, newest) = until("the same note in both places", || async {
        let (status, content_type, body) = get_bytes(&app, "/tlog/checkpoint", None).await;
        assert_eq!(status, 200);
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let newest = app.get("/v1/log/checkpoints/latest", Some(&auditor)).await;
        let text = String::from_utf8(body).expect("a note is text");
        (newest.body["note"] == text.as_str()).then_some((text, newest.body))
    })
    .await;
    let served = open_note(&app, &served).await;
    assert_eq!(served.size, newest["tree_size"].as_u64().unwrap());
    assert!(served.size >= size);

    // The log grows; the next checkpoint's tree extends this one.
    for _ in 0..3 {
        app.register_lender(&email()).await;
    }
    let position = head(&app).await;
    let later = checkpoint_covering(&app, &auditor, position).await;
    let later = open_note(&app, later["note"].as_str().unwrap()).await;
    assert!(later.size > size);
    let proof = app
        .get(
            &format!("/v1/log/proofs/consistency?from={size}&to={}", later.size),
            Some(&auditor),
        )
        .await;
    assert_eq!(proof.status, 200, "{}", proof.text);
    verify_consistency(
        size,
        later.size,
        &checkpoint.root,
        &later.root,
        &hashes(&proof.body["hashes"]),
    )
    .expect("the later tree extends the earlier one");
    let grown = envelopes_leaves(&app, &auditor, later.size).await;
    assert_eq!(later.root, merkle::root(&grown));
}

async fn envelopes_leaves(app: &TestApp, key: &str, n: u64) -> Vec<Hash> {
    envelopes(app, key, n).await.iter().map(leaf_of).collect()
}

pub async fn tlog_proofs_verify_against_the_signed_root<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let Covered {
        app,
        auditor,
        checkpoint,
        leaves,
        ..
    } = covered(open).await;
    let size = checkpoint.size;
    for position in 1..=size {
        let key = if position == 1 {
            &app.operator_key
        } else {
            &auditor
        };
        let proof = app
            .get(
                &format!("/v1/log/proofs/inclusion?position={position}&tree_size={size}"),
                Some(key),
            )
            .await;
        assert_eq!(proof.status, 200, "{}", proof.text);
        let leaf = leaves[position as usize - 1];
        assert_eq!(proof.body["position"], position);
        assert_eq!(proof.body["leaf_index"], position - 1);
        assert_eq!(proof.body["tree_size"], size);
        assert_eq!(hash(&proof.body["leaf_hash"]), leaf, "leaf {position}");
        verify_inclusion(
            position - 1,
            size,
            &leaf,
            &hashes(&proof.body["hashes"]),
            &checkpoint.root,
        )
        .unwrap_or_else(|e| panic!("position {position}: {e}"));
    }
    // Any smaller tree too, against its root computed here.
    let last = size / 2;
    let proof = app
        .get(
            &format!("/v1/log/proofs/inclusion?position={last}&tree_size={last}"),
            Some(&auditor),
        )
        .await;
    assert_eq!(proof.status, 200, "{}", proof.text);
    let root = merkle::root(&leaves[..last as usize]);
    verify_inclusion(
        last - 1,
        last,
        &leaves[last as usize - 1],
        &hashes(&proof.body["hashes"]),
        &root,
    )
    .expect("the last leaf of a smaller tree");

    // Every pair of sizes up to the checkpoint's.
    for from in 1..=size {
        for to in from..=size {
            let proof = app
                .get(
                    &format!("/v1/log/proofs/consistency?from={from}&to={to}"),
                    Some(&auditor),
                )
                .await;
            assert_eq!(proof.status, 200, "{}", proof.text);
            assert_eq!(
                (&proof.body["from"], &proof.body["to"]),
                (&json!(from), &json!(to))
            );
            let path = hashes(&proof.body["hashes"]);
            if from == to {
                assert!(path.is_empty());
            }
            let old = merkle::root(&leaves[..from as usize]);
            let new = merkle::root(&leaves[..to as usize]);
            verify_consistency(from, to, &old, &new, &path)
                .unwrap_or_else(|e| panic!("{from} to {to}: {e}"));
        }
    }
}

pub async fn tlog_proofs_refuse_impossible_sizes_and_other_roles<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(eager()).await;
    let auditor = register_auditor(&app).await;
    let (_, lender) = app.register_lender(&email()).await;
    let past = head(&app).await + 1_000;
    for query in [
        "inclusion?position=0&tree_size=1".to_owned(),
        "inclusion?position=3&tree_size=2".to_owned(),
        format!("inclusion?position=1&tree_size={past}"),
        "inclusion?position=1".to_owned(),
        "inclusion?position=x&tree_size=1".to_owned(),
        "inclusion?position=1&tree_size=1&nope=1".to_owned(),
        "consistency?from=3&to=2".to_owned(),
        "consistency?from=0&to=1".to_owned(),
        format!("consistency?from=1&to={past}"),
        "consistency?from=1&to=-1".to_owned(),
    ] {
        let answer = app
            .get(&format!("/v1/log/proofs/{query}"), Some(&auditor))
            .await;
        assert_problem(&answer, 422, "VALIDATION_FAILED", &query);
    }
    for path in [
        "/v1/log/proofs/inclusion?position=1&tree_size=1",
        "/v1/log/proofs/consistency?from=1&to=1",
    ] {
        let answer = app.get(path, Some(&lender)).await;
        assert_problem(&answer, 403, "FORBIDDEN", path);
        let answer = app.get(path, None).await;
        assert_eq!(answer.status, 401, "{path}: {}", answer.text);
        assert!(answer.is_problem(), "{path}");
    }
}

pub async fn tlog_tiles_and_entry_bundles_hold_the_leaves<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let Covered {
        app,
        auditor,
        lender,
        checkpoint,
        envelopes,
        leaves,
        ..
    } = covered(open).await;
    let size = checkpoint.size;
    assert!(size < 256, "one partial tile holds the log");

    // The partial hash tile of level 0, for anyone: the leaf hashes.
    let (status, content_type, body) =
        get_bytes(&app, &format!("/tlog/tile/0/000.p/{size}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/octet-stream");
    assert_eq!(body, leaves.concat());
    for path in [
        "/tlog/tile/0/000".to_owned(),
        "/tlog/tile/0/001.p/1".to_owned(),
        "/tlog/tile/1/000.p/1".to_owned(),
        "/tlog/tile/0/000.p/255".to_owned(),
        "/tlog/tile/0/0".to_owned(),
        "/tlog/tile/64/000".to_owned(),
        "/tlog/tile/0/000.p/0".to_owned(),
        "/tlog/tile/0/000.p/256".to_owned(),
        "/tlog/tile/x/000".to_owned(),
        "/tlog/tile/entries/0".to_owned(),
    ] {
        let key = path.contains("entries").then_some(auditor.as_str());
        let (status, _, _) = get_bytes(&app, &path, key).await;
        assert_eq!(status, 404, "{path}");
    }

    // The entry bundle: only for those who may read the log.
    let path = format!("/tlog/tile/entries/000.p/{size}");
    let (status, _, _) = get_bytes(&app, &path, None).await;
    assert_eq!(status, 401);
    let (status, _, _) = get_bytes(&app, &path, Some(&lender)).await;
    assert_eq!(status, 403);
    let (status, content_type, body) = get_bytes(&app, &path, Some(&auditor)).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/octet-stream");
    let mut rest = body.as_slice();
    let mut entries = Vec::new();
    while let Some((length, tail)) = rest.split_first_chunk::<2>() {
        let length = u16::from_be_bytes(*length) as usize;
        assert!(tail.len() >= length, "entry {} is cut short", entries.len());
        let (entry, tail) = tail.split_at(length);
        entries.push(entry);
        rest = tail;
    }
    assert!(rest.is_empty(), "no bytes after the last entry");
    assert_eq!(entries.len() as u64, size);
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(leaf_hash(entry), leaves[i], "entry {i}");
        assert_eq!(
            *entry,
            canonical_json(&envelopes[i]).unwrap().as_bytes(),
            "entry {i}"
        );
    }
    let (status, _, _) = get_bytes(&app, "/tlog/tile/entries/001.p/1", Some(&auditor)).await;
    assert_eq!(status, 404);
}

pub async fn evidence_waits_for_a_checkpoint_then_proves_the_verification<F, Fut>(open: F)
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let world = world(|_| open(idle())).await;
    let app = &world.app;
    let (issued, disclosures) = world.issue(&TestKey::ed25519(1), "key-1", now() - 600, 3);
    let nonce = fresh_nonce();
    let answer = world
        .verify(&world.present(&issued, &disclosures, &nonce), &nonce)
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    let id = answer.body["verification_id"].as_str().unwrap().to_owned();
    let position = answer.body["position"].as_u64().unwrap();
    let path = format!("/v1/verifications/{id}/evidence");

    // No checkpoint is signed yet: the evidence is not ready.
    let auditor = register_auditor(app).await;
    let none = app.get("/v1/log/checkpoints/latest", Some(&auditor)).await;
    assert_eq!(none.status, 404, "{}", none.text);
    assert_eq!(get_bytes(app, "/tlog/checkpoint", None).await.0, 404);
    let early = app.get(&path, Some(&world.lender_key)).await;
    assert_problem(&early, 409, "CONFLICT", "before a checkpoint");
    assert_eq!(early.headers["retry-after"], "3600");

    // The API's own checkpointer signs, as its background task would.
    let mut signer = proofline_commands::checkpoints::Checkpointer::new(
        1,
        1,
        app.state.settings.log_origin.clone(),
    );
    let signed = signer
        .tick(
            app.store.as_ref(),
            &app.state.service_key,
            Timestamp::from_datetime(chrono::Utc::now()),
        )
        .await
        .unwrap()
        .expect("a checkpoint is signed");
    assert!(signed >= position);

    let evidence = app.get(&path, Some(&world.lender_key)).await;
    assert_eq!(evidence.status, 200, "{}", evidence.text);
    let body = &evidence.body;
    let envelope = &body["envelope"];
    let stream = VerificationId::from_uuid(id.parse().unwrap()).stream_id();
    assert_eq!(envelope["stream_id"], stream.to_string());
    assert_eq!(envelope["position"], position);
    assert_eq!(envelope["type"], "PresentationVerified");
    let logged = envelopes(app, &auditor, position).await;
    assert_eq!(
        *envelope,
        logged[position as usize - 1],
        "as /v1/events has it"
    );
    let checkpoint = open_note(app, body["checkpoint"]["note"].as_str().unwrap()).await;
    assert_eq!(checkpoint.size, signed);
    let inclusion = &body["inclusion"];
    assert_eq!(inclusion["leaf_index"], position - 1);
    assert_eq!(inclusion["tree_size"], checkpoint.size);
    verify_inclusion(
        position - 1,
        checkpoint.size,
        &leaf_of(envelope),
        &hashes(&inclusion["hashes"]),
        &checkpoint.root,
    )
    .expect("the verification is in the signed tree");
    let keys = app.get("/v1/log/public-key", None).await;
    let receipt = open_receipt(body["receipt"].as_str().unwrap(), &keys.body);
    assert_eq!(receipt["verification_id"], id.as_str());
    assert_eq!(receipt["position"], position);
    assert_eq!(receipt["verified"], true);

    // Another lender does not learn it exists; auditors and the operator
    // read the same proof.
    let (_, other) = app.register_lender(&email()).await;
    let foreign = app.get(&path, Some(&other)).await;
    assert_problem(&foreign, 404, "NOT_FOUND", "another lender");
    for key in [&auditor, &app.operator_key] {
        let read = app.get(&path, Some(key)).await;
        assert_eq!(read.status, 200, "{}", read.text);
        assert_eq!(read.body["envelope"], body["envelope"]);
        assert_eq!(read.body["checkpoint"], body["checkpoint"]);
        assert_eq!(read.body["inclusion"], body["inclusion"]);
    }
    let unknown = format!("/v1/verifications/{}/evidence", uuid::Uuid::now_v7());
    let missing = app.get(&unknown, Some(&auditor)).await;
    assert_problem(&missing, 404, "NOT_FOUND", "an unknown verification");
    assert_eq!(app.get(&path, None).await.status, 401);
}
