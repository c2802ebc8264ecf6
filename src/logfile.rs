//! `proofline log export` and `proofline log verify`: the log as JSON
//! Lines, one envelope per line exactly as stored, and its offline check.
//!
//! The check needs nothing but the file: it recomputes every hash from the
//! canonical bytes (`proofline_domain::log`), checks that positions are
//! gapless and that each `prev_hash` links, and names the first bad
//! position and what happened there.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;
use proofline_commands::service_keys;
use proofline_commands::store::EventStore;
use proofline_domain::checkpoint::{self, CheckpointEvent};
use proofline_domain::log::{ChainError, ChainVerifier, Envelope, EventHash};
use proofline_domain::merkle::leaf_hash;
use proofline_domain::merkle::tree::Tree;
use serde::Deserialize;

/// What is wrong at the first bad position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The event's contents (or the event it was chained to) differ from
    /// what was hashed, or the line is not an envelope.
    Changed,
    /// The position is absent from the file.
    Missing,
    /// A line that is not part of the chain, or a position repeated.
    Inserted,
    /// The position is in the file, but not where it belongs.
    Reordered,
    /// A checkpoint whose signature does not verify (or names no known key).
    BadSignature,
    /// A checkpoint note whose tree (size or root) is not the tree of the
    /// file's events.
    WrongTree,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Changed => "changed",
            Kind::Missing => "missing",
            Kind::Inserted => "inserted",
            Kind::Reordered => "reordered",
            Kind::BadSignature => "bad signature",
            Kind::WrongTree => "wrong tree",
        })
    }
}

/// The first bad position of a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("position {position}: {kind} (line {line}): {detail}")]
pub struct Finding {
    pub position: u64,
    pub kind: Kind,
    /// 1-based line of the file.
    pub line: usize,
    pub detail: String,
}

