//! The PresentationRequest aggregate: one OpenID4VP 1.0 flow, from the
//! lender's request to the wallet's answer.
//!
//! A request is created by a lender, retrieved by a wallet (at its
//! `request_uri`), answered once (a response whose presentations all
//! verified and satisfy the DCQL query, one that did not, or a wallet
//! error), or expires. The first processed answer wins: a later one is
//! refused and the refusal recorded, up to [`MAX_REFUSALS`] per request so
//! that a sender who learnt the `state` cannot grow the log without bound.
//!
//! The stream id is derived from the request's `state` ([`PresentationRequestId::for_state`]),
//! so the response endpoint finds a request from what the wallet posts
//! without an index, and the id alone (which is in the `request_uri`) does
//! not give the state away. Nonce, state and response code enter the log
//! only as SHA-256 digests: the service keeps them sealed outside it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::decider::{Decider, EventSchema, Rejection, RejectionKind};
use crate::ids::{Category, StreamId};
use crate::lender::LenderId;
use crate::log::Timestamp;
use crate::verification_record::VerificationId;

/// How many refused answers one request records at most.
pub const MAX_REFUSALS: u32 = 8;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct PresentationRequestId(Uuid);

impl PresentationRequestId {
    /// The id of the request whose `state` is `state`: a UUIDv8 from
    /// SHA-256("proofline oid4vp request" ‖ 0x00 ‖ state).
    pub fn for_state(state: &str) -> Self {
        Self(crate::ids::derived_uuid(&[
            b"proofline oid4vp request",
            state.as_bytes(),
        ]))
    }

    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    pub fn stream_id(&self) -> StreamId {
        StreamId::of(Category::PresentationRequest, self.0)
    }

    pub fn from_stream(stream: &StreamId) -> Option<Self> {
        stream.uuid_of(Category::PresentationRequest).map(Self)
    }

    /// The id of the verification of the `index`th presentation given for
    /// the credential query `query_id`: derived, so that two answers racing
    /// for one request collide in the store and only one is recorded.
    pub fn verification_id(&self, query_id: &str, index: usize) -> VerificationId {
        VerificationId::from_uuid(crate::ids::derived_uuid(&[
            self.0.as_bytes(),
            query_id.as_bytes(),
            &(index as u64).to_be_bytes(),
        ]))
    }
}

impl fmt::Display for PresentationRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// §8.2 and §8.3: how the wallet sends its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum ResponseMode {
    #[serde(rename = "direct_post")]
    DirectPost,
    #[serde(rename = "direct_post.jwt")]
    DirectPostJwt,
}

impl ResponseMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseMode::DirectPost => "direct_post",
            ResponseMode::DirectPostJwt => "direct_post.jwt",
        }
    }
}

/// §5.10: how the wallet fetches the request object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RequestUriMethod {
    Get,
    Post,
}

impl RequestUriMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestUriMethod::Get => "get",
            RequestUriMethod::Post => "post",
        }
    }
}

/// Where a flow stands, as the lender reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Retrieved,
    Verified,
    Rejected,
    WalletError,
    Expired,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Pending,
        Status::Retrieved,
        Status::Verified,
        Status::Rejected,
        Status::WalletError,
        Status::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Retrieved => "retrieved",
            Status::Verified => "verified",
            Status::Rejected => "rejected",
            Status::WalletError => "wallet_error",
            Status::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the flow is over: nothing changes it any more.
    pub fn is_final(self) -> bool {
        !matches!(self, Status::Pending | Status::Retrieved)
    }
}

/// Why a processed response did not verify the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResponseRejection {
    /// The `vp_token` is not what §8.1 says (not a JSON object of arrays of
    /// presentations, or empty).
    MalformedVpToken,
    /// At least one presentation failed one of the seven steps; its
    /// verification record says which and why.
    PresentationInvalid,
    /// Every presentation verified, but together they do not satisfy the
    /// DCQL query (§6.4, §8.6).
    QueryNotSatisfied,
}

