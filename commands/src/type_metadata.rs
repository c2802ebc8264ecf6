//! SD-JWT VC type metadata pinned by a credential (`vct#integrity`): the
//! document at `vct`, and each it `extends` (with `extends#integrity`),
//! fetched through the one [`Fetcher`] and checked against its Subresource
//! Integrity digest. Without `vct#integrity` nothing is fetched. A
//! document that matched its digest cannot change, so matches are
//! remembered (bounded).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use proofline_domain::discovery;
use serde_json::Value;

use crate::fetch::{FetchKind, Fetcher};

/// Longest `extends` chain followed.
pub const MAX_DEPTH: usize = 5;

/// Most (URL, integrity) pairs remembered as matching.
const MAX_REMEMBERED: usize = 1_024;

pub struct TypeMetadata {
    fetcher: Arc<Fetcher>,
    /// (URL, integrity) that matched, with what the document extends.
    matched: Mutex<HashMap<Pinned, Option<Pinned>>>,
}

/// A document and the integrity it must have: (URL, SRI metadata).
type Pinned = (String, String);

impl TypeMetadata {
    pub fn new(fetcher: Arc<Fetcher>) -> Self {
        Self {
            fetcher,
            matched: Mutex::default(),
        }
    }

    /// Checks the document at `vct` and those it extends; why not, when
    /// one cannot be fetched or does not match.
    pub async fn check(&self, vct: &str, integrity: &str) -> Result<(), String> {
        let mut next = Some((vct.to_owned(), integrity.to_owned()));
        let mut seen = HashSet::new();
        while let Some((url, integrity)) = next.take() {
            if seen.len() >= MAX_DEPTH {
                return Err(format!("extends more than {MAX_DEPTH} documents deep"));
            }
            if !seen.insert(url.clone()) {
                return Err(format!("{url} extends itself"));
            }
            let remembered = self
                .matched
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&(url.clone(), integrity.clone()))
                .cloned();
            next = match remembered {
                Some(extends) => extends,
                None => self.fetch_checked(&url, &integrity).await?,
            };
        }
        Ok(())
    }

    /// Fetches `url`, checks it against `integrity`, remembers it; what it
    /// extends (with that one's integrity), if anything.
    async fn fetch_checked(
        &self,
        url: &str,
        integrity: &str,
    ) -> Result<Option<(String, String)>, String> {
        let fetched = self
            .fetcher
            .get(FetchKind::TypeMetadata, url)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        discovery::check_integrity(integrity, &fetched.body)
            .map_err(|e| format!("{url} does not match its integrity: {e}"))?;
        let document: Value =
            serde_json::from_slice(&fetched.body).map_err(|e| format!("{url} is not JSON: {e}"))?;
        let extends = match (
            document.get("extends").and_then(Value::as_str),
            document.get("extends#integrity").and_then(Value::as_str),
        ) {
            (Some(parent), Some(parent_integrity)) => {
                Some((parent.to_owned(), parent_integrity.to_owned()))
            }
            _ => None,
        };
        let mut matched = self.matched.lock().unwrap_or_else(|p| p.into_inner());
        if matched.len() >= MAX_REMEMBERED {
            matched.clear();
        }
        matched.insert((url.to_owned(), integrity.to_owned()), extends.clone());
        Ok(extends)
    }
}
