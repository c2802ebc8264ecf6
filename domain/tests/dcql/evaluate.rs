//! Evaluation (verifier side): whether a response satisfies a query.

use std::collections::BTreeMap;

use proofline_domain::dcql::{Mismatch, Presented, Unsatisfied, evaluate};
use serde_json::{Map, Value, json};

use crate::support::{
    IDENTITY, claims_alternatives, credentials_alternatives, map, parse, path, person, simple,
    value_matching, with,
};

fn presented(claims: &Map<String, Value>) -> Presented<'_> {
    Presented {
        vct: Some(IDENTITY),
        claims,
        holder_bound: true,
    }
}

fn respond<'a>(answers: &[(&str, Vec<Presented<'a>>)]) -> BTreeMap<String, Vec<Presented<'a>>> {
    answers
        .iter()
        .map(|(id, list)| (id.to_string(), list.clone()))
        .collect()
}

fn why_not(query: &Value, response: &BTreeMap<String, Vec<Presented<'_>>>) -> Option<Unsatisfied> {
    let evaluation = evaluate(&parse(query.clone()), response);
    assert_eq!(evaluation.satisfied, evaluation.unsatisfied.is_none());
    evaluation.unsatisfied
}

fn mismatch(id: &str, why: Mismatch) -> Option<Unsatisfied> {
    Some(Unsatisfied::CredentialNotMatched { id: id.into(), why })
}

#[test]
fn a_matching_presentation_satisfies_the_simple_query() {
    let claims = person();
    let response = respond(&[("my_credential", vec![presented(&claims)])]);
    let evaluation = evaluate(&parse(simple()), &response);
    assert!(evaluation.satisfied);
    assert_eq!(evaluation.unsatisfied, None);
    assert_eq!(
        evaluation.credentials,
        BTreeMap::from([("my_credential".to_string(), true)])
    );
}

#[test]
fn the_vct_must_be_among_vct_values() {
    let claims = person();
    let other = Presented {
        vct: Some("https://example.com/other"),
        ..presented(&claims)
    };
    let response = respond(&[("my_credential", vec![other])]);
    let evaluation = evaluate(&parse(simple()), &response);
    assert!(!evaluation.satisfied);
    assert!(!evaluation.credentials["my_credential"]);
    assert_eq!(
        evaluation.unsatisfied,
        mismatch(
            "my_credential",
            Mismatch::VctNotRequested {
                vct: Some("https://example.com/other".into())
            }
        )
    );
    let none = Presented {
        vct: None,
        ..presented(&claims)
    };
    assert_eq!(
        why_not(&simple(), &respond(&[("my_credential", vec![none])])),
        mismatch("my_credential", Mismatch::VctNotRequested { vct: None })
    );
}

#[test]
fn holder_binding_is_required_unless_the_query_says_otherwise() {
    let claims = person();
    let unbound = Presented {
        holder_bound: false,
        ..presented(&claims)
    };
    let response = respond(&[("my_credential", vec![unbound])]);
    assert_eq!(
        why_not(&simple(), &response),
        mismatch("my_credential", Mismatch::HolderBindingMissing)
    );
    let relaxed = with(|c| c["require_cryptographic_holder_binding"] = json!(false));
    assert_eq!(why_not(&relaxed, &response), None);
}

#[test]
fn a_missing_claim_fails_the_credential() {
    let mut claims = person();
    claims["address"]
        .as_object_mut()
        .unwrap()
        .remove("street_address");
    let response = respond(&[("my_credential", vec![presented(&claims)])]);
    assert_eq!(
        why_not(&simple(), &response),
        mismatch(
            "my_credential",
            Mismatch::ClaimMissing(path(json!(["address", "street_address"])))
        )
    );
}

#[test]
fn values_must_match_by_type_and_value() {
    let mut claims = person();
    claims["address"]["street_address"] = json!("1 Rue");
    claims["postal_code"] = json!("90211");
    let query = value_matching();
    assert_eq!(
        why_not(
            &query,
            &respond(&[("my_credential", vec![presented(&claims)])])
        ),
        None
    );

    claims["family_name"] = json!("Dent");
    assert_eq!(
        why_not(
            &query,
            &respond(&[("my_credential", vec![presented(&claims)])])
        ),
        mismatch(
            "my_credential",
            Mismatch::ValueNotRequested(path(json!(["family_name"])))
        )
    );
    claims["family_name"] = json!("Doe");
    claims["postal_code"] = json!(90210); // the number, not the string
    assert_eq!(
        why_not(
            &query,
            &respond(&[("my_credential", vec![presented(&claims)])])
        ),
        mismatch(
            "my_credential",
            Mismatch::ValueNotRequested(path(json!(["postal_code"])))
        )
    );
}

#[test]
fn claim_sets_fall_back_to_a_later_set() {
    let query = claims_alternatives();
    // No `region`: the first set fails, the second (postal_code) holds.
    let claims = person();
    assert!(!claims.contains_key("region"));
    assert_eq!(
        why_not(&query, &respond(&[("pid", vec![presented(&claims)])])),
        None
    );

    let mut neither = person();
    neither.remove("postal_code");
    assert_eq!(
        why_not(&query, &respond(&[("pid", vec![presented(&neither)])])),
        mismatch("pid", Mismatch::NoClaimSetSatisfied)
    );
    neither.insert("region".into(), json!("CA"));
    assert_eq!(
        why_not(&query, &respond(&[("pid", vec![presented(&neither)])])),
        None
    );
}

