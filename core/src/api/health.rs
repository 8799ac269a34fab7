use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

/// How long `/health` waits for the database's answer before it calls it unreachable: a
/// load balancer's check must get an answer within a second whatever is down.
const PING_WAIT: Duration = Duration::from_millis(800);

/// `GET /health`: version, database reachability, routing generation and recorder counters.
/// Always 200 while the process serves clicks, within a second; `status` is `degraded` (with
/// the reasons in `reasons`) when the database is unreachable, click writes are failing, the
/// journal is near its cap, postbacks are held for the database, the last snapshot rebuild
/// or plugin load failed, or the recorder dropped, set aside or lost clicks (clicks are still
/// answered meanwhile).
async fn health(State(state): State<AppState>) -> Json<Value> {
    let database = match tokio::time::timeout(PING_WAIT, state.store.ping()).await {
        Ok(Ok(())) => json!({ "backend": state.store.backend(), "status": "ok" }),
        Ok(Err(error)) => {
            json!({ "backend": state.store.backend(), "status": "error", "error": error.to_string() })
        }
        Err(_) => json!({
            "backend": state.store.backend(),
            "status": "error",
            "error": format!("no answer within {} ms", PING_WAIT.as_millis()),
        }),
    };
    let snapshot = state.snapshot.load();
    let last_error = state.snapshot.last_error();
    let plugins = state.supervisor.report();
    let files = state.supervisor.campaign_files().map(|f| f.status());
    let recorder = state.recorder.stats();
    let mut reasons = Vec::new();
    if database["status"] != "ok" {
        reasons.push("the database is unreachable".to_string());
    }
    if last_error.is_some() {
        reasons.push("the last routing rebuild failed".to_string());
    }
    if !plugins.last_errors.is_empty() {
        reasons.push("plugins failed to load".to_string());
    }
    if files.as_ref().is_some_and(|f| !f.last_errors.is_empty()) {
        reasons.push("campaign files have errors".to_string());
    }
    if recorder.failing_ms > 0 {
        reasons.push(format!(
            "click writes have been failing for {} ms; {} clicks wait to be written",
            recorder.failing_ms, recorder.backlog
        ));
    }
    let journal = state.recorder.journal_stats();
    if let Some(journal) = journal
        && journal.bytes > journal.max_bytes / 10 * 9
    {
        reasons.push(format!(
            "the click journal is near its cap ({} of {} bytes)",
            journal.bytes, journal.max_bytes
        ));
    }
    let held_postbacks = state.postback_inbox.as_ref().map(|inbox| inbox.held());
    if let Some(held) = held_postbacks.filter(|held| *held > 0) {
        reasons.push(format!(
            "{held} postbacks are held until the database takes them"
        ));
    }
    for (count, what) in [
        (
            recorder.dropped,
            "clicks were dropped (the click queue was full)",
        ),
        (
            recorder.set_aside,
            "clicks were set aside (see data/set-aside)",
        ),
        (
            recorder.lost,
            "clicks were lost (neither journalled, written nor set aside)",
        ),
    ] {
        if count > 0 {
            reasons.push(format!("{count} {what}"));
        }
    }
    Json(json!({
        "status": if reasons.is_empty() { "ok" } else { "degraded" },
        "reasons": reasons,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "database": database,
        "routing": {
            "generation": snapshot.generation,
            "campaigns": snapshot.campaign_count(),
            "warnings": snapshot.warnings,
            "last_error": last_error,
        },
        "recorder": recorder,
        "journal": journal.map(|j| json!({
            "durability": state.recorder.durability(),
            "bytes": j.bytes,
            "max_bytes": j.max_bytes,
        })),
        "postbacks": held_postbacks.map(|held| json!({ "held": held })),
        "plugins": {
            "generation": plugins.generation,
            "kinds": plugins.kinds.len(),
            "last_errors": plugins.last_errors,
        },
        "campaign_files": files,
    }))
}
