//! The operator principal: its one key.

use proofline_domain::decider::{Decider, EventSchema};
use proofline_domain::operator::{Operator, OperatorCommand, OperatorDecider, OperatorError};
use proofline_domain::specification::given;
use proofline_domain::values::KeyPrefix;

use crate::support::t;

#[test]
fn the_operator_key_is_issued_once() {
    let now = t(0);
    let issue = || OperatorCommand::IssueKey {
        key_prefix: KeyPrefix::parse("0123456789abcdef").unwrap(),
    };
    let events = given::<OperatorDecider>([]).when(issue(), now).accepted();
    // The wire shape shipped in the first release: {"key_prefix": "..."}.
    assert_eq!(
        events[0].encode().data,
        serde_json::json!({"key_prefix": "0123456789abcdef"})
    );
    assert!(OperatorDecider::fold(&events).key_is_valid("0123456789abcdef"));
    given::<OperatorDecider>(events)
        .when(issue(), now)
        .then_error(OperatorError::AlreadyIssued);
}

#[test]
fn the_issued_key_is_the_operators_state() {
    let prefix = KeyPrefix::parse("fedcba9876543210").unwrap();
    let state = given::<OperatorDecider>([])
        .when(
            OperatorCommand::IssueKey {
                key_prefix: prefix.clone(),
            },
            t(0),
        )
        .then_state(Operator {
            key_prefix: Some(prefix),
        });
    assert!(state.key_is_valid("fedcba9876543210"));
    assert!(!state.key_is_valid("0123456789abcdef"));
}
