//! Witnesses: the service submits each checkpoint to a C2SP tlog-witness,
//! here one written from the spec (c2sp.org/tlog-witness, tlog-cosignature,
//! signed-note; RFC 9162 section 2.1.4.2 for the proof) and served over
//! HTTPS with a CA made in the test. Its cosignatures are recorded and
//! served with the note; a witness that is down holds nothing up; after a
//! restart the service learns the witness's size from its 409.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey, Verifier as _, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{PATIENCE, Running, proofline};

const ORIGIN: &str = "test.example/proofline";
const NAME: &str = "witness.example/w1";

/// The first four bytes of SHA-256(name || 0x0A || type || key).
fn key_id(name: &str, kind: u8, key: &VerifyingKey) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', kind])
        .chain_update(key.as_bytes())
        .finalize();
    digest[..4].try_into().unwrap()
}

fn vkey(name: &str, kind: u8, key: &VerifyingKey) -> String {
    let id = key_id(name, kind, key);
    let typed = [&[kind][..], key.as_bytes()].concat();
    format!("{name}+{}+{}", hex::encode(id), STANDARD.encode(typed))
}

fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    Sha256::new()
        .chain_update([1])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// RFC 9162 section 2.1.4.2, step by step.
fn consistent(first: u64, second: u64, old: &[u8; 32], new: &[u8; 32], proof: &[[u8; 32]]) -> bool {
    if first == second {
        return proof.is_empty() && old == new;
    }
    if first == 0 || first > second || proof.is_empty() {
        return false;
    }
    let mut path = proof.to_vec();
    if first.is_power_of_two() {
        path.insert(0, *old);
    }
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node(c, &fr);
            sr = node(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && fr == *old && sr == *new
}

struct Witness {
    key: SigningKey,
    log_key: VerifyingKey,
    /// The latest checkpoint cosigned: size and root.
    latest: Mutex<(u64, [u8; 32])>,
    /// Every answer's status, and the consistency proofs it verified.
    answers: Mutex<Vec<u16>>,
    proofs_checked: Mutex<u64>,
}

fn answer(status: StatusCode, content_type: &str, body: String) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, content_type.to_owned())],
        body,
    )
        .into_response()
}

/// `POST <prefix>/add-checkpoint`, as c2sp.org/tlog-witness says.
async fn add_checkpoint(State(w): State<Arc<Witness>>, body: String) -> Response {
    let response = judge(&w, &body);
    w.answers.lock().unwrap().push(response.status().as_u16());
    response
}

