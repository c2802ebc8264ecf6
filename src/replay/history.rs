//! The streams a verification used, read from the export in one pass and
//! folded as they stood before it.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, anyhow, bail, ensure};
use proofline_domain::decider::{Decider, EventSchema};
use proofline_domain::did::Did;
use proofline_domain::ids::StreamId;
use proofline_domain::issuer::{Issuer, IssuerDecider, IssuerEvent, IssuerId};
use proofline_domain::log::Envelope;
use proofline_domain::status_list::{ListUri, StatusList, StatusListDecider, StatusListEvent};
use proofline_domain::verification_record::{VerificationEvent, VerificationRecord};
use serde::Deserialize;

use super::ListUsed;

/// The first members of a line of an export.
#[derive(Deserialize)]
struct Head {
    position: u64,
    stream_id: String,
}

/// The events of some streams of an export, with their positions.
pub(super) struct Streams {
    events: HashMap<String, Vec<(u64, Envelope)>>,
}

impl Streams {
    /// Reads the events of the streams `wanted` from the export at `path`
    /// (whose every line checked out already).
    pub(super) fn read(path: &Path, wanted: &HashSet<String>) -> anyhow::Result<Self> {
        let mut events: HashMap<String, Vec<(u64, Envelope)>> = HashMap::new();
        if wanted.is_empty() {
            return Ok(Self { events });
        }
        let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.with_context(|| format!("cannot read {}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let head: Head = serde_json::from_str(&line)
                .with_context(|| format!("line {}: not an envelope", n + 1))?;
            if wanted.contains(&head.stream_id) {
                let envelope: Envelope = serde_json::from_str(&line)
                    .with_context(|| format!("position {}: not an envelope", head.position))?;
                events
                    .entry(head.stream_id)
                    .or_default()
                    .push((head.position, envelope));
            }
        }
        Ok(Self { events })
    }

    /// The events of `stream` before position `before`, decoded.
    fn before<E: EventSchema>(
        &self,
        stream: Option<&StreamId>,
        before: u64,
    ) -> anyhow::Result<Vec<(u64, E)>> {
        let Some(stream) = stream else {
            return Ok(Vec::new());
        };
        self.events
            .get(stream.as_str())
            .into_iter()
            .flatten()
            .filter(|(at, _)| *at < before)
            .map(|(at, envelope)| {
                let event = envelope
                    .decode::<E>()
                    .with_context(|| format!("position {at}"))?;
                Ok((*at, event))
            })
            .collect()
    }

    /// The verification recorded on `stream`, and its position.
    pub(super) fn verification(
        &self,
        stream: &StreamId,
    ) -> anyhow::Result<Option<(u64, VerificationRecord)>> {
        let found = self.before::<VerificationEvent>(Some(stream), u64::MAX)?;
        Ok(found
            .into_iter()
            .next()
            .map(|(at, event)| (at, event.record().clone())))
    }
}

impl Streams {
    /// The X.509 trust anchors in force before position `before`, as the
    /// `x5c` check reads them.
    pub(super) fn trust_anchors(
        &self,
        before: u64,
    ) -> anyhow::Result<Vec<proofline_commands::x5c::TrustAnchor>> {
        use proofline_domain::trust_anchor::{self, TrustAnchorDecider, TrustAnchorEvent};
        let found = self.before::<TrustAnchorEvent>(Some(&trust_anchor::stream_id()), before)?;
        let state = TrustAnchorDecider::fold(&events(found));
        state
            .anchors
            .iter()
            .map(|(anchor, _)| {
                proofline_commands::x5c::parse_anchor_pem(&anchor.pem)
                    .map_err(|e| anyhow!("trust anchor {}: {e}", anchor.anchor_id))
            })
            .collect()
    }
}

fn events<E>(found: Vec<(u64, E)>) -> Vec<E> {
    found.into_iter().map(|(_, event)| event).collect()
}

/// The streams a verification used, as the log held them before it.
pub(super) struct History {
    issuer: Vec<IssuerEvent>,
    list: Vec<StatusListEvent>,
    pub(super) first_use: Option<(u64, VerificationRecord)>,
}

impl History {
    pub(super) fn of(
        streams: &Streams,
        before: u64,
        did: Option<&Did>,
        uri: Option<&ListUri>,
        recorded: &VerificationRecord,
    ) -> anyhow::Result<Self> {
        let issuer_stream = did.map(|did| IssuerId::for_did(did).stream_id());
        let list_stream = uri.map(ListUri::stream_id);
        let first_stream = recorded.first_use.map(|id| id.stream_id());
        let history = History {
            issuer: events(streams.before(issuer_stream.as_ref(), before)?),
            list: events(streams.before(list_stream.as_ref(), before)?),
            first_use: streams
                .before::<VerificationEvent>(first_stream.as_ref(), before)?
                .into_iter()
                .next()
                .map(|(at, event)| (at, event.record().clone())),
        };
        if let Some((at, first)) = &history.first_use {
            ensure!(
                first.lender_id == recorded.lender_id
                    && first.nonce_sha256 == recorded.nonce_sha256,
                "the record says verification {} used the nonce first, but the one at position \
                 {at} is of another lender or nonce",
                first.verification_id
            );
        }
        Ok(history)
    }

