//! Errors as RFC 9457 problem+json, mapped to HTTP in one place.
//!
//! Every answer that is not a success is an [`ApiError`]: a stable `code`
//! from a closed set, the HTTP status that code implies (a few codes serve
//! two statuses, such as `VALIDATION_FAILED` for 400, 415 and 422), and a
//! detail for the client. A 5xx never shows its cause to the client (it is
//! logged whole instead); a 4xx says what was wrong with the request. The
//! errors of the crates below (`CommandError`, `AuthError`, ...) become
//! `ApiError`s here and nowhere else.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proofline_commands::auth::AuthError;
use proofline_commands::handler::CommandError;
use proofline_commands::idempotency::IdempotencyError;
use proofline_commands::keys::KeyError;
use proofline_commands::report::error_chain;
use proofline_commands::store::StoreError;
use proofline_domain::decider::RejectionKind;
use proofline_domain::values::InvalidValue;
use serde::Serialize;
use utoipa::ToSchema;

/// The stable machine-readable codes of the HTTP contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    BadCredentials,
    Forbidden,
    ValidationFailed,
    NotFound,
    MethodNotAllowed,
    Conflict,
    RateLimited,
    PayloadTooLarge,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The status a code has unless a case says otherwise.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadCredentials => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
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
            ErrorCode::Forbidden => "not allowed for this caller",
            ErrorCode::ValidationFailed => "the request is not valid",
            ErrorCode::NotFound => "no such resource",
            ErrorCode::MethodNotAllowed => "this method is not allowed here",
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
#[error("{code:?} ({status}): {detail}")]
pub struct ApiError {
    code: ErrorCode,
    status: StatusCode,
    detail: String,
    retry_after_seconds: Option<u64>,
    position: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            status: code.status(),
            detail: detail.into(),
            retry_after_seconds: None,
            position: None,
        }
    }

    /// A request whose body could not be read as JSON at all: 400.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, detail).with_status(StatusCode::BAD_REQUEST)
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The position a read model reached, for a `min_position` timeout.
    pub fn with_position(mut self, position: u64) -> Self {
        self.position = Some(position);
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_seconds = Some(seconds.max(1));
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// An unexpected failure: the cause is logged with its whole chain, the
    /// client only learns that something went wrong.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %error_chain(cause), "internal error");
        Self::new(
            ErrorCode::Internal,
            "an unexpected error occurred; it has been logged",
        )
    }

    /// The store or another dependency failed: 503, cause logged.
    pub fn unavailable(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::warn!(error = %error_chain(cause), "dependency unavailable");
        Self::new(
            ErrorCode::Unavailable,
            "the service cannot complete this request now; retry later",
        )
        .with_retry_after(1)
    }
}

