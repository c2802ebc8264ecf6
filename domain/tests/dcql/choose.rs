//! Choosing (wallet side): which held credentials answer a query, and what
//! of them to disclose.

use std::collections::BTreeMap;

use proofline_domain::dcql::{Held, PathElement, Presented, choose, evaluate};
use serde_json::{Map, Value, json};

use crate::support::{
    IDENTITY, claims_alternatives, credentials_alternatives, key, map, parse, person, simple, with,
};

fn held(claims: &Map<String, Value>) -> Held<'_> {
    Held {
        vct: IDENTITY,
        claims,
        holder_bound: true,
    }
}

fn paths(list: &[&[&str]]) -> Vec<Vec<PathElement>> {
    list.iter()
        .map(|p| p.iter().map(|k| key(k)).collect())
        .collect()
}

#[test]
fn choose_discloses_exactly_what_is_asked() {
    let query = parse(json!({
      "credentials": [{
        "id": "pid",
        "format": "dc+sd-jwt",
        "meta": {"vct_values": [IDENTITY]},
        "claims": [
          {"path": ["given_name"]},
          {"path": ["family_name"]},
          {"path": ["address", "country"]}
        ]
      }]
    }));
    let other = map(json!({"given_name": "Eve"}));
    let claims = person();
    let wallet = [
        Held {
            vct: "https://example.com/other",
            ..held(&claims)
        },
        held(&other),
        held(&claims),
    ];
    let chosen = choose(&query, &wallet).unwrap();
    assert_eq!(
        chosen,
        BTreeMap::from([(
            "pid".to_string(),
            vec![(
                2,
                paths(&[&["given_name"], &["family_name"], &["address", "country"]])
            )]
        )])
    );
}

#[test]
fn choose_takes_the_first_claim_set_the_credential_satisfies() {
    let query = parse(claims_alternatives());
    // No `region`: the second set.
    let claims = person();
    let chosen = choose(&query, &[held(&claims)]).unwrap();
    assert_eq!(
        chosen["pid"],
        [(
            0,
            paths(&[&["family_name"], &["postal_code"], &["date_of_birth"]])
        )]
    );
    // With `region`: the first, and `postal_code` stays undisclosed.
    let mut full = person();
    full.insert("region".into(), json!("CA"));
    let chosen = choose(&query, &[held(&full)]).unwrap();
    assert_eq!(
        chosen["pid"],
        [(
            0,
            paths(&[
                &["family_name"],
                &["locality"],
                &["region"],
                &["date_of_birth"]
            ])
        )]
    );
    let mut neither = person();
    neither.remove("postal_code");
    assert_eq!(choose(&query, &[held(&neither)]), None);
}

#[test]
fn choose_answers_multiple_with_every_match_and_otherwise_the_first() {
    let first = person();
    let mut second = person();
    second["given_name"] = json!("Jane");
    let mut partial = person();
    partial.remove("family_name");
    let unbound_claims = person();
    let wallet = [
        held(&first),
        held(&partial),
        held(&second),
        Held {
            holder_bound: false,
            ..held(&unbound_claims)
        },
    ];
    let asked = paths(&[
        &["family_name"],
        &["given_name"],
        &["address", "street_address"],
    ]);

    let single = choose(&parse(simple()), &wallet).unwrap();
    assert_eq!(single["my_credential"], [(0, asked.clone())]);
    let multiple = choose(&parse(with(|c| c["multiple"] = json!(true))), &wallet).unwrap();
    assert_eq!(
        multiple["my_credential"],
        [(0, asked.clone()), (2, asked.clone())]
    );
    // Without holder binding required, the unbound credential answers too.
    let relaxed = with(|c| {
        c["multiple"] = json!(true);
        c["require_cryptographic_holder_binding"] = json!(false);
    });
    let all = choose(&parse(relaxed), &wallet).unwrap();
    assert_eq!(
        all["my_credential"]
            .iter()
            .map(|(i, _)| *i)
            .collect::<Vec<_>>(),
        [0, 2, 3]
    );
    assert_eq!(choose(&parse(simple()), &[held(&partial)]), None);
}

#[test]
fn choose_discloses_only_the_values_asked_for() {
    let query = parse(with(|c| {
        c["claims"] = json!([{"path": ["nationalities", null], "values": ["German", "French"]}]);
    }));
    let claims = person();
    let chosen = choose(&query, &[held(&claims)]).unwrap();
    assert_eq!(
        chosen["my_credential"],
        [(0, vec![vec![key("nationalities"), PathElement::Index(1)]])]
    );
    // A query without claims discloses nothing selectively.
    let bare = parse(with(|c| {
        c.as_object_mut().unwrap().remove("claims");
    }));
    assert_eq!(
        choose(&bare, &[held(&claims)]).unwrap()["my_credential"],
        [(0, vec![])]
    );
}

#[test]
fn choose_honours_credential_sets() {
    let query = parse(credentials_alternatives());
    let reduced = map(json!({"family_name": "Doe", "given_name": "John"}));
    let residence = map(json!({"postal_code": "90210", "locality": "Anytown", "region": "CA"}));
    let rewards = map(json!({"rewards_number": 12}));
    let reduced_1 = Held {
        vct: "https://credentials.example.com/reduced_identity_credential",
        ..held(&reduced)
    };
    let reduced_2 = Held {
        vct: "https://cred.example/residence_credential",
        ..held(&residence)
    };
    let nice = Held {
        vct: "https://company.example/company_rewards",
        ..held(&rewards)
    };
    let pid = person();

    // The third option, and the optional set when it can be answered.
    let wallet = [nice, reduced_2, reduced_1];
    let chosen = choose(&query, &wallet).unwrap();
    assert_eq!(
        chosen.keys().collect::<Vec<_>>(),
        ["nice_to_have", "pid_reduced_cred_1", "pid_reduced_cred_2"]
    );
    assert_eq!(
        chosen["pid_reduced_cred_1"],
        [(2, paths(&[&["family_name"], &["given_name"]]))]
    );
    assert_eq!(chosen["nice_to_have"], [(0, paths(&[&["rewards_number"]]))]);
    // The first option wins when it can be answered; the optional set is
    // left out when it cannot.
    let chosen = choose(&query, &[reduced_1, reduced_2, held(&pid)]).unwrap();
    assert_eq!(chosen.keys().collect::<Vec<_>>(), ["pid"]);
    // A required set that cannot be answered: nothing at all.
    assert_eq!(choose(&query, &[reduced_1, nice]), None);

    // What the wallet chooses satisfies the verifier.
    let response: BTreeMap<String, Vec<Presented<'_>>> = choose(&query, &wallet)
        .unwrap()
        .into_iter()
        .map(|(id, answers)| {
            let shown = answers
                .iter()
                .map(|(i, _)| Presented {
                    vct: Some(wallet[*i].vct),
                    claims: wallet[*i].claims,
                    holder_bound: true,
                })
                .collect();
            (id, shown)
        })
        .collect();
    assert!(evaluate(&query, &response).satisfied);
}
