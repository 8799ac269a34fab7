//! Stream triggers: a scheduler checks each stream's target page at the trigger's interval and,
//! when the condition fires, changes the stream (disable it, switch its URL, grab a URL from a
//! page) or calls a webhook. Every check and every change is recorded as a stream event. Pages
//! are fetched through the SSRF-guarded [`Fetcher`]; a blocked target is recorded and never
//! counts as "down" (so a guard setting cannot disable streams).
//!
//! Conditions: `not_respond` (no answer, or status ≥ 400), `not_contains` (the page lacks
//! `payload.pattern`; `payload.reverse` inverts), `always`, `script:NAME` (a trigger script)
//! and `native:NAME` (a native plugin's trigger check): for these two, `ok: false` fires and
//! `disable`/`replace_url` in the effects choose the action (see [`TriggerCheck`]).
//! Actions: `disable`, `replace_url` (rotate through `payload.alternative_urls`),
//! `grab_from_page` (fetch `payload.grab_from_page`, take the first match of
//! `payload.pattern`, group 1 if any), `webhook` (POST a JSON event to `payload.webhook_url`).

pub use crate::reload::TriggerCheck;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fetch::{FetchError, Fetcher};
use crate::model::{ObjectState, StreamTrigger, unix_now};
use crate::reload::{SnapshotCell, Supervisor};
use crate::store::{RoutingSource, Store, TriggerStore};
use crate::template::{NoMacroValues, Template, check_http_url};

pub use crate::model::{
    ACTIONS, CONDITIONS, INTERVAL_SECONDS, TriggerEffects, TriggerPage, check_interval,
    is_known_condition,
};

/// What one trigger run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The condition did not fire.
    Passed,
    /// The condition fired and the action ran (its event name).
    Fired(String),
    /// The target may not be fetched (SSRF guard) or is unusable.
    Blocked(String),
    /// The stream is gone or not active.
    Skipped,
}

/// Runs triggers: on a schedule, or one at a time (tests, an API call).
pub struct TriggerRunner {
    /// Triggers, the streams they act on and their events.
    store: Arc<dyn TriggerStore>,
    /// What routing is rebuilt from after a trigger changed a stream.
    routing: Arc<dyn RoutingSource>,
    fetcher: Fetcher,
    cell: Arc<SnapshotCell>,
    supervisor: Arc<Supervisor>,
}

impl TriggerRunner {
    pub fn new(
        store: Arc<dyn Store>,
        fetcher: Fetcher,
        cell: Arc<SnapshotCell>,
        supervisor: Arc<Supervisor>,
    ) -> Self {
        TriggerRunner {
            store: store.clone(),
            routing: store,
            fetcher,
            cell,
            supervisor,
        }
    }

