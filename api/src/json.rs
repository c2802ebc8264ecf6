//! Request bodies: read once as bytes (so an idempotent retry can be
//! compared), then parsed as JSON with every failure a problem+json answer.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

/// Parses a JSON body: 415 without a JSON content type, 400 when it is not
/// JSON, 422 when it is JSON of the wrong shape. An empty body reads as `{}`
/// so that requests whose every member is optional may omit it.
pub fn parse<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, ApiError> {
    if body.is_empty() {
        return serde_json::from_slice(b"{}").map_err(|e| shape_error(&e));
    }
    let json_content = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        });
    if !json_content {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "send the body as application/json",
        )
        .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof
        | serde_json::error::Category::Io => {
            ApiError::malformed(format!("the body is not valid JSON: {e}"))
        }
        serde_json::error::Category::Data => shape_error(&e),
    })
}

fn shape_error(error: &serde_json::Error) -> ApiError {
    ApiError::new(
        ErrorCode::ValidationFailed,
        format!("the body does not have the expected shape: {error}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[allow(dead_code)]
        name: Option<String>,
    }

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        headers
    }

    #[test]
    fn statuses_follow_what_is_wrong() {
        let status = |headers: &HeaderMap, body: &'static str| {
            parse::<Body>(headers, &Bytes::from_static(body.as_bytes()))
                .map(|_| ())
                .map_err(|e| e.status())
        };
        assert_eq!(status(&json_headers(), r#"{"name":"x"}"#), Ok(()));
        assert_eq!(status(&json_headers(), ""), Ok(()));
        assert_eq!(
            status(&json_headers(), "{not json"),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            status(&json_headers(), r#"{"name": 5}"#),
            Err(StatusCode::UNPROCESSABLE_ENTITY)
        );
        assert_eq!(
            status(&json_headers(), r#"{"nmae": "x"}"#),
            Err(StatusCode::UNPROCESSABLE_ENTITY)
        );
        assert_eq!(
            status(&HeaderMap::new(), r#"{"name":"x"}"#),
            Err(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
    }
}
