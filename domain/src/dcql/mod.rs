//! DCQL, the Digital Credentials Query Language of OpenID for Verifiable
//! Presentations 1.0 (§6), with its claims path pointers (§7): the query a
//! verifier puts in its request, what a response must show to satisfy it
//! (§6.4, §8.6), and which held credentials and claims a wallet answers it
//! with.
//!
//! Only the part of DCQL this service uses is accepted, and everything else
//! is refused with the place it stands (`credentials[0].format: only
//! "dc+sd-jwt" is supported`) rather than ignored:
//!
//! - the format `dc+sd-jwt` only (SD-JWT VC; `mso_mdoc` and the W3C formats
//!   are refused), with `meta.vct_values`;
//! - no `trusted_authorities`: the trust registry decides which issuers are
//!   trusted, and a query that asked for more would be a promise the
//!   verifier does not keep;
//! - no member DCQL does not define. The specification tells implementations
//!   to ignore unknown members so that future extensions degrade gracefully;
//!   here the query is the verifier's own, written by a lender, so a member
//!   that would silently do nothing (a misspelt `claim_set`, a `scope` put
//!   in the wrong place) is a mistake to report, not an extension.
//!
//! Every list and text is bounded (see the `MAX_` constants), so a query
//! stored with a request and evaluated against every response costs a known
//! amount.
//!
//! The parts: `parse.rs` checks a query and builds the types below;
//! `path.rs` holds claims path pointers and their processing (§7.1);
//! `evaluate.rs` is the verifier's side, `choose.rs` the wallet's.

use serde_json::{Map, Value, json};

use crate::bounded;

mod choose;
mod evaluate;
mod parse;
mod path;

pub use choose::{Answer, Held, choose};
pub use evaluate::{Evaluation, Mismatch, Presented, Unsatisfied, evaluate};
pub use path::{ClaimsPath, PathElement};

/// The only Credential Format Identifier accepted: IETF SD-JWT VC.
pub const FORMAT: &str = "dc+sd-jwt";
/// Most Credential Queries in one query.
pub const MAX_CREDENTIALS: usize = 8;
/// Most Claims Queries in one Credential Query.
pub const MAX_CLAIMS: usize = 32;
/// Most elements in one claims path pointer.
pub const MAX_PATH_LEN: usize = 16;
/// Most entries in `values`, and in `meta.vct_values`.
pub const MAX_VALUES: usize = 16;
/// Most entries in `claim_sets`.
pub const MAX_CLAIM_SETS: usize = 16;
/// Most entries in `credential_sets`.
pub const MAX_CREDENTIAL_SETS: usize = 16;
/// Most entries in the `options` of one Credential Set Query.
pub const MAX_OPTIONS: usize = 16;
/// Longest id of a Credential Query or Claims Query.
pub const MAX_ID_CHARS: usize = 64;
/// Longest other text: a path's key, a `vct`, a string in `values`.
pub const MAX_STRING_CHARS: usize = 256;

/// Why a query is refused. `at` says where, in the notation of the JSON
/// (`credentials[0].claims[1].path[0]`), so the lender who wrote the query
/// can find the mistake; the variant says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DcqlError {
    #[error("{at}: must be {expected}")]
    WrongType { at: String, expected: &'static str },
    #[error("{at}: is required")]
    Missing { at: String },
    #[error("{at}: must not be empty")]
    Empty { at: String },
    #[error("{at}: at most {max} entries")]
    TooMany { at: String, max: usize },
    #[error("{at}: at most {max} characters")]
    TooLong { at: String, max: usize },
    /// A member DCQL does not define (at the top level, `scope` or
    /// `transaction_data`, which are request parameters).
    #[error("{at}: is not a member of a DCQL query here; unknown members are refused")]
    UnknownMember { at: String },
    /// A member DCQL defines but this verifier does not support
    /// (`trusted_authorities`).
    #[error("{at}: is not supported")]
    Unsupported { at: String },
    #[error("{at}: only \"dc+sd-jwt\" is supported, not {format:?}")]
    UnsupportedFormat { at: String, format: String },
    #[error("{at}: an id is 1 to 64 ASCII letters, digits, '_' or '-'")]
    InvalidId { at: String },
    #[error("{at}: {id:?} is used more than once")]
    DuplicateId { at: String, id: String },
    /// An id in `claim_sets` or `options` that names nothing.
    #[error("{at}: {id:?} is no id in {among}")]
    UnknownId {
        at: String,
        id: String,
        among: &'static str,
    },
    #[error("{at}: is only allowed with `claims`")]
    ClaimSetsWithoutClaims { at: String },
    #[error("{at}: is required when `claim_sets` is present")]
    MissingClaimId { at: String },
    /// §6.1: verifiers must not point to the same claim more than once.
    #[error("{at}: points to the same claim as claims[{other}]")]
    DuplicatePath { at: String, other: usize },
    #[error("{at}: a path element is a string, a non-negative integer or null")]
    InvalidPathElement { at: String },
    #[error("{at}: a value is a string, an integer or a boolean")]
    InvalidValue { at: String },
}

