//! Planning one group commit, without IO.
//!
//! The adapters load a [`Context`] inside the transaction (after taking the
//! writer lock), hand it here with the batch, and write what the [`Plan`]
//! says. Each request is judged on its own against the state left by the
//! requests before it in the same batch, so a conflict fails only its own
//! command.

use std::collections::{HashMap, HashSet};

use proofline_domain::ids::StreamId;
use proofline_domain::log::{EventHash, HashInput, Timestamp};
use uuid::Uuid;

use super::{AppendOutcome, Prepared, SecretWrite, StoreError};

/// The last stored event, as the writer sees it under the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadRow {
    pub position: u64,
    pub hash: EventHash,
    pub recorded_at: Timestamp,
}

/// Where an already-stored event is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredEvent {
    pub position: u64,
    pub stream_id: StreamId,
    pub stream_version: u64,
}

/// What the database says about the batch's streams, event ids and secret ids.
#[derive(Debug, Default)]
pub(crate) struct Context {
    pub head: Option<HeadRow>,
    pub versions: HashMap<StreamId, u64>,
    pub stored_events: HashMap<Uuid, StoredEvent>,
    pub taken_secret_ids: HashSet<String>,
}

pub(crate) struct SecretRow<'a> {
    pub secret: &'a SecretWrite,
    pub stream_id: &'a StreamId,
    pub position: u64,
}

/// One event row to insert, borrowing its texts from the prepared append.
/// `data` and `metadata` are the canonical texts that were hashed.
#[derive(Debug, Clone)]
pub(crate) struct EventRow<'a> {
    pub position: u64,
    pub event_id: Uuid,
    pub stream_id: &'a StreamId,
    pub stream_version: u64,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub data: &'a str,
    pub metadata: &'a str,
    pub recorded_at: Timestamp,
    pub prev_hash: EventHash,
    pub hash: EventHash,
}

pub(crate) struct Plan<'a> {
    pub rows: Vec<EventRow<'a>>,
    pub secrets: Vec<SecretRow<'a>>,
    pub outcomes: Vec<Result<AppendOutcome, StoreError>>,
    pub recorded_at: Timestamp,
}

impl Plan<'_> {
    pub fn last_position(&self) -> Option<u64> {
        self.rows.last().map(|r| r.position)
    }
}

/// The distinct streams, event ids and secret ids a batch touches, which is
/// what the adapters must load into the [`Context`].
pub(crate) struct Keys {
    pub streams: Vec<String>,
    pub event_ids: Vec<Uuid>,
    pub secret_ids: Vec<String>,
}

pub(crate) fn keys(batch: &[Prepared]) -> Keys {
    let batch: Vec<_> = batch.iter().map(|p| &p.request).collect();
    let mut streams: Vec<String> = batch
        .iter()
        .flat_map(|r| r.parts().map(|(s, _, _)| s.to_string()))
        .collect();
    streams.sort_unstable();
    streams.dedup();
    let event_ids = batch
        .iter()
        .flat_map(|r| r.all_events().map(|(_, e)| e.event_id))
        .collect();
    let secret_ids = batch
        .iter()
        .flat_map(|r| r.secrets.iter().map(|s| s.id.clone()))
        .collect();
    Keys {
        streams,
        event_ids,
        secret_ids,
    }
}

