//! The Lender aggregate: registration, API keys (rotation with a grace
//! period, revocation), activation.
//!
//! Invariants, all in [`LenderDecider::decide`]:
//! - a lender registers once;
//! - only an active lender rotates, and only with its current key;
//! - at most one previous key, valid until its grace ends (at most 7 days);
//!   a second rotation replaces it;
//! - revoking ends the previous key now; the current key cannot be revoked,
//!   only rotated away;
//! - deactivation and reactivation each need the opposite state.
//!
//! Contact emails are unique across lenders. That is not a rule of one
//! lender's stream: the command handler appends, in the same atomic append,
//! a reservation to the stream [`ContactEmail::reservation_stream`] with
//! `no_stream`, so the store's concurrency control enforces it.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::decider::{Decider, EventSchema, Rejection, RejectionKind};
use crate::ids::StreamId;
pub use crate::key_ring::{DEFAULT_GRACE_SECONDS, GracePeriod, MAX_GRACE_SECONDS};
use crate::key_ring::{KeyRing, KeyRingError};
use crate::log::Timestamp;
use crate::values::{Audience, Audiences, ContactEmail, KeyPrefix, Name, WebhookUrl};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LenderId(Uuid);

impl LenderId {
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    pub fn stream_id(&self) -> StreamId {
        StreamId::new("lender", self.0).expect("a UUID makes a valid stream id")
    }

    /// The lender a `lender-<uuid>` stream belongs to.
    pub fn from_stream(stream: &StreamId) -> Option<Self> {
        let rest = stream.as_str().strip_prefix("lender-")?;
        rest.parse().ok().map(Self)
    }
}

impl fmt::Display for LenderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The audience given to a lender that names none.
pub fn default_audience(id: LenderId) -> Audience {
    Audience::parse(&format!("urn:proofline:lender:{id}")).expect("a valid audience")
}

#[derive(Debug, Clone, PartialEq)]
pub enum LenderCommand {
    Register {
        lender_id: LenderId,
        name: Name,
        contact_email: ContactEmail,
        audiences: Audiences,
        key_prefix: KeyPrefix,
    },
    RotateKey {
        new_prefix: KeyPrefix,
        grace: GracePeriod,
        using: KeyPrefix,
    },
    RevokeKey {
        prefix: KeyPrefix,
        using: KeyPrefix,
    },
    Deactivate,
    Reactivate,
    /// Sets (or replaces) the webhook; its signing secret is kept outside
    /// the log by the command handler.
    ConfigureWebhook {
        url: WebhookUrl,
    },
    RemoveWebhook,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum LenderEvent {
    LenderRegistered {
        lender_id: LenderId,
        name: Name,
        contact_email: ContactEmail,
        /// The default audience: the first of `audiences`.
        audience: Audience,
        /// Every audience the lender may verify for (absent in events
        /// written before lenders had several: then `audience` alone).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        audiences: Vec<Audience>,
    },
    ApiKeyIssued {
        key_prefix: KeyPrefix,
        issued_at: Timestamp,
    },
    ApiKeyRotated {
        new_prefix: KeyPrefix,
        issued_at: Timestamp,
        previous_prefix: KeyPrefix,
        previous_valid_until: Timestamp,
        /// The key that was still in its grace and is replaced now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dropped_prefix: Option<KeyPrefix>,
    },
    ApiKeyRevoked {
        key_prefix: KeyPrefix,
        revoked_at: Timestamp,
    },
    LenderDeactivated {
        deactivated_at: Timestamp,
    },
    LenderReactivated {
        reactivated_at: Timestamp,
    },
    WebhookConfigured {
        url: WebhookUrl,
        configured_at: Timestamp,
    },
    WebhookRemoved {
        removed_at: Timestamp,
    },
}

impl EventSchema for LenderEvent {}

/// The event of the email reservation stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum ReservationEvent {
    ContactEmailReserved { lender_id: LenderId },
}

