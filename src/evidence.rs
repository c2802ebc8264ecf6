//! `proofline log verify-evidence` and `proofline log consistency`: what an
//! auditor or a regulator checks with a few kilobytes instead of the whole
//! log (docs/log-format.md, "Evidence").

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;
use proofline_commands::verifications::{RECEIPT_TYP, ReceiptClaims};
use proofline_domain::jose::{CompactJws, PublicKey};
use proofline_domain::log::Envelope;
use proofline_domain::merkle::{Hash, leaf_hash, verify_consistency, verify_inclusion};
use proofline_domain::note::{self, KeyType, Verifier};
use proofline_domain::verification_record::VerificationEvent;
use serde::Deserialize;

/// Why evidence does not hold, each named so a script can tell them apart.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("not an evidence document: {0}")]
    Malformed(String),
    #[error("the envelope was changed: it does not hash to its own hash")]
    EnvelopeChanged,
    #[error("the checkpoint note does not verify with the given key: {0}")]
    BadNote(String),
    #[error("the proof is for another tree: {0}")]
    OtherTree(String),
    #[error("the inclusion proof does not lead from the envelope to the signed root: {0}")]
    NotIncluded(String),
    #[error("the receipt does not verify with the given key: {0}")]
    BadReceipt(String),
    #[error("the receipt is not this verification's: {0}")]
    ReceiptMismatch(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    envelope: Envelope,
    receipt: String,
    checkpoint: CheckpointPart,
    inclusion: InclusionPart,
}

#[derive(Debug, Deserialize)]
struct CheckpointPart {
    note: String,
}

#[derive(Debug, Deserialize)]
struct InclusionPart {
    leaf_index: u64,
    tree_size: u64,
    hashes: Vec<String>,
}

/// What a checked evidence document proves.
#[derive(Debug)]
pub struct Proven {
    pub origin: String,
    pub position: u64,
    pub tree_size: u64,
    pub verification_id: String,
    pub verified: bool,
}

fn hash_of(text: &str) -> Option<Hash> {
    STANDARD.decode(text).ok()?.try_into().ok()
}

/// The log's note verifier for `key`: named by `vkey` when the key was
/// given in that form, else by the note's own origin line.
pub fn log_verifier(key: &LogKey, note_text: &str) -> Result<Verifier, String> {
    match key {
        LogKey::Vkey(verifier) => Ok(verifier.clone()),
        LogKey::Raw(key) => {
            let origin = note_text.split('\n').next().unwrap_or_default();
            Verifier::new(origin, KeyType::Ed25519, *key).map_err(|e| e.to_string())
        }
    }
}

/// A log key as given on the command line: base64url raw (as
/// `/v1/log/public-key` shows `public_key`), or the note verifier key
/// (`note_vkey`), which also names the origin.
#[derive(Debug, Clone)]
pub enum LogKey {
    Raw(VerifyingKey),
    Vkey(Verifier),
}

impl LogKey {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        if text.contains('+') {
            let verifier = Verifier::parse(text)
                .map_err(|e| anyhow::anyhow!("--public-key: not a note verifier key: {e}"))?;
            anyhow::ensure!(
                verifier.kind == KeyType::Ed25519,
                "--public-key: a log's key, not a witness's"
            );
            return Ok(LogKey::Vkey(verifier));
        }
        proofline_domain::checkpoint::public_key(text)
            .map(LogKey::Raw)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--public-key: an Ed25519 public key in base64url (32 bytes), or the note_vkey"
                )
            })
    }

    pub fn key(&self) -> VerifyingKey {
        match self {
            LogKey::Raw(key) => *key,
            LogKey::Vkey(verifier) => verifier.key,
        }
    }
}

