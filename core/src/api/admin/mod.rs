//! The Admin API (`/admin_api/v1`): Keitaro's management operations. Every route requires an
//! `Api-Key` header; keys are compared as SHA-256 hashes in constant time and never logged.

mod campaigns;
mod catalogue;
mod files;
pub mod input;
mod objects;
pub mod ops;
mod reports;
pub mod resource;
mod streams;
mod targets;

use std::sync::Arc;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// Every documented Admin API operation with its handler.
pub fn api() -> ops::Api {
    catalogue::api()
        .merge(campaigns::api())
        .merge(streams::api())
        .merge(targets::api())
        .merge(objects::api())
        .merge(files::api())
}

/// The Admin API's routes, all behind [`require_api_key`] but for the documentation page.
pub fn router(state: AppState) -> Router<AppState> {
    let (routes, operations) = api().into_parts();
    let document = Arc::new(ops::openapi(&operations, env!("CARGO_PKG_VERSION")));
    let routes = routes.merge(reports::router()).route(
        "/openapi.json",
        get(move || {
            let document = document.clone();
            async move { axum::Json((*document).clone()) }
        }),
    );
    Router::new()
        .nest("/admin_api/v1", routes)
        .route_layer(middleware::from_fn_with_state(state, require_api_key))
        // The page holds no data; it asks for a key to load the document.
        .route("/admin_api/v1/docs", get(|| async { Html(ops::DOCS_PAGE) }))
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