#[test]
fn credential_sets_need_one_full_option_of_each_required_set() {
    let query = credentials_alternatives();
    let at = |vct: &'static str, claims| Presented {
        vct: Some(vct),
        claims,
        holder_bound: true,
    };
    let pid = person();
    let reduced = map(json!({"family_name": "Doe", "given_name": "John"}));
    let residence = map(json!({"postal_code": "90210", "locality": "Anytown", "region": "CA"}));
    let rewards = map(json!({"rewards_number": 12}));
    let reduced_1 = at(
        "https://credentials.example.com/reduced_identity_credential",
        &reduced,
    );
    let reduced_2 = at("https://cred.example/residence_credential", &residence);
    let nice = at("https://company.example/company_rewards", &rewards);

    assert_eq!(
        why_not(&query, &respond(&[("pid", vec![presented(&pid)])])),
        None
    );
    // The optional set may be answered, or not.
    assert_eq!(
        why_not(
            &query,
            &respond(&[("pid", vec![presented(&pid)]), ("nice_to_have", vec![nice])])
        ),
        None
    );
    // The third option needs both of its credentials.
    assert_eq!(
        why_not(
            &query,
            &respond(&[
                ("pid_reduced_cred_1", vec![reduced_1]),
                ("pid_reduced_cred_2", vec![reduced_2])
            ])
        ),
        None
    );
    let set_0 = Some(Unsatisfied::NoCredentialSetOptionSatisfied { set_index: 0 });
    assert_eq!(
        why_not(&query, &respond(&[("pid_reduced_cred_1", vec![reduced_1])])),
        set_0
    );
    assert_eq!(
        why_not(&query, &respond(&[("nice_to_have", vec![nice])])),
        set_0
    );
    // Extras beyond the chosen option are ignored.
    let both = respond(&[
        ("pid", vec![presented(&pid)]),
        ("pid_reduced_cred_1", vec![reduced_1]),
    ]);
    assert_eq!(why_not(&query, &both), None);
    // But a presentation that does not match its query is not.
    let wrong = Presented {
        claims: &reduced,
        ..nice
    };
    let evaluation = evaluate(
        &parse(query),
        &respond(&[
            ("pid", vec![presented(&pid)]),
            ("nice_to_have", vec![wrong]),
        ]),
    );
    assert!(evaluation.credentials["pid"]);
    assert!(!evaluation.credentials["nice_to_have"]);
    assert_eq!(
        evaluation.unsatisfied,
        mismatch(
            "nice_to_have",
            Mismatch::ClaimMissing(path(json!(["rewards_number"])))
        )
    );
}

#[test]
fn without_credential_sets_every_credential_query_is_required() {
    let mut query = simple();
    let mut second = query["credentials"][0].clone();
    second["id"] = json!("second");
    query["credentials"].as_array_mut().unwrap().push(second);
    let claims = person();
    assert_eq!(
        why_not(
            &query,
            &respond(&[("my_credential", vec![presented(&claims)])])
        ),
        Some(Unsatisfied::RequiredCredentialMissing("second".into()))
    );
    assert_eq!(
        why_not(&simple(), &BTreeMap::new()),
        Some(Unsatisfied::RequiredCredentialMissing(
            "my_credential".into()
        ))
    );
}

#[test]
fn one_presentation_per_query_unless_multiple() {
    let claims = person();
    let two = respond(&[(
        "my_credential",
        vec![presented(&claims), presented(&claims)],
    )]);
    let evaluation = evaluate(&parse(simple()), &two);
    assert_eq!(
        evaluation.unsatisfied,
        Some(Unsatisfied::MultipleNotAllowed("my_credential".into()))
    );
    assert!(!evaluation.credentials["my_credential"]);

    let multiple = with(|c| c["multiple"] = json!(true));
    assert_eq!(why_not(&multiple, &two), None);
    let mut partial = person();
    partial.remove("given_name");
    let one_bad = respond(&[(
        "my_credential",
        vec![presented(&claims), presented(&partial)],
    )]);
    assert_eq!(
        why_not(&multiple, &one_bad),
        mismatch(
            "my_credential",
            Mismatch::ClaimMissing(path(json!(["given_name"])))
        )
    );
}

#[test]
fn unknown_ids_and_empty_arrays_are_refused() {
    let claims = person();
    let response = respond(&[
        ("my_credential", vec![presented(&claims)]),
        ("stranger", vec![presented(&claims)]),
    ]);
    let evaluation = evaluate(&parse(simple()), &response);
    assert_eq!(
        evaluation.unsatisfied,
        Some(Unsatisfied::UnknownCredentialId("stranger".into()))
    );
    assert!(!evaluation.satisfied);
    assert_eq!(
        evaluation.credentials,
        BTreeMap::from([("my_credential".to_string(), true)])
    );

    assert_eq!(
        why_not(&simple(), &respond(&[("my_credential", vec![])])),
        Some(Unsatisfied::EmptyPresentations("my_credential".into()))
    );
}

#[test]
fn unsatisfied_has_codes_and_descriptions() {
    let why = Unsatisfied::CredentialNotMatched {
        id: "pid".into(),
        why: Mismatch::ClaimMissing(path(json!(["address", "country"]))),
    };
    assert_eq!(why.as_str(), "credential_not_matched");
    assert_eq!(
        why.to_string(),
        r#"a presentation for "pid" does not match its query: claim address.country is not disclosed"#
    );
    let set = Unsatisfied::NoCredentialSetOptionSatisfied { set_index: 1 };
    assert_eq!(set.as_str(), "no_credential_set_option_satisfied");
    assert!(set.to_string().contains("credential_sets[1]"));
    assert_eq!(
        Unsatisfied::UnknownCredentialId("x".into()).as_str(),
        "unknown_credential_id"
    );
    assert_eq!(
        Unsatisfied::MultipleNotAllowed("x".into()).as_str(),
        "multiple_not_allowed"
    );
}