/// Checks an evidence document offline: the envelope hashes to its hash
/// and to the leaf, the proof reaches the root the note signs, the note and
/// the receipt verify with `key`, and the receipt's fields are the
/// envelope's.
pub fn verify(text: &str, key: &LogKey) -> Result<Proven, EvidenceError> {
    let doc: Document =
        serde_json::from_str(text).map_err(|e| EvidenceError::Malformed(e.to_string()))?;
    let envelope = &doc.envelope;
    if envelope.compute_hash() != envelope.hash {
        return Err(EvidenceError::EnvelopeChanged);
    }
    let verifier = log_verifier(key, &doc.checkpoint.note).map_err(EvidenceError::BadNote)?;
    let (signed, _) = note::Checkpoint::open(&doc.checkpoint.note, &verifier, &[])
        .map_err(|e| EvidenceError::BadNote(e.to_string()))?;
    let inclusion = &doc.inclusion;
    if inclusion.tree_size != signed.size {
        return Err(EvidenceError::OtherTree(format!(
            "the proof is for a tree of {} events, the note signs {}",
            inclusion.tree_size, signed.size
        )));
    }
    if inclusion.leaf_index + 1 != envelope.position {
        return Err(EvidenceError::OtherTree(format!(
            "the proof is for leaf {}, the envelope is at position {}",
            inclusion.leaf_index, envelope.position
        )));
    }
    let hashes = inclusion
        .hashes
        .iter()
        .map(|h| hash_of(h))
        .collect::<Option<Vec<Hash>>>()
        .ok_or_else(|| EvidenceError::Malformed("a proof hash is not base64 of 32 bytes".into()))?;
    let leaf = leaf_hash(&envelope.leaf_bytes());
    verify_inclusion(
        inclusion.leaf_index,
        signed.size,
        &leaf,
        &hashes,
        &signed.root,
    )
    .map_err(|e| EvidenceError::NotIncluded(e.to_string()))?;
    let record = envelope
        .decode::<VerificationEvent>()
        .map_err(|e| {
            EvidenceError::ReceiptMismatch(format!("the envelope is no verification: {e}"))
        })?
        .record()
        .clone();
    let receipt =
        CompactJws::parse(&doc.receipt).map_err(|e| EvidenceError::BadReceipt(e.to_string()))?;
    if receipt.typ() != Some(RECEIPT_TYP) {
        return Err(EvidenceError::BadReceipt(format!(
            "its typ is not {RECEIPT_TYP}"
        )));
    }
    receipt
        .verify(&PublicKey::Ed25519(key.key()))
        .map_err(|e| EvidenceError::BadReceipt(e.to_string()))?;
    let claims = ReceiptClaims::of(&record, envelope.position);
    let expected = claims.payload();
    if serde_json::Value::Object(receipt.payload.clone()) != expected {
        let differs = expected
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(name, value)| receipt.payload.get(*name) != Some(value))
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(EvidenceError::ReceiptMismatch(format!(
            "its {differs} differ from the envelope's"
        )));
    }
    Ok(Proven {
        origin: signed.origin,
        position: envelope.position,
        tree_size: signed.size,
        verification_id: claims.verification_id.to_string(),
        verified: claims.verified,
    })
}

/// Why a log is not consistent with a checkpoint an auditor kept.
#[derive(Debug, thiserror::Error)]
pub enum ConsistencyError {
    #[error("the kept checkpoint does not verify with the log's key: {0}")]
    OldNote(String),
    #[error("the log's latest checkpoint does not verify with the log's key: {0}")]
    NewNote(String),
    #[error("the log is now smaller ({new}) than the kept checkpoint ({old}): it was rewritten")]
    Shrunk { old: u64, new: u64 },
    #[error("the log is not the one of the kept checkpoint (from {old} to {new}): {why}")]
    Inconsistent { old: u64, new: u64, why: String },
    #[error("the origins differ: kept {old:?}, now {new:?}")]
    Origin { old: String, new: String },
}

