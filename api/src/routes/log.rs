//! `/v1/log`: what an auditor needs to check what the service signed.

use axum::Json;
use axum::extract::State;
use proofline_commands::service_keys::{self, RecordedKey};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKeyView {
    /// The key id receipts and checkpoints name in their `kid` header.
    pub kid: String,
    /// Always `EdDSA` (Ed25519).
    pub alg: String,
    /// The raw 32-byte Ed25519 public key, base64url without padding.
    pub public_key: String,
    /// The same key as an OKP JWK.
    #[schema(value_type = Object)]
    pub jwk: serde_json::Value,
    /// The same key as a did:key.
    pub did: String,
    /// When the key took over (RFC 3339), or null if not recorded yet.
    pub since: Option<String>,
    /// The log position of its activation.
    pub since_position: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKeys {
    #[serde(flatten)]
    pub current: PublicKeyView,
    /// Keys used before this one, newest first.
    pub previous: Vec<PublicKeyView>,
}

fn view(key: &RecordedKey) -> PublicKeyView {
    PublicKeyView {
        kid: key.kid.clone(),
        alg: key.alg.to_owned(),
        public_key: key.public_key.clone(),
        jwk: serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": key.public_key, "kid": key.kid}),
        did: key.did.clone(),
        since: Some(key.since.to_rfc3339()),
        since_position: Some(key.since_position),
    }
}

/// The service's signing key, and the keys it used before.
#[utoipa::path(
    get, path = "/v1/log/public-key", tag = "log",
    responses(
        (status = 200, body = PublicKeys),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn public_key(State(state): State<AppState>) -> Result<Json<PublicKeys>, ApiError> {
    let history = service_keys::history(state.store.as_ref()).await?;
    let kid = state.service_key.kid();
    let current = match history.iter().rposition(|k| k.kid == kid) {
        Some(at) => view(&history[at]),
        None => {
            let public_key = service_keys::encode_public_key(&state.service_key.verifying_key());
            PublicKeyView {
                jwk: serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": public_key, "kid": kid}),
                did: proofline_domain::did::Did::from_ed25519(&state.service_key.verifying_key())
                    .as_str()
                    .to_owned(),
                kid,
                alg: "EdDSA".into(),
                public_key,
                since: None,
                since_position: None,
            }
        }
    };
    let previous = history
        .iter()
        .rev()
        .filter(|k| k.kid != current.kid)
        .map(view)
        .collect();
    Ok(Json(PublicKeys { current, previous }))
}
