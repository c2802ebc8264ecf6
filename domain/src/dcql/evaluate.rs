//! The verifier's side (§8.6 step 3, with the rules of §6.4): whether the
//! presentations of a `vp_token`, each already verified, satisfy the query.
//!
//! Strict where the specification leaves room. A response key that names
//! no credential query, an empty array, more presentations than `multiple`
//! allows, or a presentation that does not match its credential query makes
//! the whole response unsatisfied. §8.6 would have a presentation failing
//! its own checks discarded and the rest judged without it; but a wallet
//! must not send credentials that do not match (§6.4.2), so one that does is
//! misbehaving, and the lender is better told than served a partial answer.
//! [`Evaluation::credentials`] still says, per credential query, which
//! answers matched.
//!
//! Extra answers are ignored: with `credential_sets`, a matching answer to
//! a credential query that no satisfied option needed (an optional set, or a
//! second option of a set) does not make the response unsatisfied. §6.4.2
//! only asks the wallet not to send more; refusing an honest over-answer
//! would gain nothing.
//!
//! `values` is checked like every other constraint. §6.4.1 says verifiers
//! must not rely on it for security, because wallets may not be able to
//! apply it; that is about what a wallet can promise, and a presentation
//! whose disclosed value is not among those asked for does not answer the
//! query.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use super::{ClaimsPath, ClaimsQuery, CredentialQuery, DcqlQuery, PathElement, shown};

/// What one verified presentation showed, as DCQL evaluation needs it.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// The credential's `vct`.
    pub vct: Option<&'a str>,
    /// The processed claims (what the presentation disclosed, and what the
    /// issuer put in the clear).
    pub claims: &'a Map<String, Value>,
    /// Whether the presentation proved holder binding (a checked KB-JWT).
    pub holder_bound: bool,
}

/// Whether a response satisfied a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub satisfied: bool,
    /// For each credential query the response answered: whether every
    /// presentation given for it matched (false for an empty array, and for
    /// more than one where `multiple` is false). Response keys that are no
    /// credential query's id are not here.
    pub credentials: BTreeMap<String, bool>,
    /// The first reason the response does not satisfy the query; `None`
    /// exactly when `satisfied`.
    pub unsatisfied: Option<Unsatisfied>,
}

/// Why a response does not satisfy a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsatisfied {
    /// A `vp_token` key that is no credential query's id (bounded).
    UnknownCredentialId(String),
    /// A credential query answered with an empty array.
    EmptyPresentations(String),
    /// More than one presentation for a credential query without
    /// `multiple`.
    MultipleNotAllowed(String),
    /// A presentation that does not match its credential query.
    CredentialNotMatched { id: String, why: Mismatch },
    /// Without `credential_sets`, every credential query is required; this
    /// one was not answered.
    RequiredCredentialMissing(String),
    /// A required credential set none of whose options was answered in
    /// full.
    NoCredentialSetOptionSatisfied { set_index: usize },
}

/// Why a presentation (or a held credential) does not match a credential
/// query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// Its `vct` (bounded) is not in `vct_values`, or it has none.
    VctNotRequested { vct: Option<String> },
    /// The query requires holder binding and there was none.
    HolderBindingMissing,
    /// The claim selects nothing.
    ClaimMissing(ClaimsPath),
    /// The claim is there, but none of its values is among `values`.
    ValueNotRequested(ClaimsPath),
    /// No claim set has every one of its claims (each claim's own mismatch
    /// is not kept: there is one per set).
    NoClaimSetSatisfied,
}

impl Unsatisfied {
    /// A stable code, such as `credential_not_matched`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Unsatisfied::UnknownCredentialId(_) => "unknown_credential_id",
            Unsatisfied::EmptyPresentations(_) => "empty_presentations",
            Unsatisfied::MultipleNotAllowed(_) => "multiple_not_allowed",
            Unsatisfied::CredentialNotMatched { .. } => "credential_not_matched",
            Unsatisfied::RequiredCredentialMissing(_) => "required_credential_missing",
            Unsatisfied::NoCredentialSetOptionSatisfied { .. } => {
                "no_credential_set_option_satisfied"
            }
        }
    }
}

/// One sentence, fit for an `error_description`.
impl fmt::Display for Unsatisfied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsatisfied::UnknownCredentialId(id) => {
                write!(f, "vp_token has {id:?}, which is no credential query's id")
            }
            Unsatisfied::EmptyPresentations(id) => {
                write!(f, "vp_token has no presentation for {id:?}")
            }
            Unsatisfied::MultipleNotAllowed(id) => write!(
                f,
                "vp_token has more than one presentation for {id:?}, which does not allow multiple"
            ),
            Unsatisfied::CredentialNotMatched { id, why } => {
                write!(
                    f,
                    "a presentation for {id:?} does not match its query: {why}"
                )
            }
            Unsatisfied::RequiredCredentialMissing(id) => {
                write!(
                    f,
                    "vp_token has no presentation for {id:?}, which is required"
                )
            }
            Unsatisfied::NoCredentialSetOptionSatisfied { set_index } => write!(
                f,
                "no option of credential_sets[{set_index}], which is required, was presented in full"
            ),
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::VctNotRequested { vct: Some(vct) } => {
                write!(f, "its vct {vct:?} is not among vct_values")
            }
            Mismatch::VctNotRequested { vct: None } => f.write_str("it has no vct"),
            Mismatch::HolderBindingMissing => f.write_str("it has no holder binding"),
            Mismatch::ClaimMissing(path) => write!(f, "claim {path} is not disclosed"),
            Mismatch::ValueNotRequested(path) => {
                write!(f, "claim {path} has none of the values asked for")
            }
            Mismatch::NoClaimSetSatisfied => f.write_str("no claim set is disclosed in full"),
        }
    }
}

