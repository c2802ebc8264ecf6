//! The Lender aggregate: registration, API keys, activation, the webhook.

use proofline_domain::decider::{Decider, EventSchema};
use proofline_domain::ids::StreamId;
use proofline_domain::key_ring::KeyRingError;
use proofline_domain::lender::{
    GracePeriod, KeyValidity, Lender, LenderCommand, LenderDecider, LenderError, LenderEvent,
    LenderId, LenderState, MAX_GRACE_SECONDS, default_audience,
};
use proofline_domain::specification::given;
use proofline_domain::values::{Audience, Audiences, ContactEmail, KeyPrefix, Name, WebhookUrl};
use uuid::Uuid;

use crate::support::t;

fn id() -> LenderId {
    LenderId::from_uuid(Uuid::from_u128(7))
}

fn prefix(n: u8) -> KeyPrefix {
    KeyPrefix::parse(&format!("{n:016x}")).unwrap()
}

fn register() -> LenderCommand {
    LenderCommand::Register {
        lender_id: id(),
        name: Name::parse("name", "Acme Lending").unwrap(),
        contact_email: ContactEmail::parse("risk@acme.example").unwrap(),
        audiences: Audiences::single(default_audience(id())),
        key_prefix: prefix(1),
    }
}

fn registered() -> Vec<LenderEvent> {
    given::<LenderDecider>([]).when(register(), t(0)).accepted()
}

fn lender(events: &[LenderEvent]) -> Lender {
    match LenderDecider::fold(events) {
        LenderState::Registered(l) => l,
        LenderState::Unregistered => panic!("not registered"),
    }
}

fn rotate(n: u8, grace: u64, using: u8) -> LenderCommand {
    LenderCommand::RotateKey {
        new_prefix: prefix(n),
        grace: GracePeriod::seconds(grace).unwrap(),
        using: prefix(using),
    }
}

#[test]
fn a_lender_has_its_audiences_and_old_registrations_their_one() {
    let audience = |t: &str| Audience::parse(t).unwrap();
    let two = Audiences::new(vec![audience("https://a.example"), audience("urn:b")]).unwrap();
    let LenderCommand::Register {
        lender_id,
        name,
        contact_email,
        key_prefix,
        ..
    } = register()
    else {
        unreachable!()
    };
    let command = LenderCommand::Register {
        lender_id,
        name,
        contact_email,
        audiences: two.clone(),
        key_prefix,
    };
    let events = given::<LenderDecider>([]).when(command, t(0)).accepted();
    assert_eq!(lender(&events).audiences, two);
    assert!(lender(&events).audiences.find("urn:b").is_some());
    assert!(lender(&events).audiences.find("urn:c").is_none());
    // Written before lenders had several: `audience` only.
    let mut old = events[0].encode().data;
    old.as_object_mut().unwrap().remove("audiences");
    let old = LenderEvent::decode("LenderRegistered", 1, &old).unwrap();
    assert_eq!(
        lender(&[old]).audiences,
        Audiences::single(audience("https://a.example"))
    );
    assert!(Audiences::new(vec![]).is_err());
    assert!(Audiences::new(vec![audience("urn:x"), audience("urn:x")]).is_err());
    assert!(Audiences::new((0..17).map(|i| audience(&format!("urn:{i}"))).collect()).is_err());
}

#[test]
fn register_is_accepted_once() {
    let events = given::<LenderDecider>([]).when(register(), t(0)).accepted();
    assert_eq!(events.len(), 2);
    assert!(
        matches!(events[1], LenderEvent::ApiKeyIssued { ref key_prefix, .. } if *key_prefix == prefix(1))
    );
    let l = lender(&events);
    assert!(l.active);
    assert_eq!(
        l.key_validity(prefix(1).as_str(), t(5)),
        KeyValidity::Valid { until: None }
    );
    given::<LenderDecider>(events)
        .when(register(), t(1))
        .then_error(LenderError::AlreadyRegistered);
}

