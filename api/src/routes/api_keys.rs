//! Rotating and revoking a principal's own API key: one flow for lenders
//! (`/v1/lenders/me/api-keys/…`) and auditors (`/v1/auditors/me/api-keys/…`),
//! with the same grace rules ([`proofline_domain::key_ring`]).

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use proofline_commands::lenders::{self, NewKey, Rotated};
use proofline_commands::{auditors, handler::CommandError};
use proofline_domain::auditor::AuditorId;
use proofline_domain::ids::StreamId;
use proofline_domain::key_ring::GracePeriod;
use proofline_domain::lender::{LenderCommand, LenderId};
use proofline_domain::values::KeyPrefix;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::caller::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::idempotency::{Idem, answer};
use crate::json;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// How long the current key keeps working: 0 to 604800 (7 days),
    /// default 86400.
    #[schema(minimum = 0, maximum = 604800)]
    pub grace_period_seconds: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyRotated {
    /// Shown once.
    pub api_key: String,
    pub previous_key_valid_until: String,
    pub position: u64,
}

/// Whose keys a request changes: always the caller's own.
#[derive(Debug, Clone, Copy)]
pub enum KeyOwner {
    Lender(LenderId),
    Auditor(AuditorId),
}

impl KeyOwner {
    fn stream_id(self) -> StreamId {
        match self {
            KeyOwner::Lender(id) => id.stream_id(),
            KeyOwner::Auditor(id) => id.stream_id(),
        }
    }

    fn route(self) -> &'static str {
        match self {
            KeyOwner::Lender(_) => "POST /v1/lenders/me/api-keys/rotate",
            KeyOwner::Auditor(_) => "POST /v1/auditors/me/api-keys/rotate",
        }
    }
}

/// Rotates the caller's key: a new key shown once, the current one valid
/// for the grace.
pub async fn rotate(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    body: &Bytes,
    owner: KeyOwner,
) -> Result<Response, ApiError> {
    let idem = Idem::new(state, caller, headers, owner.route(), body)?;
    if let Some(replayed) = idem.replay(state).await? {
        return Ok(replayed);
    }
    let input: RotateKey = json::parse(headers, body)?;
    let grace = match input.grace_period_seconds {
        Some(seconds) => GracePeriod::seconds(seconds)
            .map_err(|e| ApiError::new(ErrorCode::ValidationFailed, e.to_string()))?,
        None => GracePeriod::default(),
    };
    let key = NewKey::generate().await?;
    let render = |r: &Rotated| json!({"api_key": key.api_key.expose(), "previous_key_valid_until": r.previous_key_valid_until.to_rfc3339()});
    let seal = idem.seal(StatusCode::CREATED, render);
    let context = caller.command_context();
    let using = caller.authenticated.key_prefix.clone();
    let store = state.store.as_ref();
    let result = match owner {
        KeyOwner::Lender(id) => {
            lenders::rotate_key(store, &context, id, using, grace, &key, &seal).await
        }
        KeyOwner::Auditor(id) => {
            auditors::rotate_key(store, &context, id, using, grace, &key, &seal).await
        }
    };
    state.auth.invalidate_stream(&owner.stream_id());
    match result {
        Ok(done) => Ok(answer(
            StatusCode::CREATED,
            render(&done.value),
            done.position(),
        )),
        Err(error) => idem.replay_after_failure(state, error.into()).await,
    }
}

/// Ends the caller's previous key now. The current key cannot be revoked.
pub async fn revoke(
    state: &AppState,
    caller: &Caller,
    prefix: &str,
    owner: KeyOwner,
) -> Result<Response, ApiError> {
    let prefix = KeyPrefix::parse(prefix)
        .map_err(|_| ApiError::new(ErrorCode::NotFound, "no such key in its grace period"))?;
    let context = caller.command_context();
    let using = caller.authenticated.key_prefix.clone();
    let store = state.store.as_ref();
    let result: Result<_, CommandError> = match owner {
        KeyOwner::Lender(id) => {
            let command = LenderCommand::RevokeKey {
                prefix: prefix.clone(),
                using,
            };
            lenders::run(store, &context, id, command, &lenders::no_seal).await
        }
        KeyOwner::Auditor(id) => {
            auditors::revoke_key(store, &context, id, prefix.clone(), using).await
        }
    };
    state.auth.invalidate_stream(&owner.stream_id());
    let done = result?;
    Ok(answer(
        StatusCode::OK,
        json!({"prefix": prefix.as_str(), "revoked": true}),
        done.position(),
    ))
}
