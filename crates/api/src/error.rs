//! The reference's error envelope `{"errorCode","message"}` (`docs/reference.md#http-conventions`):
//! the status and the code are independent, and every 5xx message is masked.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// `errorCode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InternalServiceError,
    ValidationError,
    NotFound,
    BadRequest,
    Forbidden,
    UnprocessableEntity,
    RequestTimeout,
}

/// The wire error body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    #[serde(rename = "errorCode")]
    pub error_code: ErrorCode,
    pub message: String,
}

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `BAD_REQUEST`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    /// 403 with the given code.
    pub fn forbidden(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 500; the cause is logged, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalServiceError,
            "Internal service error",
        )
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = if self.status.is_server_error() {
            "Internal service error".to_owned()
        } else {
            self.message
        };
        let body = ErrorBody {
            error_code: self.code,
            message,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response()
    }
}