#[test]
fn commands_on_an_unknown_lender_are_not_found() {
    for command in [
        rotate(2, 10, 1),
        LenderCommand::Deactivate,
        LenderCommand::Reactivate,
    ] {
        given::<LenderDecider>([])
            .when(command, t(0))
            .then_error(LenderError::NotFound);
    }
}

#[test]
fn rotation_keeps_the_previous_key_in_its_grace() {
    let events = given::<LenderDecider>(registered())
        .when(rotate(2, 60, 1), t(100))
        .accepted();
    let l = lender(&events);
    assert_eq!(l.keys.current.as_ref().unwrap().prefix, prefix(2));
    assert_eq!(
        l.key_validity(prefix(2).as_str(), t(100)),
        KeyValidity::Valid { until: None }
    );
    assert_eq!(
        l.key_validity(prefix(1).as_str(), t(159)),
        KeyValidity::Valid {
            until: Some(t(160))
        }
    );
    assert_eq!(
        l.key_validity(prefix(1).as_str(), t(160)),
        KeyValidity::Invalid
    );
}

#[test]
fn rotation_needs_the_current_key_an_active_lender_and_a_bounded_grace() {
    let events = given::<LenderDecider>(registered())
        .when(rotate(2, 60, 1), t(100))
        .accepted();
    // The previous key, still in its grace, may not rotate.
    given::<LenderDecider>(events)
        .when(rotate(3, 60, 1), t(101))
        .then_error(LenderError::NotCurrentKey);
    assert_eq!(
        GracePeriod::seconds(MAX_GRACE_SECONDS + 1),
        Err(KeyRingError::GraceTooLong {
            max_seconds: MAX_GRACE_SECONDS
        })
    );
    assert!(GracePeriod::seconds(MAX_GRACE_SECONDS).is_ok());
    let mut deactivated = registered();
    deactivated.push(LenderEvent::LenderDeactivated {
        deactivated_at: t(5),
    });
    given::<LenderDecider>(deactivated)
        .when(rotate(2, 60, 1), t(10))
        .then_error(LenderError::Deactivated);
}

#[test]
fn a_second_rotation_replaces_the_previous_key() {
    let once = given::<LenderDecider>(registered())
        .when(rotate(2, 3600, 1), t(100))
        .accepted();
    let twice = given::<LenderDecider>(once)
        .when(rotate(3, 3600, 2), t(200))
        .then([LenderEvent::ApiKeyRotated {
            new_prefix: prefix(3),
            issued_at: t(200),
            previous_prefix: prefix(2),
            previous_valid_until: t(3800),
            dropped_prefix: Some(prefix(1)),
        }]);
    let l = lender(&twice);
    assert_eq!(
        l.key_validity(prefix(1).as_str(), t(201)),
        KeyValidity::Invalid
    );
    assert_eq!(
        l.key_validity(prefix(2).as_str(), t(201)),
        KeyValidity::Valid {
            until: Some(t(3800))
        }
    );
    assert_eq!(
        l.key_validity(prefix(3).as_str(), t(201)),
        KeyValidity::Valid { until: None }
    );
}

#[test]
fn revoke_ends_the_previous_key_now() {
    let events = given::<LenderDecider>(registered())
        .when(rotate(2, 3600, 1), t(100))
        .accepted();
    let revoked = given::<LenderDecider>(events.clone())
        .when(
            LenderCommand::RevokeKey {
                prefix: prefix(1),
                using: prefix(2),
            },
            t(150),
        )
        .accepted();
    let l = lender(&revoked);
    assert_eq!(
        l.key_validity(prefix(1).as_str(), t(151)),
        KeyValidity::Invalid
    );
    assert_eq!(
        l.key_validity(prefix(2).as_str(), t(151)),
        KeyValidity::Valid { until: None }
    );
    // Rejections: the current key, a key past its grace, an unknown key, revoking with the old key.
    let g = || given::<LenderDecider>(events.clone());
    g().when(
        LenderCommand::RevokeKey {
            prefix: prefix(2),
            using: prefix(2),
        },
        t(150),
    )
    .then_error(LenderError::CannotRevokeCurrentKey);
    g().when(
        LenderCommand::RevokeKey {
            prefix: prefix(1),
            using: prefix(2),
        },
        t(5000),
    )
    .then_error(LenderError::KeyNotFound);
    g().when(
        LenderCommand::RevokeKey {
            prefix: prefix(9),
            using: prefix(2),
        },
        t(150),
    )
    .then_error(LenderError::KeyNotFound);
    g().when(
        LenderCommand::RevokeKey {
            prefix: prefix(1),
            using: prefix(1),
        },
        t(150),
    )
    .then_error(LenderError::NotCurrentKey);
}

