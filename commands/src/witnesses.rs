//! Witnesses (C2SP `tlog-witness`): each checkpoint the service signs is
//! submitted to every configured witness (`PROOFLINE_WITNESSES`) with a
//! consistency proof from the tree size that witness last cosigned. Each
//! `cosignature/v1` line that verifies with the witness's key is recorded
//! in the log (`LogCheckpointCosigned`, stream `log-witnesses`) and served
//! with the note from then on ([`cosigned_note`]).
//!
//! A witness that is down, slow or refusing costs a warning, never a
//! checkpoint: submissions run beside the signer, after the checkpoint is
//! recorded, each bounded by the outbound guard's timeouts, and a witness
//! is sent the newest checkpoint only (one it missed is not sent late).
//! The connection goes through the one outbound guard ([`crate::outbound`]):
//! the same address rules and TLS roots as every fetch.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proofline_domain::checkpoint::{WitnessEvent, witness_stream};
use proofline_domain::log::Metadata;
use proofline_domain::note::{self, KeyType, Verifier};

use crate::fetch::FetchSettings;
use crate::handler::CommandError;
use crate::store::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use crate::tree::{self, ProofError};

/// The largest answer read from a witness: a few signature lines.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// How many recent cosignatures are looked at for the served note.
const RECENT: u64 = 64;

/// A witness as configured: its submission prefix and its key.
#[derive(Debug, Clone, PartialEq)]
pub struct Witness {
    /// `<submission prefix>`; `add-checkpoint` is posted under it.
    pub url: url::Url,
    /// Its `cosignature/v1` verifier key.
    pub verifier: Verifier,
}

impl Witness {
    /// One `PROOFLINE_WITNESSES` entry: the submission prefix URL, white
    /// space, the witness's verifier key.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let mut parts = entry.split_whitespace();
        let (Some(url), Some(vkey), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "{entry:?}: each witness is its URL, a space and its verifier key"
            ));
        };
        let url = url::Url::parse(url).map_err(|e| format!("{url:?}: not a URL: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
            return Err(format!("{url}: a witness is reached over https"));
        }
        let verifier =
            Verifier::parse(vkey).map_err(|e| format!("{vkey:?}: not a verifier key: {e}"))?;
        if verifier.kind != KeyType::Cosignature {
            return Err(format!(
                "{vkey:?}: a witness's key is a cosignature/v1 key (type 0x04)"
            ));
        }
        Ok(Self { url, verifier })
    }

    /// A comma-separated list of entries (empty: no witnesses).
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(Self::parse)
            .collect()
    }

    fn add_checkpoint(&self) -> url::Url {
        let mut url = self.url.clone();
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        url.join("add-checkpoint").unwrap_or(url)
    }
}

