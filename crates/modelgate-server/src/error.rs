//! The API's one error type: every failure becomes `{"error": {"code", "message", "details"}}` with a
//! status taken from one table. A 500 tells the client only a request id; the whole chain goes to the log.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use modelgate_api::{ErrorBody, ErrorDetail};
use modelgate_core::InvalidInput;
use modelgate_core::access::Denied;
use modelgate_store::{StoreError, UploadError};
use serde_json::json;

/// The largest JSON body a request may have (axum's default limit for extracted bodies).
pub const JSON_BODY_LIMIT_BYTES: usize = 2 * 1024 * 1024;

/// The stable error codes of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    Conflict,
    DigestMismatch,
    PayloadTooLarge,
    HeadersTooLarge,
    RangeNotSatisfiable,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The one table from code to wire name and HTTP status.
    pub fn describe(self) -> (&'static str, StatusCode) {
        match self {
            Self::InvalidArgument => ("invalid_argument", StatusCode::BAD_REQUEST),
            Self::Unauthenticated => ("unauthenticated", StatusCode::UNAUTHORIZED),
            Self::PermissionDenied => ("permission_denied", StatusCode::FORBIDDEN),
            Self::NotFound => ("not_found", StatusCode::NOT_FOUND),
            Self::AlreadyExists => ("already_exists", StatusCode::CONFLICT),
            Self::FailedPrecondition => ("failed_precondition", StatusCode::CONFLICT),
            Self::Conflict => ("conflict", StatusCode::CONFLICT),
            Self::DigestMismatch => ("digest_mismatch", StatusCode::BAD_REQUEST),
            Self::PayloadTooLarge => ("payload_too_large", StatusCode::PAYLOAD_TOO_LARGE),
            Self::HeadersTooLarge => (
                "headers_too_large",
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ),
            Self::RangeNotSatisfiable => {
                ("range_not_satisfiable", StatusCode::RANGE_NOT_SATISFIABLE)
            }
            Self::RateLimited => ("rate_limited", StatusCode::TOO_MANY_REQUESTS),
            Self::Unavailable => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
            Self::Internal => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// The code of an HTTP status, for answers the server did not make itself (the router's, the
    /// Swagger UI's, a body-limit rejection): a known status gets its code, others the class's.
    pub fn for_status(status: StatusCode) -> Self {
        const ALL: [ErrorCode; 13] = [
            ErrorCode::InvalidArgument,
            ErrorCode::Unauthenticated,
            ErrorCode::PermissionDenied,
            ErrorCode::NotFound,
            ErrorCode::FailedPrecondition,
            ErrorCode::AlreadyExists,
            ErrorCode::DigestMismatch,
            ErrorCode::PayloadTooLarge,
            ErrorCode::HeadersTooLarge,
            ErrorCode::RangeNotSatisfiable,
            ErrorCode::RateLimited,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ];
        ALL.into_iter()
            .find(|code| code.describe().1 == status)
            .unwrap_or(if status.is_server_error() {
                ErrorCode::Internal
            } else {
                ErrorCode::InvalidArgument
            })
    }
}

/// The generic message of every 500: what went wrong is in the log, never in the answer.
pub const INTERNAL_MESSAGE: &str =
    "internal error; the server log has the details under this request's id";

/// An internal failure described in words (a stored record that no longer parses), for
/// [`ApiError::internal`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InternalError(pub String);

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    /// An error with its message for the client. An `Internal` one's message is logged and replaced by
    /// [`INTERNAL_MESSAGE`]: nothing internal reaches a client however the error is made (prefer
    /// [`ApiError::internal`]).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if code == ErrorCode::Internal && message != INTERNAL_MESSAGE {
            tracing::error!(error = %message, "internal error");
            message = INTERNAL_MESSAGE.to_owned();
        }
        Self {
            code,
            message,
            details: None,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message).with_details(json!({ "field": field }))
    }

    /// An internal failure: logged in full, reported to the client without detail.
    pub fn internal(error: &dyn std::error::Error) -> Self {
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::error!(error = %chain, "internal error");
        Self::new(ErrorCode::Internal, INTERNAL_MESSAGE)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status) = self.code.describe();
        let details = if self.code == ErrorCode::Internal {
            None
        } else {
            self.details
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: self.message,
                details,
            },
        };
        (status, Json(body)).into_response()
    }
}

