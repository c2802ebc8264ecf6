//! `proofline log replay-verification ID --presentation FILE`: a recorded
//! verification re-run from the log alone.
//!
//! The log (an export, or a server's `/v1/events` read with an auditor's
//! key) is checked as `log verify` checks it before anything in it is
//! trusted. The verification's event names what it used; the issuer and
//! the status list are rebuilt by folding their streams over the events
//! before it (never after), and must hold what the record names: the
//! list's version and `fetched_at`, the key's kid, source and resolution.
//! The presentation must be the one recorded: the SHA-256 of its nonce and
//! its digest keyed by that nonce are compared with the record's. Then the
//! pure verifier runs as the service ran it, at the record's time, and the
//! record it would have made is compared with the recorded one, field by
//! field.
//!
//! What the log cannot replay is taken as recorded, and said: a list or
//! issuer keys that could not be fetched then (the recorded reason is
//! given to the verifier as the `*_unavailable` text), a nonce the lender
//! had used before (`first_use`; the store said so, not the verifier), a
//! record too large for the log.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail, ensure};
use proofline_commands::x5c;
use proofline_domain::did::Did;
use proofline_domain::issuer::{IssuerId, KeySource};
use proofline_domain::jose::CompactJws;
use proofline_domain::status_list::ListUri;
use proofline_domain::verification::{
    self, ClaimPath, Profile, Reason, Request, Resolved, Step, X5cTrust,
};
use proofline_domain::verification_record::{
    Asked, VerificationId, VerificationRecord, presentation_digest, sha256_hex,
};
use uuid::Uuid;

use crate::logfile;

mod history;
mod report;

pub use report::print;

use history::{History, Streams};

/// Where the log comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// An export (`proofline log export`).
    File(PathBuf),
    /// A server's `GET /v1/events`, with an auditor's or the operator's key.
    Api { url: String, key: String },
}

/// The verification to replay, and how.
#[derive(Debug, Clone)]
pub struct Ask {
    pub id: Uuid,
    /// A file holding the presentation (surrounding whitespace ignored).
    pub presentation: PathBuf,
    /// The lender's nonce; by default the Key Binding JWT's.
    pub nonce: Option<String>,
    /// How old a Key Binding JWT may have been (the service's setting).
    pub max_age_seconds: i64,
}

/// Where the nonce came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceFrom {
    KeyBinding,
    Given,
}

/// The issuer as the log held it before the verification.
#[derive(Debug, Clone)]
pub struct IssuerUsed {
    pub did: String,
    /// Its stream version then; `None` when the log holds no such issuer.
    pub version: Option<u64>,
}

/// The status list the replay used.
#[derive(Debug, Clone)]
pub struct ListUsed {
    pub uri: String,
    /// The version used; `None` when the log held none (or, as recorded,
    /// none could be fetched).
    pub version: Option<u64>,
    pub fetched_at: Option<proofline_domain::log::Timestamp>,
    /// The list's newest version in the log before the verification.
    pub latest_version: Option<u64>,
}

/// A field in which the replayed record differs from the recorded one.
#[derive(Debug, Clone)]
pub struct Difference {
    pub field: String,
    pub recorded: serde_json::Value,
    pub replayed: serde_json::Value,
}

/// What a replay found.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The verification's position in the log.
    pub position: u64,
    pub log: logfile::Verified,
    pub nonce_from: NonceFrom,
    pub issuer: Option<IssuerUsed>,
    pub list: Option<ListUsed>,
    pub recorded: VerificationRecord,
    pub replayed: VerificationRecord,
    /// What was taken as recorded because the log cannot replay it.
    pub as_recorded: Vec<String>,
    pub differences: Vec<Difference>,
}

impl Replay {
    /// Whether the replay made the record that was recorded.
    pub fn same(&self) -> bool {
        self.differences.is_empty()
    }

    /// Why the log does not prove the record was the service's, when it
    /// does not: its checkpoints were checked only with keys the file
    /// itself carries, or none signed yet covers the verification. A
    /// forger who rewrote the whole file could make either.
    pub fn unproven(&self) -> Option<String> {
        if self.log.self_attested {
            return Some(
                "no --public-key: the checkpoints were checked with keys the log itself \
                 records, so it proves only its own integrity"
                    .into(),
            );
        }
        match self.log.last_checkpoint {
            Some(at) if at >= self.position => None,
            Some(at) => Some(format!(
                "no signed checkpoint covers position {} yet (the last is at {at})",
                self.position
            )),
            None => Some("the log holds no signed checkpoint".into()),
        }
    }
}