fn judge(w: &Witness, body: &str) -> Response {
    let bad = |why: &str| answer(StatusCode::BAD_REQUEST, "text/plain", why.to_owned());
    let Some((head, note)) = body.split_once("\n\n") else {
        return bad("no empty line");
    };
    let mut lines = head.lines();
    let Some(old) = lines
        .next()
        .and_then(|l| l.strip_prefix("old "))
        .filter(|n| *n == "0" || !n.starts_with('0'))
        .and_then(|n| n.parse::<u64>().ok())
    else {
        return bad("no old size line");
    };
    let proof: Option<Vec<[u8; 32]>> = lines
        .map(|l| STANDARD.decode(l).ok()?.try_into().ok())
        .collect();
    let Some(proof) = proof.filter(|p| p.len() <= 63) else {
        return bad("a proof line is not a hash");
    };
    let Some(end) = note.find("\n\n") else {
        return bad("the checkpoint is not a note");
    };
    let (text, signatures) = (&note[..=end], &note[end + 2..]);
    let mut body_lines = text.lines();
    let (Some(origin), Some(size), Some(root)) =
        (body_lines.next(), body_lines.next(), body_lines.next())
    else {
        return bad("not a checkpoint");
    };
    let (Ok(size), Some(root)) = (
        size.parse::<u64>(),
        STANDARD
            .decode(root)
            .ok()
            .and_then(|r| <[u8; 32]>::try_from(r).ok()),
    ) else {
        return bad("not a checkpoint");
    };
    if origin != ORIGIN {
        return answer(StatusCode::NOT_FOUND, "text/plain", "unknown log".into());
    }
    let log_id = key_id(ORIGIN, 0x01, &w.log_key);
    let signed = signatures.lines().any(|line| {
        let Some((name, signature)) = line
            .strip_prefix("— ")
            .and_then(|rest| rest.rsplit_once(' '))
        else {
            return false;
        };
        let Ok(bytes) = STANDARD.decode(signature) else {
            return false;
        };
        name == ORIGIN
            && bytes.len() == 68
            && bytes[..4] == log_id
            && ed25519_dalek::Signature::from_slice(&bytes[4..])
                .is_ok_and(|s| w.log_key.verify(text.as_bytes(), &s).is_ok())
    });
    if !signed {
        return answer(StatusCode::FORBIDDEN, "text/plain", "not signed".into());
    }
    if old > size {
        return bad("old is past the checkpoint");
    }
    let mut latest = w.latest.lock().unwrap();
    if old != latest.0 {
        return answer(
            StatusCode::CONFLICT,
            "text/x.tlog.size",
            format!("{}\n", latest.0),
        );
    }
    if old == size && root != latest.1 && old != 0 {
        return answer(StatusCode::CONFLICT, "text/plain", "another root".into());
    }
    let proven = if old == 0 {
        proof.is_empty()
    } else {
        consistent(old, size, &latest.1, &root, &proof)
    };
    if !proven {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            "text/plain",
            "inconsistent".into(),
        );
    }
    if old > 0 && old < size {
        *w.proofs_checked.lock().unwrap() += 1;
    }
    *latest = (size, root);
    let time = chrono::Utc::now().timestamp() as u64;
    let message = format!("cosignature/v1\ntime {time}\n{text}");
    let signature = w.key.sign(message.as_bytes());
    let id = key_id(NAME, 0x04, &w.key.verifying_key());
    let bytes = [&id[..], &time.to_be_bytes(), &signature.to_bytes()].concat();
    answer(
        StatusCode::OK,
        "text/plain",
        format!("— {NAME} {}\n", STANDARD.encode(bytes)),
    )
}

/// The witness's cosignature line in `note`, checked with its key.
fn cosigned_by(w: &Witness, note: &str) -> bool {
    let end = note.find("\n\n").unwrap();
    let text = &note[..=end];
    let id = key_id(NAME, 0x04, &w.key.verifying_key());
    note[end + 2..].lines().any(|line| {
        let Some(signature) = line.strip_prefix(&format!("— {NAME} ")) else {
            return false;
        };
        let bytes = STANDARD.decode(signature).unwrap();
        let time = u64::from_be_bytes(bytes[4..12].try_into().unwrap());
        let message = format!("cosignature/v1\ntime {time}\n{text}");
        bytes[..4] == id
            && w.key
                .verifying_key()
                .verify(
                    message.as_bytes(),
                    &ed25519_dalek::Signature::from_slice(&bytes[12..]).unwrap(),
                )
                .is_ok()
    })
}

fn size_of(note: &str) -> u64 {
    note.lines().nth(1).unwrap().parse().unwrap()
}