impl From<InvalidInput> for ApiError {
    fn from(invalid: InvalidInput) -> Self {
        Self::invalid(invalid.field, invalid.to_string())
    }
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        Self::new(ErrorCode::PermissionDenied, denied.0)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { .. } => Self::new(ErrorCode::NotFound, error.to_string()),
            StoreError::AlreadyExists { .. } => {
                Self::new(ErrorCode::AlreadyExists, error.to_string())
            }
            StoreError::Conflict(message) => Self::new(ErrorCode::Conflict, message),
            StoreError::FailedPrecondition(message) => {
                Self::new(ErrorCode::FailedPrecondition, message)
            }
            StoreError::Invalid(invalid) => invalid.into(),
            StoreError::Database(sqlx::Error::PoolTimedOut) => {
                tracing::warn!("database pool timed out");
                Self::new(
                    ErrorCode::Unavailable,
                    "the database is busy; retry shortly",
                )
            }
            other => Self::internal(&other),
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(error: UploadError) -> Self {
        match &error {
            UploadError::DigestMismatch { expected, actual } => {
                Self::new(ErrorCode::DigestMismatch, error.to_string()).with_details(json!({
                    "expected": expected.to_string(),
                    "actual": actual.to_string(),
                }))
            }
            UploadError::TooLarge { limit } => Self::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the artifact exceeds the server's limit of {limit} bytes (--max-upload-bytes)"
                ),
            )
            .with_details(json!({ "limit_bytes": limit })),
            UploadError::Interrupted(message) => Self::new(
                ErrorCode::InvalidArgument,
                format!("the upload was interrupted: {message}"),
            ),
            UploadError::Storage(storage) => Self::internal(storage),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let message = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                "the body must be JSON: send the header Content-Type: application/json".to_owned()
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Self::new(
                    ErrorCode::PayloadTooLarge,
                    format!(
                        "the JSON body is larger than the server's limit of {JSON_BODY_LIMIT_BYTES} bytes; \
                         send a smaller one (files go to POST /api/v1/artifacts)"
                    ),
                )
                .with_details(json!({ "field": "body", "limit_bytes": JSON_BODY_LIMIT_BYTES }));
            }
            other => format!("malformed JSON body: {}", other.body_text()),
        };
        Self::new(ErrorCode::InvalidArgument, message).with_details(json!({ "field": "body" }))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::new(
            ErrorCode::InvalidArgument,
            format!("malformed path: {}", rejection.body_text()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_never_carries_its_text_or_details_however_it_is_made() {
        let made = ApiError::new(
            ErrorCode::Internal,
            "stored card 3 no longer parses at /var/x",
        )
        .with_details(json!({ "path": "/var/x" }));
        assert_eq!(made.message, INTERNAL_MESSAGE);
        let response = made.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let wrapped = ApiError::internal(&InternalError("secret".to_owned()));
        assert_eq!(wrapped.message, INTERNAL_MESSAGE);
        // Other codes keep their message.
        assert_eq!(
            ApiError::new(ErrorCode::NotFound, "no model x").message,
            "no model x"
        );
    }

    #[test]
    fn statuses_the_server_did_not_answer_itself_map_to_codes() {
        let cases = [
            (StatusCode::NOT_FOUND, "not_found"),
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
            ),
            (StatusCode::METHOD_NOT_ALLOWED, "invalid_argument"),
            (StatusCode::BAD_GATEWAY, "internal"),
        ];
        for (status, code) in cases {
            assert_eq!(ErrorCode::for_status(status).describe().0, code, "{status}");
        }
    }
}
