//! The wallet's side (§6.4): which held credentials answer a query, and
//! which of their claims to disclose.
//!
//! The choice is the one §6.4 recommends, made without asking anyone: the
//! first claim set a credential satisfies, the first option of a credential
//! set that can be answered in full, and for a credential query without
//! `multiple` the first credential that matches. Only the claims asked for
//! are disclosed (§6.4: a wallet must not send selectively disclosable
//! claims that were not selected), and of a claim with `values` only the
//! values among them (§6.4.1: a value that does not match is treated as
//! absent).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::evaluate::match_credential;
use super::{CredentialQuery, DcqlQuery, PathElement};

/// One credential the wallet holds.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    pub vct: &'a str,
    /// Every claim, as issued (all Disclosures applied).
    pub claims: &'a Map<String, Value>,
    /// Whether the wallet can prove holder binding for it (it has a `cnf`
    /// key the wallet holds).
    pub holder_bound: bool,
}

/// What answers one credential query: each chosen credential's index in
/// the held list, with the concrete claim paths to disclose from it.
pub type Answer = Vec<(usize, Vec<Vec<PathElement>>)>;

/// For each credential query id to answer, which held credentials (by index) and, for each, the concrete claim paths to disclose (only the ones the query asks for: the first satisfiable claim set, or all claims queries; for a query without `claims`, an empty list meaning "disclose nothing selectively").
/// Honors credential_sets (first satisfiable option of each required set; optional sets answered when possible), `multiple` (all matching credentials when true, else the first).
/// None when the query cannot be satisfied.
///
/// A credential may answer more than one credential query (§6.1 allows
/// it); its presentation for each discloses what that query asks.
pub fn choose(query: &DcqlQuery, held: &[Held<'_>]) -> Option<BTreeMap<String, Answer>> {
    let answers: BTreeMap<&str, Answer> = query
        .credentials()
        .iter()
        .filter_map(|credential| {
            let answer = answer(credential, held);
            (!answer.is_empty()).then_some((credential.id.as_str(), answer))
        })
        .collect();

    let wanted: Vec<&str> = match query.credential_sets() {
        // §6.4.2: without credential sets, every credential query.
        None => query
            .credentials()
            .iter()
            .map(|credential| credential.id.as_str())
            .collect(),
        Some(sets) => {
            let mut wanted = Vec::new();
            for set in sets {
                let option = set
                    .options
                    .iter()
                    .find(|option| option.iter().all(|id| answers.contains_key(id.as_str())));
                match option {
                    Some(option) => wanted.extend(option.iter().map(String::as_str)),
                    None if set.required => return None,
                    None => {}
                }
            }
            wanted
        }
    };

    let mut chosen = BTreeMap::new();
    for id in wanted {
        // Without credential sets a query that cannot be answered makes the
        // whole query unsatisfiable; with them, `wanted` has only answered
        // ids.
        let answer = answers.get(id)?;
        chosen.insert(id.to_owned(), answer.clone());
    }
    Some(chosen)
}

/// The held credentials that match `credential`, with what to disclose of
/// each: all of them with `multiple`, else the first.
fn answer(credential: &CredentialQuery, held: &[Held<'_>]) -> Answer {
    let mut matching = held.iter().enumerate().filter_map(|(index, held)| {
        match_credential(credential, Some(held.vct), held.claims, held.holder_bound)
            .ok()
            .map(|paths| (index, paths))
    });
    if credential.multiple {
        matching.collect()
    } else {
        matching.next().into_iter().collect()
    }
}
