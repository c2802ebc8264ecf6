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
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::caller::LogReader;
use crate::error::{ApiError, ErrorCode};
use crate::extract::Query;
use crate::state::AppState;

/// Most envelopes a page holds.
pub const MAX_LIMIT: usize = 1_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Envelopes after this position (default 0: from the start).
    #[serde(default, deserialize_with = "crate::routes::paging::position")]
    #[param(minimum = 0, maximum = 9007199254740991.0)]
    pub after: Option<u64>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
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
        (status = 403, description = "lenders may not read the log"),
        (status = 422),
    ),
    security(("api_key" = []))
)]
pub async fn page(
    State(state): State<AppState>,
    _reader: LogReader,
    Query(query): Query<EventsQuery>,
) -> Result<Json<EventPage>, ApiError> {
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
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Envelopes after this position (default 0). A `Last-Event-ID`
    /// header, as a reconnecting client sends, takes precedence.
    #[serde(default, deserialize_with = "crate::routes::paging::position")]
    #[param(minimum = 0, maximum = 9007199254740991.0)]
    pub after: Option<u64>,
}

/// How often an idle tail sends a comment line, so proxies keep it open.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Envelopes read from the store at a time.
const READ: usize = 500;

/// A live tail of the log as Server-Sent Events: one message per envelope
/// (`id` = its position, `data` = the envelope JSON), heartbeats while idle;
/// reconnecting with `Last-Event-ID` resumes after it. A key may hold a few
/// tails at once (429 past them; 503 past the service's total), and a tail
/// ends within a minute of its key being revoked or rotated past its grace.
#[utoipa::path(
    get, path = "/v1/events/stream", tag = "log",
    params(StreamQuery, ("Last-Event-ID" = Option<u64>, Header, minimum = 0, maximum = 9007199254740991.0, description = "resume after this position")),
    responses(
        (status = 200, content_type = "text/event-stream", description = "the tail, until the client leaves"),
        (status = 422),
        (status = 429, description = "this key has as many tails open as it may"),
        (status = 503, description = "the service has as many tails open as it serves"),
    ),
    security(("api_key" = []))
)]
pub async fn stream(
    State(state): State<AppState>,
    LogReader(caller): LogReader,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
                .filter(|p| *p <= crate::routes::paging::MAX_POSITION)
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::ValidationFailed,
                        "Last-Event-ID: a position (a whole number)",
                    )
                })
        })
        .transpose()?;
    let after = resume.or(query.after).unwrap_or(0);
    let slot = state.tails.open(caller.authenticated.key_prefix.as_str())?;
    let tail = Tail {
        store: state.store.clone(),
        head: state.store.watch_head(),
        after,
        buffer: std::collections::VecDeque::new(),
        auth: state.auth.clone(),
        caller: caller.authenticated.clone(),
        recheck: state.settings.tail_recheck,
        checked: tokio::time::Instant::now(),
        _slot: slot,
    };
    let tail = futures::stream::unfold(tail, |mut tail| async move {
        loop {
            if tail.checked.elapsed() >= tail.recheck {
                if !tail.key_still_valid().await {
                    return None;
                }
                tail.checked = tokio::time::Instant::now();
            }
            if let Some(envelope) = tail.buffer.pop_front() {
                tail.after = envelope.position;
                let data = serde_json::to_string(&envelope).unwrap_or_default();
                let event = Event::default()
                    .id(envelope.position.to_string())
                    .data(data);
                return Some((Ok(event), tail));
            }
            match tail.store.read_all(tail.after, READ).await {
                Ok(page) if !page.is_empty() => tail.buffer.extend(page),
                Ok(_) => {
                    // Caught up: wait for the head to move (the writer going
                    // away ends the tail), or until the key is due a check.
                    let due = tail.recheck.saturating_sub(tail.checked.elapsed());
                    if let Ok(Err(_)) = tokio::time::timeout(due, tail.head.changed()).await {
                        return None;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "the event tail cannot read the store; ending it");
                    return None;
                }
            }
        }
    });
    Ok(Sse::new(tail).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}

/// One live tail's state: where it is, and whose key it serves.
struct Tail {
    store: std::sync::Arc<dyn proofline_commands::store::EventStore>,
    head: tokio::sync::watch::Receiver<u64>,
    after: u64,
    buffer: std::collections::VecDeque<Envelope>,
    auth: std::sync::Arc<proofline_commands::auth::Authenticator>,
    caller: std::sync::Arc<proofline_commands::auth::Authenticated>,
    recheck: Duration,
    checked: tokio::time::Instant,
    _slot: crate::tails::TailSlot,
}

impl Tail {
    /// Whether the tail's key still authenticates; a tail whose key was
    /// revoked (or whose owner lost access) ends.
    async fn key_still_valid(&self) -> bool {
        let now = proofline_domain::log::Timestamp::from_datetime(chrono::Utc::now());
        match self.auth.still_valid(&self.caller, now).await {
            Ok(valid) => valid,
            Err(error) => {
                tracing::warn!(%error, "cannot check a tail's key; ending the tail");
                false
            }
        }
    }
}