impl ResponseRejection {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseRejection::MalformedVpToken => "malformed_vp_token",
            ResponseRejection::PresentationInvalid => "presentation_invalid",
            ResponseRejection::QueryNotSatisfied => "query_not_satisfied",
        }
    }
}

/// Why an answer was refused without being processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The request was answered before (§14.1.2: the first response wins).
    AlreadyAnswered,
    /// The request expired before this answer came.
    Expired,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::AlreadyAnswered => "already_answered",
            Refusal::Expired => "expired",
        }
    }
}

/// Why a wallet's response could not be tied to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unmatched {
    /// Its `state` names no request.
    UnknownState,
    /// A JWE whose `kid` names no request, or that does not decrypt with
    /// the key of the request it names.
    Undecryptable,
}

impl Unmatched {
    pub fn as_str(self) -> &'static str {
        match self {
            Unmatched::UnknownState => "unknown_state",
            Unmatched::Undecryptable => "undecryptable",
        }
    }
}

/// The record of responses no request could be found for, on the one
/// stream `oid4vp-unmatched` (nothing of what they held: anyone can send
/// one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum UnmatchedResponseEvent {
    UnmatchedResponseRefused {
        reason: Unmatched,
        received_at: Timestamp,
    },
}

impl EventSchema for UnmatchedResponseEvent {}

/// The stream of [`UnmatchedResponseEvent`]s.
pub fn unmatched_stream() -> StreamId {
    StreamId::singleton(Category::Oid4vp, Some("unmatched"))
}

/// A wallet's error response (§8.5): the code as sent (checked against the
/// RFC 6749 character set, at most 64 bytes) and its description (bounded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WalletError {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl WalletError {
    /// An error response as posted; `None` when `error` is not an RFC 6749
    /// error code (%x20-21 / %x23-5B / %x5D-7E, 1 to 64 bytes).
    pub fn parse(error: &str, description: Option<&str>) -> Option<Self> {
        let allowed = |c: char| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e');
        if error.is_empty() || error.len() > 64 || !error.chars().all(allowed) {
            return None;
        }
        let description = description
            .map(|d| d.chars().filter(|c| allowed(*c)).collect::<String>())
            .map(|d| crate::bounded::text(&d))
            .filter(|d| !d.is_empty());
        Some(Self {
            error: error.to_owned(),
            error_description: description,
        })
    }
}

