//! The Admin API (`/admin_api/v1`): Keitaro's management operations. Every route requires an
//! `Api-Key` header; keys are compared as SHA-256 hashes in constant time and never logged.

mod access;
mod botlist;
mod campaigns;
mod catalogue;
mod costs;
mod files;
pub mod input;
mod integrations;
mod objects;
pub mod ops;
mod reports;
pub mod resource;
mod schema;
mod stream_copy;
mod streams;
mod targets;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Html;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;

/// Every documented Admin API operation with its handler.
pub fn api() -> ops::Api {
    catalogue::api()
        .merge(campaigns::api())
        .merge(streams::api())
        .merge(targets::api())
        .merge(objects::api())
        .merge(botlist::api())
        .merge(users::api())
        .merge(integrations::api())
        .merge(reports::api())
        .merge(costs::api())
        .merge(files::api())
}

/// The Admin API's routes, all behind [`require_api_key`] but for the documentation page.
pub fn router(state: AppState) -> Router<AppState> {
    let (routes, operations) = api().into_parts();
    let document = Arc::new(ops::openapi(&operations, env!("CARGO_PKG_VERSION")));
    let routes = routes.route(
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

/// Rejects requests without a valid `Api-Key` with 401, and requests the key's user may not
/// make with 403.
async fn require_api_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if presented.is_empty() {
        return unauthorized("The Api-Key header is required.");
    }
    let principal = match users::principal_of_key(&state, &presented).await {
        Ok(Some(principal)) => principal,
        Ok(None) => return unauthorized("The Api-Key is not valid."),
        Err(failure) => return failure.into_response(),
    };
    let path = request
        .uri()
        .path()
        .strip_prefix("/admin_api/v1")
        .unwrap_or("")
        .to_string();
    match access::decide(&state, &principal, request.method(), &path).await {
        Ok(access::Decision::Allow) => next.run(request).await,
        Ok(access::Decision::FilterList(scope)) => {
            let mut request = request;
            request.extensions_mut().insert(scope);
            access::scoped_answer(next.run(request).await)
        }
        Ok(access::Decision::Deny(message)) => (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({ "error": message })),
        )
            .into_response(),
        Err(failure) => failure.into_response(),
    }
}

fn unauthorized(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}
