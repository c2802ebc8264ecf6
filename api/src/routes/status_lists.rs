//! `GET /v1/status-lists`: the status lists the log holds, for the
//! operator (the console's trust registry shows their age and ttl).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::caller::Operator;
use crate::error::ApiError;
use crate::extract::Query;
use crate::routes::issuers::IssuersQuery;
use crate::routes::paging::read_model;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusLists {
    /// By URI: `{uri, issuer, kid, iat, exp, ttl, bits, source ("posted"
    /// or "fetched"), fetched_at, recorded_at, position}`, as the log last
    /// holds each (a fetch that found the list unchanged appends nothing).
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
}

/// Every status list as the log last holds it.
#[utoipa::path(
    get, path = "/v1/status-lists", tag = "issuers",
    params(IssuersQuery),
    responses((status = 200, body = StatusLists)),
    security(("api_key" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _operator: Operator,
    Query(query): Query<IssuersQuery>,
) -> Result<Json<StatusLists>, ApiError> {
    let read = read_model(&state, "status_lists", query.min_position).await?;
    let items = proofline_projections::queries::status_lists(read).await?;
    Ok(Json(StatusLists { items }))
}