/// Everything a new request is made of, decided by the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NewRequest {
    pub request_id: PresentationRequestId,
    pub lender_id: LenderId,
    /// The whole `client_id`, with its prefix (§5.9).
    pub client_id: String,
    pub response_mode: ResponseMode,
    pub request_uri_method: RequestUriMethod,
    /// The DCQL query as validated ([`crate::dcql::DcqlQuery::to_value`]),
    /// without the `values` of its claims queries: those may be claim
    /// values (a nationality, a name), which the log never holds. The
    /// whole query is sealed with the request.
    pub dcql_query: serde_json::Value,
    /// Hex SHA-256 of the whole query's JSON, as sent to wallets.
    pub dcql_query_sha256: String,
    pub expires_at: Timestamp,
    /// Whether a `same_device_return_url` was given: then the result is
    /// released only with the response code.
    pub same_device: bool,
    pub nonce_sha256: String,
    pub state_sha256: String,
    /// The `kid` of the ephemeral encryption key (`direct_post.jwt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_kid: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PresentationRequestCommand {
    Create(Box<NewRequest>),
    /// A wallet fetched the request object.
    Retrieve {
        method: RequestUriMethod,
        wallet_nonce: bool,
    },
    /// A processed response whose presentations all verified and satisfy
    /// the query.
    Accept {
        presentations: BTreeMap<String, Vec<VerificationId>>,
        response_code_sha256: Option<String>,
    },
    /// A processed response that does not verify the request.
    Reject {
        presentations: BTreeMap<String, Vec<VerificationId>>,
        reason: ResponseRejection,
        detail: String,
    },
    /// The wallet's error response.
    ReceiveWalletError {
        error: WalletError,
        response_code_sha256: Option<String>,
    },
    /// Marks the request expired once its time is over.
    Expire,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum PresentationRequestEvent {
    PresentationRequestCreated {
        #[serde(flatten)]
        request: Box<NewRequest>,
        created_at: Timestamp,
    },
    PresentationRequestRetrieved {
        request_id: PresentationRequestId,
        method: RequestUriMethod,
        wallet_nonce: bool,
        retrieved_at: Timestamp,
    },
    PresentationResponseAccepted {
        request_id: PresentationRequestId,
        lender_id: LenderId,
        presentations: BTreeMap<String, Vec<VerificationId>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response_code_sha256: Option<String>,
        received_at: Timestamp,
    },
    PresentationResponseRejected {
        request_id: PresentationRequestId,
        lender_id: LenderId,
        presentations: BTreeMap<String, Vec<VerificationId>>,
        reason: ResponseRejection,
        detail: String,
        received_at: Timestamp,
    },
    WalletErrorReceived {
        request_id: PresentationRequestId,
        lender_id: LenderId,
        #[serde(flatten)]
        error: WalletError,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response_code_sha256: Option<String>,
        received_at: Timestamp,
    },
    PresentationRequestExpired {
        request_id: PresentationRequestId,
        lender_id: LenderId,
        expired_at: Timestamp,
    },
    /// An answer that came after the flow was over; it changes nothing.
    PresentationResponseRefused {
        request_id: PresentationRequestId,
        reason: Refusal,
        received_at: Timestamp,
    },
}

impl EventSchema for PresentationRequestEvent {}

impl PresentationRequestEvent {
    /// Whether this event ends the flow (the webhook's
    /// `presentation_request.completed`).
    pub fn completes(&self) -> bool {
        match self {
            PresentationRequestEvent::PresentationResponseAccepted { .. }
            | PresentationRequestEvent::PresentationResponseRejected { .. }
            | PresentationRequestEvent::WalletErrorReceived { .. }
            | PresentationRequestEvent::PresentationRequestExpired { .. } => true,
            PresentationRequestEvent::PresentationRequestCreated { .. }
            | PresentationRequestEvent::PresentationRequestRetrieved { .. }
            | PresentationRequestEvent::PresentationResponseRefused { .. } => false,
        }
    }
}

/// What the log says of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct PresentationRequest {
    pub request: NewRequest,
    pub created_at: Timestamp,
    pub status: Status,
    pub retrieved_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub presentations: BTreeMap<String, Vec<VerificationId>>,
    pub rejection: Option<(ResponseRejection, String)>,
    pub wallet_error: Option<WalletError>,
    pub response_code_sha256: Option<String>,
    pub refusals: u32,
}

impl PresentationRequest {
    /// A request just created: what `PresentationRequestCreated` leads to.
    pub fn created(request: NewRequest, created_at: Timestamp) -> Self {
        Self {
            request,
            created_at,
            status: Status::Pending,
            retrieved_at: None,
            completed_at: None,
            presentations: BTreeMap::new(),
            rejection: None,
            wallet_error: None,
            response_code_sha256: None,
            refusals: 0,
        }
    }

    /// Whether the request's time is over at `now` and nothing ended it.
    pub fn lapsed(&self, now: Timestamp) -> bool {
        !self.status.is_final() && now >= self.request.expires_at
    }

    /// The status as of `now`: a request past its expiry reads `expired`
    /// even before the event that says so is recorded.
    pub fn status_at(&self, now: Timestamp) -> Status {
        if self.lapsed(now) {
            Status::Expired
        } else {
            self.status
        }
    }