#[test]
fn deactivation_refuses_every_key_and_reactivation_restores_them() {
    let events = given::<LenderDecider>(registered())
        .when(LenderCommand::Deactivate, t(10))
        .accepted();
    assert_eq!(
        lender(&events).key_validity(prefix(1).as_str(), t(11)),
        KeyValidity::Inactive
    );
    given::<LenderDecider>(events.clone())
        .when(LenderCommand::Deactivate, t(11))
        .then_error(LenderError::AlreadyDeactivated);
    let back = given::<LenderDecider>(events)
        .when(LenderCommand::Reactivate, t(12))
        .accepted();
    assert_eq!(
        lender(&back).key_validity(prefix(1).as_str(), t(13)),
        KeyValidity::Valid { until: None }
    );
    given::<LenderDecider>(back)
        .when(LenderCommand::Reactivate, t(13))
        .then_error(LenderError::AlreadyActive);
}

#[test]
fn a_suspended_lender_has_no_valid_key_and_changes_nothing_until_unsuspended() {
    let suspended = given::<LenderDecider>(registered())
        .when(LenderCommand::Suspend, t(10))
        .then([LenderEvent::LenderSuspended {
            suspended_at: t(10),
        }]);
    let state = lender(&suspended);
    assert!(state.active && state.suspended);
    assert_eq!(
        state.key_validity(prefix(1).as_str(), t(11)),
        KeyValidity::Suspended
    );
    for command in [
        rotate(2, 60, 1),
        LenderCommand::RevokeKey {
            prefix: prefix(9),
            using: prefix(1),
        },
        LenderCommand::ConfigureWebhook {
            url: webhook("https://hooks.acme.example/"),
        },
    ] {
        given::<LenderDecider>(suspended.clone())
            .when(command, t(11))
            .then_error(LenderError::Suspended);
    }
    given::<LenderDecider>(suspended.clone())
        .when(LenderCommand::Suspend, t(11))
        .then_error(LenderError::AlreadySuspended);
    let back = given::<LenderDecider>(suspended.clone())
        .when(LenderCommand::Unsuspend, t(12))
        .then([LenderEvent::LenderUnsuspended {
            unsuspended_at: t(12),
        }]);
    assert_eq!(
        lender(&back).key_validity(prefix(1).as_str(), t(13)),
        KeyValidity::Valid { until: None }
    );
    given::<LenderDecider>(back)
        .when(LenderCommand::Unsuspend, t(13))
        .then_error(LenderError::NotSuspended);
    given::<LenderDecider>([])
        .when(LenderCommand::Suspend, t(13))
        .then_error(LenderError::NotFound);
}

