//! Parsing: the specification's examples, and what the subset refuses.

use proofline_domain::dcql::{DcqlError, MAX_CREDENTIALS, PathElement};
use serde_json::{Value, json};

use crate::support::{
    IDENTITY, claims_alternatives, credentials_alternatives, key, parse, path, refused, simple,
    value_matching, with,
};

// ---- Parsing: the specification's examples --------------------------------

#[test]
fn the_simple_example_parses_with_its_defaults_and_writes_back_as_given() {
    let query = parse(simple());
    let [credential] = query.credentials() else {
        panic!("one credential query")
    };
    assert_eq!(credential.id, "my_credential");
    assert_eq!(credential.vct_values, [IDENTITY]);
    assert!(!credential.multiple);
    assert!(credential.require_cryptographic_holder_binding);
    let claims = credential.claims.as_ref().unwrap();
    assert_eq!(
        claims[2].path.elements(),
        [key("address"), key("street_address")]
    );
    assert_eq!(claims[2].id, None);
    assert_eq!(credential.claim_sets, None);
    assert_eq!(query.credential_sets(), None);
    assert_eq!(query.credential("my_credential"), Some(credential));
    assert_eq!(query.credential("other"), None);
    assert_eq!(query.to_value(), simple());
}

#[test]
fn every_example_writes_back_to_itself() {
    for example in [
        simple(),
        claims_alternatives(),
        credentials_alternatives(),
        value_matching(),
    ] {
        let query = parse(example.clone());
        assert_eq!(query.to_value(), example);
        assert_eq!(parse(query.to_value()), query);
    }
}

#[test]
fn explicit_defaults_are_normalised_away() {
    let query = parse(with(|c| {
        c["multiple"] = json!(false);
        c["require_cryptographic_holder_binding"] = json!(true);
    }));
    assert_eq!(query.to_value(), simple());
    let query = parse(with(|c| {
        c["multiple"] = json!(true);
        c["require_cryptographic_holder_binding"] = json!(false);
    }));
    assert!(query.credentials()[0].multiple);
    assert!(!query.credentials()[0].require_cryptographic_holder_binding);
    assert_eq!(query.to_value()["credentials"][0]["multiple"], json!(true));
    assert_eq!(parse(query.to_value()), query);
}

#[test]
fn the_claim_sets_example_keeps_ids_and_sets_in_order() {
    let query = parse(claims_alternatives());
    let credential = &query.credentials()[0];
    assert_eq!(
        credential.claim_sets,
        Some(vec![
            vec!["a".into(), "c".into(), "d".into(), "e".into()],
            vec!["a".into(), "b".into(), "e".into()]
        ])
    );
    assert_eq!(
        credential.claim("b").unwrap().path,
        path(json!(["postal_code"]))
    );
    assert_eq!(credential.claim("z"), None);
}

#[test]
fn the_credential_sets_example_has_one_required_and_one_optional_set() {
    let query = parse(credentials_alternatives());
    let sets = query.credential_sets().unwrap();
    assert_eq!(sets.len(), 2);
    assert!(sets[0].required);
    assert_eq!(
        sets[0].options[2],
        ["pid_reduced_cred_1", "pid_reduced_cred_2"]
    );
    assert!(!sets[1].required);
    assert_eq!(sets[1].options, [["nice_to_have"]]);
}

#[test]
fn the_value_matching_example_keeps_its_values() {
    let query = parse(value_matching());
    let claims = query.credentials()[0].claims.as_ref().unwrap();
    assert_eq!(claims[0].values, Some(vec![json!("Doe")]));
    assert_eq!(claims[1].values, None);
    assert_eq!(claims[3].values, Some(vec![json!("90210"), json!("90211")]));
    // Integers and booleans are values too.
    parse(with(|c| {
        c["claims"][0]["values"] = json!([42, -1, true, "x"])
    }));
}

// ---- Parsing: what the subset refuses ---------------------------------------

