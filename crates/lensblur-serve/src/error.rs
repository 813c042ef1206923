//! API errors: one type, one JSON shape `{"error": code, "detail": text}`, one status per kind.
//!
//! Details never contain server paths or internals: library errors that are not the client's fault
//! become a generic 500 and are logged in full on the server.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error answered to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`bad_image`, `queue_full`, …).
    pub code: &'static str,
    /// Human-readable explanation with the offending value.
    pub detail: String,
    /// Seconds for a `Retry-After` header (503s).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `code` and `detail`.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 400 for a malformed or out-of-range parameter.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_parameter", detail)
    }

    /// 400 for a required multipart field that was not sent.
    pub fn missing(field: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "missing_field",
            format!("the multipart field {field:?} is required"),
        )
    }

    /// 500 with a generic detail; the real cause is logged.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {cause}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to process the request; see the server log",
        )
    }
}

impl From<lensblur::Error> for ApiError {
    fn from(e: lensblur::Error) -> Self {
        use lensblur::Error as E;
        match &e {
            E::Decode(_) => Self::new(StatusCode::BAD_REQUEST, "bad_image", e.to_string()),
            E::UnsupportedFormat(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_format",
                format!("{e}; send JPEG, PNG or WebP"),
            ),
            E::TooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_pixels",
                e.to_string(),
            ),
            E::TooSmall { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "too_small", e.to_string())
            }
            E::InvalidOption(_) => Self::invalid(e.to_string()),
            _ => Self::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "detail": self.detail });
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for ApiError {}