/// A checked DCQL query (§6). Made only by [`DcqlQuery::parse`], so every
/// one held satisfies the rules and bounds of this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcqlQuery {
    credentials: Vec<CredentialQuery>,
    credential_sets: Option<Vec<CredentialSetQuery>>,
}

/// A request for presentations of one kind of credential (§6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialQuery {
    /// Unique in the query; the key of its presentations in `vp_token`.
    pub id: String,
    /// Whether more than one presentation may answer it (default false).
    pub multiple: bool,
    /// Whether presentations must prove holder binding (default true).
    pub require_cryptographic_holder_binding: bool,
    /// `meta.vct_values`: the credential types accepted.
    pub vct_values: Vec<String>,
    pub claims: Option<Vec<ClaimsQuery>>,
    /// Alternative combinations of the ids in `claims`, preferred first.
    pub claim_sets: Option<Vec<Vec<String>>>,
}

/// A request for one claim of a credential (§6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimsQuery {
    /// Required when the credential query has `claim_sets`.
    pub id: Option<String>,
    pub path: ClaimsPath,
    /// The values accepted (strings, integers, booleans), compared by type
    /// and value.
    pub values: Option<Vec<Value>>,
}

/// Alternative sets of credentials that satisfy one purpose (§6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSetQuery {
    /// Each a list of credential query ids; one option suffices.
    pub options: Vec<Vec<String>>,
    /// Whether the set must be satisfied (default true).
    pub required: bool,
}

impl DcqlQuery {
    /// Validates the subset; the error says where and why.
    pub fn parse(value: &Value) -> Result<DcqlQuery, DcqlError> {
        parse::query(value)
    }

    /// The query as JSON, as it goes into the request object. Normalised:
    /// members are written in one order, and `multiple`,
    /// `require_cryptographic_holder_binding` and `required` only when they
    /// differ from their defaults. It parses back to the same query.
    pub fn to_value(&self) -> Value {
        let mut query = Map::new();
        query.insert(
            "credentials".into(),
            Value::Array(self.credentials.iter().map(credential_value).collect()),
        );
        if let Some(sets) = &self.credential_sets {
            let sets = sets
                .iter()
                .map(|set| {
                    let mut object = Map::new();
                    object.insert("options".into(), json!(set.options));
                    if !set.required {
                        object.insert("required".into(), Value::Bool(false));
                    }
                    Value::Object(object)
                })
                .collect();
            query.insert("credential_sets".into(), Value::Array(sets));
        }
        Value::Object(query)
    }

    pub fn credentials(&self) -> &[CredentialQuery] {
        &self.credentials
    }

    pub fn credential(&self, id: &str) -> Option<&CredentialQuery> {
        self.credentials.iter().find(|query| query.id == id)
    }

    pub fn credential_sets(&self) -> Option<&[CredentialSetQuery]> {
        self.credential_sets.as_deref()
    }
}

impl CredentialQuery {
    /// The claims query with this id.
    pub fn claim(&self, id: &str) -> Option<&ClaimsQuery> {
        self.claims
            .as_deref()?
            .iter()
            .find(|claim| claim.id.as_deref() == Some(id))
    }
}

fn credential_value(query: &CredentialQuery) -> Value {
    let mut object = Map::new();
    object.insert("id".into(), Value::String(query.id.clone()));
    object.insert("format".into(), Value::String(FORMAT.into()));
    object.insert("meta".into(), json!({ "vct_values": query.vct_values }));
    if query.multiple {
        object.insert("multiple".into(), Value::Bool(true));
    }
    if !query.require_cryptographic_holder_binding {
        object.insert(
            "require_cryptographic_holder_binding".into(),
            Value::Bool(false),
        );
    }
    if let Some(claims) = &query.claims {
        let claims = claims
            .iter()
            .map(|claim| {
                let mut object = Map::new();
                if let Some(id) = &claim.id {
                    object.insert("id".into(), Value::String(id.clone()));
                }
                object.insert("path".into(), claim.path.to_value());
                if let Some(values) = &claim.values {
                    object.insert("values".into(), Value::Array(values.clone()));
                }
                Value::Object(object)
            })
            .collect();
        object.insert("claims".into(), Value::Array(claims));
    }
    if let Some(sets) = &query.claim_sets {
        object.insert("claim_sets".into(), json!(sets));
    }
    Value::Object(object)
}

/// Input text as it may appear in an error or outcome: bounded, so that
/// whoever wrote it cannot make the message arbitrarily large.
fn shown(text: &str) -> String {
    bounded::text(text)
}
