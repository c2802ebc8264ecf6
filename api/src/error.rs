//! Errors as RFC 9457 problem+json, mapped to HTTP in one place.
//!
//! Every answer that is not a success is an [`ApiError`]: a stable `code`
//! from a closed set, the HTTP status that code implies, and a detail for the
//! client. A 5xx never shows its cause to the client (it is logged whole
//! instead); a 4xx says what was wrong with the request.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The stable machine-readable codes of the HTTP contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    BadCredentials,
    Forbidden,
    ValidationFailed,
    NotFound,
    Conflict,
    RateLimited,
    PayloadTooLarge,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadCredentials => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ErrorCode::BadCredentials => "missing, malformed or unknown credentials",
            ErrorCode::Forbidden => "not allowed for this role",
            ErrorCode::ValidationFailed => "the request is not valid",
            ErrorCode::NotFound => "no such resource",
            ErrorCode::Conflict => "conflicts with the current state",
            ErrorCode::RateLimited => "too many requests",
            ErrorCode::PayloadTooLarge => "the request body is too large",
            ErrorCode::Unavailable => "temporarily unavailable",
            ErrorCode::Internal => "internal error",
        }
    }

    /// The `type` URI of the problem, relative to the service.
    pub fn type_uri(self) -> String {
        let slug = match serde_json::to_value(self) {
            Ok(serde_json::Value::String(code)) => code.to_lowercase().replace('_', "-"),
            _ => "internal".to_owned(),
        };
        format!("/problems/{slug}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {detail}")]
pub struct ApiError {
    code: ErrorCode,
    detail: String,
    retry_after_seconds: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            retry_after_seconds: None,
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// An unexpected failure: the cause is logged with its whole chain, the
    /// client only learns that something went wrong.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(inner) = source {
            chain.push_str(": ");
            chain.push_str(&inner.to_string());
            source = inner.source();
        }
        tracing::error!(error = %chain, "internal error");
        Self::new(
            ErrorCode::Internal,
            "an unexpected error occurred; it has been logged",
        )
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'static str,
    status: u16,
    detail: &'a str,
    code: ErrorCode,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = Problem {
            type_uri: self.code.type_uri(),
            title: self.code.title(),
            status: status.as_u16(),
            detail: &self.detail,
            code: self.code,
        };
        let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    #[tokio::test]
    async fn problem_json_has_the_contract_members() {
        let response = ApiError::new(ErrorCode::RateLimited, "slow down")
            .with_retry_after(7)
            .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        let body = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["code"], "RATE_LIMITED");
        assert_eq!(json["status"], 429);
        assert_eq!(json["detail"], "slow down");
        assert_eq!(json["type"], "/problems/rate-limited");
        assert!(json["title"].is_string());
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let cause = std::io::Error::other("password=hunter2 leaked in a driver message");
        let error = ApiError::internal(&cause);
        assert_eq!(error.code(), ErrorCode::Internal);
        assert!(!error.detail().contains("hunter2"));
    }
}
