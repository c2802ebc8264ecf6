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
use crate::ids::{Category, StreamId};
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
        StreamId::of(Category::StatusList, Uuid::new_v8(bytes))
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
    /// The operator posts a list (`POST /v1/status-lists`).
    Publish { list: VerifiedList },
    /// Proofline fetched the list from its URI. Recorded only when it
    /// differs from the list the log holds (a new `iat`, other entries);
    /// the same list signed again is not news.
    RecordFetch {
        list: VerifiedList,
        fetched_at: Timestamp,
        http_status: u16,
    },
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
    /// Proofline fetched the list from `uri` and it had changed.
    StatusListFetched {
        uri: ListUri,
        issuer: Did,
        kid: Kid,
        iat: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exp: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl: Option<u64>,
        bits: u8,
        /// The whole signed token, as fetched.
        token: String,
        fetched_at: Timestamp,
        http_status: u16,
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
    /// How long the issuer says the list may be cached, in seconds.
    pub ttl: Option<u64>,
    pub bits: u8,
    /// The `lst` as signed (compressed), to tell a changed list.
    pub lst: String,
    pub entries: Vec<u8>,
    /// How many versions have been recorded (the stream version).
    pub version: u64,
    /// When Proofline fetched this version; `None` when the operator posted
    /// it.
    pub fetched_at: Option<Timestamp>,
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
        let list = match command {
            StatusListCommand::Publish { list } | StatusListCommand::RecordFetch { list, .. } => {
                list
            }
        };
        if let Some(current) = state {
            if current.issuer != list.issuer {
                return Err(StatusListError::OtherIssuer);
            }
            let same = current.iat == list.iat
                && current.lst == list.lst
                && current.bits == list.bits
                && current.exp == list.exp
                && current.ttl == list.ttl;
            if let StatusListCommand::RecordFetch { .. } = command
                && same
            {
                return Ok(Vec::new());
            }
            if list.iat <= current.iat {
                return Err(StatusListError::NotNewer);
            }
        }
        let VerifiedList {
            uri,
            issuer,
            kid,
            iat,
            exp,
            ttl,
            bits,
            token,
            ..
        } = list.clone();
        Ok(vec![match command {
            StatusListCommand::Publish { .. } => StatusListEvent::StatusListPublished {
                uri,
                issuer,
                kid,
                iat,
                exp,
                ttl,
                bits,
                token,
            },
            StatusListCommand::RecordFetch {
                fetched_at,
                http_status,
                ..
            } => StatusListEvent::StatusListFetched {
                uri,
                issuer,
                kid,
                iat,
                exp,
                ttl,
                bits,
                token,
                fetched_at: *fetched_at,
                http_status: *http_status,
            },
        }])
    }

    fn evolve(state: Option<StatusList>, event: &StatusListEvent) -> Option<StatusList> {
        let (uri, issuer, kid, iat, exp, ttl, bits, token, fetched_at) = match event {
            StatusListEvent::StatusListPublished {
                uri,
                issuer,
                kid,
                iat,
                exp,
                ttl,
                bits,
                token,
            } => (uri, issuer, kid, iat, exp, ttl, bits, token, None),
            StatusListEvent::StatusListFetched {
                uri,
                issuer,
                kid,
                iat,
                exp,
                ttl,
                bits,
                token,
                fetched_at,
                ..
            } => (
                uri,
                issuer,
                kid,
                iat,
                exp,
                ttl,
                bits,
                token,
                Some(*fetched_at),
            ),
        };
        // The token was checked when it was recorded; only its list is read
        // here. A list that cannot be read leaves the state as it was.
        let lst = CompactJws::parse(token).ok().and_then(|jws| {
            jws.payload
                .get("status_list")?
                .get("lst")?
                .as_str()
                .map(str::to_owned)
        });
        let Some((lst, entries)) =
            lst.and_then(|lst| decompress(&lst).ok().map(|entries| (lst, entries)))
        else {
            return state;
        };
        Some(StatusList {
            uri: uri.clone(),
            issuer: issuer.clone(),
            kid: kid.clone(),
            iat: *iat,
            exp: *exp,
            ttl: *ttl,
            bits: *bits,
            lst,
            entries,
            version: state.map_or(1, |s| s.version + 1),
            fetched_at,
        })
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