#[test]
fn a_suspension_keeps_the_webhook_and_deactivation_ends_it() {
    let url = webhook("https://hooks.acme.example/proofline");
    let configured = given::<LenderDecider>(registered())
        .when(LenderCommand::ConfigureWebhook { url: url.clone() }, t(5))
        .accepted();
    let suspended = given::<LenderDecider>(configured)
        .when(LenderCommand::Suspend, t(10))
        .accepted();
    assert_eq!(lender(&suspended).webhook, Some(url));
    let deactivated = given::<LenderDecider>(suspended)
        .when(LenderCommand::Deactivate, t(11))
        .accepted();
    let state = lender(&deactivated);
    assert!(!state.active && !state.suspended);
    given::<LenderDecider>(deactivated.clone())
        .when(LenderCommand::Suspend, t(12))
        .then_error(LenderError::Deactivated);
    given::<LenderDecider>(deactivated.clone())
        .when(LenderCommand::Unsuspend, t(12))
        .then_error(LenderError::NotSuspended);
    let reactivated = given::<LenderDecider>(deactivated)
        .when(LenderCommand::Reactivate, t(13))
        .accepted();
    assert_eq!(
        lender(&reactivated).key_validity(prefix(1).as_str(), t(14)),
        KeyValidity::Valid { until: None }
    );
}

#[test]
fn events_round_trip_through_their_wire_form() {
    let events = given::<LenderDecider>(registered())
        .when(rotate(2, 60, 1), t(100))
        .accepted();
    for event in &events {
        let encoded = event.encode();
        assert!(encoded.data.is_object());
        assert_eq!(
            LenderEvent::decode(&encoded.event_type, encoded.schema_version, &encoded.data)
                .unwrap(),
            *event
        );
    }
    assert_eq!(events[0].encode().event_type, "LenderRegistered");
    assert!(LenderEvent::decode("LenderRegistered", 2, &events[0].encode().data).is_err());
    assert!(LenderEvent::decode("NoSuchEvent", 1, &serde_json::json!({})).is_err());
}

#[test]
fn lender_ids_round_trip_through_stream_ids() {
    assert_eq!(LenderId::from_stream(&id().stream_id()), Some(id()));
    assert_eq!(
        LenderId::from_stream(&StreamId::parse("auditor-1").unwrap()),
        None
    );
}

fn webhook(url: &str) -> WebhookUrl {
    WebhookUrl::parse(url).unwrap()
}

#[test]
fn a_webhook_is_configured_replaced_and_removed() {
    let url = webhook("https://hooks.acme.example/proofline");
    let history = given::<LenderDecider>(registered())
        .when(LenderCommand::ConfigureWebhook { url: url.clone() }, t(10))
        .then([LenderEvent::WebhookConfigured {
            url: url.clone(),
            configured_at: t(10),
        }]);
    let LenderState::Registered(lender) = LenderDecider::fold(&history) else {
        panic!("registered");
    };
    assert_eq!(lender.webhook, Some(url));
    let history = given::<LenderDecider>(history)
        .when(LenderCommand::RemoveWebhook, t(20))
        .then([LenderEvent::WebhookRemoved { removed_at: t(20) }]);
    given::<LenderDecider>(history)
        .when(LenderCommand::RemoveWebhook, t(30))
        .then_error(LenderError::NoWebhook);
}

#[test]
fn a_deactivated_or_unknown_lender_configures_no_webhook() {
    let mut history = registered();
    history.push(LenderEvent::LenderDeactivated {
        deactivated_at: t(5),
    });
    let command = LenderCommand::ConfigureWebhook {
        url: webhook("https://hooks.acme.example/"),
    };
    given::<LenderDecider>(history)
        .when(command.clone(), t(10))
        .then_error(LenderError::Deactivated);
    given::<LenderDecider>([])
        .when(command, t(10))
        .then_error(LenderError::NotFound);
}

#[test]
fn webhook_urls_are_absolute_http_with_a_host_and_no_credentials() {
    for good in [
        "https://hooks.acme.example/x?y=1",
        "http://10.1.2.3:8080/hook",
    ] {
        assert!(WebhookUrl::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "ftp://hooks.acme.example/",
        "https://user:pw@hooks.acme.example/",
        "https://hooks.acme.example/#frag",
        "/relative",
        "mailto:a@b.example",
    ] {
        assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
    }
    assert!(WebhookUrl::parse(&format!("https://h.example/{}", "a".repeat(2048))).is_err());
}