impl EventSchema for ReservationEvent {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lender {
    pub id: LenderId,
    pub name: Name,
    pub contact_email: ContactEmail,
    /// What Key Binding JWTs presented to this lender may name as `aud`;
    /// no lender can verify a presentation made for another.
    pub audiences: Audiences,
    pub active: bool,
    /// The current key (set by the `ApiKeyIssued` that always follows
    /// registration) and a previous one in its grace.
    pub keys: KeyRing,
    pub webhook: Option<WebhookUrl>,
}

// A state lives for one command or one cache entry; boxing it would only
// add an allocation to every load.
#[expect(
    clippy::large_enum_variant,
    reason = "short-lived aggregate state; boxing would add an allocation per load"
)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LenderState {
    #[default]
    Unregistered,
    Registered(Lender),
}

/// Whether a key authenticates its lender at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyValidity {
    /// Valid; `until` is the end of its grace for a previous key.
    Valid { until: Option<Timestamp> },
    /// The lender is deactivated.
    Inactive,
    /// Rotated away and past its grace, or revoked, or never this lender's.
    Invalid,
}

impl Lender {
    pub fn key_validity(&self, prefix: &str, now: Timestamp) -> KeyValidity {
        if !self.active {
            return KeyValidity::Inactive;
        }
        match self.keys.validity(prefix, now) {
            Some(until) => KeyValidity::Valid { until },
            None => KeyValidity::Invalid,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LenderError {
    #[error("the lender is already registered")]
    AlreadyRegistered,
    #[error("no such lender")]
    NotFound,
    #[error("the lender is deactivated")]
    Deactivated,
    #[error("the lender is already active")]
    AlreadyActive,
    #[error("the lender is already deactivated")]
    AlreadyDeactivated,
    #[error("only the current key may rotate or revoke keys")]
    NotCurrentKey,
    #[error("the grace period is at most {max_seconds} seconds")]
    GraceTooLong { max_seconds: u64 },
    #[error("the current key cannot be revoked; rotate it first")]
    CannotRevokeCurrentKey,
    #[error("no such key in its grace period")]
    KeyNotFound,
    #[error("no webhook is configured")]
    NoWebhook,
}

impl From<KeyRingError> for LenderError {
    fn from(error: KeyRingError) -> Self {
        match error {
            KeyRingError::NotCurrentKey => LenderError::NotCurrentKey,
            KeyRingError::GraceTooLong { max_seconds } => LenderError::GraceTooLong { max_seconds },
            KeyRingError::CannotRevokeCurrentKey => LenderError::CannotRevokeCurrentKey,
            KeyRingError::KeyNotFound => LenderError::KeyNotFound,
        }
    }
}

impl Rejection for LenderError {
    fn kind(&self) -> RejectionKind {
        match self {
            LenderError::AlreadyRegistered
            | LenderError::Deactivated
            | LenderError::AlreadyActive
            | LenderError::AlreadyDeactivated
            | LenderError::CannotRevokeCurrentKey => RejectionKind::Conflict,
            LenderError::NotFound | LenderError::KeyNotFound | LenderError::NoWebhook => {
                RejectionKind::NotFound
            }
            LenderError::NotCurrentKey => RejectionKind::Forbidden,
            LenderError::GraceTooLong { .. } => RejectionKind::Invalid,
        }
    }
}

pub struct LenderDecider;

impl Decider for LenderDecider {
    type Command = LenderCommand;
    type Event = LenderEvent;
    type State = LenderState;
    type Error = LenderError;

    fn decide(
        command: &LenderCommand,
        state: &LenderState,
        now: Timestamp,
    ) -> Result<Vec<LenderEvent>, LenderError> {
        let lender = match (command, state) {
            (
                LenderCommand::Register {
                    lender_id,
                    name,
                    contact_email,
                    audiences,
                    key_prefix,
                },
                LenderState::Unregistered,
            ) => {
                return Ok(vec![
                    LenderEvent::LenderRegistered {
                        lender_id: *lender_id,
                        name: name.clone(),
                        contact_email: contact_email.clone(),
                        audience: audiences.first().clone(),
                        audiences: audiences.as_slice().to_vec(),
                    },
                    LenderEvent::ApiKeyIssued {
                        key_prefix: key_prefix.clone(),
                        issued_at: now,
                    },
                ]);
            }
            (LenderCommand::Register { .. }, LenderState::Registered(_)) => {
                return Err(LenderError::AlreadyRegistered);
            }
            (_, LenderState::Unregistered) => return Err(LenderError::NotFound),
            (_, LenderState::Registered(lender)) => lender,
        };
        match command {
            LenderCommand::Register { .. } => Err(LenderError::AlreadyRegistered),
            LenderCommand::RotateKey {
                new_prefix,
                grace,
                using,
            } => {
                if !lender.active {
                    return Err(LenderError::Deactivated);
                }
                let rotation = lender.keys.rotate(using, *grace, now)?;
                Ok(vec![LenderEvent::ApiKeyRotated {
                    new_prefix: new_prefix.clone(),
                    issued_at: now,
                    previous_prefix: rotation.previous_prefix,
                    previous_valid_until: rotation.previous_valid_until,
                    dropped_prefix: rotation.dropped_prefix,
                }])
            }
            LenderCommand::RevokeKey { prefix, using } => {
                lender.keys.revoke(prefix, using, now)?;
                Ok(vec![LenderEvent::ApiKeyRevoked {
                    key_prefix: prefix.clone(),
                    revoked_at: now,
                }])
            }
            LenderCommand::Deactivate => {
                if !lender.active {
                    return Err(LenderError::AlreadyDeactivated);
                }
                Ok(vec![LenderEvent::LenderDeactivated {
                    deactivated_at: now,
                }])
            }
            LenderCommand::Reactivate => {
                if lender.active {
                    return Err(LenderError::AlreadyActive);
                }
                Ok(vec![LenderEvent::LenderReactivated {
                    reactivated_at: now,
                }])
            }
            LenderCommand::ConfigureWebhook { url } => {
                if !lender.active {
                    return Err(LenderError::Deactivated);
                }
                Ok(vec![LenderEvent::WebhookConfigured {
                    url: url.clone(),
                    configured_at: now,
                }])
            }
            LenderCommand::RemoveWebhook => {
                if lender.webhook.is_none() {
                    return Err(LenderError::NoWebhook);
                }
                Ok(vec![LenderEvent::WebhookRemoved { removed_at: now }])
            }
        }
    }

    fn evolve(state: LenderState, event: &LenderEvent) -> LenderState {
        match (state, event) {
            (
                LenderState::Unregistered,
                LenderEvent::LenderRegistered {
                    lender_id,
                    name,
                    contact_email,
                    audience,
                    audiences,
                },
            ) => LenderState::Registered(Lender {
                id: *lender_id,
                name: name.clone(),
                contact_email: contact_email.clone(),
                // A registration decided the list; an older event without
                // one had its single audience.
                audiences: Audiences::new(audiences.clone())
                    .unwrap_or_else(|_| Audiences::single(audience.clone())),
                active: true,
                keys: KeyRing::default(),
                webhook: None,
            }),
            (LenderState::Registered(mut lender), event) => {
                match event {
                    LenderEvent::LenderRegistered { .. } => {}
                    LenderEvent::ApiKeyIssued {
                        key_prefix,
                        issued_at,
                    } => lender.keys.issued(key_prefix, *issued_at),
                    LenderEvent::ApiKeyRotated {
                        new_prefix,
                        issued_at,
                        previous_valid_until,
                        ..
                    } => lender
                        .keys
                        .rotated(new_prefix, *issued_at, *previous_valid_until),
                    LenderEvent::ApiKeyRevoked { key_prefix, .. } => {
                        lender.keys.revoked(key_prefix)
                    }
                    LenderEvent::LenderDeactivated { .. } => lender.active = false,
                    LenderEvent::LenderReactivated { .. } => lender.active = true,
                    LenderEvent::WebhookConfigured { url, .. } => {
                        lender.webhook = Some(url.clone());
                    }
                    LenderEvent::WebhookRemoved { .. } => lender.webhook = None,
                }
                LenderState::Registered(lender)
            }
            // An event before registration cannot have been decided; ignore it.
            (state, _) => state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decider::spec::given;
    use chrono::{TimeZone, Utc};

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_datetime(Utc.timestamp_opt(1_790_000_000 + secs, 0).unwrap())
    }

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
        LenderDecider::decide(&register(), &LenderState::Unregistered, t(0)).unwrap()
    }

    fn lender(events: &[LenderEvent]) -> Lender {
        match LenderDecider::fold(events) {
            LenderState::Registered(l) => l,
            LenderState::Unregistered => panic!("not registered"),
        }
    }

    fn with(mut events: Vec<LenderEvent>, more: Vec<LenderEvent>) -> Vec<LenderEvent> {
        events.extend(more);
        events
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
        let events = LenderDecider::decide(&command, &LenderState::Unregistered, t(0)).unwrap();
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
        let events = given::<LenderDecider>(&[]).when(register(), t(0)).unwrap();
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
        assert_eq!(
            given::<LenderDecider>(&events).when(register(), t(1)),
            Err(LenderError::AlreadyRegistered)
        );
    }

    #[test]
    fn commands_on_an_unknown_lender_are_not_found() {
        for command in [
            rotate(2, 10, 1),
            LenderCommand::Deactivate,
            LenderCommand::Reactivate,
        ] {
            assert_eq!(
                given::<LenderDecider>(&[]).when(command, t(0)),
                Err(LenderError::NotFound)
            );
        }
    }

    #[test]
    fn rotation_keeps_the_previous_key_in_its_grace() {
        let events = with(
            registered(),
            given::<LenderDecider>(&registered())
                .when(rotate(2, 60, 1), t(100))
                .unwrap(),
        );
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
        let events = with(
            registered(),
            given::<LenderDecider>(&registered())
                .when(rotate(2, 60, 1), t(100))
                .unwrap(),
        );
        // The previous key, still in its grace, may not rotate.
        assert_eq!(
            given::<LenderDecider>(&events).when(rotate(3, 60, 1), t(101)),
            Err(LenderError::NotCurrentKey)
        );
        assert_eq!(
            GracePeriod::seconds(MAX_GRACE_SECONDS + 1),
            Err(crate::key_ring::KeyRingError::GraceTooLong {
                max_seconds: MAX_GRACE_SECONDS
            })
        );
        assert!(GracePeriod::seconds(MAX_GRACE_SECONDS).is_ok());
        let deactivated = with(
            registered(),
            vec![LenderEvent::LenderDeactivated {
                deactivated_at: t(5),
            }],
        );
        assert_eq!(
            given::<LenderDecider>(&deactivated).when(rotate(2, 60, 1), t(10)),
            Err(LenderError::Deactivated)
        );
    }

    #[test]
    fn a_second_rotation_replaces_the_previous_key() {
        let once = with(
            registered(),
            given::<LenderDecider>(&registered())
                .when(rotate(2, 3600, 1), t(100))
                .unwrap(),
        );
        let second = given::<LenderDecider>(&once)
            .when(rotate(3, 3600, 2), t(200))
            .unwrap();
        assert!(
            matches!(&second[0], LenderEvent::ApiKeyRotated { dropped_prefix: Some(p), .. } if *p == prefix(1))
        );
        let l = lender(&with(once, second));
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
        let events = with(
            registered(),
            given::<LenderDecider>(&registered())
                .when(rotate(2, 3600, 1), t(100))
                .unwrap(),
        );
        let revoked = given::<LenderDecider>(&events)
            .when(
                LenderCommand::RevokeKey {
                    prefix: prefix(1),
                    using: prefix(2),
                },
                t(150),
            )
            .unwrap();
        let l = lender(&with(events.clone(), revoked.clone()));
        assert_eq!(
            l.key_validity(prefix(1).as_str(), t(151)),
            KeyValidity::Invalid
        );
        assert_eq!(
            l.key_validity(prefix(2).as_str(), t(151)),
            KeyValidity::Valid { until: None }
        );
        // Rejections: the current key, a key past its grace, an unknown key, revoking with the old key.
        let g = || given::<LenderDecider>(&events);
        assert_eq!(
            g().when(
                LenderCommand::RevokeKey {
                    prefix: prefix(2),
                    using: prefix(2)
                },
                t(150)
            ),
            Err(LenderError::CannotRevokeCurrentKey)
        );
        assert_eq!(
            g().when(
                LenderCommand::RevokeKey {
                    prefix: prefix(1),
                    using: prefix(2)
                },
                t(5000)
            ),
            Err(LenderError::KeyNotFound)
        );
        assert_eq!(
            g().when(
                LenderCommand::RevokeKey {
                    prefix: prefix(9),
                    using: prefix(2)
                },
                t(150)
            ),
            Err(LenderError::KeyNotFound)
        );
        assert_eq!(
            g().when(
                LenderCommand::RevokeKey {
                    prefix: prefix(1),
                    using: prefix(1)
                },
                t(150)
            ),
            Err(LenderError::NotCurrentKey)
        );
    }

    #[test]
    fn deactivation_refuses_every_key_and_reactivation_restores_them() {
        let events = with(
            registered(),
            given::<LenderDecider>(&registered())
                .when(LenderCommand::Deactivate, t(10))
                .unwrap(),
        );
        assert_eq!(
            lender(&events).key_validity(prefix(1).as_str(), t(11)),
            KeyValidity::Inactive
        );
        assert_eq!(
            given::<LenderDecider>(&events).when(LenderCommand::Deactivate, t(11)),
            Err(LenderError::AlreadyDeactivated)
        );
        let back = with(
            events.clone(),
            given::<LenderDecider>(&events)
                .when(LenderCommand::Reactivate, t(12))
                .unwrap(),
        );
        assert_eq!(
            lender(&back).key_validity(prefix(1).as_str(), t(13)),
            KeyValidity::Valid { until: None }
        );
        assert_eq!(
            given::<LenderDecider>(&back).when(LenderCommand::Reactivate, t(13)),
            Err(LenderError::AlreadyActive)
        );
    }

    #[test]
    fn events_round_trip_through_their_wire_form() {
        let events = with(
            registered(),
            given::<LenderDecider>(&registered())
                .when(rotate(2, 60, 1), t(100))
                .unwrap(),
        );
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
        let configured = given::<LenderDecider>(&registered())
            .when(LenderCommand::ConfigureWebhook { url: url.clone() }, t(10))
            .unwrap();
        assert_eq!(
            configured,
            [LenderEvent::WebhookConfigured {
                url: url.clone(),
                configured_at: t(10)
            }]
        );
        let mut history = registered();
        history.extend(configured);
        let LenderState::Registered(lender) = LenderDecider::fold(&history) else {
            panic!("registered");
        };
        assert_eq!(lender.webhook, Some(url));
        let removed = given::<LenderDecider>(&history)
            .when(LenderCommand::RemoveWebhook, t(20))
            .unwrap();
        assert_eq!(removed, [LenderEvent::WebhookRemoved { removed_at: t(20) }]);
        history.extend(removed);
        assert_eq!(
            given::<LenderDecider>(&history).when(LenderCommand::RemoveWebhook, t(30)),
            Err(LenderError::NoWebhook)
        );
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
        assert_eq!(
            given::<LenderDecider>(&history).when(command.clone(), t(10)),
            Err(LenderError::Deactivated)
        );
        assert_eq!(
            given::<LenderDecider>(&[]).when(command, t(10)),
            Err(LenderError::NotFound)
        );
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
}
