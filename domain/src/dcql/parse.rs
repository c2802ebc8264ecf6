//! Checking a DCQL query and building its types. Each function is given the
//! place (`at`) of the JSON it reads, so that every error names it.

use serde_json::{Map, Value};

use super::{
    ClaimsPath, ClaimsQuery, CredentialQuery, CredentialSetQuery, DcqlError, DcqlQuery, FORMAT,
    MAX_CLAIM_SETS, MAX_CLAIMS, MAX_CREDENTIAL_SETS, MAX_CREDENTIALS, MAX_ID_CHARS, MAX_OPTIONS,
    MAX_STRING_CHARS, MAX_VALUES, shown,
};

/// Where the root is, in errors about the root itself.
const ROOT: &str = "dcql_query";

const QUERY_MEMBERS: &[&str] = &["credentials", "credential_sets"];
const CREDENTIAL_MEMBERS: &[&str] = &[
    "id",
    "format",
    "meta",
    "multiple",
    "require_cryptographic_holder_binding",
    "claims",
    "claim_sets",
];
/// Members DCQL defines for a Credential Query that are refused here.
const CREDENTIAL_UNSUPPORTED: &[&str] = &["trusted_authorities"];
const META_MEMBERS: &[&str] = &["vct_values"];
const CLAIM_MEMBERS: &[&str] = &["id", "path", "values"];
const SET_MEMBERS: &[&str] = &["options", "required"];

pub(super) fn query(value: &Value) -> Result<DcqlQuery, DcqlError> {
    let root = object(value, ROOT)?;
    only(root, "", QUERY_MEMBERS, &[])?;

    let items = array(
        required(root, "", "credentials")?,
        "credentials",
        MAX_CREDENTIALS,
    )?;
    let mut credentials: Vec<CredentialQuery> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("credentials[{i}]");
        let credential = credential(item, &at)?;
        if credentials.iter().any(|other| other.id == credential.id) {
            return Err(DcqlError::DuplicateId {
                at: format!("{at}.id"),
                id: credential.id,
            });
        }
        credentials.push(credential);
    }

    let credential_sets = root
        .get("credential_sets")
        .map(|sets| credential_sets(sets, &credentials))
        .transpose()?;
    Ok(DcqlQuery {
        credentials,
        credential_sets,
    })
}

fn credential(value: &Value, at: &str) -> Result<CredentialQuery, DcqlError> {
    let map = object(value, at)?;
    only(map, at, CREDENTIAL_MEMBERS, CREDENTIAL_UNSUPPORTED)?;

    let id = id(required(map, at, "id")?, &child(at, "id"))?;
    let format_at = child(at, "format");
    match required(map, at, "format")? {
        Value::String(format) if format == FORMAT => {}
        Value::String(format) => {
            return Err(DcqlError::UnsupportedFormat {
                at: format_at,
                format: shown(format),
            });
        }
        _ => return Err(wrong_type(&format_at, "a string")),
    }
    let vct_values = meta(required(map, at, "meta")?, &child(at, "meta"))?;
    let multiple = boolean(map, at, "multiple", false)?;
    let require_cryptographic_holder_binding =
        boolean(map, at, "require_cryptographic_holder_binding", true)?;

    let claims = map
        .get("claims")
        .map(|claims| claims_queries(claims, &child(at, "claims")))
        .transpose()?;
    let claim_sets_at = child(at, "claim_sets");
    let claim_sets = match (map.get("claim_sets"), &claims) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(DcqlError::ClaimSetsWithoutClaims { at: claim_sets_at });
        }
        (Some(sets), Some(claims)) => {
            if let Some(i) = claims.iter().position(|claim| claim.id.is_none()) {
                return Err(DcqlError::MissingClaimId {
                    at: format!("{at}.claims[{i}].id"),
                });
            }
            Some(claim_sets(sets, &claim_sets_at, claims)?)
        }
    };

    Ok(CredentialQuery {
        id,
        multiple,
        require_cryptographic_holder_binding,
        vct_values,
        claims,
        claim_sets,
    })
}

