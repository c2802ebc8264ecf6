//! What `log replay-verification` prints: a few lines, or one JSON object.

use std::fmt::Write;

use proofline_domain::verification_record::VerificationRecord;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{NonceFrom, Replay};

/// `verified=… failed_step=… reason=…` of a record.
fn outcome(record: &VerificationRecord) -> String {
    format!(
        "verified={} failed_step={} reason={}",
        record.verified,
        record.failed_step.map_or("-", |s| s.name()),
        record.reason.map_or("-", |r| r.as_str()),
    )
}

fn outcome_json(record: &VerificationRecord) -> Value {
    json!({
        "verified": record.verified,
        "failed_step": record.failed_step,
        "reason": record.reason,
    })
}

impl Replay {
    /// The report as text, one fact a line; the last says whether the
    /// outcome is the same.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let record = &self.recorded;
        let _ = writeln!(
            out,
            "verification {} at position {} (verified at {})",
            record.verification_id, self.position, record.verified_at
        );
        let _ = writeln!(
            out,
            "log: {} events, positions {} to {}, chain intact",
            self.log.events, self.log.first_position, self.log.last_position
        );
        match self.unproven() {
            Some(why) => {
                let _ = writeln!(out, "not proven the service's: {why}");
            }
            None => {
                let _ = writeln!(
                    out,
                    "signed: checkpoints verified with the given key, the last at position {}",
                    self.log.last_checkpoint.unwrap_or_default()
                );
            }
        }
        let _ = writeln!(
            out,
            "presentation: the one recorded (presentation_sha256 {}; nonce {})",
            record.presentation_sha256,
            match self.nonce_from {
                NonceFrom::KeyBinding => "from the Key Binding JWT",
                NonceFrom::Given => "given with --nonce",
            }
        );
        let _ = writeln!(
            out,
            "trust, from the log before position {}:",
            self.position
        );
        match &self.issuer {
            Some(issuer) => match issuer.version {
                Some(version) => {
                    let _ = writeln!(out, "  issuer: {}, stream version {version}", issuer.did);
                }
                None => {
                    let _ = writeln!(out, "  issuer: {}, not in the log", issuer.did);
                }
            },
            None => {
                let _ = writeln!(out, "  issuer: none named");
            }
        }
        match &record.key {
            Some(key) => {
                let resolution = match (key.resolved_version, key.resolved_at) {
                    (Some(version), Some(at)) => {
                        format!(", resolved at issuer version {version} ({at})")
                    }
                    (Some(version), None) => format!(", resolved at issuer version {version}"),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "  key: {} from {}{resolution}",
                    key.kid,
                    key.source.as_str()
                );
            }
            None => {
                let _ = writeln!(out, "  key: none recorded");
            }
        }
        match &self.list {
            Some(list) => {
                let version = match (list.version, list.fetched_at) {
                    (Some(v), Some(at)) => format!("version {v}, fetched at {at}"),
                    (Some(v), None) => format!("version {v}, posted by the operator"),
                    (None, _) => "no version used".to_owned(),
                };
                let later = match list.latest_version {
                    Some(latest) if Some(latest) != list.version => {
                        format!(" (the log held version {latest} by then)")
                    }
                    _ => String::new(),
                };
                let _ = writeln!(out, "  status list: {}, {version}{later}", list.uri);
            }
            None => {
                let _ = writeln!(out, "  status list: none named");
            }
        }
        let _ = writeln!(out, "recorded: {}", outcome(record));
        let _ = writeln!(out, "replayed: {}", outcome(&self.replayed));
        for note in &self.as_recorded {
            let _ = writeln!(out, "as recorded: {note}");
        }
        if self.same() {
            let _ = writeln!(out, "same outcome");
        } else {
            let _ = writeln!(
                out,
                "different: the replay differs from the record in {}",
                self.differences
                    .iter()
                    .map(|d| d.field.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for difference in &self.differences {
                let _ = writeln!(
                    out,
                    "  {}: recorded {} replayed {}",
                    difference.field, difference.recorded, difference.replayed
                );
            }
        }
        out
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> Value {
        let record = &self.recorded;
        json!({
            "verification_id": record.verification_id,
            "position": self.position,
            "log": {
                "events": self.log.events,
                "first_position": self.log.first_position,
                "last_position": self.log.last_position,
                "last_hash": self.log.last_hash.to_string(),
                "last_checkpoint": self.log.last_checkpoint,
                "unproven": self.unproven(),
            },
            "presentation_sha256": record.presentation_sha256,
            "nonce_from": match self.nonce_from {
                NonceFrom::KeyBinding => "key_binding",
                NonceFrom::Given => "given",
            },
            "trust": {
                "issuer": self.issuer.as_ref().map(|i| json!({"did": i.did, "version": i.version})),
                "key": record.key,
                "status_list": self.list.as_ref().map(|l| json!({
                    "uri": l.uri,
                    "version": l.version,
                    "fetched_at": l.fetched_at,
                    "latest_version": l.latest_version,
                })),
            },
            "recorded": outcome_json(record),
            "replayed": outcome_json(&self.replayed),
            "as_recorded": self.as_recorded,
            "same_outcome": self.same(),
            "differences": self.differences.iter().map(|d| json!({
                "field": d.field,
                "recorded": d.recorded,
                "replayed": d.replayed,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Prints each replay (text, blank-line separated, or a JSON object a
/// line) and each failure (on standard error); whether every replay made
/// the recorded outcome.
pub fn print(results: &[(Uuid, anyhow::Result<Replay>)], json: bool) -> bool {
    let mut all_same = true;
    for (n, (id, result)) in results.iter().enumerate() {
        match result {
            Ok(replay) if json => println!("{}", replay.to_json()),
            Ok(replay) => {
                if n > 0 {
                    println!();
                }
                print!("{}", replay.to_text());
            }
            Err(error) => eprintln!("error: verification {id}: {error:#}"),
        }
        all_same &= result.as_ref().is_ok_and(Replay::same);
    }
    all_same
}
