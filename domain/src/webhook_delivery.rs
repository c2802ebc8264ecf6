//! Webhook deliveries: what a lender is told about, the body it receives,
//! the retry schedule, and the WebhookDelivery aggregate that records each
//! attempt's outcome.
//!
//! A delivery's id is the id of the event it tells about, which is also the
//! `webhook-id` header: retries and redeliveries carry the same id, so a
//! receiver can drop duplicates. Its stream is `webhook-<event id>`.
//!
//! Which events are told: a lender's verifications (PresentationVerified,
//! PresentationRejected) and its own key changes (ApiKeyRotated,
//! ApiKeyRevoked). The body names outcomes, steps, issuers and claim
//! *names*, never a claim value, a nonce or a key.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::decider::{Decider, EventSchema, Rejection, RejectionKind};
use crate::ids::{Category, StreamId};
use crate::lender::{LenderEvent, LenderId};
use crate::log::{Envelope, Timestamp};
use crate::presentation_request::PresentationRequestEvent;
use crate::verification_record::VerificationEvent;

/// The retry delays after each failed attempt of a round (about a day in
/// all, as Standard Webhooks senders do): 5 s, 30 s, 2 min, 10 min, 1 h,
/// 6 h, 12 h. The attempt after the last delay is the round's last.
pub const DEFAULT_RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(3_600),
    Duration::from_secs(21_600),
    Duration::from_secs(43_200),
];

/// How far a delay is spread either way, so that receivers coming back up
/// are not hit by every retry at once.
pub const JITTER: f64 = 0.2;

