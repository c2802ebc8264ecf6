//! `/v1/auditors`: registration by the operator; an auditor's own key
//! rotation and revocation.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use proofline_commands::auditors::{self, AuditorRegistered};
use proofline_commands::lenders::NewKey;
use proofline_domain::values::Name;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::caller::{Auditor, Operator};
use crate::error::ApiError;
use crate::extract::{Body, PathParam};
use crate::idempotency::{Idem, answer};
use crate::json;
use crate::routes::api_keys::{self, KeyOwner, KeyRotated, RotateKey};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterAuditor {
    /// 1 to 200 characters (after trimming), no control characters.
    #[schema(example = "Ledger Audit LLP", min_length = 1, max_length = 200)]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditorCreated {
    pub auditor_id: Uuid,
    /// Shown once.
    pub api_key: String,
    pub position: u64,
}

/// Register an auditor, who may read and verify the whole log.
#[utoipa::path(
    post, path = "/v1/auditors", tag = "auditors",
    request_body = RegisterAuditor,
    params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key and body get the first answer")),
    responses(
        (status = 201, body = AuditorCreated),
    ),
    security(("api_key" = []))
)]
pub async fn register(
    State(state): State<AppState>,
    Operator(caller): Operator,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let idem = Idem::new(&state, &caller, &headers, "POST /v1/auditors", &body)?;
    if let Some(replayed) = idem.replay(&state).await? {
        return Ok(replayed);
    }
    let input: RegisterAuditor = json::parse(&headers, &body)?;
    let name = Name::parse("name", &input.name)?;
    let key = NewKey::generate().await?;
    let render = |r: &AuditorRegistered| json!({"auditor_id": r.auditor_id.as_uuid(), "api_key": key.api_key.expose()});
    let seal = idem.seal(StatusCode::CREATED, render);
    let context = caller.command_context();
    match auditors::register(state.store.as_ref(), &context, &name, &key, &seal).await {
        Ok(done) => Ok(answer(
            StatusCode::CREATED,
            render(&done.value),
            done.position(),
        )),
        Err(error) => idem.replay_after_failure(&state, error.into()).await,
    }
}

/// Rotate the calling auditor's API key; the current key keeps working for
/// the grace period (as a lender's does). Only the current key may rotate.
#[utoipa::path(
    post, path = "/v1/auditors/me/api-keys/rotate", tag = "auditors",
    request_body(content = RotateKey, description = "optional"),
    params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key and body get the first answer")),
    responses(
        (status = 201, body = KeyRotated),
        (status = 403, description = "not an auditor, or not its current key"),
    ),
    security(("api_key" = []))
)]
pub async fn rotate(
    State(state): State<AppState>,
    Auditor {
        id: auditor,
        caller,
    }: Auditor,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    api_keys::rotate(&state, &caller, &headers, &body, KeyOwner::Auditor(auditor)).await
}

/// Revoke the calling auditor's previous key now, ending its grace.
#[utoipa::path(
    delete, path = "/v1/auditors/me/api-keys/{prefix}", tag = "auditors",
    params(("prefix" = String, Path, description = "the key's public prefix")),
    responses(
        (status = 200, description = "revoked", body = inline(serde_json::Value)),
        (status = 404, description = "no such key in its grace"),
        (status = 409, description = "it is the current key"),
    ),
    security(("api_key" = []))
)]
pub async fn revoke(
    State(state): State<AppState>,
    Auditor {
        id: auditor,
        caller,
    }: Auditor,
    PathParam(prefix): PathParam<String>,
) -> Result<Response, ApiError> {
    api_keys::revoke(&state, &caller, &prefix, KeyOwner::Auditor(auditor)).await
}