/// The body of every error answer (RFC 9457).
#[derive(Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(example = "/problems/validation-failed")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: ErrorCode,
    /// With 503 on a `min_position` wait: the position the read model reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            type_uri: self.code.type_uri(),
            title: self.code.title().to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code,
            position: self.position,
        };
        let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (self.status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.code == ErrorCode::BadCredentials {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<proofline_projections::db::ReadError> for ApiError {
    fn from(error: proofline_projections::db::ReadError) -> Self {
        tracing::error!(%error, "read model failed");
        ApiError::new(ErrorCode::Unavailable, "the read models cannot answer now")
    }
}

impl From<InvalidValue> for ApiError {
    fn from(error: InvalidValue) -> Self {
        ApiError::new(ErrorCode::ValidationFailed, error.to_string())
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match &error {
            CommandError::Rejected(rejected) => {
                let code = match rejected.kind() {
                    RejectionKind::Invalid => ErrorCode::ValidationFailed,
                    RejectionKind::Conflict => ErrorCode::Conflict,
                    RejectionKind::NotFound => ErrorCode::NotFound,
                    RejectionKind::Forbidden => ErrorCode::Forbidden,
                };
                ApiError::new(code, rejected.to_string())
            }
            CommandError::Taken { .. } => {
                ApiError::new(ErrorCode::Conflict, "a unique value is already taken")
            }
            CommandError::Contention { .. } => ApiError::new(
                ErrorCode::Conflict,
                "the resource kept changing during the request; retry it",
            ),
            CommandError::Store(store) => store_error(store),
            CommandError::Decode(_) => ApiError::internal(&error),
        }
    }
}

fn store_error(error: &StoreError) -> ApiError {
    match error {
        StoreError::Unavailable(_) | StoreError::Closed => ApiError::unavailable(error),
        _ => ApiError::internal(error),
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        store_error(&error)
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match &error {
            AuthError::Unavailable(cause) => store_error(cause),
            AuthError::Malformed => ApiError::new(
                ErrorCode::BadCredentials,
                "the credentials are not a Proofline API key",
            ),
            AuthError::Invalid | AuthError::Inactive => {
                // Which of unknown, wrong, expired or deactivated is not told.
                ApiError::new(ErrorCode::BadCredentials, "the API key is not valid")
            }
            AuthError::Busy => {
                ApiError::new(ErrorCode::Unavailable, error.to_string()).with_retry_after(1)
            }
        }
    }
}

impl From<IdempotencyError> for ApiError {
    fn from(error: IdempotencyError) -> Self {
        match &error {
            IdempotencyError::BadKey | IdempotencyError::Mismatch => {
                ApiError::new(ErrorCode::ValidationFailed, error.to_string())
            }
            IdempotencyError::Unreadable => ApiError::internal(&error),
            IdempotencyError::Store(cause) => store_error(cause),
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(error: KeyError) -> Self {
        ApiError::internal(&error)
    }
}

/// What a wallet-facing OpenID4VP endpoint answers for an error: OAuth JSON
/// (`{"error", "error_description"}`, RFC 6749 §5.2), which is what wallet
/// libraries read, with `Cache-Control: no-store`. The service's own
/// failures are 5xx as elsewhere (logged whole, shown as a code); nothing a
/// wallet sends reaches that arm.
pub fn wallet_response(error: proofline_commands::oid4vp::WalletFacingError) -> Response {
    use proofline_commands::oid4vp::WalletFacingError as W;
    let (status, code, description) = match error {
        W::NotFound => (
            StatusCode::NOT_FOUND,
            "invalid_request",
            "no such request".to_owned(),
        ),
        W::Gone => (
            StatusCode::GONE,
            "invalid_request",
            "the request expired or was answered".to_owned(),
        ),
        W::Invalid { error, description } => (StatusCode::BAD_REQUEST, error, description),
        unmatched @ W::Unmatched { .. } => (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            unmatched.to_string(),
        ),
        W::Internal(error) => {
            let api = ApiError::from(error);
            let status = api.status;
            (status, "server_error", api.detail)
        }
    };
    // What is not recorded in the log (an unknown state, a JWE that does
    // not decrypt, a fetch of an expired request) is counted here.
    metrics::counter!("proofline_oid4vp_refusals_total",
        "status" => status.as_str().to_owned(), "error" => code)
    .increment(1);
    let body = serde_json::json!({"error": code, "error_description": description});
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
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

    #[test]
    fn domain_rejections_map_by_kind() {
        use proofline_domain::lender::LenderError;
        let rejected = |error: LenderError| ApiError::from(CommandError::rejected(error));
        assert_eq!(
            rejected(LenderError::GraceTooLong { max_seconds: 1 }).status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            rejected(LenderError::AlreadyRegistered).status(),
            StatusCode::CONFLICT
        );
        let not_found = rejected(LenderError::NotFound);
        assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
        assert_eq!(not_found.detail(), "no such lender");
        assert_eq!(
            rejected(LenderError::NotCurrentKey).status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(ApiError::malformed("x").status(), StatusCode::BAD_REQUEST);
        assert_eq!(ApiError::malformed("x").code(), ErrorCode::ValidationFailed);
    }
}
