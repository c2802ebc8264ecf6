//! A lender's standing, which the operator sets: active, suspended or
//! deactivated. Each route is one [`Action`]; they share everything else.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use proofline_commands::lenders;
use proofline_domain::lender::{LenderCommand, LenderId};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::caller::Operator;
use crate::error::ApiError;
use crate::extract::PathParam;
use crate::idempotency::{Idem, answer};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct LenderStatus {
    pub lender_id: Uuid,
    /// `active`, `suspended` or `deactivated`.
    pub status: String,
    pub position: u64,
}

/// What the operator does to a lender's standing.
#[derive(Debug, Clone, Copy)]
enum Action {
    Deactivate,
    Reactivate,
    Suspend,
    Unsuspend,
}

impl Action {
    /// The last segment of the route, `POST /v1/lenders/{id}/<segment>`.
    fn segment(self) -> &'static str {
        match self {
            Action::Deactivate => "deactivate",
            Action::Reactivate => "reactivate",
            Action::Suspend => "suspend",
            Action::Unsuspend => "unsuspend",
        }
    }

    fn command(self) -> LenderCommand {
        match self {
            Action::Deactivate => LenderCommand::Deactivate,
            Action::Reactivate => LenderCommand::Reactivate,
            Action::Suspend => LenderCommand::Suspend,
            Action::Unsuspend => LenderCommand::Unsuspend,
        }
    }

    /// The standing it leaves the lender in.
    fn status(self) -> &'static str {
        match self {
            Action::Deactivate => "deactivated",
            Action::Suspend => "suspended",
            Action::Reactivate | Action::Unsuspend => "active",
        }
    }
}

async fn act(
    state: &AppState,
    Operator(caller): Operator,
    headers: &HeaderMap,
    id: Uuid,
    action: Action,
) -> Result<Response, ApiError> {
    let route = format!("POST /v1/lenders/{id}/{}", action.segment());
    let idem = Idem::new(state, &caller, headers, &route, &Bytes::new())?;
    if let Some(replayed) = idem.replay(state).await? {
        return Ok(replayed);
    }
    let lender_id = LenderId::from_uuid(id);
    let render = |_: &()| json!({"lender_id": id, "status": action.status()});
    let seal = idem.seal(StatusCode::OK, render);
    let context = caller.command_context();
    let result = lenders::run(
        state.store.as_ref(),
        &context,
        lender_id,
        action.command(),
        &seal,
    )
    .await;
    state.auth.invalidate_stream(&lender_id.stream_id());
    match result {
        Ok(done) => Ok(answer(StatusCode::OK, render(&()), done.position())),
        Err(error) => idem.replay_after_failure(state, error.into()).await,
    }
}

/// Deactivate a lender: its keys stop working at once.
#[utoipa::path(
    post, path = "/v1/lenders/{id}/deactivate", tag = "lenders",
    params(("id" = Uuid, Path, description = "the lender id")),
    responses(
        (status = 200, body = LenderStatus),
        (status = 409, description = "already deactivated"),
    ),
    security(("api_key" = []))
)]
pub async fn deactivate(
    State(state): State<AppState>,
    operator: Operator,
    headers: HeaderMap,
    PathParam(id): PathParam<Uuid>,
) -> Result<Response, ApiError> {
    act(&state, operator, &headers, id, Action::Deactivate).await
}

/// Reactivate a deactivated lender: its keys work again.
#[utoipa::path(
    post, path = "/v1/lenders/{id}/reactivate", tag = "lenders",
    params(("id" = Uuid, Path, description = "the lender id")),
    responses(
        (status = 200, body = LenderStatus),
        (status = 409, description = "already active"),
    ),
    security(("api_key" = []))
)]
pub async fn reactivate(
    State(state): State<AppState>,
    operator: Operator,
    headers: HeaderMap,
    PathParam(id): PathParam<Uuid>,
) -> Result<Response, ApiError> {
    act(&state, operator, &headers, id, Action::Reactivate).await
}

/// Suspend a lender: its keys authenticate nothing until it is unsuspended;
/// unlike a deactivation, its webhook keeps receiving deliveries and its
/// data stays as it is.
#[utoipa::path(
    post, path = "/v1/lenders/{id}/suspend", tag = "lenders",
    params(("id" = Uuid, Path, description = "the lender id")),
    responses(
        (status = 200, body = LenderStatus),
        (status = 409, description = "already suspended, or deactivated"),
    ),
    security(("api_key" = []))
)]
pub async fn suspend(
    State(state): State<AppState>,
    operator: Operator,
    headers: HeaderMap,
    PathParam(id): PathParam<Uuid>,
) -> Result<Response, ApiError> {
    act(&state, operator, &headers, id, Action::Suspend).await
}

/// Unsuspend a suspended lender: its keys work again.
#[utoipa::path(
    post, path = "/v1/lenders/{id}/unsuspend", tag = "lenders",
    params(("id" = Uuid, Path, description = "the lender id")),
    responses(
        (status = 200, body = LenderStatus),
        (status = 409, description = "not suspended"),
    ),
    security(("api_key" = []))
)]
pub async fn unsuspend(
    State(state): State<AppState>,
    operator: Operator,
    headers: HeaderMap,
    PathParam(id): PathParam<Uuid>,
) -> Result<Response, ApiError> {
    act(&state, operator, &headers, id, Action::Unsuspend).await
}
