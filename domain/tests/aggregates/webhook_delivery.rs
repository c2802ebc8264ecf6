//! Webhook deliveries: the retry schedule, what lenders are told, and the
//! WebhookDelivery aggregate of attempt outcomes.

use std::time::Duration;

use proofline_domain::decider::{Decider, EventSchema};
use proofline_domain::ids::StreamId;
use proofline_domain::lender::{LenderEvent, LenderId};
use proofline_domain::log::{Envelope, EventHash, Metadata, Timestamp};
use proofline_domain::specification::given;
use proofline_domain::values::KeyPrefix;
use proofline_domain::webhook_delivery::{
    AttemptOutcome, DEFAULT_RETRY_SCHEDULE, DeliveryError, DeliveryId, DeliveryStatus,
    MAX_ERROR_TEXT, WebhookDeliveryCommand, WebhookDeliveryDecider, WebhookDeliveryEvent,
    next_delay, notice_of,
};
use serde_json::Value;
use uuid::Uuid;

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
    let first = given::<WebhookDeliveryDecider>([])
        .when(
            WebhookDeliveryCommand::RecordAttempt {
                lender_id: lender(1),
                attempt: 1,
                outcome: failed(Some(at("2026-01-01T00:00:05Z"))),
            },
            at("2026-01-01T00:00:00Z"),
        )
        .accepted();
    assert!(matches!(
        &first[..],
        [WebhookDeliveryEvent::WebhookDeliveryAttemptFailed { attempt: 1, .. }]
    ));
    given::<WebhookDeliveryDecider>(first.clone())
        .when(
            WebhookDeliveryCommand::RecordAttempt {
                lender_id: lender(1),
                attempt: 1,
                outcome: AttemptOutcome::Delivered { status: 200 },
            },
            at("2026-01-01T00:00:06Z"),
        )
        .then_error(DeliveryError::AttemptRecorded {
            attempt: 1,
            recorded: 1,
        });
    given::<WebhookDeliveryDecider>(first)
        .when(
            WebhookDeliveryCommand::RecordAttempt {
                lender_id: lender(2),
                attempt: 2,
                outcome: AttemptOutcome::Delivered { status: 200 },
            },
            at("2026-01-01T00:00:06Z"),
        )
        .then_error(DeliveryError::NotFound);
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
    given::<WebhookDeliveryDecider>(history.clone())
        .when(
            WebhookDeliveryCommand::RecordAttempt {
                lender_id: lender(1),
                attempt: 9,
                outcome: AttemptOutcome::Delivered { status: 200 },
            },
            at("2026-01-02T00:00:01Z"),
        )
        .then_error(DeliveryError::Settled("failed"));
    // Another lender's delivery is not found.
    given::<WebhookDeliveryDecider>(history.clone())
        .when(
            WebhookDeliveryCommand::RequestRedelivery {
                lender_id: lender(2),
            },
            at("2026-01-02T00:00:01Z"),
        )
        .then_error(DeliveryError::NotFound);
    let all = given::<WebhookDeliveryDecider>(history)
        .when(
            WebhookDeliveryCommand::RequestRedelivery {
                lender_id: lender(1),
            },
            at("2026-01-02T00:00:01Z"),
        )
        .accepted();
    let state = WebhookDeliveryDecider::fold(&all);
    assert_eq!(state.status, DeliveryStatus::Pending);
    assert_eq!(state.attempts, 8, "attempts keep counting");
    given::<WebhookDeliveryDecider>(all.clone())
        .when(
            WebhookDeliveryCommand::RequestRedelivery {
                lender_id: lender(1),
            },
            at("2026-01-02T00:00:02Z"),
        )
        .then_error(DeliveryError::StillPending);
    assert_eq!(
        given::<WebhookDeliveryDecider>(all)
            .when(
                WebhookDeliveryCommand::RecordAttempt {
                    lender_id: lender(1),
                    attempt: 9,
                    outcome: AttemptOutcome::Delivered { status: 204 },
                },
                at("2026-01-02T00:00:03Z"),
            )
            .decided()
            .map(|e| e.len()),
        Ok(1)
    );
}

#[test]
fn errors_are_kept_short() {
    let events = given::<WebhookDeliveryDecider>([])
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
        .accepted();
    let WebhookDeliveryEvent::WebhookDeliveryFailed { error, .. } = &events[0] else {
        panic!("a failure");
    };
    assert!(error.len() <= MAX_ERROR_TEXT + '…'.len_utf8());
}

#[test]
fn only_a_lenders_verifications_and_key_changes_are_told() {
    let lender_id = lender(7);
    let rotated = LenderEvent::ApiKeyRotated {
        new_prefix: KeyPrefix::parse("00112233445566aa").expect("a prefix"),
        issued_at: at("2026-01-01T00:00:00Z"),
        previous_prefix: KeyPrefix::parse("00112233445566bb").expect("a prefix"),
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

#[test]
fn the_end_of_a_presentation_request_is_told_to_its_lender() {
    use std::collections::BTreeMap;

    use proofline_domain::presentation_request::{
        PresentationRequestEvent as E, PresentationRequestId, Refusal,
    };
    let lender_id = lender(7);
    let request_id = PresentationRequestId::for_state("s");
    let envelope = |event: &E| {
        let encoded = event.encode();
        Envelope {
            position: 9,
            event_id: Uuid::from_u128(98),
            stream_id: request_id.stream_id(),
            stream_version: 2,
            event_type: encoded.event_type,
            schema_version: 1,
            data: encoded.data,
            metadata: Metadata::default(),
            recorded_at: at("2026-01-01T00:00:00Z"),
            prev_hash: EventHash::GENESIS,
            hash: EventHash::GENESIS,
        }
    };
    let accepted = E::PresentationResponseAccepted {
        request_id,
        lender_id,
        presentations: BTreeMap::from([(
            "identity".to_owned(),
            vec![request_id.verification_id("identity", 0)],
        )]),
        response_code_sha256: Some("ab".into()),
        received_at: at("2026-01-01T00:00:00Z"),
    };
    let notice = notice_of(&envelope(&accepted)).expect("the end is told");
    assert_eq!(notice.lender_id, lender_id);
    assert_eq!(notice.kind, "presentation_request.completed");
    let body: Value = serde_json::from_str(&notice.body).expect("JSON");
    assert_eq!(body["data"]["status"], "verified");
    assert_eq!(body["data"]["dcql_satisfied"], true);
    assert_eq!(body["data"]["request_id"], request_id.to_string());
    assert!(body["data"].get("response_code_sha256").is_none());
    let refused = E::PresentationResponseRefused {
        request_id,
        reason: Refusal::AlreadyAnswered,
        received_at: at("2026-01-01T00:00:00Z"),
    };
    assert_eq!(notice_of(&envelope(&refused)), None, "nothing new ended");
    let expired = E::PresentationRequestExpired {
        request_id,
        lender_id,
        expired_at: at("2026-01-01T00:00:00Z"),
    };
    let notice = notice_of(&envelope(&expired)).expect("an expiry is told");
    let body: Value = serde_json::from_str(&notice.body).expect("JSON");
    assert_eq!(body["data"]["status"], "expired");
}
