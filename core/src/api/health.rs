use std::fmt::Write as _;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderName, header};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use crate::guard::GuardStatus;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
}

/// How long `/health` waits for the database's answer before it calls it unreachable: a
/// load balancer's check must get an answer within a second whatever is down.
const PING_WAIT: Duration = Duration::from_millis(800);

/// `GET /health`: version, database reachability, routing generation and recorder counters.
/// Always 200 while the process serves clicks, within a second; `status` is `degraded` (with
/// the reasons in `reasons`) when the database is unreachable, click writes are failing, the
/// journal is near its cap, postbacks are held for the database, the last snapshot rebuild
/// or plugin load failed, a user-code kind is disabled (with its reason), or the recorder
/// dropped, set aside or lost clicks (clicks are still answered meanwhile).
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
    let disabled: Vec<Value> = plugins
        .kinds
        .iter()
        .filter_map(|kind| {
            let reason = kind.reason.as_deref()?;
            reasons.push(format!("{} is disabled: {reason}", kind.info.name));
            Some(json!({ "name": kind.info.name, "reason": reason }))
        })
        .collect();
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
            "disabled": disabled,
        },
        "user_code": state.user_code.status(),
        "campaign_files": files,
    }))
}

/// `GET /metrics`: counters in Prometheus' text format: each user-code kind's calls, failures,
/// overruns, timeouts, skips and disabled state, the user-code pool's, and the recorder's.
async fn metrics(State(state): State<AppState>) -> ([(HeaderName, &'static str); 1], String) {
    let plugins = state.supervisor.report();
    let mut out = Metrics::default();
    type Counter = fn(&GuardStatus) -> u64;
    let per_kind: [(&str, &str, Counter); 5] = [
        ("calls_total", "Calls of the kind.", |g| g.calls),
        ("failures_total", "Calls that failed.", |g| g.failures),
        (
            "overruns_total",
            "Calls that took the whole budget or longer.",
            |g| g.overruns,
        ),
        (
            "timeouts_total",
            "Native calls set aside at their deadline.",
            |g| g.timeouts,
        ),
        (
            "skipped_total",
            "Calls not made (disabled, over budget, stuck, pool full).",
            |g| g.skipped,
        ),
    ];
    for (name, help, value) in per_kind {
        out.header(&format!("switchyard_user_code_{name}"), help, "counter");
        for kind in &plugins.kinds {
            if let Some(guard) = &kind.guard {
                out.sample(
                    &format!("switchyard_user_code_{name}"),
                    &kind.info.name,
                    value(guard),
                );
            }
        }
    }
    out.header(
        "switchyard_user_code_disabled",
        "1 while the kind is disabled by its guard.",
        "gauge",
    );
    for kind in plugins.kinds.iter().filter(|k| k.guard.is_some()) {
        let disabled = u64::from(kind.reason.is_some());
        out.sample("switchyard_user_code_disabled", &kind.info.name, disabled);
    }
    let pool = state.user_code.status();
    for (name, help, kind, value) in [
        (
            "routed_total",
            "Clicks routed on the user-code pool.",
            "counter",
            pool.routed,
        ),
        (
            "overflowed_total",
            "Clicks routed without user code because the pool was full.",
            "counter",
            pool.overflowed,
        ),
        (
            "rerouted_total",
            "Clicks re-routed after a call was set aside.",
            "counter",
            pool.rerouted,
        ),
        (
            "set_aside_threads",
            "Threads set aside in a call over the process's life.",
            "counter",
            u64::from(pool.set_aside_threads),
        ),
        (
            "threads",
            "Live user-code threads.",
            "gauge",
            pool.threads as u64,
        ),
        (
            "queued",
            "Clicks waiting for a user-code thread.",
            "gauge",
            pool.queued as u64,
        ),
    ] {
        let metric = format!("switchyard_user_code_pool_{name}");
        out.header(&metric, help, kind);
        out.plain(&metric, value);
    }
    let recorder = state.recorder.stats();
    for (name, help, value) in [
        (
            "dropped_total",
            "Clicks dropped (the click queue was full).",
            recorder.dropped,
        ),
        (
            "set_aside_total",
            "Clicks set aside to data/set-aside.",
            recorder.set_aside,
        ),
        (
            "lost_total",
            "Clicks neither journalled, written nor set aside.",
            recorder.lost,
        ),
    ] {
        let metric = format!("switchyard_recorder_clicks_{name}");
        out.header(&metric, help, "counter");
        out.plain(&metric, value);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out.text,
    )
}

/// Prometheus text exposition, written line by line.
#[derive(Default)]
struct Metrics {
    text: String,
}

impl Metrics {
    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, kind: &str, value: u64) {
        let label: String = kind
            .chars()
            .flat_map(|c| match c {
                '\\' => vec!['\\', '\\'],
                '"' => vec!['\\', '"'],
                '\n' => vec!['\\', 'n'],
                c => vec![c],
            })
            .collect();
        let _ = writeln!(self.text, "{name}{{kind=\"{label}\"}} {value}");
    }

    fn plain(&mut self, name: &str, value: u64) {
        let _ = writeln!(self.text, "{name} {value}");
    }
}
