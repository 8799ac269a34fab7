use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

/// `GET /health`: version, database reachability, routing generation and recorder counters.
/// Always 200 while the process serves clicks; `status` is `degraded` when the database is
/// unreachable or the last snapshot rebuild failed (clicks are still answered meanwhile).
async fn health(State(state): State<AppState>) -> Json<Value> {
    let database = match state.store.ping().await {
        Ok(()) => json!({ "backend": state.store.backend(), "status": "ok" }),
        Err(error) => {
            json!({ "backend": state.store.backend(), "status": "error", "error": error.to_string() })
        }
    };
    let snapshot = state.snapshot.load();
    let last_error = state.snapshot.last_error();
    let plugins = state.supervisor.report();
    let files = state.supervisor.campaign_files().map(|f| f.status());
    let healthy = database["status"] == "ok"
        && last_error.is_none()
        && plugins.last_errors.is_empty()
        && files.as_ref().is_none_or(|f| f.last_errors.is_empty());
    Json(json!({
        "status": if healthy { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "database": database,
        "routing": {
            "generation": snapshot.generation,
            "campaigns": snapshot.campaign_count(),
            "warnings": snapshot.warnings,
            "last_error": last_error,
        },
        "recorder": state.recorder.stats(),
        "plugins": {
            "generation": plugins.generation,
            "kinds": plugins.kinds.len(),
            "last_errors": plugins.last_errors,
        },
        "campaign_files": files,
    }))
}