/// Replays each of `asks` from the log of `source`: the log is read and
/// checked once; a failure that concerns one verification (not found,
/// another presentation) is its own result.
pub async fn run(
    source: Source,
    asks: &[Ask],
    trusted: &[ed25519_dalek::VerifyingKey],
) -> anyhow::Result<Vec<(Uuid, anyhow::Result<Replay>)>> {
    match source {
        Source::File(path) => replay_file(&path, asks, trusted),
        Source::Api { url, key } => {
            let file = tempfile::NamedTempFile::new().context("a temporary file for the log")?;
            {
                let mut out = std::io::BufWriter::new(file.as_file());
                logfile::export_from_api(&url, &key, 0, &mut out, false)
                    .await
                    .with_context(|| format!("cannot read the log of {url}"))?;
            }
            replay_file(file.path(), asks, trusted)
        }
    }
}

/// A verification to replay, its presentation checked against its record.
struct Prepared {
    position: u64,
    recorded: VerificationRecord,
    presentation: String,
    nonce: String,
    nonce_from: NonceFrom,
    /// The issuer and the list the presentation names.
    did: Option<Did>,
    uri: Option<ListUri>,
    max_age_seconds: i64,
}

impl Prepared {
    /// The streams its replay reads.
    fn streams(&self) -> impl Iterator<Item = String> {
        [
            self.did
                .as_ref()
                .map(|did| IssuerId::for_did(did).stream_id()),
            self.uri.as_ref().map(ListUri::stream_id),
            self.recorded.first_use.map(|id| id.stream_id()),
            Some(proofline_domain::trust_anchor::stream_id()),
        ]
        .into_iter()
        .flatten()
        .map(|stream| stream.as_str().to_owned())
    }
}

/// The replays of `asks` from the export at `path`.
pub fn replay_file(
    path: &Path,
    asks: &[Ask],
    trusted: &[ed25519_dalek::VerifyingKey],
) -> anyhow::Result<Vec<(Uuid, anyhow::Result<Replay>)>> {
    let log =
        logfile::verify_file(path, trusted).context("the log does not verify; nothing replayed")?;
    ensure!(
        log.first_position == 1,
        "the log starts at position {}; a replay needs the whole log from position 1",
        log.first_position
    );
    let ids: HashSet<String> = asks
        .iter()
        .map(|ask| {
            VerificationId::from_uuid(ask.id)
                .stream_id()
                .as_str()
                .to_owned()
        })
        .collect();
    let records = Streams::read(path, &ids)?;
    let prepared: Vec<(Uuid, anyhow::Result<Prepared>)> = asks
        .iter()
        .map(|ask| (ask.id, prepare(ask, &records)))
        .collect();
    let wanted: HashSet<String> = prepared
        .iter()
        .filter_map(|(_, p)| p.as_ref().ok())
        .flat_map(Prepared::streams)
        .collect();
    let streams = Streams::read(path, &wanted)?;
    Ok(prepared
        .into_iter()
        .map(|(id, p)| (id, p.and_then(|p| replay(p, &streams, &log))))
        .collect())
}

/// The record of `ask`'s verification, and its presentation checked
/// against it.
fn prepare(ask: &Ask, records: &Streams) -> anyhow::Result<Prepared> {
    let id = VerificationId::from_uuid(ask.id);
    let (position, recorded) = records
        .verification(&id.stream_id())?
        .ok_or_else(|| anyhow!("the log holds no verification {id}"))?;
    let presentation = std::fs::read_to_string(&ask.presentation)
        .with_context(|| format!("cannot read {}", ask.presentation.display()))?;
    let presentation = presentation.trim().to_owned();
    let (nonce, nonce_from) = nonce_for(&presentation, ask.nonce.as_deref(), &recorded)?;
    let digest = presentation_digest(&nonce, &presentation);
    ensure!(
        digest == recorded.presentation_sha256,
        "the presentation is not the one recorded: its digest (HMAC-SHA256 keyed by the nonce) \
         is {digest}, the record's presentation_sha256 is {}",
        recorded.presentation_sha256
    );
    // What the presentation names, as the service looked it up (the
    // record's copies are bounded texts).
    let references = verification::references(&presentation);
    let did = references
        .iss
        .or_else(|| recorded.issuer.clone())
        .and_then(|iss| Did::parse(&iss).ok());
    let uri = references
        .status_list_uri
        .or_else(|| recorded.status.as_ref().map(|s| s.uri.clone()))
        .and_then(|uri| ListUri::parse(&uri).ok());
    Ok(Prepared {
        position,
        recorded,
        presentation,
        nonce,
        nonce_from,
        did,
        uri,
        max_age_seconds: ask.max_age_seconds,
    })
}

