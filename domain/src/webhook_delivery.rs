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
use serde_json::json;
use uuid::Uuid;

use crate::decider::{Decider, EventSchema, Rejection, RejectionKind};
use crate::ids::StreamId;
use crate::lender::{LenderEvent, LenderId};
use crate::log::{Envelope, Timestamp};
use crate::verification_record::VerificationEvent;

/// The stream category of deliveries.
pub const CATEGORY: &str = "webhook";

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
        StreamId::new(CATEGORY, self.0).expect("a UUID makes a valid stream id")
    }

    pub fn from_stream(stream: &StreamId) -> Option<Self> {
        let (category, id) = stream.as_str().split_once('-')?;
        if category != CATEGORY {
            return None;
        }
        Uuid::parse_str(id).ok().map(Self)
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

/// The notice of a stored event, if its lender is told about it.
pub fn notice_of(envelope: &Envelope) -> Option<Notice> {
    let (lender_id, kind, data) = match envelope.stream_id.category() {
        "verification" => {
            let event = VerificationEvent::decode(
                &envelope.event_type,
                envelope.schema_version,
                &envelope.data,
            )
            .ok()?;
            let kind = match event {
                VerificationEvent::PresentationVerified(_) => "verification.verified",
                VerificationEvent::PresentationRejected(_) => "verification.rejected",
            };
            let r = event.record();
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
            (r.lender_id, kind, data)
        }
        "lender" => {
            let lender = LenderId::from_stream(&envelope.stream_id)?;
            let event = LenderEvent::decode(
                &envelope.event_type,
                envelope.schema_version,
                &envelope.data,
            )
            .ok()?;
            match event {
                LenderEvent::ApiKeyRotated {
                    new_prefix,
                    issued_at,
                    previous_prefix,
                    previous_valid_until,
                    ..
                } => (
                    lender,
                    "api_key.rotated",
                    json!({
                        "new_prefix": new_prefix.to_string(),
                        "issued_at": issued_at,
                        "previous_prefix": previous_prefix.to_string(),
                        "previous_valid_until": previous_valid_until,
                    }),
                ),
                LenderEvent::ApiKeyRevoked {
                    key_prefix,
                    revoked_at,
                } => (
                    lender,
                    "api_key.revoked",
                    json!({"key_prefix": key_prefix.to_string(), "revoked_at": revoked_at}),
                ),
                _ => return None,
            }
        }
        _ => return None,
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
            _ => RejectionKind::Conflict,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decider::spec::given;
    use crate::log::{EventHash, Metadata};
    use serde_json::Value;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).expect("a timestamp")
    }

    fn lender(n: u128) -> LenderId {
        LenderId::from_uuid(Uuid::from_u128(n))
    }

    fn failed(retry_at: Option<Timestamp>) -> AttemptOutcome {
        AttemptOutcome::Failed {
            error: "connection refused".into(),
            status: None,
            retry_at,
        }
    }

    #[test]
    fn the_schedule_spreads_each_delay_and_ends() {
        let schedule = DEFAULT_RETRY_SCHEDULE;
        assert_eq!(next_delay(&schedule, 0, 0.5), None, "no failure, no retry");
        assert_eq!(next_delay(&schedule, 1, 0.5), Some(Duration::from_secs(5)));
        assert_eq!(next_delay(&schedule, 1, 0.0), Some(Duration::from_secs(4)));
        assert_eq!(next_delay(&schedule, 2, 1.0), Some(Duration::from_secs(36)));
        assert_eq!(
            next_delay(&schedule, 7, 0.5),
            Some(Duration::from_secs(43_200))
        );
        assert_eq!(next_delay(&schedule, 8, 0.5), None, "the budget is spent");
        let total: Duration = (1..=7).filter_map(|n| next_delay(&schedule, n, 0.5)).sum();
        assert!(
            total > Duration::from_secs(18 * 3_600) && total < Duration::from_secs(26 * 3_600),
            "about a day: {total:?}"
        );
    }

    #[test]
    fn attempts_are_recorded_once_each_and_in_order() {
        let first = given::<WebhookDeliveryDecider>(&[])
            .when(
                WebhookDeliveryCommand::RecordAttempt {
                    lender_id: lender(1),
                    attempt: 1,
                    outcome: failed(Some(at("2026-01-01T00:00:05Z"))),
                },
                at("2026-01-01T00:00:00Z"),
            )
            .expect("the first attempt");
        assert!(matches!(
            &first[..],
            [WebhookDeliveryEvent::WebhookDeliveryAttemptFailed { attempt: 1, .. }]
        ));
        let again = given::<WebhookDeliveryDecider>(&first).when(
            WebhookDeliveryCommand::RecordAttempt {
                lender_id: lender(1),
                attempt: 1,
                outcome: AttemptOutcome::Delivered { status: 200 },
            },
            at("2026-01-01T00:00:06Z"),
        );
        assert_eq!(
            again,
            Err(DeliveryError::AttemptRecorded {
                attempt: 1,
                recorded: 1
            })
        );
        let other = given::<WebhookDeliveryDecider>(&first).when(
            WebhookDeliveryCommand::RecordAttempt {
                lender_id: lender(2),
                attempt: 2,
                outcome: AttemptOutcome::Delivered { status: 200 },
            },
            at("2026-01-01T00:00:06Z"),
        );
        assert_eq!(other, Err(DeliveryError::NotFound));
    }

    #[test]
    fn a_failed_delivery_is_redelivered_on_request_only() {
        let history = [WebhookDeliveryEvent::WebhookDeliveryFailed {
            lender_id: lender(1),
            attempt: 8,
            error: "HTTP 500".into(),
            status: Some(500),
            failed_at: at("2026-01-02T00:00:00Z"),
        }];
        let late = given::<WebhookDeliveryDecider>(&history).when(
            WebhookDeliveryCommand::RecordAttempt {
                lender_id: lender(1),
                attempt: 9,
                outcome: AttemptOutcome::Delivered { status: 200 },
            },
            at("2026-01-02T00:00:01Z"),
        );
        assert_eq!(late, Err(DeliveryError::Settled("failed")));
        assert_eq!(
            given::<WebhookDeliveryDecider>(&history).when(
                WebhookDeliveryCommand::RequestRedelivery {
                    lender_id: lender(2)
                },
                at("2026-01-02T00:00:01Z"),
            ),
            Err(DeliveryError::NotFound),
            "another lender's delivery is not found"
        );
        let requested = given::<WebhookDeliveryDecider>(&history)
            .when(
                WebhookDeliveryCommand::RequestRedelivery {
                    lender_id: lender(1),
                },
                at("2026-01-02T00:00:01Z"),
            )
            .expect("a redelivery");
        let mut all = history.to_vec();
        all.extend(requested);
        let state = WebhookDeliveryDecider::fold(&all);
        assert_eq!(state.status, DeliveryStatus::Pending);
        assert_eq!(state.attempts, 8, "attempts keep counting");
        assert_eq!(
            given::<WebhookDeliveryDecider>(&all).when(
                WebhookDeliveryCommand::RequestRedelivery {
                    lender_id: lender(1)
                },
                at("2026-01-02T00:00:02Z"),
            ),
            Err(DeliveryError::StillPending)
        );
        assert_eq!(
            given::<WebhookDeliveryDecider>(&all)
                .when(
                    WebhookDeliveryCommand::RecordAttempt {
                        lender_id: lender(1),
                        attempt: 9,
                        outcome: AttemptOutcome::Delivered { status: 204 },
                    },
                    at("2026-01-02T00:00:03Z"),
                )
                .map(|e| e.len()),
            Ok(1)
        );
    }

    #[test]
    fn errors_are_kept_short() {
        let events = given::<WebhookDeliveryDecider>(&[])
            .when(
                WebhookDeliveryCommand::RecordAttempt {
                    lender_id: lender(1),
                    attempt: 1,
                    outcome: AttemptOutcome::Failed {
                        error: "é".repeat(400),
                        status: None,
                        retry_at: None,
                    },
                },
                at("2026-01-01T00:00:00Z"),
            )
            .expect("recorded");
        let WebhookDeliveryEvent::WebhookDeliveryFailed { error, .. } = &events[0] else {
            panic!("a failure");
        };
        assert!(error.len() <= MAX_ERROR_TEXT + '…'.len_utf8());
    }

    #[test]
    fn only_a_lenders_verifications_and_key_changes_are_told() {
        let lender_id = lender(7);
        let rotated = LenderEvent::ApiKeyRotated {
            new_prefix: crate::values::KeyPrefix::parse("00112233445566aa").expect("a prefix"),
            issued_at: at("2026-01-01T00:00:00Z"),
            previous_prefix: crate::values::KeyPrefix::parse("00112233445566bb").expect("a prefix"),
            previous_valid_until: at("2026-01-02T00:00:00Z"),
            dropped_prefix: None,
        }
        .encode();
        let envelope = |stream: StreamId, event_type: &str, data: Value| Envelope {
            position: 9,
            event_id: Uuid::from_u128(99),
            stream_id: stream,
            stream_version: 3,
            event_type: event_type.into(),
            schema_version: 1,
            data,
            metadata: Metadata::default(),
            recorded_at: at("2026-01-01T00:00:00Z"),
            prev_hash: EventHash::GENESIS,
            hash: EventHash::GENESIS,
        };
        let notice = notice_of(&envelope(
            lender_id.stream_id(),
            &rotated.event_type,
            rotated.data,
        ))
        .expect("a rotation is told");
        assert_eq!(notice.lender_id, lender_id);
        assert_eq!(notice.kind, "api_key.rotated");
        assert_eq!(
            notice.delivery_id,
            DeliveryId::of_event(Uuid::from_u128(99))
        );
        let body: Value = serde_json::from_str(&notice.body).expect("JSON");
        assert_eq!(body["type"], "api_key.rotated");
        assert_eq!(body["id"], Uuid::from_u128(99).to_string());
        assert_eq!(body["data"]["previous_prefix"], "00112233445566bb");

        let deactivated = LenderEvent::LenderDeactivated {
            deactivated_at: at("2026-01-01T00:00:00Z"),
        }
        .encode();
        assert_eq!(
            notice_of(&envelope(
                lender_id.stream_id(),
                &deactivated.event_type,
                deactivated.data
            )),
            None
        );
        assert_eq!(
            DeliveryId::from_stream(&DeliveryId::of_event(Uuid::from_u128(5)).stream_id()),
            Some(DeliveryId::of_event(Uuid::from_u128(5)))
        );
    }
}
