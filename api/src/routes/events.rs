//! `/v1/events`: the log as stored, for auditors and the operator: pages,
//! and a live tail over Server-Sent Events.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use proofline_domain::log::Envelope;
use proofline_domain::principal::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::caller::Caller;
use crate::error::{ApiError, ErrorCode, Problem};
use crate::state::AppState;

/// Most envelopes a page holds.
pub const MAX_LIMIT: usize = 1_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Envelopes after this position (default 0: from the start).
    pub after: Option<u64>,
    /// 1 to 1000, default 100.
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// Envelopes exactly as stored, in position order.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Envelope>,
    /// Pass as `after` for the next page (the last position here, or
    /// `after` itself when the page is empty).
    pub next_after: u64,
    /// The log's last position when the page was read.
    pub head: u64,
}

/// A page of the log, for auditors and the operator.
#[utoipa::path(
    get, path = "/v1/events", tag = "log",
    params(EventsQuery),
    responses(
        (status = 200, body = EventPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "lenders may not read the log"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn page(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<axum::extract::Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    caller.require(&[Role::Auditor, Role::Operator])?;
    let axum::extract::Query(query) =
        query.map_err(|e| ApiError::new(ErrorCode::ValidationFailed, e.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "limit: 1 to 1000",
        ));
    }
    let after = query.after.unwrap_or(0);
    let head = *state.store.watch_head().borrow();
    let events = state.store.read_all(after, limit).await?;
    let next_after = events.last().map_or(after, |e| e.position);
    Ok(Json(EventPage {
        events,
        next_after,
        head,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Envelopes after this position (default 0). A `Last-Event-ID`
    /// header, as a reconnecting client sends, takes precedence.
    pub after: Option<u64>,
}

/// How often an idle tail sends a comment line, so proxies keep it open.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Envelopes read from the store at a time.
const READ: usize = 500;

/// A live tail of the log as Server-Sent Events: one message per envelope
/// (`id` = its position, `data` = the envelope JSON), heartbeats while idle;
/// reconnecting with `Last-Event-ID` resumes after it.
#[utoipa::path(
    get, path = "/v1/events/stream", tag = "log",
    params(StreamQuery, ("Last-Event-ID" = Option<u64>, Header, description = "resume after this position")),
    responses(
        (status = 200, content_type = "text/event-stream", description = "the tail, until the client leaves"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<axum::extract::Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(&[Role::Auditor, Role::Operator])?;
    let axum::extract::Query(query) =
        query.map_err(|e| ApiError::new(ErrorCode::ValidationFailed, e.body_text()))?;
    let resume = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::ValidationFailed,
                        "Last-Event-ID: a position (a whole number)",
                    )
                })
        })
        .transpose()?;
    let after = resume.or(query.after).unwrap_or(0);
    let store = state.store.clone();
    let head = store.watch_head();
    let tail = futures::stream::unfold(
        (
            store,
            head,
            after,
            std::collections::VecDeque::<Envelope>::new(),
        ),
        |(store, mut head, mut after, mut buffer)| async move {
            loop {
                if let Some(envelope) = buffer.pop_front() {
                    after = envelope.position;
                    let data = serde_json::to_string(&envelope).unwrap_or_default();
                    let event = Event::default()
                        .id(envelope.position.to_string())
                        .data(data);
                    return Some((Ok(event), (store, head, after, buffer)));
                }
                match store.read_all(after, READ).await {
                    Ok(page) if !page.is_empty() => buffer.extend(page),
                    Ok(_) => {
                        // Caught up: wait for the head to move (or the
                        // writer to go away, which ends the tail).
                        if head.changed().await.is_err() {
                            return None;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "the event tail cannot read the store; ending it");
                        return None;
                    }
                }
            }
        },
    );
    Ok(Sse::new(tail).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}
