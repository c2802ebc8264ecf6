//! The PresentationRequest aggregate: one OpenID4VP flow, created,
//! retrieved, answered once, or expired.

use std::collections::BTreeMap;

use proofline_domain::decider::{Decider, EventSchema};
use proofline_domain::lender::LenderId;
use proofline_domain::presentation_request::{
    MAX_REFUSALS, NewRequest, PresentationRequestCommand as C, PresentationRequestDecider as D,
    PresentationRequestError, PresentationRequestEvent as E, PresentationRequestId, Refusal,
    RequestUriMethod, ResponseMode, ResponseRejection, Status, WalletError,
};
use proofline_domain::specification::given;
use proofline_domain::verification_record::VerificationId;
use serde_json::json;
use uuid::Uuid;

use crate::support::t;

fn id() -> PresentationRequestId {
    PresentationRequestId::for_state("state-1")
}

fn new_request(lifetime: i64) -> NewRequest {
    NewRequest {
        request_id: id(),
        lender_id: LenderId::from_uuid(Uuid::from_u128(7)),
        client_id: "decentralized_identifier:did:key:z6MkExample".into(),
        response_mode: ResponseMode::DirectPost,
        request_uri_method: RequestUriMethod::Get,
        dcql_query: json!({"credentials": []}),
        dcql_query_sha256: "22".into(),
        expires_at: t(lifetime),
        same_device: false,
        nonce_sha256: "00".into(),
        state_sha256: "11".into(),
        encryption_kid: None,
    }
}

fn created() -> Vec<E> {
    given::<D>([])
        .when(C::Create(Box::new(new_request(300))), t(0))
        .accepted()
}

fn presentations() -> BTreeMap<String, Vec<VerificationId>> {
    BTreeMap::from([("pid".to_owned(), vec![id().verification_id("pid", 0)])])
}

fn accept() -> C {
    C::Accept {
        presentations: presentations(),
        response_code_sha256: None,
    }
}

#[test]
fn a_request_lives_60_to_600_seconds() {
    for lifetime in [59, 601, -1] {
        given::<D>([])
            .when(C::Create(Box::new(new_request(lifetime))), t(0))
            .then_error(PresentationRequestError::Lifetime(lifetime));
    }
    for lifetime in [60, 600] {
        let events = given::<D>([])
            .when(C::Create(Box::new(new_request(lifetime))), t(0))
            .accepted();
        assert_eq!(D::fold(&events).unwrap().status, Status::Pending);
    }
    given::<D>(created())
        .when(C::Create(Box::new(new_request(300))), t(1))
        .then_error(PresentationRequestError::AlreadyExists);
}

#[test]
fn nothing_happens_to_a_request_that_does_not_exist() {
    for command in [
        accept(),
        C::Expire,
        C::Retrieve {
            method: RequestUriMethod::Get,
            wallet_nonce: false,
        },
    ] {
        given::<D>([])
            .when(command, t(0))
            .then_error(PresentationRequestError::NotFound);
    }
}

#[test]
fn the_first_fetch_is_recorded_and_a_second_changes_nothing() {
    let retrieve = C::Retrieve {
        method: RequestUriMethod::Post,
        wallet_nonce: true,
    };
    let events = given::<D>(created()).when(retrieve.clone(), t(5)).then([
        E::PresentationRequestRetrieved {
            request_id: id(),
            method: RequestUriMethod::Post,
            wallet_nonce: true,
            retrieved_at: t(5),
        },
    ]);
    let state = D::fold(&events).unwrap();
    assert_eq!(
        (state.status, state.retrieved_at),
        (Status::Retrieved, Some(t(5)))
    );
    given::<D>(events).when(retrieve, t(6)).then([]);
}

#[test]
fn the_first_answer_wins_and_a_second_is_refused_and_recorded() {
    let events = given::<D>(created()).when(accept(), t(10)).accepted();
    let state = D::fold(&events).unwrap();
    assert_eq!(state.status, Status::Verified);
    assert_eq!(state.dcql_satisfied(), Some(true));
    assert_eq!(state.presentations, presentations());
    let refused = given::<D>(events)
        .when(
            C::ReceiveWalletError {
                error: WalletError::parse("access_denied", None).unwrap(),
                response_code_sha256: None,
            },
            t(11),
        )
        .then([E::PresentationResponseRefused {
            request_id: id(),
            reason: Refusal::AlreadyAnswered,
            received_at: t(11),
        }]);
    let after = D::fold(&refused).unwrap();
    assert_eq!((after.status, after.refusals), (Status::Verified, 1));
    given::<D>(refused)
        .when(
            C::Retrieve {
                method: RequestUriMethod::Get,
                wallet_nonce: false,
            },
            t(12),
        )
        .then_error(PresentationRequestError::AlreadyAnswered);
}