pub(crate) fn plan(mut ctx: Context, batch: &[Prepared], now: Timestamp) -> Plan<'_> {
    let (mut position, mut prev_hash, last_time) = match ctx.head {
        Some(h) => (h.position, h.hash, Some(h.recorded_at)),
        None => (0, EventHash::GENESIS, None),
    };
    // Keep recorded_at non-decreasing along the log even if clocks of two
    // writers (or one clock stepping back) disagree.
    let recorded_at = match last_time {
        Some(t) if t > now => t,
        _ => now,
    };
    let mut rows = Vec::new();
    let mut secrets = Vec::new();
    let mut outcomes = Vec::with_capacity(batch.len());

    for prepared in batch {
        let request = &prepared.request;
        let events: Vec<(&StreamId, &super::NewEvent)> = request.all_events().collect();
        let stored: Vec<&StoredEvent> = events
            .iter()
            .filter_map(|(_, e)| ctx.stored_events.get(&e.event_id))
            .collect();
        if !stored.is_empty() {
            let same_append = stored.len() == events.len()
                && events.iter().all(|(stream, e)| {
                    ctx.stored_events
                        .get(&e.event_id)
                        .is_some_and(|s| s.stream_id == **stream)
                });
            outcomes.push(if same_append {
                Ok(AppendOutcome {
                    stream_id: request.stream_id.clone(),
                    first_position: stored.iter().map(|s| s.position).min().unwrap_or(0),
                    last_position: stored.iter().map(|s| s.position).max().unwrap_or(0),
                    stream_version: stored
                        .iter()
                        .filter(|s| s.stream_id == request.stream_id)
                        .map(|s| s.stream_version)
                        .max()
                        .unwrap_or(0),
                    already_stored: true,
                })
            } else {
                let event_id = events
                    .iter()
                    .find(|(_, e)| ctx.stored_events.contains_key(&e.event_id))
                    .map(|(_, e)| e.event_id)
                    .unwrap_or_default();
                Err(StoreError::DuplicateEventId { event_id })
            });
            continue;
        }

        // Every stream must accept, or the whole append is refused.
        let conflict = request.parts().find_map(|(stream, expected, _)| {
            let current = ctx.versions.get(stream).copied().unwrap_or(0);
            (!expected.accepts(current)).then(|| StoreError::Conflict {
                stream_id: stream.clone(),
                expected,
                actual: current,
            })
        });
        if let Some(conflict) = conflict {
            outcomes.push(Err(conflict));
            continue;
        }

        if let Some(taken) = request
            .secrets
            .iter()
            .find(|s| !s.replace && ctx.taken_secret_ids.contains(&s.id))
        {
            outcomes.push(Err(StoreError::SecretIdTaken {
                id: taken.id.clone(),
            }));
            continue;
        }

        let first_position = position + 1;
        let mut primary_version = 0;
        let mut texts = prepared.data.iter();
        for (part, (stream, _, part_events)) in request.parts().enumerate() {
            let mut version = ctx.versions.get(stream).copied().unwrap_or(0);
            for event in part_events {
                let data = texts.next().expect("prepare made one text per event");
                position += 1;
                version += 1;
                let hash = HashInput {
                    position,
                    event_id: &event.event_id,
                    stream_id: stream.as_str(),
                    stream_version: version,
                    event_type: &event.event_type,
                    schema_version: event.schema_version,
                    canonical_data: data,
                    canonical_metadata: &prepared.metadata,
                    recorded_at: &recorded_at,
                    prev_hash: &prev_hash,
                }
                .hash();
                rows.push(EventRow {
                    position,
                    event_id: event.event_id,
                    stream_id: stream,
                    stream_version: version,
                    event_type: &event.event_type,
                    schema_version: event.schema_version,
                    data,
                    metadata: &prepared.metadata,
                    recorded_at,
                    prev_hash,
                    hash,
                });
                prev_hash = hash;
                ctx.stored_events.insert(
                    event.event_id,
                    StoredEvent {
                        position,
                        stream_id: stream.clone(),
                        stream_version: version,
                    },
                );
            }
            ctx.versions.insert(stream.clone(), version);
            if part == 0 {
                primary_version = version;
            }
        }
        for secret in &request.secrets {
            ctx.taken_secret_ids.insert(secret.id.clone());
            secrets.push(SecretRow {
                secret,
                stream_id: &request.stream_id,
                position,
            });
        }
        outcomes.push(Ok(AppendOutcome {
            stream_id: request.stream_id.clone(),
            first_position,
            last_position: position,
            stream_version: primary_version,
            already_stored: false,
        }));
    }
    Plan {
        rows,
        secrets,
        outcomes,
        recorded_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AppendRequest, ExpectedVersion, NewEvent};
    use chrono::{TimeZone, Utc};
    use proofline_domain::log::{ChainVerifier, Envelope};
    use secrecy::SecretString;
    use serde_json::json;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_datetime(Utc.timestamp_opt(1_790_000_000 + secs, 0).unwrap())
    }

    fn stream(n: u32) -> StreamId {
        StreamId::new("test", n).unwrap()
    }

    fn req(s: u32, expected: ExpectedVersion, n: usize) -> AppendRequest {
        let events = (0..n)
            .map(|i| NewEvent::new("Tested", 1, json!({"i": i})))
            .collect();
        AppendRequest::new(stream(s), expected, events)
    }

    fn prepared(requests: Vec<AppendRequest>) -> Vec<Prepared> {
        requests.into_iter().map(|r| r.prepare().unwrap()).collect()
    }

    /// The row as an envelope, read back the way the store reads it.
    fn envelope(row: &EventRow<'_>) -> Envelope {
        Envelope {
            position: row.position,
            event_id: row.event_id,
            stream_id: row.stream_id.clone(),
            stream_version: row.stream_version,
            event_type: row.event_type.to_owned(),
            schema_version: row.schema_version,
            data: serde_json::from_str(row.data).unwrap(),
            metadata: serde_json::from_str(row.metadata).unwrap(),
            recorded_at: row.recorded_at,
            prev_hash: row.prev_hash,
            hash: row.hash,
        }
    }

    #[test]
    fn assigns_gapless_positions_versions_and_a_valid_chain() {
        let batch = prepared(vec![
            req(1, ExpectedVersion::NoStream, 2),
            req(2, ExpectedVersion::Any, 3),
        ]);
        let plan = plan(Context::default(), &batch, t(0));
        let positions: Vec<u64> = plan.rows.iter().map(|r| r.position).collect();
        assert_eq!(positions, vec![1, 2, 3, 4, 5]);
        let versions: Vec<u64> = plan.rows.iter().map(|r| r.stream_version).collect();
        assert_eq!(versions, vec![1, 2, 1, 2, 3]);
        let mut chain = ChainVerifier::new();
        for row in &plan.rows {
            // The hash computed from the canonical texts is the one an
            // auditor recomputes from the stored envelope.
            chain.check(&envelope(row)).unwrap();
        }
        let first = plan.outcomes[1].as_ref().unwrap();
        assert_eq!(
            (
                first.first_position,
                first.last_position,
                first.stream_version
            ),
            (3, 5, 3)
        );
    }

    #[test]
    fn a_multi_stream_append_is_all_or_nothing() {
        let both = req(1, ExpectedVersion::NoStream, 1).also(
            stream(2),
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Tested", 1, json!({}))],
        );
        let again = req(3, ExpectedVersion::NoStream, 1).also(
            stream(2),
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Tested", 1, json!({}))],
        );
        let batch = prepared(vec![both, again]);
        let plan = plan(Context::default(), &batch, t(0));
        let outcome = plan.outcomes[0].as_ref().unwrap();
        assert_eq!(
            (
                outcome.first_position,
                outcome.last_position,
                outcome.stream_version
            ),
            (1, 2, 1)
        );
        assert!(
            matches!(&plan.outcomes[1], Err(StoreError::Conflict { stream_id, actual: 1, .. }) if *stream_id == stream(2))
        );
        let streams: Vec<&str> = plan.rows.iter().map(|r| r.stream_id.as_str()).collect();
        assert_eq!(
            streams,
            vec![stream(1).as_str(), stream(2).as_str()],
            "stream 3 got nothing"
        );
    }

    #[test]
    fn a_conflict_fails_only_its_own_request() {
        let batch = prepared(vec![
            req(1, ExpectedVersion::NoStream, 1),
            req(1, ExpectedVersion::NoStream, 1),
            req(1, ExpectedVersion::Exact(1), 1),
            req(2, ExpectedVersion::Exact(3), 1),
        ]);
        let plan = plan(Context::default(), &batch, t(0));
        assert!(plan.outcomes[0].is_ok());
        assert!(matches!(
            plan.outcomes[1],
            Err(StoreError::Conflict {
                actual: 1,
                expected: ExpectedVersion::NoStream,
                ..
            })
        ));
        assert_eq!(plan.outcomes[2].as_ref().unwrap().stream_version, 2);
        assert!(matches!(
            plan.outcomes[3],
            Err(StoreError::Conflict { actual: 0, .. })
        ));
        assert_eq!(plan.rows.len(), 2);
    }

    #[test]
    fn continues_from_the_stored_head_and_versions() {
        let mut ctx = Context::default();
        let head_hash = EventHash::from_bytes([7; 32]);
        ctx.head = Some(HeadRow {
            position: 41,
            hash: head_hash,
            recorded_at: t(10),
        });
        ctx.versions.insert(stream(1), 4);
        let batch = prepared(vec![req(1, ExpectedVersion::Exact(4), 1)]);
        let plan = plan(ctx, &batch, t(0));
        let row = &plan.rows[0];
        assert_eq!(
            (row.position, row.stream_version, row.prev_hash),
            (42, 5, head_hash)
        );
        // The clock stepped back: recorded_at stays at the head's time.
        assert_eq!(row.recorded_at, t(10));
    }

    #[test]
    fn an_append_stored_already_answers_with_its_positions() {
        let first = prepared(vec![req(1, ExpectedVersion::NoStream, 2)]);
        let done = plan(Context::default(), &first, t(0));
        let mut ctx = Context::default();
        for row in &done.rows {
            ctx.stored_events.insert(
                row.event_id,
                StoredEvent {
                    position: row.position,
                    stream_id: row.stream_id.clone(),
                    stream_version: row.stream_version,
                },
            );
        }
        ctx.versions.insert(stream(1), 2);
        let again = plan(ctx, &first, t(1));
        assert!(again.rows.is_empty());
        let outcome = again.outcomes[0].as_ref().unwrap();
        assert!(outcome.already_stored);
        assert_eq!((outcome.first_position, outcome.last_position), (1, 2));
    }

    #[test]
    fn a_partly_stored_append_is_refused() {
        let first = req(1, ExpectedVersion::Any, 1);
        let mut second = req(1, ExpectedVersion::Any, 1);
        second.events.push(first.events[0].clone());
        let batch = prepared(vec![first, second.clone()]);
        let plan = plan(Context::default(), &batch, t(0));
        assert!(plan.outcomes[0].is_ok());
        assert!(matches!(
            plan.outcomes[1],
            Err(StoreError::DuplicateEventId { event_id }) if event_id == second.events[1].event_id
        ));
        assert_eq!(plan.rows.len(), 1);
    }

    #[test]
    fn secrets_are_planned_with_their_append_and_refused_when_taken() {
        let secret = |id: &str| SecretWrite {
            id: id.into(),
            kind: "api_key".into(),
            material: SecretString::from("hash"),
            replace: false,
        };
        let mut ctx = Context::default();
        ctx.taken_secret_ids.insert("taken".into());
        let batch = prepared(vec![
            req(1, ExpectedVersion::Any, 1).with_secret(secret("a")),
            req(2, ExpectedVersion::Any, 1).with_secret(secret("taken")),
            req(3, ExpectedVersion::Any, 1).with_secret(secret("a")),
        ]);
        let plan = plan(ctx, &batch, t(0));
        assert_eq!(plan.secrets.len(), 1);
        assert_eq!(
            plan.secrets[0].position, 1,
            "the last position of its append"
        );
        assert!(
            matches!(&plan.outcomes[1], Err(StoreError::SecretIdTaken { id }) if id == "taken")
        );
        assert!(matches!(&plan.outcomes[2], Err(StoreError::SecretIdTaken { id }) if id == "a"));
    }
}
