//! Token Status Lists (IETF OAuth draft) and the StatusList aggregate.
//!
//! A status list is a JWT with `typ: statuslist+jwt`, `sub` equal to the
//! list's URI, `iat`, optionally `exp` and `ttl`, and
//! `status_list: {bits, lst}`: `lst` is the base64url of the
//! zlib-compressed bit string, `bits` (1, 2, 4 or 8) per entry, entry 0 in
//! the least significant bits of byte 0. A credential points into one with
//! `status.status_list: {uri, idx}`; 0 is valid, 1 invalid (revoked), 2
//! suspended.
//!
//! Publishing checks the token against its issuer's keys (the issuer comes
//! from `iss`, or from the DID of `kid`); a newer `iat` replaces the list,
//! an older or equal one is refused.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::decider::{Decider, EventSchema, Rejection, RejectionKind};
use crate::did::Did;
use crate::ids::StreamId;
use crate::issuer::{Issuer, KeyLookupError, Kid};
use crate::jose::{CompactJws, b64url_decode};
use crate::log::Timestamp;
use crate::values::InvalidValue;
use crate::verification::MAX_SAFE_SECONDS;

pub const TOKEN_TYPE: &str = "statuslist+jwt";
/// Largest token accepted.
pub const MAX_TOKEN_BYTES: usize = 48 * 1024;
/// Largest decompressed list (a zlib bomb stops here).
pub const MAX_LIST_BYTES: usize = 16 * 1024 * 1024;
/// Clock skew allowed on `iat`.
pub const SKEW_SECONDS: i64 = 60;

pub const VALID: u8 = 0;
pub const INVALID: u8 = 1;
pub const SUSPENDED: u8 = 2;

/// A status list's URI: an absolute http(s) URL, at most 2048 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ListUri(String);

