//! How each native kind behaves: call counts, failures, time-budget overruns, and the switch
//! that disables a kind that keeps misbehaving. Also the status the host lists.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::PluginError;

/// How much misbehaviour a native kind is allowed before it is disabled.
///
/// A synchronous call into foreign code cannot be interrupted: a call that overruns
/// `call_budget` still returns its answer, it is only counted. The budget is enforced by
/// disabling kinds that overrun (or fail, or panic) `max_strikes` times within `window`; a
/// call that never returns blocks its worker thread for good, which no in-process host can
/// prevent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// A call that takes longer counts as an overrun.
    pub call_budget: Duration,
    /// Errors, panics and overruns within `window` that disable the kind.
    pub max_strikes: usize,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_budget: Duration::from_millis(5),
            max_strikes: 5,
            window: Duration::from_secs(60),
        }
    }
}

/// Where a library or kind stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginState {
    /// Loaded and registered; nothing called yet.
    Loaded,
    /// Called at least once and not disabled.
    Active,
    /// The library could not be loaded (see the messages).
    Failed,
    /// Disabled after repeated failures or overruns: filters count as "does not match",
    /// actions fail. A new load of the library starts afresh.
    Disabled,
}

/// A bad call, as counted against a kind.
#[derive(Debug, Clone)]
pub(crate) enum Strike {
    /// The plugin returned an error status.
    Error(String),
    /// The plugin panicked (caught at the boundary).
    Panic(String),
}

impl std::fmt::Display for Strike {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Strike::Error(message) => write!(f, "error: {message}"),
            Strike::Panic(message) => write!(f, "panic: {message}"),
        }
    }
}

/// How many recent messages a kind keeps for its status.
const KEPT_MESSAGES: usize = 8;

#[derive(Default)]
struct StrikeLog {
    recent: VecDeque<Instant>,
    messages: VecDeque<String>,
}

/// The health of one kind, shared by its factory and every instance built from it.
pub(crate) struct KindHealth {
    name: String,
    library: String,
    limits: Limits,
    disabled: AtomicBool,
    calls: AtomicU64,
    errors: AtomicU64,
    panics: AtomicU64,
    overruns: AtomicU64,
    log: Mutex<StrikeLog>,
}

impl KindHealth {
    pub(crate) fn new(name: &str, library: &str, limits: &Limits) -> Self {
        KindHealth {
            name: name.to_string(),
            library: library.to_string(),
            limits: limits.clone(),
            disabled: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            overruns: AtomicU64::new(0),
            log: Mutex::new(StrikeLog::default()),
        }
    }

    pub(crate) fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::Relaxed)
    }

    /// Records one finished call: how long it took and whether it failed.
    pub(crate) fn finish_call(&self, elapsed: Duration, failure: Option<&Strike>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let overrun = elapsed > self.limits.call_budget;
        if failure.is_none() && !overrun {
            return;
        }
        let mut reasons = Vec::new();
        if let Some(failure) = failure {
            match failure {
                Strike::Error(_) => self.errors.fetch_add(1, Ordering::Relaxed),
                Strike::Panic(_) => self.panics.fetch_add(1, Ordering::Relaxed),
            };
            reasons.push(failure.to_string());
        }
        if overrun {
            self.overruns.fetch_add(1, Ordering::Relaxed);
            reasons.push(format!(
                "the call took {:.1} ms (budget {} ms)",
                elapsed.as_secs_f64() * 1e3,
                self.limits.call_budget.as_millis()
            ));
        }
        self.strike(&reasons.join("; "));
    }

    /// Records a panic outside a per-click call (in `build`).
    pub(crate) fn record_panic(&self, message: &str) {
        self.panics.fetch_add(1, Ordering::Relaxed);
        self.strike(&format!("panic while building: {message}"));
    }

    fn strike(&self, reason: &str) {
        let now = Instant::now();
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        log.recent.push_back(now);
        while log
            .recent
            .front()
            .is_some_and(|at| now.duration_since(*at) > self.limits.window)
        {
            log.recent.pop_front();
        }
        push_message(&mut log.messages, reason.to_string());
        if log.recent.len() >= self.limits.max_strikes && !self.is_disabled() {
            self.disabled.store(true, Ordering::Relaxed);
            let message = format!(
                "disabled after {} failures or budget overruns within {} s; last: {reason}",
                log.recent.len(),
                self.limits.window.as_secs()
            );
            tracing::error!(kind = %self.name, library = %self.library, reason = %message, "A native plugin kind was disabled; it stays off until its library is loaded again.");
            push_message(&mut log.messages, message);
        }
    }

    pub(crate) fn status(&self, role: &'static str) -> KindStatus {
        let log = self
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let calls = self.calls.load(Ordering::Relaxed);
        KindStatus {
            name: self.name.clone(),
            role,
            state: if self.is_disabled() {
                PluginState::Disabled
            } else if calls > 0 {
                PluginState::Active
            } else {
                PluginState::Loaded
            },
            calls,
            errors: self.errors.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
            overruns: self.overruns.load(Ordering::Relaxed),
            messages: log.messages.iter().cloned().collect(),
        }
    }
}