    /// Checks due triggers every `tick`; each runs first when seen, then every interval.
    pub fn spawn(self: Arc<Self>, tick: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut next_run: HashMap<i64, Instant> = HashMap::new();
            loop {
                match self.store.active_triggers().await {
                    Ok(triggers) => {
                        next_run.retain(|id, _| triggers.iter().any(|t| t.id == *id));
                        for trigger in triggers {
                            let due = next_run
                                .get(&trigger.id)
                                .is_none_or(|at| Instant::now() >= *at);
                            if due {
                                next_run.insert(
                                    trigger.id,
                                    Instant::now()
                                        + Duration::from_secs(
                                            trigger.interval_seconds.max(1) as u64
                                        ),
                                );
                                if let Err(error) = self.run(&trigger).await {
                                    tracing::warn!(trigger_id = trigger.id, %error, "A trigger run failed.");
                                }
                            }
                        }
                    }
                    Err(error) => tracing::warn!(%error, "Cannot read triggers; retrying."),
                }
                tokio::time::sleep(tick).await;
            }
        })
    }

    /// Runs one trigger now.
    pub async fn run(&self, trigger: &StreamTrigger) -> Result<Outcome, String> {
        let store = self.store.as_ref();
        let Some(stream) = store
            .stream(trigger.stream_id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(Outcome::Skipped);
        };
        if stream.state != ObjectState::Active {
            return Ok(Outcome::Skipped);
        }
        let current_url = stream
            .action_payload
            .as_str()
            .unwrap_or_default()
            .to_string();
        let target = if trigger.target.trim().is_empty() {
            current_url.clone()
        } else {
            trigger.target.clone()
        };
        let target = Template::parse(target.trim())
            .map(|t| t.expand(&NoMacroValues))
            .unwrap_or_default();
        if let Err(reason) = self.fetcher.check_url(&target) {
            let reason = reason.to_string();
            self.event(
                trigger,
                "check_blocked",
                json!({ "url": target, "reason": reason }),
            )
            .await;
            return Ok(Outcome::Blocked(reason));
        }
        let started = Instant::now();
        let fetched = self.fetcher.get(&target).await;
        let elapsed_ms = started.elapsed().as_millis() as i64;
        if let Err(FetchError::Blocked { reason, .. }) = &fetched {
            self.event(
                trigger,
                "check_blocked",
                json!({ "url": target, "reason": reason }),
            )
            .await;
            return Ok(Outcome::Blocked(reason.clone()));
        }
        let (status, body, error) = match &fetched {
            Ok(page) => (
                i64::from(page.status),
                String::from_utf8_lossy(&page.body).into_owned(),
                String::new(),
            ),
            Err(error) => (0, String::new(), error.to_string()),
        };
        let pattern = trigger
            .payload
            .get("pattern")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let reverse = trigger
            .payload
            .get("reverse")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut action = trigger.action.clone();
        // What a script or native check said about the page (recorded with the check).
        let mut message = String::new();
        let fired = match trigger.condition.as_str() {
            "not_respond" => !error.is_empty() || status >= 400,
            "not_contains" => (!error.is_empty() || !body.contains(pattern)) != reverse,
            "always" => true,
            name if name.starts_with("script:") || name.starts_with("native:") => {
                let check = self
                    .supervisor
                    .trigger_check(name)
                    .ok_or_else(|| format!("trigger check `{name}` is not loaded"))?;
                let page = TriggerPage {
                    status: u16::try_from(status).unwrap_or(0),
                    body: body.clone(),
                    url: target.clone(),
                    elapsed_ms: elapsed_ms.max(0) as u64,
                    error: error.clone(),
                };
                let params = trigger
                    .payload
                    .get("params")
                    .cloned()
                    .unwrap_or(Value::Null);
                let effects = tokio::task::spawn_blocking(move || check.run(&page, &params))
                    .await
                    .map_err(|e| format!("the trigger check panicked: {e}"))??;
                if effects.disable {
                    action = "disable".into();
                } else if effects.replace_url {
                    action = "replace_url".into();
                }
                message = effects.message;
                !effects.ok
            }
            other => return Err(format!("unknown trigger condition `{other}`")),
        };
        self.event(
            trigger,
            "check",
            json!({ "condition": trigger.condition, "url": target, "status": status, "error": error, "elapsed_ms": elapsed_ms, "fired": fired, "message": message }),
        )
        .await;
        if !fired {
            return Ok(Outcome::Passed);
        }
        let event = self.act(trigger, &action, &current_url, &target).await?;
        Ok(Outcome::Fired(event))
    }

    async fn act(
        &self,
        trigger: &StreamTrigger,
        action: &str,
        current_url: &str,
        target: &str,
    ) -> Result<String, String> {
        let store = self.store.as_ref();
        let stream_id = trigger.stream_id;
        let (event, data, changed) = match action {
            "disable" => {
                store
                    .set_stream_state(stream_id, ObjectState::Disabled)
                    .await
                    .map_err(|e| e.to_string())?;
                ("disabled", json!({ "reason": trigger.condition }), true)
            }
            "replace_url" => {
                let alternatives = list(trigger.payload.get("alternative_urls"));
                let valid: Vec<&String> = alternatives
                    .iter()
                    .filter(|u| check_http_url(u).is_ok())
                    .collect();
                let next = valid
                    .iter()
                    .position(|u| u.as_str() == current_url)
                    .map(|i| valid[(i + 1) % valid.len()])
                    .or_else(|| valid.first().copied());
                match next {
                    Some(next) if next != current_url => {
                        store
                            .set_stream_action_payload(stream_id, &Value::String(next.clone()))
                            .await
                            .map_err(|e| e.to_string())?;
                        (
                            "url_replaced",
                            json!({ "from": current_url, "to": next }),
                            true,
                        )
                    }
                    _ => (
                        "url_not_replaced",
                        json!({ "reason": "no other valid alternative_urls" }),
                        false,
                    ),
                }
            }
            "grab_from_page" => {
                let page = trigger
                    .payload
                    .get("grab_from_page")
                    .and_then(Value::as_str)
                    .filter(|p| !p.is_empty())
                    .unwrap_or(target);
                match self
                    .grab(
                        page,
                        trigger
                            .payload
                            .get("pattern")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    )
                    .await
                {
                    Ok(url) if url != current_url => {
                        store
                            .set_stream_action_payload(stream_id, &Value::String(url.clone()))
                            .await
                            .map_err(|e| e.to_string())?;
                        (
                            "url_grabbed",
                            json!({ "from": current_url, "to": url, "page": page }),
                            true,
                        )
                    }
                    Ok(_) => ("url_unchanged", json!({ "page": page }), false),
                    Err(reason) => (
                        "grab_failed",
                        json!({ "page": page, "reason": reason }),
                        false,
                    ),
                }
            }
            "webhook" => {
                let url = trigger
                    .payload
                    .get("webhook_url")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let body = json!({ "event": "trigger_fired", "trigger_id": trigger.id, "stream_id": stream_id, "condition": trigger.condition, "url": target, "at": unix_now() });
                match self.fetcher.post_json(url, &body).await {
                    Ok(status) => (
                        "webhook_sent",
                        json!({ "url": url, "status": status }),
                        false,
                    ),
                    Err(error) => (
                        "webhook_failed",
                        json!({ "url": url, "reason": error.to_string() }),
                        false,
                    ),
                }
            }
            other => return Err(format!("unknown trigger action `{other}`")),
        };
        self.event(trigger, event, data).await;
        if changed && let Err(error) = self.cell.rebuild(self.routing.as_ref()).await {
            tracing::warn!(%error, "A trigger changed a stream but the routing snapshot could not be rebuilt yet.");
        }
        tracing::info!(
            trigger_id = trigger.id,
            stream_id,
            event,
            "A trigger fired."
        );
        Ok(event.to_string())
    }

    /// The first http(s) URL matching `pattern` (group 1 if it has one) on `page`.
    async fn grab(&self, page: &str, pattern: &str) -> Result<String, String> {
        let regex = regex::RegexBuilder::new(if pattern.is_empty() {
            r#"https?://[^\s"'<>]+"#
        } else {
            pattern
        })
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("pattern: {e}"))?;
        let fetched = self.fetcher.get(page).await.map_err(|e| e.to_string())?;
        let body = String::from_utf8_lossy(&fetched.body);
        let found = regex
            .captures(&body)
            .and_then(|c| c.get(1).or_else(|| c.get(0)))
            .map(|m| m.as_str().to_string())
            .ok_or("the pattern matched nothing")?;
        check_http_url(&found)?;
        Ok(found)
    }

    async fn event(&self, trigger: &StreamTrigger, event: &str, mut data: Value) {
        data["trigger_id"] = json!(trigger.id);
        if let Err(error) = self
            .store
            .add_stream_event(trigger.stream_id, event, &data)
            .await
        {
            tracing::warn!(%error, stream_id = trigger.stream_id, event, "Cannot record a stream event.");
        }
    }
}

/// A list from an array or a newline/comma-separated string.
fn list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(text)) => text
            .split(['\n', ','])
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}