/// The verifier run again on `prepared`, with the trust of the log
/// before it.
fn replay(
    prepared: Prepared,
    streams: &Streams,
    log: &logfile::Verified,
) -> anyhow::Result<Replay> {
    let Prepared {
        position,
        recorded,
        presentation,
        nonce,
        nonce_from,
        did,
        uri,
        max_age_seconds,
    } = prepared;
    let history = History::of(streams, position, did.as_ref(), uri.as_ref(), &recorded)?;
    let issuer = history.issuer(&recorded, position)?;
    let mut as_recorded = Vec::new();
    let list_unavailable = (recorded.reason == Some(Reason::StatusListUnavailable))
        .then(|| recorded_why(&recorded, Step::Revocation, " could not be fetched: "));
    let keys_unavailable = (recorded.reason == Some(Reason::IssuerKeysUnavailable)).then(|| {
        recorded_why(
            &recorded,
            Step::IssuerAuth,
            ", and its keys could not be resolved: ",
        )
    });
    // A list its issuer served past its `exp` was refused and not logged:
    // the step says so after "expired: ".
    let list_expired = (recorded.reason == Some(Reason::StatusListExpired))
        .then(|| {
            let detail = recorded_why(&recorded, Step::Revocation, " expired: ");
            recorded
                .steps
                .iter()
                .any(|s| s.name == Step::Revocation && s.detail.contains(" expired: "))
                .then_some(detail)
        })
        .flatten();
    let (list, list_used) = match (&list_unavailable, &list_expired) {
        (Some(why), _) => {
            as_recorded.push(format!(
                "the list could not be fetched then ({why}); the log cannot replay the network"
            ));
            (None, uri.as_ref().map(|uri| history.unused_list(uri)))
        }
        (None, Some(why)) => {
            as_recorded.push(format!(
                "the list its issuer served then had expired ({why}); it was refused, not logged"
            ));
            (None, uri.as_ref().map(|uri| history.unused_list(uri)))
        }
        (None, None) => history.list(&recorded, uri.as_ref(), position)?,
    };
    if let Some(why) = &keys_unavailable {
        as_recorded.push(format!(
            "the issuer's keys could not be resolved then ({why}); the log cannot replay the network"
        ));
    }

    let required = recorded
        .required_claims
        .iter()
        .map(|claim| ClaimPath::parse(claim).map_err(|e| anyhow!("required claim {claim:?}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let request = Request {
        nonce: &nonce,
        audience: &recorded.audience,
        required_claims: &required,
        require_holder_binding: recorded.require_holder_binding,
        max_age_seconds,
        now: recorded.verified_at,
        profile: Profile::SdJwtVc,
    };
    // The `x5c` chain checked again, against the anchors of its time, at
    // the credential's iat and at the verification's time.
    let x5c = match issuer.as_ref() {
        Some(known)
            if trusted_through_x5c(&recorded) || known.key_sources.contains(&KeySource::X5c) =>
        {
            x5c_again(
                &presentation,
                known,
                streams.trust_anchors(position)?,
                &recorded,
            )
        }
        _ => None,
    };
    let type_metadata_invalid = (recorded.reason == Some(Reason::TypeMetadataInvalid))
        .then(|| recorded_why(&recorded, Step::IssuerAuth, ": "));
    if type_metadata_invalid.is_some() {
        as_recorded.push(
            "the pinned type metadata could not be fetched or did not match then; the log cannot \
             replay the network"
                .into(),
        );
    } else if verification::references(&presentation)
        .vct_integrity
        .is_some()
    {
        as_recorded.push(
            "the credential pins its type metadata (vct#integrity), checked then; the replay does \
             not fetch it"
                .into(),
        );
    }
    let trust = Resolved {
        issuer: issuer.as_ref(),
        list: list.as_ref(),
        list_unavailable: list_unavailable.as_deref(),
        list_expired: list_expired.as_deref(),
        keys_unavailable: keys_unavailable.as_deref(),
        x5c: x5c.as_ref().map(|checked| match checked {
            Ok((key, thumbprint)) => X5cTrust::Key { key, thumbprint },
            Err((reason, why)) => X5cTrust::Refused(*reason, why),
        }),
        type_metadata_invalid: type_metadata_invalid.as_deref(),
    };
    let mut outcome = verification::verify(&presentation, &request, &trust);
    if let Some(first) = recorded.first_use {
        outcome = outcome.replayed();
        as_recorded.push(match &history.first_use {
            Some((at, _)) => format!(
                "this lender had used the nonce before (verification {first}, at position {at}): \
                 the store refused a second use, not the verifier"
            ),
            None => format!(
                "this lender had used the nonce before (verification {first}, not found before \
                 this one in the log): the store refused a second use, not the verifier"
            ),
        });
    }
    let asked = Asked {
        lender_id: recorded.lender_id,
        presentation: &presentation,
        nonce: &nonce,
        audience: &recorded.audience,
        required_claims: recorded.required_claims.clone(),
        require_holder_binding: recorded.require_holder_binding,
        at: recorded.verified_at,
    };
    let mut replayed = VerificationRecord::new(recorded.verification_id, &asked, &outcome);
    replayed.first_use = recorded.first_use;
    replayed.presentation_request = recorded.presentation_request.clone();
    if recorded.is_too_large_stand_in() {
        replayed = replayed.too_large();
        as_recorded.push("the record was too large for the log, and stands in for it".into());
    }
    let differences = differences(&recorded, &replayed)?;
    Ok(Replay {
        position,
        log: log.clone(),
        nonce_from,
        issuer: did.map(|did| IssuerUsed {
            did: did.as_str().to_owned(),
            version: issuer.as_ref().map(|i| i.version),
        }),
        list: list_used,
        recorded,
        replayed,
        as_recorded,
        differences,
    })
}

/// The presentation's `x5c` chain checked against `anchors` at the
/// credential's `iat` and the verification's time, as the service did;
/// `None` when the credential carries no chain.
fn x5c_again(
    presentation: &str,
    issuer: &proofline_domain::issuer::Issuer,
    anchors: Vec<x5c::TrustAnchor>,
    recorded: &VerificationRecord,
) -> Option<x5c::Checked> {
    let jws = CompactJws::parse(presentation.split('~').next()?).ok()?;
    let at = recorded.verified_at.as_datetime().timestamp();
    x5c::check_credential(&jws, &anchors, issuer.did.as_str(), at)
}

/// Whether the record's issuer key came from an `x5c` chain, or the chain
/// decided it.
fn trusted_through_x5c(recorded: &VerificationRecord) -> bool {
    recorded
        .key
        .as_ref()
        .is_some_and(|k| k.source == proofline_domain::issuer::KeySource::X5c)
        || recorded
            .reason
            .is_some_and(|r| r.as_str().starts_with("x5c_"))
}

/// Where the nonce is: given, or the Key Binding JWT's; either way its
/// SHA-256 must be the record's `nonce_sha256`.
fn nonce_for(
    presentation: &str,
    given: Option<&str>,
    recorded: &VerificationRecord,
) -> anyhow::Result<(String, NonceFrom)> {
    let (nonce, from) = match given {
        Some(nonce) => (nonce.to_owned(), NonceFrom::Given),
        None => {
            let key_binding = presentation
                .rsplit_once('~')
                .map(|(_, kb)| kb)
                .filter(|kb| !kb.is_empty());
            let nonce = key_binding
                .and_then(|kb| CompactJws::parse(kb).ok())
                .and_then(|jws| jws.payload.get("nonce")?.as_str().map(str::to_owned))
                .ok_or_else(|| {
                    anyhow!(
                        "the presentation has no Key Binding JWT with a nonce; give the lender's \
                         nonce with --nonce"
                    )
                })?;
            (nonce, NonceFrom::KeyBinding)
        }
    };
    let digest = sha256_hex(&nonce);
    if digest != recorded.nonce_sha256 {
        let hint = match from {
            NonceFrom::KeyBinding => {
                "; the nonce was read from the Key Binding JWT: give the lender's with --nonce \
                 if they differ"
            }
            NonceFrom::Given => "",
        };
        bail!(
            "the presentation is not the one recorded: the SHA-256 of its nonce is {digest}, the \
             record's nonce_sha256 is {}{hint}",
            recorded.nonce_sha256
        );
    }
    Ok((nonce, from))
}

/// The recorded reason of a step that failed for want of the network: its
/// detail after `marker` (what the service was told), or all of it.
fn recorded_why(recorded: &VerificationRecord, step: Step, marker: &str) -> String {
    let detail = recorded
        .steps
        .iter()
        .find(|s| s.name == step && !s.passed)
        .map_or("", |s| s.detail.as_str());
    detail
        .split_once(marker)
        .map_or(detail, |(_, why)| why)
        .to_owned()
}

/// The fields in which `replayed` differs from `recorded`.
fn differences(
    recorded: &VerificationRecord,
    replayed: &VerificationRecord,
) -> anyhow::Result<Vec<Difference>> {
    let (a, b) = (
        serde_json::to_value(recorded)?,
        serde_json::to_value(replayed)?,
    );
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        bail!("a record that is not a JSON object");
    };
    let mut fields: Vec<&String> = a.keys().chain(b.keys()).collect();
    fields.sort();
    fields.dedup();
    Ok(fields
        .into_iter()
        .filter(|field| a.get(*field) != b.get(*field))
        .map(|field| Difference {
            field: field.clone(),
            recorded: a.get(field).cloned().unwrap_or_default(),
            replayed: b.get(field).cloned().unwrap_or_default(),
        })
        .collect())
}