impl ListUri {
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let invalid = |m: &str| InvalidValue {
            field: "uri",
            message: m.into(),
        };
        if text.is_empty() || text.len() > 2048 || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("must be 1 to 2048 visible ASCII characters"));
        }
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| invalid("must be an absolute https:// or http:// URL"))?;
        if !matches!(scheme, "https" | "http") || rest.is_empty() || rest.starts_with('/') {
            return Err(invalid("must be an absolute https:// or http:// URL"));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The list's stream: `statuslist-<uuid>`, the UUID (version 8) from the
    /// first 128 bits of SHA-256 of the URI.
    pub fn stream_id(&self) -> StreamId {
        let digest = Sha256::digest(self.0.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        StreamId::new("statuslist", Uuid::new_v8(bytes)).expect("a UUID makes a valid stream id")
    }
}

impl TryFrom<String> for ListUri {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ListUri> for String {
    fn from(value: ListUri) -> Self {
        value.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusListError {
    #[error("the token is not a compact JWS: {0}")]
    Malformed(String),
    #[error("the token is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("typ must be {TOKEN_TYPE}")]
    WrongType,
    #[error("neither iss nor a DID in kid says which issuer signed the list")]
    NoIssuer,
    #[error("the issuer is not registered")]
    UnknownIssuer,
    #[error("iss {0:?} is not the issuer whose key signed the list")]
    IssuerMismatch(String),
    #[error("the issuer is suspended")]
    IssuerSuspended,
    #[error("no key of the issuer has this kid")]
    UnknownKey,
    #[error("the key is retired")]
    KeyRetired,
    #[error("the key is revoked")]
    KeyRevoked,
    #[error("{0} is not a whole number within ±(2^53 − 1)")]
    OutOfRange(&'static str),
    #[error("the signature does not verify: {0}")]
    Signature(String),
    #[error("sub {0:?} is not the list's URI")]
    SubjectMismatch(String),
    #[error("iat is missing, not an integer, or in the future")]
    IssuedAt,
    #[error("the list expired")]
    Expired,
    #[error("status_list is missing or malformed: {0}")]
    List(String),
    #[error("a list with an iat as new or newer is published already")]
    NotNewer,
    #[error("the list belongs to another issuer")]
    OtherIssuer,
}

impl Rejection for StatusListError {
    fn kind(&self) -> RejectionKind {
        match self {
            StatusListError::NotNewer | StatusListError::OtherIssuer => RejectionKind::Conflict,
            _ => RejectionKind::Invalid,
        }
    }
}

/// Which issuer a token claims: `iss`, or the DID of a DID URL `kid`. Not
/// verified: it says whose keys to try.
pub fn claimed_issuer(token: &str) -> Result<Did, StatusListError> {
    let jws = CompactJws::parse(token).map_err(|e| StatusListError::Malformed(e.to_string()))?;
    let from_iss = jws.payload.get("iss").and_then(Value::as_str);
    let from_kid = jws
        .kid()
        .and_then(|kid| kid.split('#').next())
        .filter(|d| d.starts_with("did:"));
    let text = from_iss.or(from_kid).ok_or(StatusListError::NoIssuer)?;
    Did::parse(text).map_err(|_| StatusListError::NoIssuer)
}

/// A status list token that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedList {
    pub uri: ListUri,
    pub issuer: Did,
    pub kid: Kid,
    pub iat: i64,
    pub exp: Option<i64>,
    pub ttl: Option<u64>,
    pub bits: u8,
    pub lst: String,
    pub token: String,
}

/// Checks a token for `uri` against `issuer` at `now`: type, issuer state,
/// key, signature, claims and the list itself.
pub fn verify_token(
    token: &str,
    uri: &ListUri,
    issuer: &Issuer,
    now: Timestamp,
) -> Result<VerifiedList, StatusListError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(StatusListError::TooLarge);
    }
    let jws = CompactJws::parse(token).map_err(|e| StatusListError::Malformed(e.to_string()))?;
    if jws.typ() != Some(TOKEN_TYPE) {
        return Err(StatusListError::WrongType);
    }
    if issuer.suspended {
        return Err(StatusListError::IssuerSuspended);
    }
    if let Some(iss) = jws.payload.get("iss").and_then(Value::as_str)
        && iss != issuer.did.as_str()
    {
        return Err(StatusListError::IssuerMismatch(iss.to_owned()));
    }
    let key = issuer.key(jws.kid()).map_err(|e| match e {
        KeyLookupError::UnknownKid => StatusListError::UnknownKey,
        KeyLookupError::Retired { .. } => StatusListError::KeyRetired,
        KeyLookupError::Revoked { .. } => StatusListError::KeyRevoked,
    })?;
    if key.revoked_at.is_some() {
        return Err(StatusListError::KeyRevoked);
    }
    if key.retired_at.is_some() {
        return Err(StatusListError::KeyRetired);
    }
    jws.verify(&key.key)
        .map_err(|e| StatusListError::Signature(e.to_string()))?;

    let claims = &jws.payload;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if sub != uri.as_str() {
        return Err(StatusListError::SubjectMismatch(sub.to_owned()));
    }
    let now_seconds = now.as_datetime().timestamp();
    // Each number goes into StatusListPublished: only integers JSON carries
    // exactly (the log refuses others), so an issuer's `"exp":
    // 9223372036854775807` ("never") is refused here, plainly.
    let safe = |name: &'static str| -> Result<Option<i64>, StatusListError> {
        match claims.get(name) {
            None => Ok(None),
            Some(value) => value
                .as_i64()
                .filter(|n| n.unsigned_abs() <= MAX_SAFE_SECONDS.unsigned_abs())
                .map(Some)
                .ok_or(StatusListError::OutOfRange(name)),
        }
    };
    let iat = safe("iat")?.ok_or(StatusListError::IssuedAt)?;
    if iat > now_seconds.saturating_add(SKEW_SECONDS) {
        return Err(StatusListError::IssuedAt);
    }
    let exp = safe("exp")?;
    if exp.is_some_and(|exp| exp <= now_seconds) {
        return Err(StatusListError::Expired);
    }
    let ttl = match safe("ttl")? {
        None => None,
        Some(ttl) => Some(u64::try_from(ttl).map_err(|_| StatusListError::OutOfRange("ttl"))?),
    };
    let list = claims
        .get("status_list")
        .and_then(Value::as_object)
        .ok_or_else(|| StatusListError::List("missing".into()))?;
    let bits = list
        .get("bits")
        .and_then(Value::as_u64)
        .ok_or_else(|| StatusListError::List("bits is missing".into()))?;
    let bits = match bits {
        1 | 2 | 4 | 8 => bits as u8,
        other => {
            return Err(StatusListError::List(format!(
                "bits is {other}, not 1, 2, 4 or 8"
            )));
        }
    };
    let lst = list
        .get("lst")
        .and_then(Value::as_str)
        .ok_or_else(|| StatusListError::List("lst is missing".into()))?;
    decompress(lst)?;
    Ok(VerifiedList {
        uri: uri.clone(),
        issuer: issuer.did.clone(),
        kid: key.kid.clone(),
        iat,
        exp,
        ttl,
        bits,
        lst: lst.to_owned(),
        token: token.to_owned(),
    })
}

/// base64url, then zlib, with a bound on the output.
pub fn decompress(lst: &str) -> Result<Vec<u8>, StatusListError> {
    let compressed =
        b64url_decode(lst).map_err(|_| StatusListError::List("lst is not base64url".into()))?;
    miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&compressed, MAX_LIST_BYTES).map_err(
        |_| StatusListError::List("lst is not zlib data (or decompresses beyond the limit)".into()),
    )
}

