//! What the DCQL tests share: the specification's example queries, a
//! holder's claims and the parsing helpers.

use proofline_domain::dcql::{ClaimsPath, DcqlError, DcqlQuery, PathElement};
use serde_json::{Map, Value, json};

pub const IDENTITY: &str = "https://credentials.example.com/identity_credential";

/// §6.5: `family_name`, `given_name` and `address.street_address`.
pub fn simple() -> Value {
    json!({
      "credentials": [{
        "id": "my_credential",
        "format": "dc+sd-jwt",
        "meta": {"vct_values": [IDENTITY]},
        "claims": [
          {"path": ["family_name"]},
          {"path": ["given_name"]},
          {"path": ["address", "street_address"]}
        ]
      }]
    })
}

/// Appendix D: `family_name` and `date_of_birth`, and `locality` with
/// `region` or else `postal_code`.
pub fn claims_alternatives() -> Value {
    json!({
      "credentials": [{
        "id": "pid",
        "format": "dc+sd-jwt",
        "meta": {"vct_values": [IDENTITY]},
        "claims": [
          {"id": "a", "path": ["family_name"]},
          {"id": "b", "path": ["postal_code"]},
          {"id": "c", "path": ["locality"]},
          {"id": "d", "path": ["region"]},
          {"id": "e", "path": ["date_of_birth"]}
        ],
        "claim_sets": [["a", "c", "d", "e"], ["a", "b", "e"]]
      }]
    })
}

/// Appendix D: `pid`, or `other_pid`, or both reduced credentials; and
/// optionally `nice_to_have`.
pub fn credentials_alternatives() -> Value {
    let query = |id: &str, vct: &str, claims: &[&str]| {
        let claims: Vec<Value> = claims
            .iter()
            .map(|claim| json!({"path": claim.split('.').collect::<Vec<_>>()}))
            .collect();
        json!({"id": id, "format": "dc+sd-jwt", "meta": {"vct_values": [vct]}, "claims": claims})
    };
    let names = ["given_name", "family_name", "address.street_address"];
    json!({
      "credentials": [
        query("pid", IDENTITY, &names),
        query("other_pid", "https://othercredentials.example/pid", &names),
        query("pid_reduced_cred_1", "https://credentials.example.com/reduced_identity_credential",
              &["family_name", "given_name"]),
        query("pid_reduced_cred_2", "https://cred.example/residence_credential",
              &["postal_code", "locality", "region"]),
        query("nice_to_have", "https://company.example/company_rewards", &["rewards_number"])
      ],
      "credential_sets": [
        {"options": [["pid"], ["other_pid"], ["pid_reduced_cred_1", "pid_reduced_cred_2"]]},
        {"required": false, "options": [["nice_to_have"]]}
      ]
    })
}

/// Appendix D: `values` on `family_name` and `postal_code`.
pub fn value_matching() -> Value {
    json!({
      "credentials": [{
        "id": "my_credential",
        "format": "dc+sd-jwt",
        "meta": {"vct_values": [IDENTITY]},
        "claims": [
          {"path": ["family_name"], "values": ["Doe"]},
          {"path": ["given_name"]},
          {"path": ["address", "street_address"]},
          {"path": ["postal_code"], "values": ["90210", "90211"]}
        ]
      }]
    })
}

pub fn person() -> Map<String, Value> {
    map(json!({
      "vct": IDENTITY,
      "given_name": "John",
      "family_name": "Doe",
      "birthdate": "1940-01-01",
      "postal_code": "90210",
      "locality": "Anytown",
      "date_of_birth": "1940-01-01",
      "address": {"street_address": "123 Main St", "country": "US"},
      "nationalities": ["British", "German"]
    }))
}

pub fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

pub fn parse(value: Value) -> DcqlQuery {
    DcqlQuery::parse(&value).unwrap_or_else(|e| panic!("{e}"))
}

pub fn refused(value: Value) -> DcqlError {
    DcqlQuery::parse(&value).expect_err("the query is refused")
}

pub fn path(value: Value) -> ClaimsPath {
    ClaimsPath::parse(&value).unwrap()
}

pub fn key(name: &str) -> PathElement {
    PathElement::Key(name.into())
}

/// `simple()` with its credential query changed by `edit`.
pub fn with(edit: impl FnOnce(&mut Value)) -> Value {
    let mut query = simple();
    edit(&mut query["credentials"][0]);
    query
}