fn push_message(messages: &mut VecDeque<String>, message: String) {
    if messages.len() == KEPT_MESSAGES {
        messages.pop_front();
    }
    messages.push_back(message);
}

/// One kind of a loaded library, as listed by the host.
#[derive(Debug, Clone, Serialize)]
pub struct KindStatus {
    /// The registered name (`native:ip_reputation`).
    pub name: String,
    /// `filter`, `action` or `trigger`.
    pub role: &'static str,
    pub state: PluginState,
    pub calls: u64,
    pub errors: u64,
    pub panics: u64,
    /// Calls that took longer than the budget.
    pub overruns: u64,
    /// The most recent problems, oldest first.
    pub messages: Vec<String>,
}

/// A library in the plugin directory, as listed by the host (`/health`, the Admin API).
#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    /// The library file as found in the plugin directory.
    pub library: String,
    /// The content-addressed copy that was actually loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded_copy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub state: PluginState,
    pub messages: Vec<String>,
    pub kinds: Vec<KindStatus>,
}

impl PluginStatus {
    /// The status of a library that could not be loaded.
    pub fn failed(error: &PluginError) -> PluginStatus {
        PluginStatus {
            library: error.file().display().to_string(),
            loaded_copy: None,
            name: None,
            version: None,
            state: PluginState::Failed,
            messages: vec![error.to_string()],
            kinds: Vec::new(),
        }
    }

    /// A library's state from its kinds': disabled when every kind is, active when any was
    /// called, loaded otherwise.
    pub(crate) fn aggregate(kinds: &[KindStatus]) -> PluginState {
        if !kinds.is_empty() && kinds.iter().all(|k| k.state == PluginState::Disabled) {
            PluginState::Disabled
        } else if kinds.iter().any(|k| k.state != PluginState::Loaded) {
            PluginState::Active
        } else {
            PluginState::Loaded
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            call_budget: Duration::from_millis(5),
            max_strikes: 3,
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn quick_successful_calls_are_only_counted() {
        let health = KindHealth::new("native:k", "lib.so", &limits());
        for _ in 0..100 {
            health.finish_call(Duration::from_micros(3), None);
        }
        let status = health.status("filter");
        assert_eq!(status.state, PluginState::Active);
        assert_eq!((status.calls, status.errors, status.overruns), (100, 0, 0));
        assert!(status.messages.is_empty());
    }

    #[test]
    fn repeated_overruns_and_failures_disable_the_kind() {
        let health = KindHealth::new("native:k", "lib.so", &limits());
        health.finish_call(Duration::from_millis(9), None);
        health.finish_call(Duration::from_micros(1), Some(&Strike::Error("bad".into())));
        assert!(!health.is_disabled());
        health.finish_call(
            Duration::from_micros(1),
            Some(&Strike::Panic("boom".into())),
        );
        assert!(health.is_disabled());
        let status = health.status("filter");
        assert_eq!(status.state, PluginState::Disabled);
        assert_eq!((status.overruns, status.errors, status.panics), (1, 1, 1));
        let last = status.messages.last().unwrap();
        assert!(last.starts_with("disabled after 3"), "{last}");
        assert!(last.contains("panic: boom"), "{last}");
        assert!(status.messages[0].contains("took 9.0 ms (budget 5 ms)"));
    }

    #[test]
    fn strikes_outside_the_window_are_forgotten() {
        let health = KindHealth::new(
            "native:k",
            "lib.so",
            &Limits {
                window: Duration::from_millis(1),
                ..limits()
            },
        );
        for _ in 0..5 {
            health.finish_call(Duration::ZERO, Some(&Strike::Error("x".into())));
            std::thread::sleep(Duration::from_millis(3));
        }
        assert!(!health.is_disabled());
    }

    #[test]
    fn a_library_is_disabled_only_when_every_kind_is() {
        let kind = |state| KindStatus {
            name: "k".into(),
            role: "filter",
            state,
            calls: 0,
            errors: 0,
            panics: 0,
            overruns: 0,
            messages: Vec::new(),
        };
        use PluginState::*;
        assert_eq!(PluginStatus::aggregate(&[]), Loaded);
        assert_eq!(PluginStatus::aggregate(&[kind(Loaded)]), Loaded);
        assert_eq!(
            PluginStatus::aggregate(&[kind(Loaded), kind(Disabled)]),
            Active
        );
        assert_eq!(
            PluginStatus::aggregate(&[kind(Disabled), kind(Disabled)]),
            Disabled
        );
    }
}