#[test]
fn late_answers_are_recorded_up_to_a_bound() {
    let mut events = given::<D>(created()).when(accept(), t(10)).accepted();
    for n in 0..MAX_REFUSALS {
        events = given::<D>(events)
            .when(accept(), t(20 + i64::from(n)))
            .accepted();
    }
    given::<D>(events)
        .when(accept(), t(99))
        .then_error(PresentationRequestError::TooManyRefusals);
}

#[test]
fn a_rejected_response_and_a_wallet_error_end_the_flow() {
    let rejected = given::<D>(created())
        .when(
            C::Reject {
                presentations: presentations(),
                reason: ResponseRejection::QueryNotSatisfied,
                detail: "credential query pid: claim address.country missing".into(),
            },
            t(3),
        )
        .accepted();
    let state = D::fold(&rejected).unwrap();
    assert_eq!(state.status, Status::Rejected);
    assert_eq!(state.dcql_satisfied(), Some(false));
    assert_eq!(
        state.rejection.map(|(reason, _)| reason),
        Some(ResponseRejection::QueryNotSatisfied)
    );

    let error = WalletError::parse("access_denied", Some("the holder said no")).unwrap();
    let events = given::<D>(created())
        .when(
            C::ReceiveWalletError {
                error: error.clone(),
                response_code_sha256: Some("ab".into()),
            },
            t(3),
        )
        .accepted();
    let state = D::fold(&events).unwrap();
    assert_eq!(state.status, Status::WalletError);
    assert_eq!(state.wallet_error, Some(error));
    assert_eq!(state.dcql_satisfied(), None);
}

#[test]
fn an_expired_request_is_neither_served_nor_answered() {
    let events = created();
    let state = D::fold(&events).unwrap();
    assert_eq!(state.status_at(t(299)), Status::Pending);
    assert_eq!(state.status_at(t(300)), Status::Expired);
    given::<D>(events.clone())
        .when(
            C::Retrieve {
                method: RequestUriMethod::Get,
                wallet_nonce: false,
            },
            t(300),
        )
        .then_error(PresentationRequestError::Expired);
    given::<D>(events.clone())
        .when(C::Expire, t(299))
        .then_error(PresentationRequestError::NotExpired);
    // An answer after the expiry records both the expiry and the refusal.
    let all = given::<D>(events.clone()).when(accept(), t(301)).then([
        E::PresentationRequestExpired {
            request_id: id(),
            lender_id: LenderId::from_uuid(Uuid::from_u128(7)),
            expired_at: t(301),
        },
        E::PresentationResponseRefused {
            request_id: id(),
            reason: Refusal::Expired,
            received_at: t(301),
        },
    ]);
    assert_eq!(D::fold(&all).unwrap().status, Status::Expired);
    given::<D>(all).when(C::Expire, t(400)).then([]);
    given::<D>(events)
        .when(C::Expire, t(300))
        .then([E::PresentationRequestExpired {
            request_id: id(),
            lender_id: LenderId::from_uuid(Uuid::from_u128(7)),
            expired_at: t(300),
        }]);
}

#[test]
fn wallet_error_codes_follow_rfc_6749() {
    assert!(WalletError::parse("access_denied", None).is_some());
    assert!(WalletError::parse("", None).is_none());
    assert!(WalletError::parse("bad\"quote", None).is_none());
    assert!(WalletError::parse("new\nline", None).is_none());
    assert!(WalletError::parse(&"x".repeat(65), None).is_none());
    let error = WalletError::parse("invalid_request", Some("line\nbreak")).unwrap();
    assert_eq!(error.error_description.as_deref(), Some("linebreak"));
}

#[test]
fn ids_come_from_the_state_and_verification_ids_from_the_request() {
    assert_eq!(id(), PresentationRequestId::for_state("state-1"));
    assert_ne!(id(), PresentationRequestId::for_state("state-2"));
    assert_eq!(id().as_uuid().get_version_num(), 8);
    assert_eq!(
        PresentationRequestId::from_stream(&id().stream_id()),
        Some(id())
    );
    let a = id().verification_id("pid", 0);
    assert_ne!(a, id().verification_id("pid", 1));
    assert_ne!(a, id().verification_id("pid2", 0));
    assert_ne!(
        a,
        PresentationRequestId::for_state("x").verification_id("pid", 0)
    );
}

#[test]
fn events_round_trip_through_the_log_format() {
    let events = given::<D>(created()).when(accept(), t(10)).accepted();
    for event in events {
        let encoded = event.encode();
        let decoded =
            E::decode(&encoded.event_type, encoded.schema_version, &encoded.data).expect("decodes");
        assert_eq!(decoded, event);
    }
}
