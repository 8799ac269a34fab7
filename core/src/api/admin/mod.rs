//! The Admin API (`/admin_api/v1`): Keitaro's management operations. Every route requires an
//! `Api-Key` header; keys are compared as SHA-256 hashes in constant time and never logged.

mod body;
mod catalogue;
mod costs;
mod reports;
mod streams;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// The Admin API's routes, all behind [`require_api_key`].
pub fn router(state: AppState) -> Router<AppState> {
    let routes = Router::new()
        .merge(catalogue::router())
        .merge(streams::router())
        .merge(reports::router())
        .merge(costs::router());
    Router::new()
        .nest("/admin_api/v1", routes)
        .route_layer(middleware::from_fn_with_state(state, require_api_key))
}

/// Rejects requests without a valid `Api-Key` with 401.
async fn require_api_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if presented.is_empty() {
        return unauthorized("The Api-Key header is required.");
    }
    if !crate::secrets::key_matches(presented, &state.secrets.admin_api_key_hash) {
        return unauthorized("The Api-Key is not valid.");
    }
    next.run(request).await
}

fn unauthorized(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}