/// `meta` of a `dc+sd-jwt` query: its `vct_values`.
fn meta(value: &Value, at: &str) -> Result<Vec<String>, DcqlError> {
    let map = object(value, at)?;
    only(map, at, META_MEMBERS, &[])?;
    let values_at = child(at, "vct_values");
    let items = array(required(map, at, "vct_values")?, &values_at, MAX_VALUES)?;
    let mut vct_values = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let vct = string(item, &format!("{values_at}[{i}]"), MAX_STRING_CHARS)?;
        vct_values.push(vct.to_owned());
    }
    Ok(vct_values)
}

fn claims_queries(value: &Value, at: &str) -> Result<Vec<ClaimsQuery>, DcqlError> {
    let items = array(value, at, MAX_CLAIMS)?;
    let mut claims: Vec<ClaimsQuery> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let claim = claims_query(item, &at)?;
        for (other, earlier) in claims.iter().enumerate() {
            if claim.id.is_some() && earlier.id == claim.id {
                return Err(DcqlError::DuplicateId {
                    at: child(&at, "id"),
                    id: claim.id.unwrap_or_default(),
                });
            }
            if earlier.path == claim.path {
                return Err(DcqlError::DuplicatePath {
                    at: child(&at, "path"),
                    other,
                });
            }
        }
        claims.push(claim);
    }
    Ok(claims)
}

fn claims_query(value: &Value, at: &str) -> Result<ClaimsQuery, DcqlError> {
    let map = object(value, at)?;
    only(map, at, CLAIM_MEMBERS, &[])?;
    let id = map
        .get("id")
        .map(|value| id(value, &child(at, "id")))
        .transpose()?;
    let path = ClaimsPath::parse_at(required(map, at, "path")?, &child(at, "path"))?;
    let values = map
        .get("values")
        .map(|value| values(value, &child(at, "values")))
        .transpose()?;
    Ok(ClaimsQuery { id, path, values })
}

/// `values`: strings, integers and booleans, the types §6.3 allows.
fn values(value: &Value, at: &str) -> Result<Vec<Value>, DcqlError> {
    let items = array(value, at, MAX_VALUES)?;
    for (i, item) in items.iter().enumerate() {
        let at = format!("{at}[{i}]");
        match item {
            Value::String(text) if text.chars().count() > MAX_STRING_CHARS => {
                return Err(DcqlError::TooLong {
                    at,
                    max: MAX_STRING_CHARS,
                });
            }
            Value::String(_) | Value::Bool(_) => {}
            // An integer: neither a fraction nor an exponent was written.
            Value::Number(number) if number.is_i64() || number.is_u64() => {}
            _ => return Err(DcqlError::InvalidValue { at }),
        }
    }
    Ok(items.to_vec())
}

fn claim_sets(
    value: &Value,
    at: &str,
    claims: &[ClaimsQuery],
) -> Result<Vec<Vec<String>>, DcqlError> {
    let items = array(value, at, MAX_CLAIM_SETS)?;
    let mut sets = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let set = ids(item, &at, MAX_CLAIMS)?;
        for (j, id) in set.iter().enumerate() {
            if !claims.iter().any(|claim| claim.id.as_ref() == Some(id)) {
                return Err(DcqlError::UnknownId {
                    at: format!("{at}[{j}]"),
                    id: id.clone(),
                    among: "the ids of this credential query's `claims`",
                });
            }
        }
        sets.push(set);
    }
    Ok(sets)
}

fn credential_sets(
    value: &Value,
    credentials: &[CredentialQuery],
) -> Result<Vec<CredentialSetQuery>, DcqlError> {
    let items = array(value, "credential_sets", MAX_CREDENTIAL_SETS)?;
    let mut sets = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("credential_sets[{i}]");
        let map = object(item, &at)?;
        only(map, &at, SET_MEMBERS, &[])?;
        let options_at = child(&at, "options");
        let option_items = array(required(map, &at, "options")?, &options_at, MAX_OPTIONS)?;
        let mut options = Vec::with_capacity(option_items.len());
        for (j, option) in option_items.iter().enumerate() {
            let at = format!("{options_at}[{j}]");
            let option = ids(option, &at, MAX_CREDENTIALS)?;
            for (k, id) in option.iter().enumerate() {
                if !credentials.iter().any(|credential| &credential.id == id) {
                    return Err(DcqlError::UnknownId {
                        at: format!("{at}[{k}]"),
                        id: id.clone(),
                        among: "the ids of `credentials`",
                    });
                }
            }
            options.push(option);
        }
        let required = boolean(map, &at, "required", true)?;
        sets.push(CredentialSetQuery { options, required });
    }
    Ok(sets)
}

