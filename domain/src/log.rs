//! The event envelope and the log's hash chain.
//!
//! Every stored event is an [`Envelope`]. Its `hash` is
//!
//! ```text
//! hash = SHA-256( prev_hash as 64 lowercase hex ASCII bytes
//!              || RFC 8785 (JCS) bytes of the envelope without its `hash` member )
//! ```
//!
//! and the first event's `prev_hash` is 64 zeros ([`EventHash::GENESIS`]). The
//! rule is spelled out for other languages in `docs/log-format.md`; anything
//! that changes, removes, inserts or reorders an event breaks the chain at
//! that position, which [`ChainVerifier`] reports.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::decider::{DecodeError, EventSchema};
use crate::ids::StreamId;

/// A UTC instant with microsecond precision, written as RFC 3339 with exactly
/// six fractional digits and a `Z` suffix (`2026-11-23T09:15:02.123456Z`).
///
/// The fixed precision matters: the text is hashed, and both backends store
/// microseconds, so a value read back is byte-for-byte the value written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// Truncates to microseconds.
    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        Self(at.trunc_subsecs(6))
    }

    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    pub fn to_rfc3339(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// Parses any RFC 3339 instant; the result is truncated to microseconds.
    pub fn parse(text: &str) -> Result<Self, chrono::ParseError> {
        Ok(Self::from_datetime(
            DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc),
        ))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A SHA-256 digest in the chain, written as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventHash([u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a hash is 64 lowercase hex characters")]
pub struct HashFormatError;

impl EventHash {
    /// The `prev_hash` of the first event: 64 zeros.
    pub const GENESIS: EventHash = EventHash([0; 32]);

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for EventHash {
    type Err = HashFormatError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Uppercase would decode too, but then the text would not be the
        // hashed form; refuse it so one digest has exactly one spelling.
        if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(HashFormatError);
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| HashFormatError)?;
        Ok(Self(out))
    }
}

impl fmt::Debug for EventHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventHash({})", self.to_hex())
    }
}

impl fmt::Display for EventHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for EventHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for EventHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Who and what caused an event. Absent members are omitted rather than
/// written as `null`, and members this version does not know are kept, so a
/// stored envelope re-serializes to the same canonical bytes whatever version
/// of Proofline reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// One stored event, as the store keeps it and `/v1/events` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Global, gapless, starting at 1.
    pub position: u64,
    pub event_id: Uuid,
    pub stream_id: StreamId,
    /// Per stream, gapless, starting at 1.
    pub stream_version: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u32,
    pub data: Value,
    pub metadata: Metadata,
    pub recorded_at: Timestamp,
    pub prev_hash: EventHash,
    pub hash: EventHash,
}

/// RFC 8785 (JCS) text of a value: members sorted, no whitespace, numbers
/// and strings in their one canonical spelling.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    serde_json_canonicalizer::to_string(value)
}

/// What the hash of an event covers: the envelope without `hash`, with
/// `data` and `metadata` given in canonical form.
///
/// This is the one implementation of the hash rule. The store's writer uses
/// it with the canonical texts computed by the appending task (they are also
/// what is stored), so the writer, which holds the log's lock, only splices
/// and digests; [`Envelope::compute_hash`] uses it after canonicalizing.
#[derive(Debug, Clone, Copy)]
pub struct HashInput<'a> {
    pub position: u64,
    pub event_id: &'a Uuid,
    pub stream_id: &'a str,
    pub stream_version: u64,
    pub event_type: &'a str,
    pub schema_version: u32,
    /// The JCS text of `data`.
    pub canonical_data: &'a str,
    /// The JCS text of `metadata`.
    pub canonical_metadata: &'a str,
    pub recorded_at: &'a Timestamp,
    pub prev_hash: &'a EventHash,
}