/// A file that checks out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub events: u64,
    pub first_position: u64,
    pub last_position: u64,
    pub last_hash: EventHash,
    /// Checkpoints whose signature and hash were checked.
    pub checkpoints: u64,
    /// The newest checked checkpoint's position.
    pub last_checkpoint: Option<u64>,
    /// Checkpoint notes whose signature, tree size and root (recomputed
    /// from the file's events) were checked; only for a file that starts
    /// at position 1.
    pub notes: u64,
    /// The root of the Merkle tree of the file's events, when it starts at
    /// position 1.
    pub root: Option<proofline_domain::merkle::Hash>,
    /// Whether checkpoints were checked with keys the file itself records
    /// (no key was given from outside it): that proves the file is intact,
    /// not who signed it, since a rewritten file can carry its own
    /// `ServiceKeyActivated`.
    pub self_attested: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LogFileError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Bad(#[from] Finding),
    #[error("{0} holds no events")]
    Empty(String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> LogFileError + '_ {
    move |source| LogFileError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A line of a file: its number, and the envelope or why it is none.
type Line = (usize, Result<Envelope, String>);

/// Reads lines as envelopes.
fn envelopes(
    path: &Path,
) -> Result<impl Iterator<Item = Result<Line, std::io::Error>>, LogFileError> {
    let file = File::open(path).map_err(io(path))?;
    Ok(BufReader::new(file)
        .lines()
        .enumerate()
        .filter(|(_, line)| line.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(|(n, line)| {
            line.map(|text| {
                (
                    n + 1,
                    serde_json::from_str::<Envelope>(&text).map_err(|e| e.to_string()),
                )
            })
        }))
}

/// Whether `position` is on a line after `after_line`.
fn appears_later(path: &Path, position: u64, after_line: usize) -> Result<bool, LogFileError> {
    #[derive(Deserialize)]
    struct Position {
        position: u64,
    }
    let file = File::open(path).map_err(io(path))?;
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io(path))?;
        if n + 1 > after_line
            && serde_json::from_str::<Position>(&line).is_ok_and(|p| p.position == position)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Checks a JSON Lines export. A file that starts after position 0 (an
/// export `--after N`) is checked from its first event on, trusting that
/// event's `prev_hash`.
///
/// Checkpoints (`LogCheckpointSigned`) are checked on the way: the
/// signature with the one of `trusted` whose kid the checkpoint names (the
/// keys the server publishes at `/v1/log/public-key`, current and previous,
/// fetched apart from the file); with no trusted key, with the
/// `ServiceKeyActivated` key of the file that has that kid (then the result
/// is only [`Verified::self_attested`]); and the signed hash against the
/// event at the signed position.
pub fn verify_file(path: &Path, trusted: &[VerifyingKey]) -> Result<Verified, LogFileError> {
    let trusted: HashMap<String, VerifyingKey> = trusted
        .iter()
        .map(|key| (checkpoint::kid_of(key), *key))
        .collect();
    let mut lines = envelopes(path)?;
    let mut next = || lines.next().transpose().map_err(io(path));
    let Some(mut current) = next()? else {
        return Err(LogFileError::Empty(path.display().to_string()));
    };
    let mut chain = match &current.1 {
        Ok(first) if first.position > 1 => {
            ChainVerifier::resume(first.position - 1, first.prev_hash)
        }
        _ => ChainVerifier::new(),
    };
    let first_position = chain.next_position();
    let mut events = 0u64;
    let mut hashes: HashMap<u64, EventHash> = HashMap::new();
    let mut keys: HashMap<String, VerifyingKey> = HashMap::new();
    let mut checkpoints = 0u64;
    let mut last_checkpoint = None;
    // The Merkle tree, recomputed when the file holds the whole log.
    let mut tree = (first_position == 1).then(Tree::new);
    let mut notes = 0u64;
    loop {
        let following = next()?;
        let (line, parsed) = &current;
        let expected = chain.next_position();
        let finding = |position, kind, detail: String| Finding {
            position,
            kind,
            line: *line,
            detail,
        };
        let envelope = match parsed {
            Ok(envelope) => envelope,
            Err(error) => {
                return Err(
                    finding(expected, Kind::Changed, format!("not an envelope: {error}")).into(),
                );
            }
        };
        if let Err(error) = chain.check(envelope) {
            // A line followed by one with the same position that fits the
            // chain: this one was slipped in.
            if let Some((_, Ok(after))) = &following
                && after.position == envelope.position
                && chain.clone().check(after).is_ok()
            {
                return Err(finding(
                    envelope.position,
                    Kind::Inserted,
                    "a line that is not part of the chain, before the event of that position"
                        .into(),
                )
                .into());
            }
            let found = envelope.position;
            let bad = match error {
                ChainError::PositionGap { .. } if found < expected => finding(
                    found,
                    Kind::Inserted,
                    format!("position {found} again, where {expected} was expected"),
                ),
                ChainError::PositionGap { .. } if appears_later(path, expected, *line)? => finding(
                    expected,
                    Kind::Reordered,
                    format!("found {found} where {expected} belongs; {expected} comes later"),
                ),
                ChainError::PositionGap { .. } => finding(
                    expected,
                    Kind::Missing,
                    format!("found {found} where {expected} was expected"),
                ),
                ChainError::HashMismatch { .. } => finding(
                    found,
                    Kind::Changed,
                    "its hash does not match its contents".into(),
                ),
                ChainError::BrokenLink { .. } => finding(
                    found.saturating_sub(1).max(1),
                    Kind::Changed,
                    format!(
                        "the event at {found} was chained to another event at {}",
                        found.saturating_sub(1)
                    ),
                ),
            };
            return Err(bad.into());
        }
        events += 1;
        hashes.insert(envelope.position, envelope.hash);
        if let Some(tree) = tree.as_mut() {
            tree.push(leaf_hash(&envelope.leaf_bytes()));
        }
        if envelope.stream_id == checkpoint::stream() {
            let at = |kind, position, detail: String| Finding {
                position,
                kind,
                line: *line,
                detail,
            };
            let event = envelope
                .decode::<CheckpointEvent>()
                .map_err(|e| at(Kind::Changed, envelope.position, e.to_string()))?;
            let CheckpointEvent::LogCheckpointSigned {
                position,
                hash,
                kid,
                ..
            } = &event;
            let key = if trusted.is_empty() {
                keys.get(kid).ok_or_else(|| {
                    at(
                        Kind::BadSignature,
                        envelope.position,
                        format!("no key {kid} in the file, and no --public-key"),
                    )
                })?
            } else {
                trusted.get(kid).ok_or_else(|| {
                    at(
                        Kind::BadSignature,
                        envelope.position,
                        format!("signed with key {kid}, which is none of the --public-key keys"),
                    )
                })?
            };
            checkpoint::check(&event, key)
                .map_err(|e| at(Kind::BadSignature, envelope.position, e.to_string()))?;
            if let CheckpointEvent::LogCheckpointSigned {
                note: Some(note), ..
            } = &event
            {
                let signed = check_note(note, key, *position, tree.as_ref())
                    .map_err(|(kind, detail)| at(kind, envelope.position, detail))?;
                notes += u64::from(signed);
            }
            if let Some(found) = hashes.get(position) {
                if found != hash {
                    return Err(at(
                        Kind::Changed,
                        *position,
                        format!(
                            "the checkpoint at {} signed another hash for this position",
                            envelope.position
                        ),
                    )
                    .into());
                }
                checkpoints += 1;
                last_checkpoint = Some(*position);
            }
        } else if envelope.stream_id == service_keys::stream()
            && let (Some(kid), Some(key)) = (
                envelope.data["kid"].as_str(),
                envelope.data["public_key"]
                    .as_str()
                    .and_then(checkpoint::public_key),
            )
        {
            keys.insert(kid.to_owned(), key);
        }
        match following {
            Some(line) => current = line,
            None => {
                return Ok(Verified {
                    events,
                    first_position,
                    last_position: chain.next_position() - 1,
                    last_hash: chain.last_hash(),
                    checkpoints,
                    last_checkpoint,
                    notes,
                    root: tree.map(|t| t.root()),
                    self_attested: trusted.is_empty(),
                });
            }
        }
    }
}

/// Checks a checkpoint's note: signed by `key` under its origin, for the
/// tree of `position` events, whose root is the recomputed one when `tree`
/// (the file's tree so far) is known. Whether the tree was compared.
fn check_note(
    note: &str,
    key: &VerifyingKey,
    position: u64,
    tree: Option<&Tree>,
) -> Result<bool, (Kind, String)> {
    let origin = note.split('\n').next().unwrap_or_default();
    let verifier = proofline_domain::note::Verifier::new(
        origin,
        proofline_domain::note::KeyType::Ed25519,
        *key,
    )
    .map_err(|e| (Kind::BadSignature, format!("the note's origin: {e}")))?;
    let (signed, _) = proofline_domain::note::Checkpoint::open(note, &verifier, &[])
        .map_err(|e| (Kind::BadSignature, format!("the checkpoint note: {e}")))?;
    if signed.size != position {
        return Err((
            Kind::WrongTree,
            format!(
                "the note signs a tree of {} events for position {position}",
                signed.size
            ),
        ));
    }
    let Some(tree) = tree else {
        return Ok(false);
    };
    match tree.root_at(position) {
        Some(root) if root == signed.root => Ok(true),
        _ => Err((
            Kind::WrongTree,
            format!("the note's root is not the root of the first {position} events of the file"),
        )),
    }
}

fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events {per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Writes the store's envelopes after `after` as JSON Lines; how many.
pub async fn export_from_store(
    store: Arc<dyn EventStore>,
    after: u64,
    out: &mut dyn Write,
    show_progress: bool,
) -> anyhow::Result<u64> {
    let head = store.head().await?.map_or(0, |h| h.position);
    let bar = show_progress.then(|| progress(head.saturating_sub(after)));
    let mut at = after;
    let mut written = 0;
    while at < head {
        let page = store.read_all(at, 1_000).await?;
        let Some(last) = page.last() else { break };
        at = last.position;
        for envelope in &page {
            serde_json::to_writer(&mut *out, envelope)?;
            out.write_all(b"\n")?;
        }
        written += page.len() as u64;
        if let Some(bar) = &bar {
            bar.set_position(written);
        }
    }
    out.flush()?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(written)
}

/// Writes a server's envelopes after `after` as JSON Lines, read through
/// `GET /v1/events` with an auditor's (or the operator's) key; how many.
pub async fn export_from_api(
    base: &str,
    key: &str,
    after: u64,
    out: &mut dyn Write,
    show_progress: bool,
) -> anyhow::Result<u64> {
    #[derive(Deserialize)]
    struct Page {
        events: Vec<Envelope>,
        next_after: u64,
        head: u64,
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let mut at = after;
    let mut written = 0;
    let mut bar: Option<ProgressBar> = None;
    loop {
        let response = client
            .get(format!(
                "{}/v1/events?after={at}&limit=1000",
                base.trim_end_matches('/')
            ))
            .bearer_auth(key)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            anyhow::bail!("the server answered {status}: {body}");
        }
        let page: Page = response.json().await?;
        if show_progress && bar.is_none() {
            bar = Some(progress(page.head.saturating_sub(after)));
        }
        if page.events.is_empty() {
            break;
        }
        for envelope in &page.events {
            serde_json::to_writer(&mut *out, envelope)?;
            out.write_all(b"\n")?;
        }
        written += page.events.len() as u64;
        at = page.next_after;
        if let Some(bar) = &bar {
            bar.set_position(written);
        }
        if at >= page.head {
            break;
        }
    }
    out.flush()?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(written)
}

/// `proofline log import FILE`: checks the file as `log verify` does (a
/// broken chain or a bad checkpoint is refused before anything is
/// written), then stores its envelopes exactly as they are into the store
/// this configuration names, which must be empty. Secrets are not in a
/// log, so the imported store serves audits and replays, not the lenders
/// of the original.
pub async fn import_file(config: &crate::config::Config, path: &Path) -> anyhow::Result<u64> {
    use anyhow::Context;

    let verified = verify_file(path, &[]).context("the file does not verify; nothing imported")?;
    anyhow::ensure!(
        verified.first_position == 1,
        "the file starts at position {}; import needs a whole log from position 1",
        verified.first_position
    );
    let store = crate::app::open_store(config, crate::app::Migrations::Apply).await?;
    anyhow::ensure!(
        store.head().await?.is_none(),
        "the store of this configuration ({}) is not empty; import only into a fresh one",
        config.describe_store()
    );
    let bar =
        std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| progress(verified.events));
    let mut batch = Vec::with_capacity(5_000);
    let mut imported = 0u64;
    let flush = async |batch: &mut Vec<Envelope>| -> anyhow::Result<()> {
        store.import(batch).await?;
        batch.clear();
        Ok(())
    };
    for line in envelopes(path)? {
        let (number, parsed) = line.map_err(io(path))?;
        let envelope =
            parsed.map_err(|e| anyhow::anyhow!("line {number}: not an envelope: {e}"))?;
        batch.push(envelope);
        if batch.len() == 5_000 {
            imported += batch.len() as u64;
            flush(&mut batch).await?;
            if let Some(bar) = &bar {
                bar.set_position(imported);
            }
        }
    }
    imported += batch.len() as u64;
    if !batch.is_empty() {
        flush(&mut batch).await?;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    store.close().await;
    Ok(imported)
}