/// The status of entry `idx` in a decompressed list of `bits`-bit entries;
/// `None` past its end.
pub fn status_at(list: &[u8], bits: u8, idx: u64) -> Option<u8> {
    let bits = u64::from(bits);
    let first_bit = idx.checked_mul(bits)?;
    let byte = usize::try_from(first_bit / 8).ok()?;
    let shift = first_bit % 8;
    let mask = if bits == 8 {
        0xff
    } else {
        (1u16 << bits) as u8 - 1
    };
    list.get(byte).map(|b| (b >> shift) & mask)
}

#[derive(Debug, Clone, PartialEq)]
pub enum StatusListCommand {
    Publish { list: VerifiedList },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum StatusListEvent {
    StatusListPublished {
        uri: ListUri,
        issuer: Did,
        kid: Kid,
        iat: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exp: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl: Option<u64>,
        bits: u8,
        /// The whole signed token: the log alone lets anyone check who
        /// published what.
        token: String,
    },
}

impl EventSchema for StatusListEvent {}

/// A published list, decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusList {
    pub uri: ListUri,
    pub issuer: Did,
    pub kid: Kid,
    pub iat: i64,
    pub exp: Option<i64>,
    pub bits: u8,
    pub entries: Vec<u8>,
    /// How many versions have been published (the stream version).
    pub version: u64,
}

impl StatusList {
    pub fn status(&self, idx: u64) -> Option<u8> {
        status_at(&self.entries, self.bits, idx)
    }
}

pub struct StatusListDecider;

impl Decider for StatusListDecider {
    type Command = StatusListCommand;
    type Event = StatusListEvent;
    type State = Option<StatusList>;
    type Error = StatusListError;

    fn decide(
        command: &StatusListCommand,
        state: &Option<StatusList>,
        _now: Timestamp,
    ) -> Result<Vec<StatusListEvent>, StatusListError> {
        let StatusListCommand::Publish { list } = command;
        if let Some(current) = state {
            if current.issuer != list.issuer {
                return Err(StatusListError::OtherIssuer);
            }
            if list.iat <= current.iat {
                return Err(StatusListError::NotNewer);
            }
        }
        Ok(vec![StatusListEvent::StatusListPublished {
            uri: list.uri.clone(),
            issuer: list.issuer.clone(),
            kid: list.kid.clone(),
            iat: list.iat,
            exp: list.exp,
            ttl: list.ttl,
            bits: list.bits,
            token: list.token.clone(),
        }])
    }

