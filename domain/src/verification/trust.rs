//! What the verifier needs of the trust registry, resolved before it runs:
//! the [`Trust`] it asks, [`Resolved`] (the one issuer and list of a
//! presentation), and the [`References`] a presentation makes to them.

use serde_json::Value;

use crate::issuer::KeyLookupError;
use crate::jose::PublicKey;
use crate::log::Timestamp;
use crate::sd_jwt;
use crate::status_list::StatusList;
use crate::verification::Reason;

/// What the verifier needs to know of the world, resolved beforehand.
pub trait Trust {
    /// Whether `iss` is a registered issuer: `None` if unknown, else whether
    /// it is suspended.
    fn issuer_suspended(&self, iss: &str) -> Option<bool>;
    /// The key of `iss` that `kid` names, as of `signed_at`.
    fn issuer_key(
        &self,
        iss: &str,
        kid: Option<&str>,
        signed_at: Timestamp,
    ) -> Result<PublicKey, KeyLookupError>;
    /// Whether `iss` is trusted for credentials of type `vct`.
    fn allows(&self, iss: &str, vct: &str) -> bool;
    /// The status list published at `uri`.
    fn status_list(&self, uri: &str) -> Option<&StatusList>;
    /// Where the key `kid` of `iss` came from, for the record.
    fn key_used(&self, _iss: &str, _kid: Option<&str>, _signed_at: Timestamp) -> Option<KeyUsed> {
        None
    }
    /// Why the keys of `iss` could not be resolved from its documents,
    /// when they had to be and could not.
    fn issuer_keys_unavailable(&self, _iss: &str) -> Option<&str> {
        None
    }
    /// Why the type metadata the credential pins (`vct#integrity`) is not
    /// what it should be, when it is not.
    fn type_metadata_invalid(&self, _vct: &str) -> Option<&str> {
        None
    }
    /// What the credential's `x5c` chain said of `iss`, when the issuer is
    /// trusted through one and the credential carries one.
    fn x5c(&self, _iss: &str) -> Option<X5cTrust<'_>> {
        None
    }
    /// Why the list at `uri` is expired as its issuer serves it now (its
    /// `exp` passed), when it is.
    fn status_list_expired(&self, _uri: &str) -> Option<&str> {
        None
    }
    /// Why no list can be used for `uri` although one may exist (it had
    /// to be fetched and could not be); `None` when that is not the case.
    fn status_list_unavailable(&self, _uri: &str) -> Option<&str> {
        None
    }
}

/// The trust registry as resolved for one verification: the issuer the
/// credential names (if registered) and the status list it points to (if
/// published).
#[derive(Debug, Clone, Copy, Default)]
pub struct Resolved<'a> {
    pub issuer: Option<&'a crate::issuer::Issuer>,
    pub list: Option<&'a StatusList>,
    /// Set instead of `list` when the list had to be fetched and could not
    /// be: why.
    pub list_unavailable: Option<&'a str>,
    /// Set instead of `list` when the list fetched was past its `exp`: why.
    pub list_expired: Option<&'a str>,
    /// Set when the issuer's keys had to be resolved and could not be: why.
    pub keys_unavailable: Option<&'a str>,
    /// Set when the credential's `x5c` chain was checked (X.509 is done
    /// outside the domain): its leaf key, or why it is not trusted.
    pub x5c: Option<X5cTrust<'a>>,
    /// Set when the type metadata the credential pins could not be fetched
    /// or did not match its `vct#integrity`: why.
    pub type_metadata_invalid: Option<&'a str>,
}

/// The outcome of checking an `x5c` chain against the operator's trust
/// anchors: the leaf's key (and its SHA-256 thumbprint, for the record),
/// or the reason it is not trusted and why.
#[derive(Debug, Clone, Copy)]
pub enum X5cTrust<'a> {
    Key {
        key: &'a PublicKey,
        thumbprint: &'a str,
    },
    Refused(Reason, &'a str),
}

/// Which key verified a credential: where it came from and, for a
/// resolved key, the issuer stream version of its `IssuerKeysResolved`
/// and when it was resolved; with the log, the document it was read from.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct KeyUsed {
    pub kid: String,
    pub source: crate::issuer::KeySource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
}

