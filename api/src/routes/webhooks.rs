//! A lender's webhook deliveries: list them, ask for one again.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use proofline_commands::webhooks;
use proofline_domain::webhook_delivery::DeliveryId;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::caller::{Lender, Operator};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{PathParam, Query};
use crate::idempotency::{Idem, answer};
use crate::routes::paging::{cursor_position, page_limit, read_model, read_models};
use crate::state::AppState;

/// Query of `GET /v1/webhooks/deliveries`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// `pending`, `delivered` or `failed`.
    #[param(pattern = "^(pending|delivered|failed)$")]
    pub status: Option<String>,
    /// 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,15}$")]
    pub cursor: Option<String>,
    /// Wait (up to 5 s) until the deliveries have applied this log position.
    #[serde(default, deserialize_with = "crate::routes::paging::position")]
    #[param(minimum = 0, maximum = 9007199254740991.0)]
    pub min_position: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    /// Newest event first: `{delivery_id, webhook_id, event_type,
    /// event_position, status, attempts, next_attempt_at, last_error,
    /// last_status, created_at, settled_at}`.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookHealth {
    /// Per lender: `{lender_id, pending, delivered, failed,
    /// last_failed_at}`.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
}

/// Every lender's webhook deliveries counted by status, with its last
/// failure: for the operator.
#[utoipa::path(
    get, path = "/v1/webhooks/health", tag = "webhooks",
    responses((status = 200, body = WebhookHealth)),
    security(("api_key" = []))
)]
pub async fn health(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<WebhookHealth>, ApiError> {
    let read = read_model(&state, "webhook_deliveries", None).await?;
    let items = proofline_projections::queries::webhook_health(read).await?;
    Ok(Json(WebhookHealth { items }))
}

/// The calling lender's webhook deliveries, from the read model.
#[utoipa::path(
    get, path = "/v1/webhooks/deliveries", tag = "webhooks",
    params(DeliveriesQuery),
    responses(
        (status = 200, body = DeliveryPage),
        (status = 422),
    ),
    security(("api_key" = []))
)]
pub async fn deliveries(
    State(state): State<AppState>,
    Lender { id: lender, .. }: Lender,
    Query(query): Query<DeliveriesQuery>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let limit = page_limit(query.limit)?;
    if let Some(status) = &query.status
        && !["pending", "delivered", "failed"].contains(&status.as_str())
    {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "status: pending, delivered or failed",
        ));
    }
    let before_position = cursor_position(query.cursor.as_deref())?;
    let filter = proofline_projections::queries::DeliveryFilter {
        status: query.status,
        before_position,
    };
    let read = read_model(&state, "webhook_deliveries", query.min_position).await?;
    let (items, next) = proofline_projections::queries::webhook_deliveries(
        read,
        &lender.to_string(),
        &filter,
        limit,
    )
    .await?;
    Ok(Json(DeliveryPage {
        items,
        next_cursor: next.map(|p| p.to_string()),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedeliveryRequested {
    pub delivery_id: Uuid,
    /// Always `pending`: the consumer sends it again shortly.
    pub status: String,
    pub position: u64,
}

/// Send a delivered or failed delivery again (a new round of attempts,
/// same `webhook-id`).
#[utoipa::path(
    post, path = "/v1/webhooks/deliveries/{id}/retry", tag = "webhooks",
    params(
        ("id" = Uuid, Path, description = "the delivery id (the event's id, also its webhook-id)"),
        ("Idempotency-Key" = Option<String>, Header, description = "retries with the same key get the first answer"),
    ),
    responses(
        (status = 202, body = RedeliveryRequested),
        (status = 404, description = "no such delivery of this lender"),
        (status = 409, description = "still pending: it is retried on its own"),
    ),
    security(("api_key" = []))
)]
pub async fn retry(
    State(state): State<AppState>,
    Lender { id: lender, caller }: Lender,
    headers: HeaderMap,
    PathParam(id): PathParam<Uuid>,
) -> Result<Response, ApiError> {
    let route = format!("POST /v1/webhooks/deliveries/{id}/retry");
    let idem = Idem::new(&state, &caller, &headers, &route, &Bytes::new())?;
    if let Some(replayed) = idem.replay(&state).await? {
        return Ok(replayed);
    }
    // The read model knows a delivery from its event on, before any
    // attempt is recorded; another lender's answers 404 like a missing one.
    let read = read_models(&state)?;
    let known = proofline_projections::queries::webhook_delivery(
        read,
        &lender.to_string(),
        &id.to_string(),
    )
    .await?;
    if known.is_none() {
        return Err(ApiError::new(ErrorCode::NotFound, "no such delivery"));
    }
    let render = |_: &()| json!({"delivery_id": id, "status": "pending"});
    let seal = idem.seal(StatusCode::ACCEPTED, render);
    let result = webhooks::request_redelivery(
        state.store.as_ref(),
        &caller.command_context(),
        DeliveryId::of_event(id),
        lender,
        &seal,
    )
    .await;
    match result {
        Ok(done) => Ok(answer(StatusCode::ACCEPTED, render(&()), done.position())),
        Err(error) => idem.replay_after_failure(&state, error.into()).await,
    }
}
