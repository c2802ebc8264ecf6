//! The Auditor aggregate: registration and its API keys.

use proofline_domain::auditor::{
    AuditorCommand, AuditorDecider, AuditorError, AuditorEvent, AuditorId,
};
use proofline_domain::decider::{Decider, EventSchema};
use proofline_domain::key_ring::{GracePeriod, KeyRingError};
use proofline_domain::specification::given;
use proofline_domain::values::{KeyPrefix, Name};
use uuid::Uuid;

use crate::support::t;

fn register() -> AuditorCommand {
    AuditorCommand::Register {
        auditor_id: AuditorId::from_uuid(Uuid::from_u128(3)),
        name: Name::parse("name", "Ledger Audit LLP").unwrap(),
        key_prefix: KeyPrefix::parse("00000000000000aa").unwrap(),
    }
}

fn prefix(n: u8) -> KeyPrefix {
    KeyPrefix::parse(&format!("00000000000000{n:02x}")).unwrap()
}

#[test]
fn register_is_accepted_once() {
    let events = given::<AuditorDecider>([])
        .when(register(), t(0))
        .accepted();
    let auditor = AuditorDecider::fold(&events).unwrap();
    assert_eq!(auditor.key_validity("00000000000000aa", t(0)), Some(None));
    assert_eq!(auditor.key_validity("00000000000000ab", t(0)), None);
    given::<AuditorDecider>(events)
        .when(register(), t(0))
        .then_error(AuditorError::AlreadyRegistered);
}

#[test]
fn an_auditor_rotates_with_a_grace_and_revokes_the_previous_key() {
    let events = given::<AuditorDecider>([])
        .when(register(), t(0))
        .accepted();
    let rotate = |new: u8, grace: u64, using: u8| AuditorCommand::RotateKey {
        new_prefix: prefix(new),
        grace: GracePeriod::seconds(grace).unwrap(),
        using: prefix(using),
    };
    let events = given::<AuditorDecider>(events)
        .when(rotate(0xb1, 3600, 0xaa), t(10))
        .accepted();
    let auditor = AuditorDecider::fold(&events).unwrap();
    assert_eq!(auditor.key_validity("00000000000000b1", t(11)), Some(None));
    assert_eq!(
        auditor.key_validity("00000000000000aa", t(11)),
        Some(Some(t(3610))),
        "the old key in its grace"
    );
    assert_eq!(auditor.key_validity("00000000000000aa", t(3610)), None);
    // Only the current key rotates or revokes; the current one is not
    // revoked.
    given::<AuditorDecider>(events.clone())
        .when(rotate(0xb2, 60, 0xaa), t(12))
        .then_error(AuditorError::Keys(KeyRingError::NotCurrentKey));
    let revoke = |key: u8, using: u8| AuditorCommand::RevokeKey {
        prefix: prefix(key),
        using: prefix(using),
    };
    given::<AuditorDecider>(events.clone())
        .when(revoke(0xb1, 0xb1), t(12))
        .then_error(AuditorError::Keys(KeyRingError::CannotRevokeCurrentKey));
    let events = given::<AuditorDecider>(events)
        .when(revoke(0xaa, 0xb1), t(13))
        .accepted();
    let auditor = AuditorDecider::fold(&events).unwrap();
    assert_eq!(auditor.key_validity("00000000000000aa", t(14)), None);
    given::<AuditorDecider>(events.clone())
        .when(revoke(0xaa, 0xb1), t(15))
        .then_error(AuditorError::Keys(KeyRingError::KeyNotFound));
    given::<AuditorDecider>([])
        .when(rotate(1, 0, 2), t(0))
        .then_error(AuditorError::NotFound);
    for event in &events {
        let encoded = event.encode();
        assert_eq!(
            &AuditorEvent::decode(&encoded.event_type, 1, &encoded.data).unwrap(),
            event
        );
    }
}