impl Resolved<'_> {
    fn issuer(&self, iss: &str) -> Option<&crate::issuer::Issuer> {
        self.issuer.filter(|issuer| issuer.did.as_str() == iss)
    }
}

impl Trust for Resolved<'_> {
    fn issuer_suspended(&self, iss: &str) -> Option<bool> {
        self.issuer(iss).map(|issuer| issuer.suspended)
    }

    fn issuer_key(
        &self,
        iss: &str,
        kid: Option<&str>,
        signed_at: Timestamp,
    ) -> Result<PublicKey, KeyLookupError> {
        let issuer = self.issuer(iss).ok_or(KeyLookupError::UnknownKid)?;
        issuer.key_at(kid, signed_at).map(|key| key.key.clone())
    }

    fn allows(&self, iss: &str, vct: &str) -> bool {
        self.issuer(iss).is_some_and(|issuer| issuer.allows(vct))
    }

    fn status_list(&self, uri: &str) -> Option<&StatusList> {
        self.list.filter(|list| list.uri.as_str() == uri)
    }

    fn status_list_unavailable(&self, _uri: &str) -> Option<&str> {
        self.list_unavailable
    }

    fn status_list_expired(&self, _uri: &str) -> Option<&str> {
        self.list_expired
    }

    fn key_used(&self, iss: &str, kid: Option<&str>, signed_at: Timestamp) -> Option<KeyUsed> {
        let issuer = self.issuer(iss)?;
        if let Some(X5cTrust::Key { thumbprint, .. }) = self.x5c {
            return Some(KeyUsed {
                kid: format!("x5t#S256:{thumbprint}"),
                source: crate::issuer::KeySource::X5c,
                resolved_version: None,
                resolved_at: None,
            });
        }
        let key = issuer.key_at(kid, signed_at).ok()?;
        let set = issuer
            .resolved
            .iter()
            .find(|set| set.source == key.source && set.keys.iter().any(|k| k.kid == key.kid));
        Some(KeyUsed {
            kid: key.kid.as_str().to_owned(),
            source: key.source,
            resolved_version: set.map(|s| s.version),
            resolved_at: set.map(|s| s.resolved_at),
        })
    }

    fn issuer_keys_unavailable(&self, _iss: &str) -> Option<&str> {
        self.keys_unavailable
    }

    fn type_metadata_invalid(&self, _vct: &str) -> Option<&str> {
        self.type_metadata_invalid
    }

    fn x5c(&self, iss: &str) -> Option<X5cTrust<'_>> {
        self.issuer(iss)?;
        self.x5c
    }
}

/// What a presentation says it needs from the trust registry, read before
/// anything is verified: the issuer's `iss` and the status list's `uri`.
/// Used only to look them up; [`verify`] checks everything again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    pub iss: Option<String>,
    /// The issuer JWT's `kid`.
    pub kid: Option<String>,
    /// The `vct` and `vct#integrity` when the credential pins its type
    /// metadata.
    pub vct_integrity: Option<(String, String)>,
    pub status_list_uri: Option<String>,
}

/// The references of `text`; empty when it does not even split.
pub fn references(text: &str) -> References {
    if text.len() > sd_jwt::MAX_PRESENTATION_BYTES {
        return References::default();
    }
    let jwt = text.split('~').next().unwrap_or_default();
    let Ok(jws) = crate::jose::CompactJws::parse(jwt) else {
        return References::default();
    };
    References {
        iss: jws
            .payload
            .get("iss")
            .and_then(Value::as_str)
            .map(str::to_owned),
        kid: jws.kid().map(str::to_owned),
        vct_integrity: jws
            .payload
            .get("vct")
            .and_then(Value::as_str)
            .zip(jws.payload.get("vct#integrity").and_then(Value::as_str))
            .map(|(vct, integrity)| (vct.to_owned(), integrity.to_owned())),
        status_list_uri: jws
            .payload
            .get("status")
            .and_then(|s| s.get("status_list"))
            .and_then(|s| s.get("uri"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}
