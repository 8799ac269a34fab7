//! The Admin API's failures and how each is answered.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::input::Invalid;
use crate::store::StoreError;

/// Why an Admin API request failed.
#[derive(Debug)]
pub enum ApiFailure {
    Invalid(Invalid),
    NotFound(String),
    Conflict(String),
    BadRequest(String),
    Forbidden(String),
    Internal(String),
}

impl From<StoreError> for ApiFailure {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { what } => ApiFailure::Conflict(format!("{what} already exists")),
            other => ApiFailure::Internal(other.to_string()),
        }
    }
}

impl From<Invalid> for ApiFailure {
    fn from(invalid: Invalid) -> Self {
        ApiFailure::Invalid(invalid)
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiFailure::Invalid(invalid) => return invalid.into_response(),
            ApiFailure::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiFailure::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiFailure::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiFailure::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiFailure::Internal(detail) => {
                tracing::error!(detail, "Admin API request failed.");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_string(),
                )
            }
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

pub type ApiResult = Result<Response, ApiFailure>;