/// Why a witness did not cosign.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error("cannot reach it: {0}")]
    Unreachable(String),
    #[error("it does not know this log's origin (404)")]
    UnknownLog,
    #[error("it does not trust this log's key (403)")]
    Forbidden,
    #[error("it found the consistency proof invalid (422)")]
    BadProof,
    #[error("it holds another tree: {0}")]
    Conflict(String),
    #[error("it answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("its answer holds no cosignature that verifies with its key: {0}")]
    BadCosignature(String),
    #[error("the consistency proof: {0}")]
    Proof(#[from] ProofError),
    #[error("recording the cosignature: {0}")]
    Record(#[from] CommandError),
}

/// The witnesses, and the tree size each cosigned last, as far as known
/// (0 at the start: a witness's 409 tells).
pub struct Witnessing {
    client: reqwest::Client,
    witnesses: Vec<(Witness, u64)>,
}

impl Witnessing {
    pub fn new(witnesses: Vec<Witness>, fetch: &FetchSettings) -> Result<Self, String> {
        let https = witnesses.iter().all(|w| w.url.scheme() == "https");
        let client = fetch
            .guard
            .client(
                https,
                concat!("Proofline/", env!("CARGO_PKG_VERSION"), " (witness client)"),
            )?
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            witnesses: witnesses.into_iter().map(|w| (w, 0)).collect(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.witnesses.is_empty()
    }

    /// Submits the checkpoint `note` to every witness at once and records
    /// each cosignature; what each witness did, in configuration order.
    pub async fn submit(
        &mut self,
        store: &dyn EventStore,
        note: &str,
    ) -> Vec<(String, Result<(), WitnessError>)> {
        let Some((text, checkpoint)) = checkpoint_of(note) else {
            return Vec::new();
        };
        let client = &self.client;
        let runs = self.witnesses.iter_mut().map(|(witness, cosigned)| {
            let (text, checkpoint) = (&text, &checkpoint);
            async move {
                let outcome = async {
                    let line = submit_one(client, store, witness, cosigned, note, text, checkpoint)
                        .await?;
                    record(store, witness, checkpoint, line).await
                }
                .await;
                let result = match &outcome {
                    Ok(()) => "cosigned",
                    Err(WitnessError::Unreachable(_)) => "unreachable",
                    Err(_) => "refused",
                };
                metrics::counter!("proofline_witness_submissions_total", "outcome" => result)
                    .increment(1);
                (witness.verifier.name.clone(), outcome)
            }
        });
        futures::future::join_all(runs).await
    }
}

/// The note's signed text and the checkpoint it names.
fn checkpoint_of(note: &str) -> Option<(String, note::Checkpoint)> {
    let end = note.find("\n\n")?;
    let text = &note[..=end];
    Some((text.to_owned(), note::Checkpoint::parse(text).ok()?))
}

/// One `add-checkpoint`, again with the size a 409 names (at most twice):
/// the witness's verified cosignature line.
async fn submit_one(
    client: &reqwest::Client,
    store: &dyn EventStore,
    witness: &Witness,
    cosigned: &mut u64,
    note: &str,
    text: &str,
    checkpoint: &note::Checkpoint,
) -> Result<String, WitnessError> {
    let mut retried = false;
    loop {
        let old = *cosigned;
        if old > checkpoint.size {
            return Err(WitnessError::Conflict(format!(
                "it cosigned {old} events, more than this checkpoint's {}",
                checkpoint.size
            )));
        }
        let proof = if old == 0 || old == checkpoint.size {
            Vec::new()
        } else {
            tree::consistency(store, old, checkpoint.size).await?
        };
        let mut body = format!("old {old}\n");
        for hash in &proof {
            body.push_str(&STANDARD.encode(hash));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(note);
        let response = client
            .post(witness.add_checkpoint())
            .body(body)
            .send()
            .await
            .map_err(|e| WitnessError::Unreachable(crate::report::root_cause(&e).to_string()))?;
        let status = response.status().as_u16();
        let size_answer = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/x.tlog.size"));
        let answer = read_limited(response).await?;
        match status {
            200 => {
                let cosignature = answer
                    .split_inclusive('\n')
                    .filter(|line| line.starts_with("— "))
                    .find(|line| {
                        note::verify_cosignature(
                            line,
                            text,
                            &witness.verifier.name,
                            &witness.verifier.key,
                        )
                        .is_ok()
                    });
                let line = cosignature.ok_or_else(|| {
                    WitnessError::BadCosignature(answer.chars().take(200).collect())
                })?;
                *cosigned = checkpoint.size;
                return Ok(line.to_owned());
            }
            409 if size_answer && !retried => {
                let size: u64 = answer.trim().parse().map_err(|_| WitnessError::Refused {
                    status,
                    body: answer.chars().take(200).collect(),
                })?;
                if size == old {
                    return Err(WitnessError::Conflict(format!(
                        "it cosigned another root for {size} events"
                    )));
                }
                *cosigned = size;
                retried = true;
            }
            409 => {
                return Err(WitnessError::Conflict(
                    answer.trim().chars().take(200).collect(),
                ));
            }
            404 => return Err(WitnessError::UnknownLog),
            403 => return Err(WitnessError::Forbidden),
            422 => return Err(WitnessError::BadProof),
            _ => {
                return Err(WitnessError::Refused {
                    status,
                    body: answer.trim().chars().take(200).collect(),
                });
            }
        }
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<String, WitnessError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| WitnessError::Unreachable(crate::report::root_cause(&e).to_string()))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(WitnessError::Refused {
                status: 200,
                body: format!("an answer over {MAX_ANSWER_BYTES} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

async fn record(
    store: &dyn EventStore,
    witness: &Witness,
    checkpoint: &note::Checkpoint,
    cosignature: String,
) -> Result<(), WitnessError> {
    let event = WitnessEvent::LogCheckpointCosigned {
        tree_size: checkpoint.size,
        root_hash: STANDARD.encode(checkpoint.root),
        witness: witness.verifier.to_string(),
        cosignature,
    };
    let mut request = AppendRequest::new(
        witness_stream(),
        ExpectedVersion::Any,
        vec![NewEvent::of(&event)],
    );
    request.metadata = Metadata {
        actor: Some("system".into()),
        ..Metadata::default()
    };
    store.append(request).await.map_err(CommandError::from)?;
    Ok(())
}

/// `note` with the cosignatures recorded for its tree (size and root), as
/// `/tlog/checkpoint` serves it. They were verified when recorded.
pub async fn cosigned_note(store: &dyn EventStore, note: &str) -> Result<String, CommandError> {
    let Some((_, checkpoint)) = checkpoint_of(note) else {
        return Ok(note.to_owned());
    };
    let Some(last) = store.last_of_stream(&witness_stream()).await? else {
        return Ok(note.to_owned());
    };
    let after = last.stream_version.saturating_sub(RECENT);
    let root = STANDARD.encode(checkpoint.root);
    let recent = store
        .read_stream(&witness_stream(), after, RECENT as usize)
        .await?;
    let mut lines = Vec::new();
    for envelope in &recent {
        let WitnessEvent::LogCheckpointCosigned {
            tree_size,
            root_hash,
            cosignature,
            ..
        } = envelope.decode::<WitnessEvent>()?;
        if tree_size == checkpoint.size && root_hash == root {
            lines.push(cosignature);
        }
    }
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    Ok(note::append_signatures(note, &lines).unwrap_or_else(|_| note.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vkey(kind: KeyType) -> String {
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key();
        Verifier::new("witness.example/w1", kind, key)
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_witness_is_a_url_and_a_cosignature_key() {
        let key = vkey(KeyType::Cosignature);
        let list = Witness::parse_list(&format!(
            " https://w1.example/witness {key} ,, https://w2.example {key}"
        ))
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(
            list[0].add_checkpoint().as_str(),
            "https://w1.example/witness/add-checkpoint"
        );
        assert_eq!(
            list[1].add_checkpoint().as_str(),
            "https://w2.example/add-checkpoint"
        );
        assert_eq!(list[0].verifier.name, "witness.example/w1");
        assert!(Witness::parse_list("").unwrap().is_empty());
        for (bad, why) in [
            (
                format!("https://w1.example {}", vkey(KeyType::Ed25519)),
                "type 0x04",
            ),
            (format!("ftp://w1.example {key}"), "over https"),
            (format!("w1.example {key}"), "not a URL"),
            (
                "https://w1.example".to_owned(),
                "a space and its verifier key",
            ),
            (format!("https://w1.example {key} extra"), "a space"),
            (
                "https://w1.example w1+00+AA".to_owned(),
                "not a verifier key",
            ),
        ] {
            let error = Witness::parse_list(&bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn the_signed_text_is_the_note_up_to_its_blank_line() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let checkpoint = note::Checkpoint {
            origin: "example.com/log".into(),
            size: 7,
            root: [5; 32],
            extensions: Vec::new(),
        };
        let signed = checkpoint.sign(&key).unwrap();
        let (text, parsed) = checkpoint_of(&signed).unwrap();
        assert_eq!(text, checkpoint.body());
        assert_eq!(parsed, checkpoint);
        assert!(checkpoint_of("not a note").is_none());
    }
}
