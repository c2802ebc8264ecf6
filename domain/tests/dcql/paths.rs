//! Claims path pointers (§7).

use proofline_domain::dcql::PathElement;
use serde_json::{Value, json};

use crate::support::{key, path};

/// §7.4's example credential.
fn arthur() -> Value {
    json!({
      "name": "Arthur Dent",
      "address": {"street_address": "42 Market Street", "locality": "Milliways", "postal_code": "12345"},
      "degrees": [
        {"type": "Bachelor of Science", "university": "University of Betelgeuse"},
        {"type": "Master of Science", "university": "University of Betelgeuse"}
      ],
      "nationalities": ["British", "Betelgeusian"]
    })
}

#[test]
fn the_path_examples_of_section_7_select_what_the_specification_says() {
    let credential = arthur();
    let select = |p: Value| path(p).select(&credential);
    assert_eq!(select(json!(["name"])), [&json!("Arthur Dent")]);
    assert_eq!(select(json!(["address"])), [&credential["address"]]);
    assert_eq!(
        select(json!(["address", "street_address"])),
        [&json!("42 Market Street")]
    );
    assert_eq!(
        select(json!(["degrees", null, "type"])),
        [&json!("Bachelor of Science"), &json!("Master of Science")]
    );
    assert_eq!(
        select(json!(["nationalities", 1])),
        [&json!("Betelgeusian")]
    );
}

#[test]
fn concrete_paths_expand_null_to_the_indices_it_matched() {
    let credential = arthur();
    assert_eq!(
        path(json!(["degrees", null, "type"])).concrete(&credential),
        [
            vec![key("degrees"), PathElement::Index(0), key("type")],
            vec![key("degrees"), PathElement::Index(1), key("type")]
        ]
    );
    assert_eq!(
        path(json!(["address", "locality"])).concrete(&credential),
        [vec![key("address"), key("locality")]]
    );
    // Elements without the key drop out of the selection.
    let sparse = json!({"a": [{"t": 1}, {}, {"t": 3}]});
    assert_eq!(
        path(json!(["a", null, "t"])).concrete(&sparse),
        [
            vec![key("a"), PathElement::Index(0), key("t")],
            vec![key("a"), PathElement::Index(2), key("t")]
        ]
    );
}

#[test]
fn processing_errors_and_empty_selections_select_nothing() {
    let credential = arthur();
    for p in [
        json!(["surname"]),                  // no such key
        json!(["nationalities", 2]),         // no such index
        json!(["name", "first"]),            // a key on a string
        json!(["address", 0]),               // an index on an object
        json!(["address", null]),            // null on an object
        json!(["nationalities", null, "x"]), // keys on strings
        json!(["degrees", null, "honours"]), // no element has it
        json!([0]),                          // the root is an object
    ] {
        assert!(path(p.clone()).select(&credential).is_empty(), "{p}");
        assert!(path(p.clone()).concrete(&credential).is_empty(), "{p}");
    }
    // One element of the wrong type fails the whole pointer (§7.1.1).
    let mixed = json!({"a": [{"t": 1}, "plain"]});
    assert!(path(json!(["a", null, "t"])).select(&mixed).is_empty());
    assert!(
        path(json!(["name"]))
            .select(&json!(["not", "an", "object"]))
            .is_empty()
    );
}

#[test]
fn paths_show_as_dotted_names() {
    assert_eq!(
        path(json!(["address", "country"])).to_string(),
        "address.country"
    );
    assert_eq!(
        path(json!(["nationalities", null])).to_string(),
        "nationalities.*"
    );
    assert_eq!(
        path(json!(["degrees", 0, "type"])).to_string(),
        "degrees.0.type"
    );
    assert_eq!(
        path(json!(["degrees", null, 0])).to_value(),
        json!(["degrees", null, 0])
    );
}