/// A non-empty list of distinct ids.
fn ids(value: &Value, at: &str, max: usize) -> Result<Vec<String>, DcqlError> {
    let items = array(value, at, max)?;
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let id = id(item, &at)?;
        if ids.contains(&id) {
            return Err(DcqlError::DuplicateId { at, id });
        }
        ids.push(id);
    }
    Ok(ids)
}

/// An id of §6.1 and §6.3: alphanumeric, `_` or `-`, non-empty (and here at
/// most [`MAX_ID_CHARS`]). "Alphanumeric" is read as ASCII: ids are keys of
/// `vp_token`, compared byte for byte by both sides.
fn id(value: &Value, at: &str) -> Result<String, DcqlError> {
    let Value::String(id) = value else {
        return Err(wrong_type(at, "a string"));
    };
    let valid = !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(id.clone())
    } else {
        Err(DcqlError::InvalidId { at: at.to_owned() })
    }
}

fn string<'v>(value: &'v Value, at: &str, max: usize) -> Result<&'v str, DcqlError> {
    let Value::String(text) = value else {
        return Err(wrong_type(at, "a string"));
    };
    if text.is_empty() {
        return Err(DcqlError::Empty { at: at.to_owned() });
    }
    if text.chars().count() > max {
        return Err(DcqlError::TooLong {
            at: at.to_owned(),
            max,
        });
    }
    Ok(text)
}

/// An optional boolean member, with its default when absent.
fn boolean(
    map: &Map<String, Value>,
    at: &str,
    name: &str,
    default: bool,
) -> Result<bool, DcqlError> {
    match map.get(name) {
        None => Ok(default),
        Some(Value::Bool(value)) => Ok(*value),
        Some(_) => Err(wrong_type(&child(at, name), "a boolean")),
    }
}

/// A non-empty array of at most `max` entries.
fn array<'v>(value: &'v Value, at: &str, max: usize) -> Result<&'v [Value], DcqlError> {
    let Value::Array(items) = value else {
        return Err(wrong_type(at, "an array"));
    };
    if items.is_empty() {
        return Err(DcqlError::Empty { at: at.to_owned() });
    }
    if items.len() > max {
        return Err(DcqlError::TooMany {
            at: at.to_owned(),
            max,
        });
    }
    Ok(items)
}

fn object<'v>(value: &'v Value, at: &str) -> Result<&'v Map<String, Value>, DcqlError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(wrong_type(at, "an object")),
    }
}

fn required<'v>(map: &'v Map<String, Value>, at: &str, name: &str) -> Result<&'v Value, DcqlError> {
    map.get(name).ok_or_else(|| DcqlError::Missing {
        at: child(at, name),
    })
}

/// Refuses any member not in `known`; those in `unsupported` are named as
/// such, since DCQL defines them.
fn only(
    map: &Map<String, Value>,
    at: &str,
    known: &[&str],
    unsupported: &[&str],
) -> Result<(), DcqlError> {
    for name in map.keys() {
        if known.contains(&name.as_str()) {
            continue;
        }
        let at = child(at, &shown(name));
        return Err(if unsupported.contains(&name.as_str()) {
            DcqlError::Unsupported { at }
        } else {
            DcqlError::UnknownMember { at }
        });
    }
    Ok(())
}

fn wrong_type(at: &str, expected: &'static str) -> DcqlError {
    DcqlError::WrongType {
        at: at.to_owned(),
        expected,
    }
}

/// The place of member `name` of the object at `at` (the root is `""`).
fn child(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_owned()
    } else {
        format!("{at}.{name}")
    }
}