impl HashInput<'_> {
    /// The RFC 8785 bytes of the envelope without `hash`. Member names are
    /// fixed and ASCII, so their JCS order is known: it is written out here
    /// rather than sorted at run time.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        self.canonical_bytes_with(None)
    }

    /// The RFC 8785 bytes of the whole envelope, `hash` included: the leaf
    /// data of the log's Merkle tree and of a tlog-tiles entry.
    pub fn leaf_bytes(&self, hash: &EventHash) -> Vec<u8> {
        self.canonical_bytes_with(Some(hash))
    }

    fn canonical_bytes_with(&self, hash: Option<&EventHash>) -> Vec<u8> {
        let string =
            |s: &str| serde_json_canonicalizer::to_string(&s).expect("a string always serializes");
        let mut out =
            Vec::with_capacity(self.canonical_data.len() + self.canonical_metadata.len() + 400);
        let mut push = |parts: &[&str]| {
            parts
                .iter()
                .for_each(|p| out.extend_from_slice(p.as_bytes()))
        };
        push(&[r#"{"data":"#, self.canonical_data]);
        push(&[
            r#","event_id":""#,
            &self.event_id.hyphenated().to_string(),
            "\"",
        ]);
        if let Some(hash) = hash {
            push(&[r#","hash":""#, &hash.to_hex(), "\""]);
        }
        push(&[r#","metadata":"#, self.canonical_metadata]);
        push(&[r#","position":"#, &self.position.to_string()]);
        push(&[r#","prev_hash":""#, &self.prev_hash.to_hex(), "\""]);
        push(&[r#","recorded_at":""#, &self.recorded_at.to_rfc3339(), "\""]);
        push(&[r#","schema_version":"#, &self.schema_version.to_string()]);
        push(&[r#","stream_id":"#, &string(self.stream_id)]);
        push(&[r#","stream_version":"#, &self.stream_version.to_string()]);
        push(&[r#","type":"#, &string(self.event_type), "}"]);
        out
    }

    /// The leaf bytes for `hash` ([`HashInput::leaf_bytes`]) and the hash
    /// these members give ([`HashInput::hash`]), from one buffer: the
    /// canonical bytes without `hash` are the leaf bytes less the `hash`
    /// member, which follows `event_id`. The tree follower's read: it checks
    /// each stored event against its hash at little cost.
    pub fn leaf_bytes_and_hash(&self, hash: &EventHash) -> (Vec<u8>, EventHash) {
        let leaf = self.leaf_bytes(hash);
        let member = 10 + 64; // `,"hash":"` and the hex and `"`
        let start =
            r#"{"data":"#.len() + self.canonical_data.len() + r#","event_id":""#.len() + 36 + 1;
        let mut digest = Sha256::new();
        digest.update(self.prev_hash.to_hex().as_bytes());
        digest.update(&leaf[..start]);
        digest.update(&leaf[start + member..]);
        (leaf, EventHash(digest.finalize().into()))
    }

    /// `SHA-256(prev_hash as 64 hex ASCII bytes || canonical bytes)`.
    pub fn hash(&self) -> EventHash {
        let mut digest = Sha256::new();
        digest.update(self.prev_hash.to_hex().as_bytes());
        digest.update(self.canonical_bytes());
        EventHash(digest.finalize().into())
    }
}

impl Envelope {
    fn hash_input<'a>(&'a self, data: &'a str, metadata: &'a str) -> HashInput<'a> {
        HashInput {
            position: self.position,
            event_id: &self.event_id,
            stream_id: self.stream_id.as_str(),
            stream_version: self.stream_version,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            canonical_data: data,
            canonical_metadata: metadata,
            recorded_at: &self.recorded_at,
            prev_hash: &self.prev_hash,
        }
    }

    /// RFC 8785 bytes of the envelope without its `hash` member.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let data = canonical_json(&self.data).expect("a JSON value always serializes");
        let metadata = canonical_json(&self.metadata).expect("metadata always serializes");
        self.hash_input(&data, &metadata).canonical_bytes()
    }

    /// RFC 8785 bytes of the whole envelope, `hash` included: its leaf data
    /// in the log's Merkle tree (docs/log-format.md, "The tree").
    pub fn leaf_bytes(&self) -> Vec<u8> {
        let data = canonical_json(&self.data).expect("a JSON value always serializes");
        let metadata = canonical_json(&self.metadata).expect("metadata always serializes");
        self.hash_input(&data, &metadata).leaf_bytes(&self.hash)
    }

    /// The hash this envelope should carry, given its own `prev_hash`.
    pub fn compute_hash(&self) -> EventHash {
        let data = canonical_json(&self.data).expect("a JSON value always serializes");
        let metadata = canonical_json(&self.metadata).expect("metadata always serializes");
        self.hash_input(&data, &metadata).hash()
    }

    /// Sets `hash` from the other members.
    pub fn seal(mut self) -> Self {
        self.hash = self.compute_hash();
        self
    }

    /// The event this envelope carries, as the event type `E` of its stream
    /// (its type name, schema version and data; see
    /// [`EventSchema::decode`]).
    pub fn decode<E: EventSchema>(&self) -> Result<E, DecodeError> {
        E::decode(&self.event_type, self.schema_version, &self.data)
    }
}

/// What is wrong at a position of the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("position {found} where {expected} was expected")]
    PositionGap { expected: u64, found: u64 },
    #[error("prev_hash at position {position} does not link to the event before it")]
    BrokenLink { position: u64 },
    #[error("hash at position {position} does not match its contents")]
    HashMismatch { position: u64 },
}

impl ChainError {
    /// The position the error is about.
    pub fn position(&self) -> u64 {
        match self {
            ChainError::PositionGap { found, .. } => *found,
            ChainError::BrokenLink { position } | ChainError::HashMismatch { position } => {
                *position
            }
        }
    }
}

/// Checks a run of envelopes, in order, against the chain rules: gapless
/// positions, each `prev_hash` equal to the previous `hash`, each `hash`
/// recomputed from the contents.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_position: u64,
    prev_hash: EventHash,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// Starts at the beginning of the log.
    pub fn new() -> Self {
        Self {
            next_position: 1,
            prev_hash: EventHash::GENESIS,
        }
    }

    /// Starts after a position whose hash is already trusted.
    pub fn resume(after_position: u64, hash_at_position: EventHash) -> Self {
        Self {
            next_position: after_position + 1,
            prev_hash: hash_at_position,
        }
    }

    pub fn check(&mut self, envelope: &Envelope) -> Result<(), ChainError> {
        if envelope.position != self.next_position {
            return Err(ChainError::PositionGap {
                expected: self.next_position,
                found: envelope.position,
            });
        }
        if envelope.prev_hash != self.prev_hash {
            return Err(ChainError::BrokenLink {
                position: envelope.position,
            });
        }
        if envelope.compute_hash() != envelope.hash {
            return Err(ChainError::HashMismatch {
                position: envelope.position,
            });
        }
        self.next_position += 1;
        self.prev_hash = envelope.hash;
        Ok(())
    }

    /// The position the next envelope must have.
    pub fn next_position(&self) -> u64 {
        self.next_position
    }

    /// The hash the next envelope's `prev_hash` must equal.
    pub fn last_hash(&self) -> EventHash {
        self.prev_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_datetime(
            Utc.timestamp_micros(1_790_000_000_000_000 + micros)
                .unwrap(),
        )
    }

    fn event(position: u64, prev_hash: EventHash, data: Value) -> Envelope {
        Envelope {
            position,
            event_id: Uuid::from_u128(position as u128),
            stream_id: StreamId::parse(format!("test-{position}")).unwrap(),
            stream_version: 1,
            event_type: "Tested".into(),
            schema_version: 1,
            data,
            metadata: Metadata {
                actor: Some("operator".into()),
                ..Metadata::default()
            },
            recorded_at: at(position as i64),
            prev_hash,
            hash: EventHash::GENESIS,
        }
        .seal()
    }

    fn chain(n: u64) -> Vec<Envelope> {
        let mut prev = EventHash::GENESIS;
        (1..=n)
            .map(|p| {
                let e = event(p, prev, json!({"n": p, "b": [true, null], "a": "x"}));
                prev = e.hash;
                e
            })
            .collect()
    }

    #[test]
    fn leaf_bytes_and_hash_come_from_one_buffer() {
        for envelope in chain(5).into_iter().chain([event(
            9,
            EventHash([7; 32]),
            json!({"é": "\u{2028}\"", "z": [1, {"b": 2, "a": null}]}),
        )]) {
            let data = canonical_json(&envelope.data).unwrap();
            let metadata = canonical_json(&envelope.metadata).unwrap();
            let input = envelope.hash_input(&data, &metadata);
            let (leaf, hash) = input.leaf_bytes_and_hash(&envelope.hash);
            assert_eq!(leaf, envelope.leaf_bytes());
            assert_eq!(hash, envelope.hash);
            // Another stored hash: the leaf holds it, the hash is the
            // members' all the same.
            let (other_leaf, again) = input.leaf_bytes_and_hash(&EventHash([1; 32]));
            assert_ne!(other_leaf, leaf);
            assert_eq!(again, envelope.hash);
        }
    }

    #[test]
    fn timestamp_has_six_fraction_digits_and_z() {
        let t = Timestamp::from_datetime(Utc.timestamp_nanos(1_790_000_000_123_456_789));
        assert_eq!(t.to_rfc3339(), "2026-09-21T14:13:20.123456Z");
        let whole = Timestamp::from_datetime(Utc.timestamp_opt(1_790_000_000, 0).unwrap());
        assert_eq!(whole.to_rfc3339(), "2026-09-21T14:13:20.000000Z");
        assert_eq!(Timestamp::parse(&t.to_rfc3339()).unwrap(), t);
        assert_eq!(
            Timestamp::parse("2026-09-21T16:13:20.123456+02:00").unwrap(),
            t
        );
    }

    #[test]
    fn canonical_bytes_sort_members_and_omit_hash() {
        let e = event(
            1,
            EventHash::GENESIS,
            json!({"z": 1, "a": {"y": 2, "b": 3}}),
        );
        let text = String::from_utf8(e.canonical_bytes()).unwrap();
        assert_eq!(
            text,
            format!(
                concat!(
                    r#"{{"data":{{"a":{{"b":3,"y":2}},"z":1}},"event_id":"{}","#,
                    r#""metadata":{{"actor":"operator"}},"position":1,"prev_hash":"{}","#,
                    r#""recorded_at":"2026-09-21T14:13:20.000001Z","schema_version":1,"#,
                    r#""stream_id":"test-1","stream_version":1,"type":"Tested"}}"#
                ),
                e.event_id,
                "0".repeat(64)
            )
        );
    }

    /// The spliced encoding must equal generic RFC 8785 of the whole
    /// envelope-without-hash, for awkward contents too.
    #[test]
    fn spliced_canonical_bytes_equal_generic_jcs() {
        let awkward = [
            json!({}),
            json!({"é": "ü\u{1F600}", "\u{0001}": "\"quoted\"\\", "b": [1.5, -0.0, 1e21, 100], "a": null}),
            json!({"nested": {"z": {"y": [true, false, {"x": "\n\t"}]}}, "€": 1, "\u{10000}": 2, "\u{ffff}": 3}),
        ];
        for (i, data) in awkward.into_iter().enumerate() {
            let mut e = event(i as u64 + 1, EventHash::from_bytes([i as u8; 32]), data);
            e.event_type = "Ty\"pe\u{7f}".into();
            e.metadata.correlation_id = Some("\u{2028}line".into());
            e.metadata
                .extra
                .insert("zz".into(), json!({"b": 1, "a": 2}));
            let mut whole = serde_json::to_value(&e).unwrap();
            assert_eq!(
                String::from_utf8(e.leaf_bytes()).unwrap(),
                serde_json_canonicalizer::to_string(&whole).unwrap(),
                "the leaf data is RFC 8785 of the whole envelope"
            );
            whole.as_object_mut().unwrap().remove("hash");
            let generic = serde_json_canonicalizer::to_vec(&whole).unwrap();
            assert_eq!(
                String::from_utf8(e.canonical_bytes()).unwrap(),
                String::from_utf8(generic).unwrap()
            );
        }
    }

    #[test]
    fn hash_is_sha256_of_prev_hex_then_canonical_bytes() {
        let e = event(1, EventHash::GENESIS, json!({}));
        let mut input = "0".repeat(64).into_bytes();
        input.extend(e.canonical_bytes());
        let expected: [u8; 32] = Sha256::digest(&input).into();
        assert_eq!(e.hash.as_bytes(), &expected);
    }

    #[test]
    fn envelope_json_round_trips_to_the_same_hash() {
        let mut e = event(1, EventHash::GENESIS, json!({"k": "v"}));
        e.metadata.extra.insert("future_member".into(), json!(7));
        let e = e.seal();
        let text = serde_json::to_string(&e).unwrap();
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.compute_hash(), e.hash);
    }

    #[test]
    fn verifier_accepts_an_intact_chain() {
        let mut v = ChainVerifier::new();
        for e in chain(5) {
            v.check(&e).unwrap();
        }
        assert_eq!(v.next_position(), 6);
    }

    #[test]
    fn verifier_names_the_first_bad_position() {
        let good = chain(5);

        let mut changed = good.clone();
        changed[2].data = json!({"n": 999});
        assert_eq!(
            first_error(&changed),
            Some(ChainError::HashMismatch { position: 3 })
        );

        let mut removed = good.clone();
        removed.remove(1);
        assert_eq!(
            first_error(&removed),
            Some(ChainError::PositionGap {
                expected: 2,
                found: 3
            })
        );

        let mut swapped = good.clone();
        swapped.swap(1, 2);
        assert_eq!(
            first_error(&swapped),
            Some(ChainError::PositionGap {
                expected: 2,
                found: 3
            })
        );

        // A forger who renumbers and re-hashes an inserted event still breaks
        // the link of the event after it.
        let mut inserted = good[..2].to_vec();
        inserted.push(event(3, good[1].hash, json!({"forged": true})));
        let mut rest = good[2..].to_vec();
        for e in &mut rest {
            e.position += 1;
        }
        inserted.extend(rest);
        assert_eq!(
            first_error(&inserted),
            Some(ChainError::BrokenLink { position: 4 })
        );
    }

    fn first_error(events: &[Envelope]) -> Option<ChainError> {
        let mut v = ChainVerifier::new();
        events.iter().find_map(|e| v.check(e).err())
    }

    #[test]
    fn hashes_parse_only_in_lowercase_hex() {
        let h = EventHash::from_bytes([0xab; 32]);
        assert_eq!(h.to_hex().parse::<EventHash>().unwrap(), h);
        assert!(h.to_hex().to_uppercase().parse::<EventHash>().is_err());
        assert!("abc".parse::<EventHash>().is_err());
    }
}