    fn evolve(state: Option<StatusList>, event: &StatusListEvent) -> Option<StatusList> {
        let StatusListEvent::StatusListPublished {
            uri,
            issuer,
            kid,
            iat,
            exp,
            bits,
            token,
            ..
        } = event;
        // The token was checked when it was published; only its list is read
        // here. A list that cannot be read leaves the state as it was.
        let entries = CompactJws::parse(token)
            .ok()
            .and_then(|jws| {
                jws.payload
                    .get("status_list")?
                    .get("lst")?
                    .as_str()
                    .map(str::to_owned)
            })
            .and_then(|lst| decompress(&lst).ok());
        match entries {
            Some(entries) => Some(StatusList {
                uri: uri.clone(),
                issuer: issuer.clone(),
                kid: kid.clone(),
                iat: *iat,
                exp: *exp,
                bits: *bits,
                entries,
                version: state.map_or(1, |s| s.version + 1),
            }),
            None => state,
        }
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod testing {
    //! Building lists, for tests.

    pub use super::{encode_lst as lst, pack};
}

/// Packs statuses `bits` per entry, entry 0 in the low bits of byte 0
/// (what an issuer does; Proofline does it for its demo issuer and tests).
/// Statuses wider than `bits` are cut to it.
pub fn pack(statuses: &[u8], bits: u8) -> Vec<u8> {
    let per_byte = 8 / bits as usize;
    let mask = if bits == 8 { 0xff } else { (1u8 << bits) - 1 };
    let mut bytes = vec![0u8; statuses.len().div_ceil(per_byte)];
    for (i, status) in statuses.iter().enumerate() {
        bytes[i / per_byte] |= (status & mask) << ((i % per_byte) * bits as usize);
    }
    bytes
}

/// The `lst` of a list: base64url of the zlib-compressed packed statuses.
pub fn encode_lst(statuses: &[u8], bits: u8) -> String {
    crate::jose::b64url_encode(miniz_oxide::deflate::compress_to_vec_zlib(
        &pack(statuses, bits),
        6,
    ))
}

#[cfg(test)]
mod tests {
    use super::testing::{lst, pack};
    use super::*;
    use crate::decider::spec::given;
    use crate::issuer::{IssuerCommand, IssuerDecider, RegisteredKey, Vct};
    use crate::jose::testing::TestKey;
    use crate::values::Name;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    const NOW: i64 = 1_790_000_000;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_datetime(Utc.timestamp_opt(NOW + secs, 0).unwrap())
    }

    fn uri() -> ListUri {
        ListUri::parse("https://issuer.example/status/1").unwrap()
    }

    fn issuer_with(events_after: &[IssuerCommand]) -> Issuer {
        let register = IssuerCommand::Register {
            did: Did::parse("did:web:issuer.example").unwrap(),
            name: Name::parse("name", "Issuer").unwrap(),
            keys: vec![
                RegisteredKey {
                    kid: Kid::parse("ed").unwrap(),
                    jwk: TestKey::ed25519(1).public().to_jwk(),
                },
                RegisteredKey {
                    kid: Kid::parse("p256").unwrap(),
                    jwk: TestKey::p256(2).public().to_jwk(),
                },
            ],
            credential_types: Some(vec![Vct::parse("x").unwrap()]),
        };
        let mut events = IssuerDecider::decide(&register, &None, t(-1000)).unwrap();
        for command in events_after {
            let state = IssuerDecider::fold(&events);
            events.extend(IssuerDecider::decide(command, &state, t(-500)).unwrap());
        }
        IssuerDecider::fold(&events).unwrap()
    }

    fn token(key: &TestKey, kid: &str, payload: serde_json::Value) -> String {
        key.sign(
            &json!({"alg": key.alg(), "typ": TOKEN_TYPE, "kid": kid}),
            &payload,
        )
    }

    fn list_payload(statuses: &[u8], bits: u8, iat: i64) -> serde_json::Value {
        json!({"sub": uri().as_str(), "iat": NOW + iat, "ttl": 300, "status_list": {"bits": bits, "lst": lst(statuses, bits)}})
    }

    #[test]
    fn lookups_at_first_last_and_middle_entries_for_1_2_and_8_bits() {
        let issuer = issuer_with(&[]);
        for (bits, key, kid) in [
            (1u8, TestKey::ed25519(1), "ed"),
            (2, TestKey::p256(2), "p256"),
            (8, TestKey::ed25519(1), "ed"),
        ] {
            let max = if bits == 8 {
                255
            } else {
                (1u16 << bits) as u8 - 1
            };
            let statuses: Vec<u8> = (0..1001u32)
                .map(|i| ((i * 7 + 3) % (u32::from(max) + 1)) as u8)
                .collect();
            let signed = token(&key, kid, list_payload(&statuses, bits, 0));
            let verified = verify_token(&signed, &uri(), &issuer, t(10)).unwrap();
            assert_eq!((verified.bits, verified.kid.as_str()), (bits, kid));
            let events = given::<StatusListDecider>(&[])
                .when(StatusListCommand::Publish { list: verified }, t(10))
                .unwrap();
            let list = StatusListDecider::fold(&events).unwrap();
            for idx in [0usize, 500, 1000] {
                assert_eq!(
                    list.status(idx as u64),
                    Some(statuses[idx]),
                    "bits {bits}, idx {idx}"
                );
            }
            // Past the end of the last byte there is no entry.
            let per_byte = 8 / bits as usize;
            assert_eq!(
                list.status((1001usize.div_ceil(per_byte) * per_byte) as u64),
                None
            );
            assert_eq!(list.version, 1);
        }
    }

    #[test]
    fn entry_zero_is_in_the_low_bits_of_byte_zero() {
        assert_eq!(pack(&[1, 0, 0, 0, 0, 0, 0, 1], 1), vec![0b1000_0001]);
        assert_eq!(status_at(&[0b1110_0100], 2, 0), Some(0));
        assert_eq!(status_at(&[0b1110_0100], 2, 1), Some(1));
        assert_eq!(status_at(&[0b1110_0100], 2, 2), Some(2));
        assert_eq!(status_at(&[0b1110_0100], 2, 3), Some(3));
        assert_eq!(status_at(&[0xab], 8, 0), Some(0xab));
        assert_eq!(status_at(&[0x0f], 4, 1), Some(0));
        assert_eq!(status_at(&[0xff], 1, u64::MAX), None);
    }

    #[test]
    fn lists_from_strangers_suspended_issuers_or_with_bad_signatures_are_refused() {
        let issuer = issuer_with(&[]);
        let payload = list_payload(&[0, 1, 0], 1, 0);
        let stranger = TestKey::ed25519(77);
        assert_eq!(
            verify_token(
                &token(&stranger, "ed", payload.clone()),
                &uri(),
                &issuer,
                t(1)
            ),
            Err(StatusListError::Signature(
                "the signature does not verify".into()
            ))
        );
        assert_eq!(
            verify_token(
                &token(&stranger, "unregistered", payload.clone()),
                &uri(),
                &issuer,
                t(1)
            ),
            Err(StatusListError::UnknownKey)
        );
        let suspended = issuer_with(&[IssuerCommand::Suspend]);
        assert_eq!(
            verify_token(
                &token(&TestKey::ed25519(1), "ed", payload.clone()),
                &uri(),
                &suspended,
                t(1)
            ),
            Err(StatusListError::IssuerSuspended)
        );
        let retired = issuer_with(&[IssuerCommand::RetireKey {
            kid: Kid::parse("ed").unwrap(),
        }]);
        assert_eq!(
            verify_token(
                &token(&TestKey::ed25519(1), "ed", payload.clone()),
                &uri(),
                &retired,
                t(1)
            ),
            Err(StatusListError::KeyRetired)
        );
        // A signature made with one key and labelled with another's kid.
        let mut forged = token(&TestKey::ed25519(1), "ed", payload.clone());
        forged.replace_range(forged.len() - 4.., "AAAA");
        assert!(matches!(
            verify_token(&forged, &uri(), &issuer, t(1)),
            Err(StatusListError::Signature(_))
        ));
        let wrong_alg = TestKey::ed25519(1).sign(
            &json!({"alg": "ES256", "typ": TOKEN_TYPE, "kid": "ed"}),
            &payload,
        );
        assert!(matches!(
            verify_token(&wrong_alg, &uri(), &issuer, t(1)),
            Err(StatusListError::Signature(_))
        ));
    }

    #[test]
    fn claims_and_list_are_checked() {
        let issuer = issuer_with(&[]);
        let key = TestKey::ed25519(1);
        let check = |payload: serde_json::Value| {
            verify_token(&token(&key, "ed", payload), &uri(), &issuer, t(0))
        };
        let untyped = key.sign(
            &json!({"alg": "EdDSA", "kid": "ed"}),
            &list_payload(&[0], 1, 0),
        );
        assert_eq!(
            verify_token(&untyped, &uri(), &issuer, t(0)),
            Err(StatusListError::WrongType)
        );
        let mut other_sub = list_payload(&[0], 1, 0);
        other_sub["sub"] = json!("https://issuer.example/status/2");
        assert!(matches!(
            check(other_sub),
            Err(StatusListError::SubjectMismatch(_))
        ));
        assert_eq!(
            check(list_payload(&[0], 1, 3600)),
            Err(StatusListError::IssuedAt),
            "iat in the future"
        );
        let mut expired = list_payload(&[0], 1, -100);
        expired["exp"] = json!(NOW - 1);
        assert_eq!(check(expired), Err(StatusListError::Expired));
        // Numbers the log could not hold exactly are refused by name.
        for (name, value) in [
            ("exp", json!(i64::MAX)),
            ("exp", json!(1e300)),
            ("exp", json!(9_007_199_254_740_992_i64)),
            ("ttl", json!(u64::MAX)),
            ("ttl", json!(-5)),
            ("iat", json!(-9_007_199_254_740_992_i64)),
        ] {
            let mut payload = list_payload(&[0], 1, 0);
            payload[name] = value;
            assert_eq!(
                check(payload),
                Err(StatusListError::OutOfRange(name)),
                "{name}"
            );
        }
        let mut never = list_payload(&[0], 1, 0);
        never["exp"] = json!(9_007_199_254_740_991_i64);
        assert!(check(never).is_ok(), "the largest safe exp is fine");
        let mut bits_3 = list_payload(&[0], 1, 0);
        bits_3["status_list"]["bits"] = json!(3);
        assert!(matches!(check(bits_3), Err(StatusListError::List(_))));
        let mut not_zlib = list_payload(&[0], 1, 0);
        not_zlib["status_list"]["lst"] = json!("bm90IHpsaWI");
        assert!(matches!(check(not_zlib), Err(StatusListError::List(_))));
        let mut other_iss = list_payload(&[0], 1, 0);
        other_iss["iss"] = json!("did:web:someone.else");
        assert!(matches!(
            check(other_iss),
            Err(StatusListError::IssuerMismatch(_))
        ));
        // A zlib bomb: 20 MiB of zeros compresses to about 20 KB, within the
        // token limit but beyond the list limit.
        let bomb = crate::jose::b64url_encode(miniz_oxide::deflate::compress_to_vec_zlib(
            &vec![0u8; 20 * 1024 * 1024],
            10,
        ));
        let mut bombed = list_payload(&[0], 1, 0);
        bombed["status_list"]["lst"] = json!(bomb);
        assert!(matches!(check(bombed), Err(StatusListError::List(_))));
    }

    #[test]
    fn a_newer_list_replaces_an_older_one_never_the_reverse() {
        let issuer = issuer_with(&[]);
        let key = TestKey::ed25519(1);
        let publish = |iat: i64, statuses: &[u8]| {
            let list = verify_token(
                &token(&key, "ed", list_payload(statuses, 1, iat)),
                &uri(),
                &issuer,
                t(1000),
            )
            .unwrap();
            StatusListCommand::Publish { list }
        };
        let first = given::<StatusListDecider>(&[])
            .when(publish(0, &[0, 0]), t(0))
            .unwrap();
        let newer = given::<StatusListDecider>(&first)
            .when(publish(10, &[0, 1]), t(10))
            .unwrap();
        let events = [first.clone(), newer].concat();
        let list = StatusListDecider::fold(&events).unwrap();
        assert_eq!(
            (list.status(1), list.version, list.iat),
            (Some(INVALID), 2, NOW + 10)
        );
        assert_eq!(
            given::<StatusListDecider>(&events).when(publish(5, &[0, 0]), t(11)),
            Err(StatusListError::NotNewer)
        );
        assert_eq!(
            given::<StatusListDecider>(&events).when(publish(10, &[0, 0]), t(11)),
            Err(StatusListError::NotNewer)
        );
    }

    #[test]
    fn the_claimed_issuer_comes_from_iss_or_the_did_of_kid() {
        let key = TestKey::ed25519(1);
        let with_iss = key.sign(
            &json!({"alg": "EdDSA", "typ": TOKEN_TYPE}),
            &json!({"iss": "did:web:a.example"}),
        );
        assert_eq!(
            claimed_issuer(&with_iss).unwrap().as_str(),
            "did:web:a.example"
        );
        let with_kid = key.sign(
            &json!({"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": "did:web:b.example#k1"}),
            &json!({}),
        );
        assert_eq!(
            claimed_issuer(&with_kid).unwrap().as_str(),
            "did:web:b.example"
        );
        let neither = key.sign(&json!({"alg": "EdDSA", "kid": "k1"}), &json!({}));
        assert_eq!(claimed_issuer(&neither), Err(StatusListError::NoIssuer));
    }

    #[test]
    fn uris_are_absolute_http_urls() {
        assert!(ListUri::parse("https://issuer.example/status/1").is_ok());
        for bad in [
            "",
            "/status/1",
            "ftp://x/y",
            "https://",
            "https:///x",
            "https://a b/",
        ] {
            assert!(ListUri::parse(bad).is_err(), "{bad:?}");
        }
        assert_ne!(
            ListUri::parse("https://a.example/1").unwrap().stream_id(),
            ListUri::parse("https://a.example/2").unwrap().stream_id()
        );
    }
}
