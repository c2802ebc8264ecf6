//! API keys and the operator key.
//!
//! Keys come from the OS random source (64-bit public prefix, 256-bit
//! secret), are stored only as argon2id hashes in the secrets table, and are
//! shown once. Hashing and verifying cost tens of milliseconds by design, so
//! async callers run them on the blocking pool.

use std::path::Path;
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proofline_domain::api_key::{ApiKey, KEY_MARKER};
use proofline_domain::log::Metadata;
use proofline_domain::operator::{self, OperatorCommand, OperatorDecider, OperatorError};
use proofline_domain::values::KeyPrefix;
use secrecy::SecretString;

use crate::handler::{self, CommandContext, CommandError, Decision};
use crate::secret_file;
use crate::store::{EventStore, SecretWrite, StoreError};

/// The secrets table's `kind` for API key hashes.
pub const API_KEY_SECRET: &str = "api_key";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot use the key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the key file {path} does not hold {what}")]
    Malformed { path: String, what: &'static str },
    #[error("the OS random source failed: {0}")]
    Random(String),
    #[error("cannot encode or decode a key: {0}")]
    Encoding(String),
    #[error("cannot hash a key: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new API key from the OS random source.
pub fn generate_api_key() -> Result<ApiKey, KeyError> {
    let mut prefix = [0u8; 8];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut prefix).map_err(|e| KeyError::Random(e.to_string()))?;
    getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
    let text = format!(
        "{KEY_MARKER}{}_{}",
        hex::encode(prefix),
        URL_SAFE_NO_PAD.encode(secret)
    );
    ApiKey::parse(&text).map_err(|_| KeyError::Encoding("generated key is malformed".into()))
}

/// The argon2id PHC string of a key (random salt, default parameters).
pub fn hash_api_key(key: &ApiKey) -> Result<String, KeyError> {
    Argon2::default()
        .hash_password(key.expose().as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| KeyError::Hash(e.to_string()))
}

/// Whether `key` matches a stored PHC string. The comparison inside argon2
/// is constant-time.
pub fn verify_api_key(key: &ApiKey, phc: &str) -> bool {
    Argon2::default()
        .verify_password(key.expose().as_bytes(), phc)
        .is_ok()
}

/// The secrets-table id of the key with this public prefix.
pub fn api_key_secret_id(prefix: &str) -> String {
    format!("{API_KEY_SECRET}:{prefix}")
}

/// What [`ensure_operator_key`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorKeyState {
    /// A new key was created, written to the file and registered.
    Created { prefix: String },
    /// The file held a key the store did not know yet; it is registered now.
    Registered { prefix: String },
    /// The file holds the registered key.
    InUse { prefix: String },
    /// A key is registered but the file is absent (another instance created
    /// it, or the operator moved it away).
    RegisteredElsewhere { prefix: String },
    /// The file holds a key other than the registered one.
    Mismatch {
        file_prefix: String,
        registered_prefix: String,
    },
}

