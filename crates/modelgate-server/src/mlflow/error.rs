//! MLflow's error shape: `{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "…"}` with the status the
//! real server gives each code. A client error is never a 5xx: the MLflow client retries those for minutes.

use crate::error::{ApiError, ErrorCode};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An MLflow error code and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlflowError {
    pub code: &'static str,
    pub message: String,
}

pub const RESOURCE_DOES_NOT_EXIST: &str = "RESOURCE_DOES_NOT_EXIST";
pub const RESOURCE_ALREADY_EXISTS: &str = "RESOURCE_ALREADY_EXISTS";
pub const INVALID_PARAMETER_VALUE: &str = "INVALID_PARAMETER_VALUE";
pub const PERMISSION_DENIED: &str = "PERMISSION_DENIED";
pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
pub const ENDPOINT_NOT_FOUND: &str = "ENDPOINT_NOT_FOUND";
pub const INVALID_STATE: &str = "INVALID_STATE";
pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";

impl MlflowError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMETER_VALUE, message)
    }

    pub fn missing(parameter: &str) -> Self {
        Self::invalid(format!(
            "Missing value for required parameter '{parameter}'. See the API docs for more information about request parameters."
        ))
    }

    fn status(&self) -> StatusCode {
        match self.code {
            RESOURCE_DOES_NOT_EXIST | ENDPOINT_NOT_FOUND => StatusCode::NOT_FOUND,
            PERMISSION_DENIED => StatusCode::FORBIDDEN,
            UNAUTHENTICATED => StatusCode::UNAUTHORIZED,
            INTERNAL_ERROR => StatusCode::INTERNAL_SERVER_ERROR,
            "REQUEST_LIMIT_EXCEEDED" => StatusCode::TOO_MANY_REQUESTS,
            "TEMPORARILY_UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<ApiError> for MlflowError {
    /// The `/api/v1` twin's refusal in MLflow's words: the same decision, MLflow's code for it.
    fn from(error: ApiError) -> Self {
        let code = match error.code {
            ErrorCode::NotFound => RESOURCE_DOES_NOT_EXIST,
            ErrorCode::AlreadyExists => RESOURCE_ALREADY_EXISTS,
            ErrorCode::PermissionDenied => PERMISSION_DENIED,
            ErrorCode::Unauthenticated => UNAUTHENTICATED,
            ErrorCode::FailedPrecondition | ErrorCode::Conflict => INVALID_STATE,
            ErrorCode::RateLimited => "REQUEST_LIMIT_EXCEEDED",
            ErrorCode::Unavailable => "TEMPORARILY_UNAVAILABLE",
            ErrorCode::Internal => INTERNAL_ERROR,
            ErrorCode::InvalidArgument
            | ErrorCode::DigestMismatch
            | ErrorCode::PayloadTooLarge
            | ErrorCode::HeadersTooLarge
            | ErrorCode::RangeNotSatisfiable => INVALID_PARAMETER_VALUE,
        };
        Self::new(code, error.message)
    }
}

impl From<modelgate_store::StoreError> for MlflowError {
    fn from(error: modelgate_store::StoreError) -> Self {
        ApiError::from(error).into()
    }
}

impl From<modelgate_core::InvalidInput> for MlflowError {
    fn from(error: modelgate_core::InvalidInput) -> Self {
        ApiError::from(error).into()
    }
}

impl IntoResponse for MlflowError {
    fn into_response(self) -> Response {
        (
            self.status(),
            Json(json!({ "error_code": self.code, "message": self.message })),
        )
            .into_response()
    }
}