/// Opens a checkpoint note with the log's key.
pub fn open_note(text: &str, key: &LogKey) -> Result<note::Checkpoint, String> {
    let verifier = log_verifier(key, text)?;
    note::Checkpoint::open(text, &verifier, &[])
        .map(|(checkpoint, _)| checkpoint)
        .map_err(|e| e.to_string())
}

/// Checks that the tree of `latest` grew from that of `kept` by `proof`.
pub fn check_growth(
    kept: &note::Checkpoint,
    latest: &note::Checkpoint,
    proof: &[Hash],
) -> Result<(), ConsistencyError> {
    if kept.origin != latest.origin {
        return Err(ConsistencyError::Origin {
            old: kept.origin.clone(),
            new: latest.origin.clone(),
        });
    }
    if latest.size < kept.size {
        return Err(ConsistencyError::Shrunk {
            old: kept.size,
            new: latest.size,
        });
    }
    verify_consistency(kept.size, latest.size, &kept.root, &latest.root, proof).map_err(|e| {
        ConsistencyError::Inconsistent {
            old: kept.size,
            new: latest.size,
            why: e.to_string(),
        }
    })
}

/// Decodes base64 proof hashes from a server's answer.
pub fn decode_hashes(hashes: &[String]) -> anyhow::Result<Vec<Hash>> {
    hashes
        .iter()
        .map(|h| {
            hash_of(h).ok_or_else(|| anyhow::anyhow!("a proof hash is not base64 of 32 bytes"))
        })
        .collect()
}

/// `proofline log consistency`: the server's latest checkpoint, and the
/// proof that its tree grew from the one of the kept note; the two sizes.
/// Without `key`, the server's published keys are tried against the kept
/// note: the kept note, not the server, says which key is the log's.
pub async fn consistency_with_server(
    base: &str,
    api_key: &str,
    kept_text: &str,
    key: Option<LogKey>,
) -> anyhow::Result<(u64, u64)> {
    use anyhow::Context;
    let base = base.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let get = async |path: String, auth: bool| -> anyhow::Result<reqwest::Response> {
        let mut request = client.get(format!("{base}{path}"));
        if auth {
            request = request.bearer_auth(api_key);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("GET {base}{path}"))?;
        let status = response.status();
        anyhow::ensure!(
            status.is_success(),
            "GET {path}: the server answered {status}: {}",
            response.text().await.unwrap_or_default()
        );
        Ok(response)
    };
    let key = match key {
        Some(key) => key,
        None => {
            #[derive(Deserialize)]
            struct Keys {
                public_key: String,
                previous: Vec<Previous>,
            }
            #[derive(Deserialize)]
            struct Previous {
                public_key: String,
            }
            let keys: Keys = get("/v1/log/public-key".into(), false)
                .await?
                .json()
                .await?;
            std::iter::once(keys.public_key)
                .chain(keys.previous.into_iter().map(|p| p.public_key))
                .filter_map(|k| proofline_domain::checkpoint::public_key(&k).map(LogKey::Raw))
                .find(|k| open_note(kept_text, k).is_ok())
                .ok_or(ConsistencyError::OldNote(
                    "none of the keys the server publishes signed it".into(),
                ))?
        }
    };
    let kept = open_note(kept_text, &key).map_err(ConsistencyError::OldNote)?;
    let latest_text = get("/tlog/checkpoint".into(), false).await?.text().await?;
    let latest = open_note(&latest_text, &key).map_err(ConsistencyError::NewNote)?;
    let proof = if latest.size > kept.size {
        #[derive(Deserialize)]
        struct Proof {
            hashes: Vec<String>,
        }
        let path = format!(
            "/v1/log/proofs/consistency?from={}&to={}",
            kept.size, latest.size
        );
        let proof: Proof = get(path, true).await?.json().await?;
        decode_hashes(&proof.hashes)?
    } else {
        Vec::new()
    };
    check_growth(&kept, &latest, &proof)?;
    Ok((kept.size, latest.size))
}
