//! Extractors whose rejections are problem+json like every other error:
//! the raw body (kept as bytes so an idempotent retry can be compared),
//! path parameters and query strings.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

/// The request body, at most the configured limit (413 beyond).
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(request, state)
            .await
            .map(Body)
            .map_err(|rejection| match rejection {
                BytesRejection::FailedToBufferBody(failure) if is_length_limit(&failure) => {
                    ApiError::new(
                        ErrorCode::PayloadTooLarge,
                        "the request body is over the size limit",
                    )
                }
                other => ApiError::malformed(format!("cannot read the request body: {other}")),
            })
    }
}

fn is_length_limit(failure: &axum::extract::rejection::FailedToBufferBody) -> bool {
    matches!(
        failure,
        axum::extract::rejection::FailedToBufferBody::LengthLimitError(_)
    )
}

/// A path parameter; one that does not parse is a 404 (no such resource).
pub struct PathParam<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParam<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathParam(p.0))
            .map_err(|rejection: PathRejection| {
                ApiError::new(
                    ErrorCode::NotFound,
                    format!("no such resource ({rejection})"),
                )
            })
    }
}

/// A query string; one that does not parse (an unknown parameter, a value
/// of the wrong type or out of its range) is a 422 that says why.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|rejection: QueryRejection| {
                ApiError::new(ErrorCode::ValidationFailed, rejection.body_text())
            })
    }
}
