//! The SD-JWT format (RFC 9901): the compact presentation, Disclosures, and
//! the processing that turns the issuer's payload and the presented
//! Disclosures into the claims the holder disclosed.
//!
//! Every rule of the RFC's processing is enforced and named: each Disclosure
//! is used exactly once, through `_sd` (an object property, three elements)
//! or `{"...": digest}` (an array element, two elements); digests that match
//! no Disclosure are decoys and vanish; no digest appears twice; no
//! Disclosure names `_sd` or `...` or replaces a claim that is already
//! there. Only `sha-256` is accepted as `_sd_alg`.
//!
//! Issuing (for the demo's issuer and wallet, and tests) is in `issuance.rs`.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::jose::{CompactJws, b64url_decode, b64url_encode};
use crate::verification::Reason;

mod issuance;

pub use issuance::{Issuance, KeyBinding, NoSuchClaim, present};

/// Largest presentation accepted.
pub const MAX_PRESENTATION_BYTES: usize = 256 * 1024;
/// Most Disclosures one presentation may carry.
pub const MAX_DISCLOSURES: usize = 1_000;
/// Deepest nesting of processed objects and arrays.
pub const MAX_DEPTH: usize = 32;

/// Why a presentation cannot be processed, with the stable reason code the
/// verification reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct FormatError {
    pub reason: Reason,
    pub detail: String,
}

fn fail(reason: Reason, detail: impl Into<String>) -> FormatError {
    FormatError {
        reason,
        detail: detail.into(),
    }
}

/// One Disclosure as presented.
#[derive(Debug, Clone, PartialEq)]
pub struct Disclosure {
    /// The base64url text as presented: what the digest covers.
    pub text: String,
    /// base64url(SHA-256(text)).
    pub digest: String,
    /// The claim name, for an object property; `None` for an array element.
    pub name: Option<String>,
    pub value: Value,
}

impl Disclosure {
    pub fn parse(text: &str) -> Result<Self, FormatError> {
        let bytes = b64url_decode(text)
            .map_err(|_| fail(Reason::DisclosureMalformed, "a Disclosure is not base64url"))?;
        let parsed: Value = serde_json::from_slice(&bytes)
            .map_err(|_| fail(Reason::DisclosureMalformed, "a Disclosure is not JSON"))?;
        let Value::Array(mut parts) = parsed else {
            return Err(fail(
                Reason::DisclosureMalformed,
                "a Disclosure is not a JSON array",
            ));
        };
        let (name, value) = match parts.len() {
            2 => (None, parts.pop().unwrap_or(Value::Null)),
            3 => {
                let value = parts.pop().unwrap_or(Value::Null);
                let Some(Value::String(name)) = parts.pop() else {
                    return Err(fail(
                        Reason::DisclosureMalformed,
                        "a Disclosure's claim name is not a string",
                    ));
                };
                (Some(name), value)
            }
            n => {
                return Err(fail(
                    Reason::DisclosureMalformed,
                    format!("a Disclosure has {n} elements, not 2 or 3"),
                ));
            }
        };
        if !parts.first().is_some_and(Value::is_string) {
            return Err(fail(
                Reason::DisclosureMalformed,
                "a Disclosure's salt is not a string",
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            digest: digest(text),
            name,
            value,
        })
    }
}

/// base64url(SHA-256(ASCII text)).
pub fn digest(text: &str) -> String {
    b64url_encode(Sha256::digest(text.as_bytes()))
}

/// A presentation split into its parts and decoded (nothing verified).
#[derive(Debug, Clone)]
pub struct Presentation {
    pub issuer_jwt: CompactJws,
    pub disclosures: Vec<Disclosure>,
    pub key_binding: Option<CompactJws>,
    /// Everything up to and including the last `~`: what `sd_hash` covers.
    pub sd_hash_input: String,
}

impl Presentation {
    /// `<issuer JWT>~<Disclosure>~…~<KB-JWT or nothing>`.
    pub fn parse(text: &str) -> Result<Self, FormatError> {
        if text.len() > MAX_PRESENTATION_BYTES {
            return Err(fail(
                Reason::TooLarge,
                format!("the presentation is over {MAX_PRESENTATION_BYTES} bytes"),
            ));
        }
        let last_tilde = text
            .rfind('~')
            .ok_or_else(|| fail(Reason::Malformed, "an SD-JWT has at least one ~"))?;
        let (head, key_binding) = text.split_at(last_tilde + 1);
        let mut parts = head[..head.len() - 1].split('~');
        let issuer_jwt = parts.next().unwrap_or_default();
        let issuer_jwt = CompactJws::parse(issuer_jwt)
            .map_err(|e| fail(Reason::Malformed, format!("the issuer-signed JWT: {e}")))?;
        let mut disclosures = Vec::new();
        for part in parts {
            if part.is_empty() {
                return Err(fail(Reason::Malformed, "an empty part between two ~"));
            }
            if disclosures.len() == MAX_DISCLOSURES {
                return Err(fail(
                    Reason::TooLarge,
                    format!("more than {MAX_DISCLOSURES} Disclosures"),
                ));
            }
            disclosures.push(Disclosure::parse(part)?);
        }
        let key_binding = if key_binding.is_empty() {
            None
        } else {
            Some(
                CompactJws::parse(key_binding)
                    .map_err(|e| fail(Reason::KbMalformed, format!("the Key Binding JWT: {e}")))?,
            )
        };
        Ok(Self {
            issuer_jwt,
            disclosures,
            key_binding,
            sd_hash_input: head.to_owned(),
        })
    }

