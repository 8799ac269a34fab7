//! Stream endpoints of the Admin API (so far: the stream event log).

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use serde::Deserialize;

use crate::api::{ApiError, AppState};
use crate::model::StreamEvent;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/streams/{id}/events", get(events))
        // Keitaro's route table also lists the singular form.
        .route("/stream/{id}/events", get(events))
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    limit: Option<i64>,
}

/// `GET streams/{id}/events`: the stream's events (trigger checks and changes), newest first.
async fn events(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<Vec<StreamEvent>>, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1_000);
    state
        .store
        .stream_events(id, limit)
        .await
        .map(Json)
        .map_err(|e| ApiError::Internal(e.to_string()))
}
