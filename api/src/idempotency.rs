//! `Idempotency-Key` on POSTs.
//!
//! A first request runs its command with a sealed copy of its answer
//! attached (see `proofline_commands::idempotency`); a retry with the same
//! key and the same method, path and body gets that answer back, marked
//! `Idempotent-Replayed: true`; the same key with another request is 422.

use axum::Json;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use proofline_commands::handler::CommandError;
use proofline_commands::idempotency::Idempotency;
use proofline_commands::store::{SecretWrite, StoreError};
use proofline_domain::log::Timestamp;
use serde_json::Value;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::state::AppState;

pub const HEADER: &str = "idempotency-key";

/// The idempotency of one request; empty when it carries no key.
pub struct Idem(Option<Idempotency>);

impl Idem {
    pub fn new(
        state: &AppState,
        caller: &Caller,
        headers: &HeaderMap,
        route: &str,
        body: &Bytes,
    ) -> Result<Self, ApiError> {
        let Some(value) = headers.get(HEADER) else {
            return Ok(Self(None));
        };
        let key = value.to_str().map_err(|_| {
            ApiError::from(proofline_commands::idempotency::IdempotencyError::BadKey)
        })?;
        let mut request = Vec::with_capacity(route.len() + 1 + body.len());
        request.extend_from_slice(route.as_bytes());
        request.push(b'\n');
        request.extend_from_slice(body);
        let idempotency = Idempotency::new(
            &state.idempotency_master,
            &caller.principal().actor(),
            key,
            &request,
        )?;
        Ok(Self(Some(idempotency)))
    }

    /// The stored answer of an earlier identical request, if any.
    pub async fn replay(&self, state: &AppState) -> Result<Option<Response>, ApiError> {
        Ok(self
            .replay_parts(state)
            .await?
            .map(|(status, body, position)| Self::replayed(status, body, position)))
    }

    /// The stored answer's status, body (without position) and position.
    pub async fn replay_parts(
        &self,
        state: &AppState,
    ) -> Result<Option<(StatusCode, Value, u64)>, ApiError> {
        let Some(idempotency) = &self.0 else {
            return Ok(None);
        };
        let now = Timestamp::from_datetime(Utc::now());
        let Some(answer) = idempotency.replay(state.store.as_ref(), now).await? else {
            return Ok(None);
        };
        let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
        Ok(Some((status, answer.body, answer.position)))
    }

    /// A replayed answer, marked `Idempotent-Replayed: true`.
    pub fn replayed(status: StatusCode, mut body: Value, position: u64) -> Response {
        if let Some(object) = body.as_object_mut() {
            object.insert("position".into(), position.into());
        }
        let mut response = (status, Json(body)).into_response();
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        response
    }

    /// The secrets that seal this request's answer into the command's
    /// transaction (none without a key). `render` is the answer without its
    /// position, which the replay adds from the store.
    pub fn seal<V>(
        &self,
        status: StatusCode,
        render: impl Fn(&V) -> Value,
    ) -> impl Fn(&V) -> Result<Vec<SecretWrite>, CommandError> {
        move |value: &V| {
            let Some(idempotency) = &self.0 else {
                return Ok(Vec::new());
            };
            let now = Timestamp::from_datetime(Utc::now());
            let record = idempotency
                .record(status.as_u16(), &render(value), now)
                .map_err(|e| CommandError::Store(StoreError::corrupt("idempotency record", e)))?;
            Ok(vec![record])
        }
    }

    /// After a failed command: a concurrent identical request may have won,
    /// in which case its answer is this one's too.
    pub async fn replay_after_failure(
        &self,
        state: &AppState,
        failure: ApiError,
    ) -> Result<Response, ApiError> {
        match self.replay(state).await {
            Ok(Some(answer)) => Ok(answer),
            _ => Err(failure),
        }
    }
}

/// The answer of a command: its rendering plus the position of its last
/// event.
pub fn answer(status: StatusCode, mut body: Value, position: u64) -> Response {
    if let Some(object) = body.as_object_mut() {
        object.insert("position".into(), position.into());
    }
    (status, Json(body)).into_response()
}