    /// What the holder's `sd_hash` must be.
    pub fn sd_hash(&self) -> String {
        digest(&self.sd_hash_input)
    }
}

/// `text` with every ES256 signature (of the issuer-signed JWT and of the
/// Key Binding JWT) in its low-s form. ECDSA signatures are malleable, so
/// two presentations that differ only there are one presentation: this is
/// the form that is hashed to identify it.
pub fn canonical_text(text: &str) -> std::borrow::Cow<'_, str> {
    let mut parts: Vec<String> = Vec::new();
    let mut changed = false;
    for part in text.split('~') {
        let mut pieces = part.split('.');
        let low = match (pieces.next(), pieces.next(), pieces.next(), pieces.next()) {
            (Some(header), Some(_), Some(signature), None) => {
                let es256 = b64url_decode(header)
                    .ok()
                    .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
                    .is_some_and(|h| h.get("alg").and_then(Value::as_str) == Some("ES256"));
                es256
                    .then(|| crate::jose::low_s_es256(signature))
                    .flatten()
                    .map(|low| format!("{}{low}", &part[..part.len() - signature.len()]))
            }
            _ => None,
        };
        changed |= low.is_some();
        parts.push(low.unwrap_or_else(|| part.to_owned()));
    }
    if changed {
        std::borrow::Cow::Owned(parts.join("~"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// The issuer's payload with the presented Disclosures in place.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    pub claims: Map<String, Value>,
    /// Dotted paths of what was selectively disclosed (`address.country`,
    /// `nationalities.0`), in the order met: names, never values.
    pub disclosed_paths: Vec<String>,
    /// The digest of the Disclosure behind each of `disclosed_paths`, in
    /// the same order (a holder choosing what to present needs the map).
    pub disclosed_digests: Vec<String>,
}

/// The top-level claims of an SD-JWT VC that may not be selectively
/// disclosed (SD-JWT VC, "Registered JWT Claims"), plus `iat`, which
/// ISSUER_AUTH judges key retirement by: the holder must not be able to
/// withhold any of them, so they are read from the signed payload only.
pub const NOT_DISCLOSABLE: [&str; 7] = ["iss", "nbf", "exp", "iat", "cnf", "vct", "status"];

/// The first of `names` that one of `disclosures` discloses at the top level
/// of `payload` (its digest is in the payload's own `_sd`).
pub fn disclosed_at_top<'d>(
    payload: &Map<String, Value>,
    disclosures: &'d [Disclosure],
    names: &[&str],
) -> Option<&'d str> {
    let top = payload.get("_sd")?.as_array()?;
    disclosures.iter().find_map(|d| {
        let name = d.name.as_deref()?;
        (names.contains(&name) && top.iter().any(|v| v.as_str() == Some(d.digest.as_str())))
            .then_some(name)
    })
}

/// Refuses an `_sd_alg` other than `sha-256`, the one digest algorithm
/// Proofline computes (DECODE checks it first; [`process`] again).
pub fn check_sd_alg(payload: &Map<String, Value>) -> Result<(), FormatError> {
    match payload.get("_sd_alg") {
        None => Ok(()),
        Some(Value::String(alg)) if alg == "sha-256" => Ok(()),
        Some(other) => Err(fail(
            Reason::SdAlgUnsupported,
            format!("_sd_alg {other} is not sha-256"),
        )),
    }
}

/// Processes `payload` with `disclosures` per RFC 9901 §7.1.
pub fn process(
    payload: &Map<String, Value>,
    disclosures: &[Disclosure],
) -> Result<Processed, FormatError> {
    check_sd_alg(payload)?;
    let mut by_digest: HashMap<&str, &Disclosure> = HashMap::new();
    for disclosure in disclosures {
        if by_digest.insert(&disclosure.digest, disclosure).is_some() {
            return Err(fail(
                Reason::DisclosureDuplicate,
                "the same Disclosure is presented twice",
            ));
        }
    }
    let mut state = State {
        by_digest,
        used: HashSet::new(),
        seen: HashSet::new(),
        paths: Vec::new(),
        digests: Vec::new(),
    };
    let mut claims = state.object(payload, "", 0)?;
    claims.remove("_sd_alg");
    if state.used.len() != disclosures.len() {
        let unused = disclosures
            .iter()
            .filter(|d| !state.used.contains(d.digest.as_str()))
            .count();
        return Err(fail(
            Reason::DisclosureUnreferenced,
            format!("{unused} Disclosure(s) match no digest of the payload"),
        ));
    }
    Ok(Processed {
        claims,
        disclosed_paths: state.paths,
        disclosed_digests: state.digests,
    })
}

struct State<'a> {
    by_digest: HashMap<&'a str, &'a Disclosure>,
    used: HashSet<&'a str>,
    seen: HashSet<String>,
    paths: Vec<String>,
    digests: Vec<String>,
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

impl<'a> State<'a> {
    /// A digest may be named once in the whole payload.
    fn see(&mut self, digest: &str) -> Result<(), FormatError> {
        if !self.seen.insert(digest.to_owned()) {
            return Err(fail(
                Reason::DisclosureDuplicate,
                "a digest appears more than once in the payload",
            ));
        }
        Ok(())
    }