    /// The issuer's state, which must hold the key the record names.
    pub(super) fn issuer(
        &self,
        recorded: &VerificationRecord,
        before: u64,
    ) -> anyhow::Result<Option<Issuer>> {
        let issuer = IssuerDecider::fold(&self.issuer);
        let Some(used) = &recorded.key else {
            return Ok(issuer);
        };
        let Some(state) = &issuer else {
            bail!(
                "the record names key {} of {}, but the log holds no such issuer before position \
                 {before}",
                used.kid,
                recorded.issuer.as_deref().unwrap_or("(no issuer)")
            );
        };
        if used.source == proofline_domain::issuer::KeySource::X5c {
            // The key is the chain's leaf, checked again with the anchors
            // of its time; the issuer must allow x5c.
            ensure!(
                state.key_sources.contains(&used.source),
                "the record names an x5c key, but {} did not allow x5c before position {before}",
                state.did.as_str()
            );
            return Ok(issuer);
        }
        let key = state.key(Some(&used.kid)).map_err(|e| {
            anyhow!(
                "the record names key {} of {}, which its state before position {before} does not \
                 hold: {e}",
                used.kid,
                state.did.as_str()
            )
        })?;
        ensure!(
            key.source == used.source,
            "the record names key {} from source {}; the log has it from {}",
            used.kid,
            used.source.as_str(),
            key.source.as_str()
        );
        if let Some(version) = used.resolved_version {
            let set = state.resolved_by(used.source);
            let holds = set.is_some_and(|set| {
                set.version == version
                    && used.resolved_at.is_none_or(|at| at == set.resolved_at)
                    && set.keys.iter().any(|k| k.kid == key.kid)
            });
            ensure!(
                holds,
                "the record names key {} as resolved from {} at issuer version {version}{}; \
                 before position {before} the log's last resolution of that source is {}",
                used.kid,
                used.source.as_str(),
                used.resolved_at
                    .map(|at| format!(" ({at})"))
                    .unwrap_or_default(),
                set.map_or("none".to_owned(), |s| format!(
                    "at version {} ({})",
                    s.version, s.resolved_at
                ))
            );
        }
        Ok(issuer)
    }

    /// The list the record names (its version, when it names one; else
    /// the newest before the verification), checked against the record.
    pub(super) fn list(
        &self,
        recorded: &VerificationRecord,
        uri: Option<&ListUri>,
        before: u64,
    ) -> anyhow::Result<(Option<StatusList>, Option<ListUsed>)> {
        let Some(uri) = uri else {
            return Ok((None, None));
        };
        let wanted = recorded.status.as_ref().map(|s| s.list_version);
        let mut state: Option<StatusList> = None;
        let mut at_wanted = None;
        for event in &self.list {
            state = StatusListDecider::evolve(state, event);
            if at_wanted.is_none()
                && let (Some(want), Some(list)) = (wanted, &state)
                && list.version == want
            {
                at_wanted = Some(list.clone());
            }
        }
        let latest_version = state.as_ref().map(|s| s.version);
        let list = match (&recorded.status, at_wanted) {
            (None, _) => state,
            (Some(status), Some(list)) => {
                if let Some(at) = status.fetched_at {
                    ensure!(
                        list.fetched_at == Some(at),
                        "the record names version {} of {} as fetched at {at}; the log's version \
                         {} was {}",
                        status.list_version,
                        status.uri,
                        list.version,
                        list.fetched_at
                            .map_or("posted by the operator".to_owned(), |f| format!(
                                "fetched at {f}"
                            ))
                    );
                }
                Some(list)
            }
            (Some(status), None) => bail!(
                "the record names version {} of the list {}, but before position {before} the \
                 log holds {}",
                status.list_version,
                status.uri,
                latest_version.map_or("none of it".to_owned(), |v| format!("version {v} at most"))
            ),
        };
        let used = ListUsed {
            uri: uri.as_str().to_owned(),
            version: list.as_ref().map(|l| l.version),
            fetched_at: list.as_ref().and_then(|l| l.fetched_at),
            latest_version,
        };
        Ok((list, Some(used)))
    }

    /// The list at `uri` when, as recorded, none could be used.
    pub(super) fn unused_list(&self, uri: &ListUri) -> ListUsed {
        let latest = StatusListDecider::fold(&self.list);
        ListUsed {
            uri: uri.as_str().to_owned(),
            version: None,
            fetched_at: None,
            latest_version: latest.map(|l| l.version),
        }
    }
}