/// Makes sure an operator key exists: on first start it is created into
/// `path` (mode 0600) and its hash registered with an `OperatorKeyIssued`
/// event. The file is written before the append, so a crash in between
/// leaves a file whose key the next start registers.
pub async fn ensure_operator_key(
    store: &Arc<dyn EventStore>,
    path: &Path,
) -> Result<OperatorKeyState, KeyError> {
    let registered = registered_operator_prefix(store.as_ref()).await?;
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let from_file = match secret_file::read(path).map_err(io)? {
        Some(text) => Some(ApiKey::parse(text.trim()).map_err(|_| KeyError::Malformed {
            path: path.display().to_string(),
            what: "a Proofline API key",
        })?),
        None => None,
    };
    match (from_file, registered) {
        (Some(key), Some(prefix)) if key.prefix() == prefix => {
            Ok(OperatorKeyState::InUse { prefix })
        }
        (Some(key), Some(prefix)) => Ok(OperatorKeyState::Mismatch {
            file_prefix: key.prefix().to_owned(),
            registered_prefix: prefix,
        }),
        (None, Some(prefix)) => Ok(OperatorKeyState::RegisteredElsewhere { prefix }),
        (Some(key), None) => {
            register_operator_key(store, &key).await?;
            Ok(OperatorKeyState::Registered {
                prefix: key.prefix().to_owned(),
            })
        }
        (None, None) => {
            let key = generate_api_key()?;
            let mut contents = key.expose();
            contents.push('\n');
            if !secret_file::create_new(path, contents.as_bytes()).map_err(io)? {
                // Someone created the file meanwhile: start over with it.
                return Box::pin(ensure_operator_key(store, path)).await;
            }
            match register_operator_key(store, &key).await {
                Ok(()) => Ok(OperatorKeyState::Created {
                    prefix: key.prefix().to_owned(),
                }),
                Err(KeyError::Store(StoreError::Conflict { .. })) => {
                    // Another instance registered its own key first; ours is
                    // worthless, so do not leave it where the operator looks.
                    let _ = std::fs::remove_file(path);
                    let prefix = registered_operator_prefix(store.as_ref())
                        .await?
                        .unwrap_or_default();
                    Ok(OperatorKeyState::RegisteredElsewhere { prefix })
                }
                Err(e) => Err(e),
            }
        }
    }
}

async fn registered_operator_prefix(store: &dyn EventStore) -> Result<Option<String>, KeyError> {
    let loaded = handler::load::<OperatorDecider>(store, &operator::stream_id())
        .await
        .map_err(|e| KeyError::Hash(e.to_string()))?;
    Ok(loaded.state.key_prefix.map(|p| p.as_str().to_owned()))
}

async fn register_operator_key(store: &Arc<dyn EventStore>, key: &ApiKey) -> Result<(), KeyError> {
    let secret = hashed_key_secret(key).await?;
    let context = CommandContext::now(Metadata {
        actor: Some("system".into()),
        ..Metadata::default()
    });
    let command = OperatorCommand::IssueKey {
        key_prefix: KeyPrefix::from(key),
    };
    let result = handler::execute::<OperatorDecider, ()>(
        store.as_ref(),
        &operator::stream_id(),
        &context,
        |state| {
            let events = handler::decide::<OperatorDecider>(&command, state, context.now)?;
            Ok(Decision {
                secrets: vec![secret.clone()],
                ..Decision::events(events, ())
            })
        },
    )
    .await;
    match result {
        Ok(_) => Ok(()),
        // Another instance issued the operator key first.
        Err(CommandError::Rejected(rejected)) if rejected.is(&OperatorError::AlreadyIssued) => {
            Err(KeyError::Store(StoreError::Conflict {
                stream_id: operator::stream_id(),
                expected: crate::store::ExpectedVersion::NoStream,
                actual: 1,
            }))
        }
        Err(CommandError::Store(e)) => Err(KeyError::Store(e)),
        Err(other) => Err(KeyError::Hash(other.to_string())),
    }
}

/// The secrets-table row of a key: its argon2id hash (computed on the
/// blocking pool) under the id its prefix gives.
pub async fn hashed_key_secret(key: &ApiKey) -> Result<SecretWrite, KeyError> {
    let hashed = {
        let key = key.clone();
        tokio::task::spawn_blocking(move || hash_api_key(&key))
            .await
            .map_err(|e| KeyError::Hash(e.to_string()))??
    };
    Ok(SecretWrite {
        id: api_key_secret_id(key.prefix()),
        kind: API_KEY_SECRET.into(),
        material: SecretString::from(hashed),
        replace: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_distinct_and_verify_against_their_hash() {
        let a = generate_api_key().unwrap();
        let b = generate_api_key().unwrap();
        assert_ne!(a, b);
        assert_ne!(a.prefix(), b.prefix());
        let hash = hash_api_key(&a).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(!hash.contains(&a.expose()));
        assert!(verify_api_key(&a, &hash));
        assert!(!verify_api_key(&b, &hash));
        assert!(!verify_api_key(&a, "not a phc string"));
    }
}