#[test]
fn mso_mdoc_is_refused_where_it_stands() {
    // Appendix D's query for an SD-JWT VC and an mdoc.
    let mut query = simple();
    query["credentials"].as_array_mut().unwrap().push(json!({
        "id": "mdl",
        "format": "mso_mdoc",
        "meta": {"doctype_value": "org.iso.7367.1.mVRC"},
        "claims": [{"path": ["org.iso.7367.1", "vehicle_holder"]}]
    }));
    let error = refused(query);
    assert_eq!(
        error,
        DcqlError::UnsupportedFormat {
            at: "credentials[1].format".into(),
            format: "mso_mdoc".into()
        }
    );
    assert!(
        error
            .to_string()
            .starts_with(r#"credentials[1].format: only "dc+sd-jwt" is supported"#)
    );
    assert!(matches!(
        refused(with(|c| c["format"] = json!(7))),
        DcqlError::WrongType { .. }
    ));
}

#[test]
fn trusted_authorities_is_refused_as_unsupported() {
    let error =
        refused(with(
            |c| {
                c["trusted_authorities"] =
                    json!([{"type": "aki", "values": ["s9tIpPmhxdiuNkHMEWNpYim8S8Y"]}])
            },
        ));
    assert_eq!(
        error,
        DcqlError::Unsupported {
            at: "credentials[0].trusted_authorities".into()
        }
    );
}

#[test]
fn unknown_members_are_refused_at_every_level() {
    let mut top = simple();
    top["scope"] = json!("openid");
    assert_eq!(
        refused(top),
        DcqlError::UnknownMember { at: "scope".into() }
    );
    let mut top = simple();
    top["transaction_data"] = json!([]);
    assert_eq!(
        refused(top),
        DcqlError::UnknownMember {
            at: "transaction_data".into()
        }
    );
    assert_eq!(
        refused(with(|c| c["claim_set"] = json!([["a"]]))),
        DcqlError::UnknownMember {
            at: "credentials[0].claim_set".into()
        }
    );
    assert_eq!(
        refused(with(|c| c["meta"]["doctype_value"] = json!("x"))),
        DcqlError::UnknownMember {
            at: "credentials[0].meta.doctype_value".into()
        }
    );
    assert_eq!(
        refused(with(|c| c["claims"][1]["intent_to_retain"] = json!(false))),
        DcqlError::UnknownMember {
            at: "credentials[0].claims[1].intent_to_retain".into()
        }
    );
    let mut sets = credentials_alternatives();
    sets["credential_sets"][0]["purpose"] = json!("x");
    assert_eq!(
        refused(sets),
        DcqlError::UnknownMember {
            at: "credential_sets[0].purpose".into()
        }
    );
}

#[test]
fn ids_are_unique_and_of_the_allowed_characters() {
    let mut twice = simple();
    let copy = twice["credentials"][0].clone();
    twice["credentials"].as_array_mut().unwrap().push(copy);
    assert_eq!(
        refused(twice),
        DcqlError::DuplicateId {
            at: "credentials[1].id".into(),
            id: "my_credential".into()
        }
    );
    let mut claim_twice = claims_alternatives();
    claim_twice["credentials"][0]["claims"][3]["id"] = json!("c");
    assert_eq!(
        refused(claim_twice),
        DcqlError::DuplicateId {
            at: "credentials[0].claims[3].id".into(),
            id: "c".into()
        }
    );
    for bad in [
        json!(""),
        json!("my credential"),
        json!("ü"),
        json!("x".repeat(65)),
        json!(1),
    ] {
        let error = refused(with(|c| c["id"] = bad.clone()));
        assert!(
            matches!(&error, DcqlError::InvalidId { at } | DcqlError::WrongType { at, .. } if at == "credentials[0].id"),
            "{bad}: {error:?}"
        );
    }
    parse(with(|c| {
        c["id"] = json!(format!("A-z_0{}", "9".repeat(59)))
    }));
    assert_eq!(
        refused(with(|c| {
            c.as_object_mut().unwrap().remove("id");
        })),
        DcqlError::Missing {
            at: "credentials[0].id".into()
        }
    );
}

#[test]
fn claim_sets_must_reference_claims_that_exist_and_have_ids() {
    let mut unknown = claims_alternatives();
    unknown["credentials"][0]["claim_sets"][1][1] = json!("z");
    assert!(matches!(
        refused(unknown),
        DcqlError::UnknownId { at, id, .. } if at == "credentials[0].claim_sets[1][1]" && id == "z"
    ));
    let mut no_id = claims_alternatives();
    no_id["credentials"][0]["claims"][4]
        .as_object_mut()
        .unwrap()
        .remove("id");
    assert_eq!(
        refused(no_id),
        DcqlError::MissingClaimId {
            at: "credentials[0].claims[4].id".into()
        }
    );
    let mut no_claims = claims_alternatives();
    no_claims["credentials"][0]
        .as_object_mut()
        .unwrap()
        .remove("claims");
    assert_eq!(
        refused(no_claims),
        DcqlError::ClaimSetsWithoutClaims {
            at: "credentials[0].claim_sets".into()
        }
    );
    let mut empty_set = claims_alternatives();
    empty_set["credentials"][0]["claim_sets"][0] = json!([]);
    assert_eq!(
        refused(empty_set),
        DcqlError::Empty {
            at: "credentials[0].claim_sets[0]".into()
        }
    );
    let mut repeated = claims_alternatives();
    repeated["credentials"][0]["claim_sets"][0] = json!(["a", "a"]);
    assert!(matches!(refused(repeated), DcqlError::DuplicateId { .. }));
}

#[test]
fn credential_sets_must_reference_credential_queries_that_exist() {
    let mut unknown = credentials_alternatives();
    unknown["credential_sets"][1]["options"][0][0] = json!("nice_to_hav");
    assert!(matches!(
        refused(unknown),
        DcqlError::UnknownId { at, .. } if at == "credential_sets[1].options[0][0]"
    ));
    for (edit, expected) in [
        (
            json!([]),
            DcqlError::Empty {
                at: "credential_sets".into(),
            },
        ),
        (
            json!([{"options": []}]),
            DcqlError::Empty {
                at: "credential_sets[0].options".into(),
            },
        ),
        (
            json!([{"options": [[]]}]),
            DcqlError::Empty {
                at: "credential_sets[0].options[0]".into(),
            },
        ),
        (
            json!([{}]),
            DcqlError::Missing {
                at: "credential_sets[0].options".into(),
            },
        ),
        (
            json!([{"options": [["pid"]], "required": "yes"}]),
            DcqlError::WrongType {
                at: "credential_sets[0].required".into(),
                expected: "a boolean",
            },
        ),
    ] {
        let mut query = credentials_alternatives();
        query["credential_sets"] = edit;
        assert_eq!(refused(query), expected);
    }
}

#[test]
fn path_elements_are_strings_non_negative_integers_or_null() {
    for bad in [
        json!(-1),
        json!(1.5),
        json!(1.0),
        json!({}),
        json!([]),
        json!(true),
    ] {
        assert_eq!(
            refused(with(
                |c| c["claims"][1]["path"] = json!(["degrees", bad.clone()])
            )),
            DcqlError::InvalidPathElement {
                at: "credentials[0].claims[1].path[1]".into()
            },
            "{bad}"
        );
    }
    assert_eq!(
        refused(with(|c| c["claims"][0]["path"] = json!([]))),
        DcqlError::Empty {
            at: "credentials[0].claims[0].path".into()
        }
    );
    assert_eq!(
        refused(with(|c| c["claims"][0]["path"] = json!("family_name"))),
        DcqlError::WrongType {
            at: "credentials[0].claims[0].path".into(),
            expected: "an array"
        }
    );
    assert_eq!(
        path(json!(["degrees", null, 0, "type"])).elements(),
        [
            key("degrees"),
            PathElement::All,
            PathElement::Index(0),
            key("type")
        ]
    );
}

#[test]
fn the_same_claim_may_not_be_asked_twice() {
    assert_eq!(
        refused(with(|c| c["claims"][2]["path"] = json!(["family_name"]))),
        DcqlError::DuplicatePath {
            at: "credentials[0].claims[2].path".into(),
            other: 0
        }
    );
}

#[test]
fn values_are_strings_integers_or_booleans() {
    for bad in [json!(1.5), json!(null), json!({"a": 1}), json!(["Doe"])] {
        assert_eq!(
            refused(with(
                |c| c["claims"][0]["values"] = json!(["Doe", bad.clone()])
            )),
            DcqlError::InvalidValue {
                at: "credentials[0].claims[0].values[1]".into()
            },
            "{bad}"
        );
    }
    assert_eq!(
        refused(with(|c| c["claims"][0]["values"] = json!([]))),
        DcqlError::Empty {
            at: "credentials[0].claims[0].values".into()
        }
    );
}

#[test]
fn meta_needs_vct_values() {
    assert_eq!(
        refused(with(|c| {
            c.as_object_mut().unwrap().remove("meta");
        })),
        DcqlError::Missing {
            at: "credentials[0].meta".into()
        }
    );
    assert_eq!(
        refused(with(|c| c["meta"] = json!({}))),
        DcqlError::Missing {
            at: "credentials[0].meta.vct_values".into()
        }
    );
    assert_eq!(
        refused(with(|c| c["meta"]["vct_values"] = json!([]))),
        DcqlError::Empty {
            at: "credentials[0].meta.vct_values".into()
        }
    );
    assert_eq!(
        refused(with(|c| c["meta"]["vct_values"] = json!([IDENTITY, 3]))),
        DcqlError::WrongType {
            at: "credentials[0].meta.vct_values[1]".into(),
            expected: "a string"
        }
    );
    assert_eq!(
        refused(with(|c| c["multiple"] = json!("true"))),
        DcqlError::WrongType {
            at: "credentials[0].multiple".into(),
            expected: "a boolean"
        }
    );
}

#[test]
fn sizes_are_bounded() {
    let credentials = |n: usize| -> Value {
        let queries: Vec<Value> = (0..n)
            .map(|i| json!({"id": format!("c{i}"), "format": "dc+sd-jwt", "meta": {"vct_values": [IDENTITY]}}))
            .collect();
        json!({ "credentials": queries })
    };
    assert_eq!(parse(credentials(MAX_CREDENTIALS)).credentials().len(), 8);
    assert_eq!(
        refused(credentials(9)),
        DcqlError::TooMany {
            at: "credentials".into(),
            max: 8
        }
    );
    assert_eq!(
        refused(credentials(0)),
        DcqlError::Empty {
            at: "credentials".into()
        }
    );
    assert_eq!(
        refused(json!({})),
        DcqlError::Missing {
            at: "credentials".into()
        }
    );
    assert!(matches!(refused(json!([])), DcqlError::WrongType { .. }));

    let claims = |n: usize| {
        (0..n)
            .map(|i| json!({"path": [format!("c{i}")]}))
            .collect::<Vec<_>>()
    };
    parse(with(|c| c["claims"] = json!(claims(32))));
    assert!(matches!(
        refused(with(|c| c["claims"] = json!(claims(33)))),
        DcqlError::TooMany { max: 32, .. }
    ));

    let long_path = |n: usize| json!(vec!["k"; n]);
    parse(with(|c| c["claims"][0]["path"] = long_path(16)));
    assert_eq!(
        refused(with(|c| c["claims"][0]["path"] = long_path(17))),
        DcqlError::TooMany {
            at: "credentials[0].claims[0].path".into(),
            max: 16
        }
    );
    assert!(matches!(
        refused(with(|c| c["claims"][0]["values"] = json!(vec!["x"; 17]))),
        DcqlError::TooMany { max: 16, .. }
    ));
    assert_eq!(
        refused(with(|c| c["claims"][0]["path"] = json!(["k".repeat(257)]))),
        DcqlError::TooLong {
            at: "credentials[0].claims[0].path[0]".into(),
            max: 256
        }
    );
    assert!(matches!(
        refused(with(|c| c["meta"]["vct_values"] = json!(["v".repeat(257)]))),
        DcqlError::TooLong { max: 256, .. }
    ));
}
