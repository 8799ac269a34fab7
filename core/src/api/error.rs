use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::admin::input::Invalid;
use crate::store::StoreError;

/// Why a request failed, as answered to the client: the Admin API's failures and every
/// handler's internal errors (the click APIs and postbacks answer their own protocol's errors
/// where it differs). Internal details are logged, never sent.
#[derive(Debug)]
pub enum ApiError {
    Invalid(Invalid),
    NotFound(String),
    Conflict(String),
    BadRequest(String),
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { what } => ApiError::Conflict(format!("{what} already exists")),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        ApiError::Invalid(invalid)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::Invalid(invalid) => return invalid.into_response(),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Internal(detail) => {
                tracing::error!(detail, "Request failed.");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_string(),
                )
            }
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

pub type ApiResult = Result<Response, ApiError>;

/// A handler panicked: log it, answer 500 without details.
pub(super) fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    ApiError::Internal(format!("handler panicked: {detail}")).into_response()
}