/// Waits for `/tlog/checkpoint` of more than `above` events cosigned by
/// the witness.
async fn cosigned_note(base: &str, w: &Witness, above: u64) -> String {
    proofline_projections::webhooks::client::install_crypto_provider();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = reqwest::get(format!("{base}/tlog/checkpoint"))
            .await
            .unwrap();
        if answer.status() == 200 {
            let note = answer.text().await.unwrap();
            if size_of(&note) > above && cosigned_by(w, &note) {
                return note;
            }
        }
        assert!(Instant::now() < deadline, "no cosigned checkpoint");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn register_lender(base: &str, operator: &str, n: u32) {
    let answer = reqwest::Client::new()
        .post(format!("{base}/v1/lenders"))
        .bearer_auth(operator)
        .json(&json!({"name": format!("Lender {n}"), "contact_email": format!("w{n}@example.com")}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_cosigns_each_checkpoint_and_one_that_is_down_holds_nothing_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let key_file = data.join("signing.key");
    let output = proofline(&data)
        .args(["keygen", "--out"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(output.status.success());
    let pem = std::fs::read_to_string(&key_file).unwrap();
    let log_key = <SigningKey as ed25519_dalek::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&pem)
        .unwrap()
        .verifying_key();

    let witness = Arc::new(Witness {
        key: SigningKey::from_bytes(&[21; 32]),
        log_key,
        latest: Mutex::new((0, [0; 32])),
        answers: Mutex::new(Vec::new()),
        proofs_checked: Mutex::new(0),
    });
    let ca = proofline::https::LocalCa::new("Witness Test CA").unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let router = axum::Router::new()
        .route("/w1/add-checkpoint", axum::routing::post(add_checkpoint))
        .with_state(witness.clone());
    let (address, _server) =
        proofline::https::start(&ca, "127.0.0.1:0".parse().unwrap(), &["localhost"], router)
            .await
            .unwrap();
    // A second witness that is down: nothing listens on its port.
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_port = down.local_addr().unwrap().port();
    drop(down);
    let other = SigningKey::from_bytes(&[22; 32]).verifying_key();
    let witnesses = format!(
        "https://localhost:{port}/w1 {one}, https://localhost:{down_port}/ {two}",
        port = address.port(),
        one = vkey(NAME, 0x04, &witness.key.verifying_key()),
        two = vkey("witness.example/w2", 0x04, &other),
    );
    let serve = || {
        let mut command = proofline(&data);
        command
            .env("PROOFLINE_WITNESSES", &witnesses)
            .env("PROOFLINE_FETCH_CA_FILE", &ca_file)
            .env("PROOFLINE_FETCH_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
            .env("PROOFLINE_CHECKPOINT_EVERY_SECONDS", "1")
            .env("PROOFLINE_LOG_ORIGIN", ORIGIN)
            .arg("serve");
        Running::start(command)
    };

    // The first checkpoint is cosigned from nothing (old 0); the next ones
    // with a proof from the size cosigned before, which the witness checks.
    let server = serve();
    let operator = std::fs::read_to_string(data.join("operator.key")).unwrap();
    let operator = operator.trim();
    let first = cosigned_note(&server.base, &witness, 0).await;
    register_lender(&server.base, operator, 1).await;
    let second = cosigned_note(&server.base, &witness, size_of(&first)).await;
    assert!(*witness.proofs_checked.lock().unwrap() >= 1);
    assert_eq!(witness.latest.lock().unwrap().0, size_of(&second));
    assert!(
        !witness.answers.lock().unwrap().contains(&409),
        "the service knew the size it had submitted"
    );

    // The cosignatures are in the log, with the witness's key.
    let events: Value = reqwest::Client::new()
        .get(format!("{}/v1/events?after=0&limit=1000", server.base))
        .bearer_auth(operator)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cosigned: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "LogCheckpointCosigned")
        .collect();
    assert!(cosigned.len() >= 2, "{cosigned:?}");
    assert_eq!(cosigned[0]["stream_id"], "log-witnesses");
    assert_eq!(
        cosigned[0]["data"]["witness"],
        vkey(NAME, 0x04, &witness.key.verifying_key())
    );
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("witness.example/w2") && log.contains("cannot reach it"),
        "the witness that is down is named: {log}"
    );

    // After a restart the service does not know what the witness cosigned:
    // the witness's 409 tells it, and the next submission is proven from
    // there.
    let server = serve();
    register_lender(&server.base, operator, 2).await;
    let third = cosigned_note(&server.base, &witness, size_of(&second)).await;
    assert!(witness.answers.lock().unwrap().contains(&409));
    assert_eq!(witness.latest.lock().unwrap().0, size_of(&third));
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");

    // The log with its cosignature events verifies offline.
    let exported = dir.path().join("log.jsonl");
    let output = proofline(&data)
        .args(["log", "export", "--out"])
        .arg(&exported)
        .output()
        .unwrap();
    assert!(output.status.success());
    let public_key = proofline_domain::jose::b64url_encode(log_key.as_bytes());
    let output = proofline(&data)
        .args(["log", "verify"])
        .arg(&exported)
        .args(["--public-key", &public_key])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("checkpoint notes match it"), "{text}");
}