    /// Whether the DCQL query was judged satisfied: `None` until a response
    /// was processed.
    pub fn dcql_satisfied(&self) -> Option<bool> {
        match self.status {
            Status::Verified => Some(true),
            Status::Rejected => Some(false),
            Status::Pending | Status::Retrieved | Status::WalletError | Status::Expired => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresentationRequestError {
    #[error("the presentation request exists already")]
    AlreadyExists,
    #[error("no such presentation request")]
    NotFound,
    #[error("the presentation request expired")]
    Expired,
    #[error("the presentation request was answered")]
    AlreadyAnswered,
    #[error("the presentation request has not expired")]
    NotExpired,
    #[error("the presentation request refused too many late answers")]
    TooManyRefusals,
    #[error("the request expires {0} seconds after it is created; 60 to 600 are allowed")]
    Lifetime(i64),
}

impl Rejection for PresentationRequestError {
    fn kind(&self) -> RejectionKind {
        match self {
            PresentationRequestError::NotFound => RejectionKind::NotFound,
            PresentationRequestError::Lifetime(_) => RejectionKind::Invalid,
            PresentationRequestError::AlreadyExists
            | PresentationRequestError::Expired
            | PresentationRequestError::AlreadyAnswered
            | PresentationRequestError::NotExpired
            | PresentationRequestError::TooManyRefusals => RejectionKind::Conflict,
        }
    }
}

/// The shortest and longest lifetime of a request, in seconds.
pub const LIFETIME_SECONDS: std::ops::RangeInclusive<i64> = 60..=600;

pub struct PresentationRequestDecider;

impl PresentationRequestDecider {
    /// An answer to a request that is over: refused and recorded, or,
    /// past [`MAX_REFUSALS`], refused without a record.
    fn refuse(
        request: &PresentationRequest,
        now: Timestamp,
    ) -> Result<Vec<PresentationRequestEvent>, PresentationRequestError> {
        if request.refusals >= MAX_REFUSALS {
            return Err(PresentationRequestError::TooManyRefusals);
        }
        let id = request.request.request_id;
        let mut events = Vec::new();
        let reason = if request.lapsed(now) {
            events.push(Self::expired(request, now));
            Refusal::Expired
        } else if request.status == Status::Expired {
            Refusal::Expired
        } else {
            Refusal::AlreadyAnswered
        };
        events.push(PresentationRequestEvent::PresentationResponseRefused {
            request_id: id,
            reason,
            received_at: now,
        });
        Ok(events)
    }

    fn expired(request: &PresentationRequest, now: Timestamp) -> PresentationRequestEvent {
        PresentationRequestEvent::PresentationRequestExpired {
            request_id: request.request.request_id,
            lender_id: request.request.lender_id,
            expired_at: now,
        }
    }
}

impl Decider for PresentationRequestDecider {
    type Command = PresentationRequestCommand;
    type Event = PresentationRequestEvent;
    type State = Option<PresentationRequest>;
    type Error = PresentationRequestError;

    fn decide(
        command: &PresentationRequestCommand,
        state: &Option<PresentationRequest>,
        now: Timestamp,
    ) -> Result<Vec<PresentationRequestEvent>, PresentationRequestError> {
        use PresentationRequestCommand as C;
        use PresentationRequestEvent as E;
        let Some(request) = state else {
            return match command {
                C::Create(new) => {
                    let lifetime = (new.expires_at.as_datetime() - now.as_datetime()).num_seconds();
                    if !LIFETIME_SECONDS.contains(&lifetime) {
                        return Err(PresentationRequestError::Lifetime(lifetime));
                    }
                    Ok(vec![E::PresentationRequestCreated {
                        request: new.clone(),
                        created_at: now,
                    }])
                }
                _ => Err(PresentationRequestError::NotFound),
            };
        };
        let id = request.request.request_id;
        let lender_id = request.request.lender_id;
        // An answer to a request that is over is refused (and recorded).
        let over = request.lapsed(now) || request.status.is_final();
        match command {
            C::Create(_) => Err(PresentationRequestError::AlreadyExists),
            C::Expire => {
                if request.lapsed(now) {
                    Ok(vec![Self::expired(request, now)])
                } else if request.status == Status::Expired {
                    Ok(Vec::new())
                } else {
                    Err(PresentationRequestError::NotExpired)
                }
            }
            C::Retrieve {
                method,
                wallet_nonce,
            } => match request.status_at(now) {
                Status::Pending => Ok(vec![E::PresentationRequestRetrieved {
                    request_id: id,
                    method: *method,
                    wallet_nonce: *wallet_nonce,
                    retrieved_at: now,
                }]),
                // Fetching again (a wallet retrying) changes nothing.
                Status::Retrieved => Ok(Vec::new()),
                Status::Expired => Err(PresentationRequestError::Expired),
                Status::Verified | Status::Rejected | Status::WalletError => {
                    Err(PresentationRequestError::AlreadyAnswered)
                }
            },
            C::Accept { .. } | C::Reject { .. } | C::ReceiveWalletError { .. } if over => {
                Self::refuse(request, now)
            }
            C::Accept {
                presentations,
                response_code_sha256,
            } => Ok(vec![E::PresentationResponseAccepted {
                request_id: id,
                lender_id,
                presentations: presentations.clone(),
                response_code_sha256: response_code_sha256.clone(),
                received_at: now,
            }]),
            C::Reject {
                presentations,
                reason,
                detail,
            } => Ok(vec![E::PresentationResponseRejected {
                request_id: id,
                lender_id,
                presentations: presentations.clone(),
                reason: *reason,
                detail: crate::bounded::text(detail),
                received_at: now,
            }]),
            C::ReceiveWalletError {
                error,
                response_code_sha256,
            } => Ok(vec![E::WalletErrorReceived {
                request_id: id,
                lender_id,
                error: error.clone(),
                response_code_sha256: response_code_sha256.clone(),
                received_at: now,
            }]),
        }
    }

    fn evolve(
        state: Option<PresentationRequest>,
        event: &PresentationRequestEvent,
    ) -> Option<PresentationRequest> {
        use PresentationRequestEvent as E;
        if let E::PresentationRequestCreated {
            request,
            created_at,
        } = event
        {
            return Some(state.unwrap_or_else(|| {
                PresentationRequest::created((**request).clone(), *created_at)
            }));
        }
        // Nothing else can have been decided before the request existed.
        let mut request = state?;
        match event {
            E::PresentationRequestCreated { .. } => {}
            E::PresentationRequestRetrieved { retrieved_at, .. } => {
                request.status = Status::Retrieved;
                request.retrieved_at = Some(*retrieved_at);
            }
            E::PresentationResponseAccepted {
                presentations,
                response_code_sha256,
                received_at,
                ..
            } => {
                request.status = Status::Verified;
                request.presentations = presentations.clone();
                request.response_code_sha256 = response_code_sha256.clone();
                request.completed_at = Some(*received_at);
            }
            E::PresentationResponseRejected {
                presentations,
                reason,
                detail,
                received_at,
                ..
            } => {
                request.status = Status::Rejected;
                request.presentations = presentations.clone();
                request.rejection = Some((*reason, detail.clone()));
                request.completed_at = Some(*received_at);
            }
            E::WalletErrorReceived {
                error,
                response_code_sha256,
                received_at,
                ..
            } => {
                request.status = Status::WalletError;
                request.wallet_error = Some(error.clone());
                request.response_code_sha256 = response_code_sha256.clone();
                request.completed_at = Some(*received_at);
            }
            E::PresentationRequestExpired { expired_at, .. } => {
                request.status = Status::Expired;
                request.completed_at = Some(*expired_at);
            }
            E::PresentationResponseRefused { .. } => request.refusals += 1,
        }
        Some(request)
    }
}