/// The delay before the next attempt after `failed` failed attempts in this
/// round, or `None` when the round's budget is spent. `unit` is a uniform
/// sample in [0, 1) that spreads the delay by ±[`JITTER`].
pub fn next_delay(schedule: &[Duration], failed: u32, unit: f64) -> Option<Duration> {
    let base = *schedule.get(usize::try_from(failed).ok()?.checked_sub(1)?)?;
    let factor = 1.0 - JITTER + 2.0 * JITTER * unit.clamp(0.0, 1.0);
    Some(base.mul_f64(factor))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeliveryId(Uuid);

impl DeliveryId {
    /// The delivery of the event with this id.
    pub fn of_event(event_id: Uuid) -> Self {
        Self(event_id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    pub fn stream_id(&self) -> StreamId {
        StreamId::of(Category::Webhook, self.0)
    }

    pub fn from_stream(stream: &StreamId) -> Option<Self> {
        stream.uuid_of(Category::Webhook).map(Self)
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a lender is told about one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub delivery_id: DeliveryId,
    pub lender_id: LenderId,
    /// The webhook event type, such as `verification.verified`.
    pub kind: &'static str,
    /// The JSON body, as every attempt sends it.
    pub body: String,
}

/// What a lender is told of an event of its own: the webhook type and the
/// `data` of the body. Each implementation is an exhaustive `match`, so a
/// new event cannot be added without saying whether lenders are told.
pub trait Told {
    fn told(&self) -> Option<(&'static str, Value)>;
}

impl Told for LenderEvent {
    fn told(&self) -> Option<(&'static str, Value)> {
        match self {
            LenderEvent::ApiKeyRotated {
                new_prefix,
                issued_at,
                previous_prefix,
                previous_valid_until,
                ..
            } => Some((
                "api_key.rotated",
                json!({
                    "new_prefix": new_prefix.to_string(),
                    "issued_at": issued_at,
                    "previous_prefix": previous_prefix.to_string(),
                    "previous_valid_until": previous_valid_until,
                }),
            )),
            LenderEvent::ApiKeyRevoked {
                key_prefix,
                revoked_at,
            } => Some((
                "api_key.revoked",
                json!({"key_prefix": key_prefix.to_string(), "revoked_at": revoked_at}),
            )),
            // The lender made these itself, or had no webhook yet, or the
            // operator did (a deactivated or suspended lender is not told).
            LenderEvent::LenderRegistered { .. }
            | LenderEvent::ApiKeyIssued { .. }
            | LenderEvent::LenderDeactivated { .. }
            | LenderEvent::LenderReactivated { .. }
            | LenderEvent::LenderSuspended { .. }
            | LenderEvent::LenderUnsuspended { .. }
            | LenderEvent::WebhookConfigured { .. }
            | LenderEvent::WebhookRemoved { .. } => None,
        }
    }
}

impl Told for VerificationEvent {
    fn told(&self) -> Option<(&'static str, Value)> {
        let kind = match self {
            VerificationEvent::PresentationVerified(_) => "verification.verified",
            VerificationEvent::PresentationRejected(_) => "verification.rejected",
        };
        let r = self.record();
        let mut data = json!({
            "verification_id": r.verification_id,
            "verified": r.verified,
            "failed_step": r.failed_step.map(|s| s.name()),
            "reason": r.reason,
            "issuer": r.issuer,
            "vct": r.vct,
            "disclosed_claims": r.disclosed_claims,
            "verified_at": r.verified_at,
        });
        if let Some(first) = r.first_use {
            data["first_use"] = json!(first);
        }
        Some((kind, data))
    }
}

impl Told for PresentationRequestEvent {
    /// Only the end of a flow, with its outcome and the verifications it
    /// made; never a claim value (there is none in the log to tell).
    fn told(&self) -> Option<(&'static str, Value)> {
        use PresentationRequestEvent as E;
        let (request_id, status, extra) = match self {
            E::PresentationRequestCreated { .. }
            | E::PresentationRequestRetrieved { .. }
            | E::PresentationResponseRefused { .. } => return None,
            E::PresentationResponseAccepted {
                request_id,
                presentations,
                ..
            } => (
                request_id,
                "verified",
                json!({"dcql_satisfied": true, "presentations": presentations}),
            ),
            E::PresentationResponseRejected {
                request_id,
                presentations,
                reason,
                ..
            } => (
                request_id,
                "rejected",
                json!({"dcql_satisfied": false, "presentations": presentations,
                       "reason": reason.as_str()}),
            ),
            E::WalletErrorReceived {
                request_id, error, ..
            } => (request_id, "wallet_error", json!({"wallet_error": error})),
            E::PresentationRequestExpired { request_id, .. } => (request_id, "expired", json!({})),
        };
        let mut data = json!({"request_id": request_id, "status": status});
        if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), extra) {
            data.extend(extra);
        }
        Some(("presentation_request.completed", data))
    }
}

/// The notice of a stored event, if its lender is told about it.
pub fn notice_of(envelope: &Envelope) -> Option<Notice> {
    let (lender_id, (kind, data)) = match envelope.stream_id.kind()? {
        Category::Verification => {
            let event = envelope.decode::<VerificationEvent>().ok()?;
            (event.record().lender_id, event.told()?)
        }
        Category::Lender => {
            let lender = LenderId::from_stream(&envelope.stream_id)?;
            (lender, envelope.decode::<LenderEvent>().ok()?.told()?)
        }
        Category::PresentationRequest => {
            let event = envelope.decode::<PresentationRequestEvent>().ok()?;
            let lender = match &event {
                PresentationRequestEvent::PresentationResponseAccepted { lender_id, .. }
                | PresentationRequestEvent::PresentationResponseRejected { lender_id, .. }
                | PresentationRequestEvent::WalletErrorReceived { lender_id, .. }
                | PresentationRequestEvent::PresentationRequestExpired { lender_id, .. } => {
                    *lender_id
                }
                PresentationRequestEvent::PresentationRequestCreated { request, .. } => {
                    request.lender_id
                }
                PresentationRequestEvent::PresentationRequestRetrieved { .. }
                | PresentationRequestEvent::PresentationResponseRefused { .. } => return None,
            };
            (lender, event.told()?)
        }
        // Nothing of these streams is a lender's own news.
        Category::Email
        | Category::Auditor
        | Category::Operator
        | Category::Issuer
        | Category::Registry
        | Category::StatusList
        | Category::Webhook
        | Category::Log
        | Category::Service
        | Category::Oid4vp => return None,
    };
    let body = json!({
        "id": envelope.event_id,
        "type": kind,
        "timestamp": envelope.recorded_at,
        "position": envelope.position,
        "data": data,
    });
    Some(Notice {
        delivery_id: DeliveryId::of_event(envelope.event_id),
        lender_id,
        kind,
        body: body.to_string(),
    })
}

/// Longest error text an event keeps.
pub const MAX_ERROR_TEXT: usize = 300;

fn bounded(text: &str) -> String {
    if text.len() <= MAX_ERROR_TEXT {
        return text.to_owned();
    }
    let mut end = MAX_ERROR_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum WebhookDeliveryEvent {
    /// An attempt failed; another follows at `next_attempt_at`.
    WebhookDeliveryAttemptFailed {
        lender_id: LenderId,
        attempt: u32,
        error: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        attempted_at: Timestamp,
        next_attempt_at: Timestamp,
    },
    /// The receiver answered 2xx.
    WebhookDelivered {
        lender_id: LenderId,
        attempt: u32,
        status: u16,
        delivered_at: Timestamp,
    },
    /// The round's last attempt failed; only a redelivery sends it again.
    WebhookDeliveryFailed {
        lender_id: LenderId,
        attempt: u32,
        error: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        failed_at: Timestamp,
    },
    /// The lender asked for another round.
    WebhookRedeliveryRequested {
        lender_id: LenderId,
        requested_at: Timestamp,
    },
}

impl EventSchema for WebhookDeliveryEvent {}

/// How an attempt ended, as the consumer saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    Delivered {
        status: u16,
    },
    /// Failed; `retry_at` is when to try again, `None` when the budget is
    /// spent.
    Failed {
        error: String,
        status: Option<u16>,
        retry_at: Option<Timestamp>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum WebhookDeliveryCommand {
    /// Records attempt number `attempt` (counted over the delivery's life).
    RecordAttempt {
        lender_id: LenderId,
        attempt: u32,
        outcome: AttemptOutcome,
    },
    RequestRedelivery {
        lender_id: LenderId,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryStatus {
    /// Waiting for its first attempt or a retry.
    #[default]
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn name(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryState {
    /// Known once an event is recorded.
    pub lender_id: Option<LenderId>,
    pub attempts: u32,
    pub status: DeliveryStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("no such delivery")]
    NotFound,
    #[error("attempt {attempt} is recorded already (the delivery has {recorded})")]
    AttemptRecorded { attempt: u32, recorded: u32 },
    #[error("the delivery is {0} already")]
    Settled(&'static str),
    #[error("the delivery is still pending; it is retried on its own")]
    StillPending,
}

impl Rejection for DeliveryError {
    fn kind(&self) -> RejectionKind {
        match self {
            DeliveryError::NotFound => RejectionKind::NotFound,
            DeliveryError::AttemptRecorded { .. }
            | DeliveryError::Settled(_)
            | DeliveryError::StillPending => RejectionKind::Conflict,
        }
    }
}

pub struct WebhookDeliveryDecider;

impl Decider for WebhookDeliveryDecider {
    type Command = WebhookDeliveryCommand;
    type Event = WebhookDeliveryEvent;
    type State = DeliveryState;
    type Error = DeliveryError;

    fn decide(
        command: &Self::Command,
        state: &Self::State,
        now: Timestamp,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            WebhookDeliveryCommand::RecordAttempt {
                lender_id,
                attempt,
                outcome,
            } => {
                if state.lender_id.is_some_and(|l| l != *lender_id) {
                    return Err(DeliveryError::NotFound);
                }
                if state.status != DeliveryStatus::Pending {
                    return Err(DeliveryError::Settled(state.status.name()));
                }
                if *attempt != state.attempts + 1 {
                    return Err(DeliveryError::AttemptRecorded {
                        attempt: *attempt,
                        recorded: state.attempts,
                    });
                }
                let lender_id = *lender_id;
                let attempt = *attempt;
                Ok(vec![match outcome {
                    AttemptOutcome::Delivered { status } => {
                        WebhookDeliveryEvent::WebhookDelivered {
                            lender_id,
                            attempt,
                            status: *status,
                            delivered_at: now,
                        }
                    }
                    AttemptOutcome::Failed {
                        error,
                        status,
                        retry_at: Some(next),
                    } => WebhookDeliveryEvent::WebhookDeliveryAttemptFailed {
                        lender_id,
                        attempt,
                        error: bounded(error),
                        status: *status,
                        attempted_at: now,
                        next_attempt_at: *next,
                    },
                    AttemptOutcome::Failed {
                        error,
                        status,
                        retry_at: None,
                    } => WebhookDeliveryEvent::WebhookDeliveryFailed {
                        lender_id,
                        attempt,
                        error: bounded(error),
                        status: *status,
                        failed_at: now,
                    },
                }])
            }
            WebhookDeliveryCommand::RequestRedelivery { lender_id } => {
                if state.lender_id.is_some_and(|l| l != *lender_id) {
                    return Err(DeliveryError::NotFound);
                }
                if state.status == DeliveryStatus::Pending {
                    return Err(DeliveryError::StillPending);
                }
                Ok(vec![WebhookDeliveryEvent::WebhookRedeliveryRequested {
                    lender_id: *lender_id,
                    requested_at: now,
                }])
            }
        }
    }

    fn evolve(state: Self::State, event: &Self::Event) -> Self::State {
        match event {
            WebhookDeliveryEvent::WebhookDeliveryAttemptFailed {
                lender_id, attempt, ..
            } => DeliveryState {
                lender_id: Some(*lender_id),
                attempts: *attempt,
                status: DeliveryStatus::Pending,
            },
            WebhookDeliveryEvent::WebhookDelivered {
                lender_id, attempt, ..
            } => DeliveryState {
                lender_id: Some(*lender_id),
                attempts: *attempt,
                status: DeliveryStatus::Delivered,
            },
            WebhookDeliveryEvent::WebhookDeliveryFailed {
                lender_id, attempt, ..
            } => DeliveryState {
                lender_id: Some(*lender_id),
                attempts: *attempt,
                status: DeliveryStatus::Failed,
            },
            WebhookDeliveryEvent::WebhookRedeliveryRequested { lender_id, .. } => DeliveryState {
                lender_id: Some(*lender_id),
                status: DeliveryStatus::Pending,
                ..state
            },
        }
    }
}