    fn value(&mut self, value: &Value, path: &str, depth: usize) -> Result<Value, FormatError> {
        if depth > MAX_DEPTH {
            return Err(fail(
                Reason::Malformed,
                format!("nested deeper than {MAX_DEPTH}"),
            ));
        }
        Ok(match value {
            Value::Object(object) => Value::Object(self.object(object, path, depth + 1)?),
            Value::Array(array) => Value::Array(self.array(array, path, depth + 1)?),
            other => other.clone(),
        })
    }

    fn object(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<Map<String, Value>, FormatError> {
        let mut out = Map::new();
        for (name, value) in object {
            if name == "_sd" {
                continue;
            }
            out.insert(name.clone(), self.value(value, &join(path, name), depth)?);
        }
        let digests = match object.get("_sd") {
            None => return Ok(out),
            Some(Value::Array(digests)) => digests,
            Some(_) => return Err(fail(Reason::SdInvalid, "_sd is not an array")),
        };
        for digest in digests {
            let digest = digest
                .as_str()
                .ok_or_else(|| fail(Reason::SdInvalid, "_sd holds something other than strings"))?;
            self.see(digest)?;
            let Some(disclosure) = self.by_digest.get(digest).copied() else {
                continue; // a decoy
            };
            let name = disclosure.name.as_deref().ok_or_else(|| {
                fail(
                    Reason::DisclosureWrongKind,
                    "an array-element Disclosure is referenced from _sd",
                )
            })?;
            if name == "_sd" || name == "..." {
                return Err(fail(
                    Reason::DisclosureInvalidName,
                    format!("a Disclosure names {name:?}"),
                ));
            }
            if out.contains_key(name) {
                return Err(fail(
                    Reason::DisclosureClaimConflict,
                    format!("a Disclosure replaces the claim {name:?}"),
                ));
            }
            self.used.insert(&disclosure.digest);
            let claim_path = join(path, name);
            self.paths.push(claim_path.clone());
            self.digests.push(disclosure.digest.clone());
            let value = self.value(&disclosure.value, &claim_path, depth)?;
            out.insert(name.to_owned(), value);
        }
        Ok(out)
    }

    fn array(
        &mut self,
        array: &[Value],
        path: &str,
        depth: usize,
    ) -> Result<Vec<Value>, FormatError> {
        let mut out = Vec::with_capacity(array.len());
        for element in array {
            let reference = match element {
                Value::Object(object) if object.contains_key("...") => {
                    if object.len() != 1 {
                        return Err(fail(
                            Reason::SdInvalid,
                            "an array element with ... has other members",
                        ));
                    }
                    Some(
                        object["..."]
                            .as_str()
                            .ok_or_else(|| fail(Reason::SdInvalid, "... is not a string"))?,
                    )
                }
                _ => None,
            };
            let index_path = join(path, &out.len().to_string());
            match reference {
                None => out.push(self.value(element, &index_path, depth)?),
                Some(digest) => {
                    self.see(digest)?;
                    let Some(disclosure) = self.by_digest.get(digest).copied() else {
                        continue; // a decoy element is removed
                    };
                    if disclosure.name.is_some() {
                        return Err(fail(
                            Reason::DisclosureWrongKind,
                            "an object-property Disclosure is referenced from an array",
                        ));
                    }
                    self.used.insert(&disclosure.digest);
                    self.paths.push(index_path.clone());
                    self.digests.push(disclosure.digest.clone());
                    out.push(self.value(&disclosure.value, &index_path, depth)?);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn disclosure(parts: Value) -> Disclosure {
        Disclosure::parse(&b64url_encode(serde_json::to_vec(&parts).unwrap())).unwrap()
    }

    fn payload(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_rfc_digest_of_a_disclosure() {
        // RFC 9901 §4.2.1: the Disclosure of family_name and its digest.
        let d = Disclosure::parse(
            "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0",
        )
        .unwrap();
        assert_eq!(d.digest, "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0");
        assert_eq!(
            (d.name.as_deref(), &d.value),
            (Some("family_name"), &json!("Möbius"))
        );
    }

    #[test]
    fn nested_and_array_disclosures_are_processed_and_decoys_vanish() {
        let country = disclosure(json!(["s1", "country", "DE"]));
        let element = disclosure(json!(["s2", "FR"]));
        let address = disclosure(
            json!(["s3", "address", {"_sd": [country.digest, "decoy-1"], "locality": "Köln"}]),
        );
        let issued = payload(json!({
            "_sd": [address.digest, "decoy-2"],
            "nationalities": [{"...": element.digest}, "DE", {"...": "decoy-3"}],
            "_sd_alg": "sha-256",
        }));
        let processed = process(&issued, &[element, address, country]).unwrap();
        assert_eq!(
            Value::Object(processed.claims),
            json!({"address": {"country": "DE", "locality": "Köln"}, "nationalities": ["FR", "DE"]})
        );
        assert_eq!(
            processed.disclosed_paths,
            vec!["nationalities.0", "address", "address.country"]
        );
    }

    #[test]
    fn every_rule_has_its_reason() {
        let name = disclosure(json!(["s", "given_name", "Erika"]));
        let reason = |p: Value, d: Vec<Disclosure>| process(&payload(p), &d).unwrap_err().reason;
        assert_eq!(
            reason(json!({"_sd": []}), vec![name.clone()]),
            Reason::DisclosureUnreferenced
        );
        assert_eq!(
            reason(
                json!({"_sd": [name.digest]}),
                vec![name.clone(), name.clone()]
            ),
            Reason::DisclosureDuplicate
        );
        assert_eq!(
            reason(
                json!({"_sd": [name.digest, name.digest]}),
                vec![name.clone()]
            ),
            Reason::DisclosureDuplicate
        );
        assert_eq!(
            reason(
                json!({"_sd": [name.digest], "given_name": "X"}),
                vec![name.clone()]
            ),
            Reason::DisclosureClaimConflict
        );
        let sd_named = disclosure(json!(["s", "_sd", ["x"]]));
        assert_eq!(
            reason(json!({"_sd": [sd_named.digest]}), vec![sd_named]),
            Reason::DisclosureInvalidName
        );
        let dots = disclosure(json!(["s", "...", "x"]));
        assert_eq!(
            reason(json!({"_sd": [dots.digest]}), vec![dots]),
            Reason::DisclosureInvalidName
        );
        let element = disclosure(json!(["s", "x"]));
        assert_eq!(
            reason(json!({"_sd": [element.digest]}), vec![element.clone()]),
            Reason::DisclosureWrongKind
        );
        assert_eq!(
            reason(json!({"a": [{"...": name.digest}]}), vec![name.clone()]),
            Reason::DisclosureWrongKind
        );
        assert_eq!(
            reason(
                json!({"a": [{"...": element.digest, "b": 1}]}),
                vec![element]
            ),
            Reason::SdInvalid
        );
        assert_eq!(reason(json!({"_sd": "x"}), vec![]), Reason::SdInvalid);
        assert_eq!(
            reason(json!({"_sd_alg": "sha-512"}), vec![]),
            Reason::SdAlgUnsupported
        );
    }

    #[test]
    fn protected_claims_may_not_come_from_a_disclosure_at_the_top_level() {
        for name in NOT_DISCLOSABLE {
            let d = disclosure(json!(["s", name, {"status_list": {"idx": 1}}]));
            let issued = payload(json!({"_sd": [d.digest]}));
            assert_eq!(
                disclosed_at_top(&issued, &[d], &NOT_DISCLOSABLE),
                Some(name)
            );
        }
        // Nested, the same names are ordinary claims.
        let nested = disclosure(json!(["s", "status", "married"]));
        let issued = payload(json!({"person": {"_sd": [nested.digest]}}));
        assert_eq!(disclosed_at_top(&issued, &[nested], &NOT_DISCLOSABLE), None);
    }

    #[test]
    fn disclosures_are_arrays_of_two_or_three() {
        for bad in [
            json!(["s"]),
            json!(["s", "a", "b", "c"]),
            json!({"s": 1}),
            json!([1, "a"]),
            json!(["s", 5, "v"]),
        ] {
            let text = b64url_encode(serde_json::to_vec(&bad).unwrap());
            assert_eq!(
                Disclosure::parse(&text).unwrap_err().reason,
                Reason::DisclosureMalformed,
                "{bad}"
            );
        }
        assert_eq!(
            Disclosure::parse("not base64!").unwrap_err().reason,
            Reason::DisclosureMalformed
        );
    }

    #[test]
    fn presentations_split_on_tildes() {
        let jwt = format!(
            "{}.{}.c2ln",
            b64url_encode(br#"{"alg":"ES256"}"#),
            b64url_encode(b"{}")
        );
        let d = disclosure(json!(["s", "a", 1]));
        let without_kb = Presentation::parse(&format!("{jwt}~{}~", d.text)).unwrap();
        assert_eq!(
            (
                without_kb.disclosures.len(),
                without_kb.key_binding.is_some()
            ),
            (1, false)
        );
        assert_eq!(without_kb.sd_hash_input, format!("{jwt}~{}~", d.text));
        let with_kb = Presentation::parse(&format!("{jwt}~{jwt}")).unwrap();
        assert!(with_kb.key_binding.is_some() && with_kb.disclosures.is_empty());
        assert_eq!(with_kb.sd_hash_input, format!("{jwt}~"));
        assert_eq!(
            Presentation::parse(&jwt).unwrap_err().reason,
            Reason::Malformed
        );
        assert_eq!(
            Presentation::parse(&format!("{jwt}~~")).unwrap_err().reason,
            Reason::Malformed
        );
        assert_eq!(
            Presentation::parse(&format!("{jwt}~not-a-jwt"))
                .unwrap_err()
                .reason,
            Reason::KbMalformed
        );
    }
}