/// Verifier side (§8.6 / §6.4): does the response satisfy the query?
///
/// `response` maps `vp_token`'s keys to what each of its presentations
/// showed, in order.
pub fn evaluate(query: &DcqlQuery, response: &BTreeMap<String, Vec<Presented<'_>>>) -> Evaluation {
    let mut credentials = BTreeMap::new();
    let mut first: Option<Unsatisfied> = None;
    let mut note = |problem: Unsatisfied| {
        first.get_or_insert(problem);
    };

    for (id, presentations) in response {
        let Some(credential) = query.credential(id) else {
            note(Unsatisfied::UnknownCredentialId(shown(id)));
            continue;
        };
        let problem = if presentations.is_empty() {
            Some(Unsatisfied::EmptyPresentations(id.clone()))
        } else if presentations.len() > 1 && !credential.multiple {
            Some(Unsatisfied::MultipleNotAllowed(id.clone()))
        } else {
            presentations.iter().find_map(|presented| {
                let why = match_credential(
                    credential,
                    presented.vct,
                    presented.claims,
                    presented.holder_bound,
                )
                .err()?;
                Some(Unsatisfied::CredentialNotMatched {
                    id: id.clone(),
                    why,
                })
            })
        };
        credentials.insert(id.clone(), problem.is_none());
        if let Some(problem) = problem {
            note(problem);
        }
    }

    if first.is_none() {
        let answered = |id: &String| credentials.get(id).copied().unwrap_or(false);
        first = match query.credential_sets() {
            None => query
                .credentials()
                .iter()
                .find(|credential| !answered(&credential.id))
                .map(|credential| Unsatisfied::RequiredCredentialMissing(credential.id.clone())),
            Some(sets) => sets
                .iter()
                .position(|set| {
                    set.required
                        && !set
                            .options
                            .iter()
                            .any(|option| option.iter().all(&answered))
                })
                .map(|set_index| Unsatisfied::NoCredentialSetOptionSatisfied { set_index }),
        };
    }

    Evaluation {
        satisfied: first.is_none(),
        credentials,
        unsatisfied: first,
    }
}

/// The concrete paths a credential discloses for a matching credential
/// query: for each claim asked for (all of `claims`, or the first claim set
/// that is satisfied), the paths of the values that answer it. `Err` says
/// why it does not match.
pub(super) fn match_credential(
    credential: &CredentialQuery,
    vct: Option<&str>,
    claims: &Map<String, Value>,
    holder_bound: bool,
) -> Result<Vec<Vec<PathElement>>, Mismatch> {
    if !vct.is_some_and(|vct| credential.vct_values.iter().any(|allowed| allowed == vct)) {
        return Err(Mismatch::VctNotRequested {
            vct: vct.map(shown),
        });
    }
    if credential.require_cryptographic_holder_binding && !holder_bound {
        return Err(Mismatch::HolderBindingMissing);
    }
    let Some(queries) = &credential.claims else {
        // §6.4.1: no `claims`, no selectively disclosable claim requested.
        return Ok(Vec::new());
    };
    let mut disclosed = Vec::new();
    match &credential.claim_sets {
        None => {
            for query in queries {
                disclosed.extend(answer(query, claims)?);
            }
        }
        Some(sets) => {
            let first = sets.iter().find_map(|set| {
                let mut paths = Vec::new();
                for id in set {
                    let query = credential.claim(id)?;
                    paths.extend(answer(query, claims).ok()?);
                }
                Some(paths)
            });
            disclosed = first.ok_or(Mismatch::NoClaimSetSatisfied)?;
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    disclosed.retain(|path| seen.insert(path.clone()));
    Ok(disclosed)
}

/// The concrete paths of the values a claims query selects, only those
/// among its `values` when it has some: §6.4.1 treats a claim whose value
/// does not match as absent.
fn answer(
    query: &ClaimsQuery,
    claims: &Map<String, Value>,
) -> Result<Vec<Vec<PathElement>>, Mismatch> {
    let selected = query.path.resolve(claims);
    if selected.is_empty() {
        return Err(Mismatch::ClaimMissing(query.path.clone()));
    }
    let Some(values) = &query.values else {
        return Ok(selected.into_iter().map(|(path, _)| path).collect());
    };
    let matching: Vec<_> = selected
        .into_iter()
        .filter(|(_, value)| values.contains(value))
        .map(|(path, _)| path)
        .collect();
    if matching.is_empty() {
        return Err(Mismatch::ValueNotRequested(query.path.clone()));
    }
    Ok(matching)
}
