//! Building SD-JWTs and presenting them: the issuer side and the holder
//! side, for the demo and for tests. Salts and signatures come from the
//! caller: this crate draws no randomness and holds no private key.

use serde_json::{Map, Value};

use super::digest;
use crate::jose::{b64url_encode, sign_compact};

/// Building an SD-JWT, for issuers: the demo's issuer and tests. Salts and
/// signatures come from the caller (this crate draws no randomness and holds
/// no private key).
pub struct Issuance<S: FnMut() -> String> {
    payload: Map<String, Value>,
    disclosures: Vec<String>,
    salt: S,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot conceal {0}: no such claim")]
pub struct NoSuchClaim(pub String);

impl<S: FnMut() -> String> Issuance<S> {
    pub fn new(payload: Map<String, Value>, salt: S) -> Self {
        Self {
            payload,
            disclosures: Vec::new(),
            salt,
        }
    }

    fn parent<'p>(
        payload: &'p mut Map<String, Value>,
        path: &str,
    ) -> Option<(&'p mut Map<String, Value>, String)> {
        let mut segments: Vec<&str> = path.split('.').collect();
        let name = segments.pop()?.to_owned();
        let mut current = payload;
        for segment in segments {
            current = current.get_mut(segment)?.as_object_mut()?;
        }
        Some((current, name))
    }

    fn disclose(&mut self, parts: Value) -> String {
        let text = b64url_encode(serde_json::to_vec(&parts).expect("JSON serializes"));
        let digest = digest(&text);
        self.disclosures.push(text);
        digest
    }

    /// Makes the claim at `path` (dotted) selectively disclosable. Conceal
    /// inner claims before outer ones to nest Disclosures.
    pub fn conceal(&mut self, path: &str) -> Result<&mut Self, NoSuchClaim> {
        let salt = (self.salt)();
        let (parent, name) =
            Self::parent(&mut self.payload, path).ok_or_else(|| NoSuchClaim(path.into()))?;
        let value = parent
            .remove(&name)
            .ok_or_else(|| NoSuchClaim(path.into()))?;
        let digest = self.disclose(serde_json::json!([salt, name, value]));
        let (parent, _) =
            Self::parent(&mut self.payload, path).ok_or_else(|| NoSuchClaim(path.into()))?;
        let sd = parent
            .entry("_sd")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(digests) = sd {
            digests.push(Value::String(digest));
        }
        Ok(self)
    }

    /// Makes element `index` of the array at `path` selectively disclosable.
    pub fn conceal_element(&mut self, path: &str, index: usize) -> Result<&mut Self, NoSuchClaim> {
        let salt = (self.salt)();
        let missing = || NoSuchClaim(format!("{path}.{index}"));
        let (parent, name) = Self::parent(&mut self.payload, path).ok_or_else(missing)?;
        let element = parent
            .get_mut(&name)
            .and_then(Value::as_array_mut)
            .and_then(|a| a.get_mut(index))
            .ok_or_else(missing)?;
        let value = element.take();
        let digest = self.disclose(serde_json::json!([salt, value]));
        let (parent, name) = Self::parent(&mut self.payload, path).ok_or_else(missing)?;
        if let Some(slot) = parent
            .get_mut(&name)
            .and_then(Value::as_array_mut)
            .and_then(|a| a.get_mut(index))
        {
            *slot = serde_json::json!({"...": digest});
        }
        Ok(self)
    }

    /// Adds a decoy digest to the top-level `_sd`.
    pub fn decoy(&mut self) -> &mut Self {
        let decoy = digest(&(self.salt)());
        let sd = self
            .payload
            .entry("_sd")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(digests) = sd {
            digests.push(Value::String(decoy));
        }
        self
    }

    /// Signs the payload (with `_sd_alg`) under `header`; returns the issued
    /// SD-JWT (`<JWT>~<Disclosure>~…~`) and the Disclosures.
    pub fn sign(
        mut self,
        header: &Value,
        sign: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> (String, Vec<String>) {
        self.payload
            .insert("_sd_alg".into(), Value::String("sha-256".into()));
        let mut issued = sign_compact(header, &self.payload, sign);
        for disclosure in &self.disclosures {
            issued.push('~');
            issued.push_str(disclosure);
        }
        issued.push('~');
        (issued, self.disclosures)
    }
}

/// What a holder puts in a Key Binding JWT, and the key that signs it.
pub struct KeyBinding<'a> {
    /// The KB-JWT header (`alg`, `typ: kb+jwt`).
    pub header: &'a Value,
    /// Signs the KB-JWT's signing input with the holder's key.
    pub sign: &'a mut dyn FnMut(&[u8]) -> Vec<u8>,
    /// The verifier's nonce.
    pub nonce: &'a str,
    /// The verifier's audience.
    pub audience: &'a str,
    /// Issued-at, seconds since the epoch.
    pub iat: i64,
}

/// The presentation of `jwt` with the chosen `disclosures`, bound to a
/// verifier by a Key Binding JWT when `key_binding` is given.
pub fn present(jwt: &str, disclosures: &[&str], key_binding: Option<KeyBinding<'_>>) -> String {
    let mut presentation = jwt.split('~').next().unwrap_or_default().to_owned();
    for disclosure in disclosures {
        presentation.push('~');
        presentation.push_str(disclosure);
    }
    presentation.push('~');
    if let Some(KeyBinding {
        header,
        sign,
        nonce,
        audience,
        iat,
    }) = key_binding
    {
        let payload = serde_json::json!({"nonce": nonce, "aud": audience, "iat": iat, "sd_hash": digest(&presentation)});
        presentation.push_str(&sign_compact(header, &payload, sign));
    }
    presentation
}
