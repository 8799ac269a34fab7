//! The guard of one kind: admits or skips each call, measures it, keeps a sliding window of
//! outcomes and disables the kind on a failure or overrun ratio, a time budget per kind, and
//! the state of calls set aside by the pool's watchdog.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use serde::Serialize;

use super::clock;
use super::policy::GuardPolicy;

/// Buckets of the sliding window.
const BUCKETS: usize = 12;
/// How many recent problems a kind keeps for its status.
const KEPT_MESSAGES: usize = 8;

/// Why a call was not made. The filter counts as not matching; the action fails over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Disabled; the reason says why and since when.
    Disabled(String),
    /// The kind used up its time budget (`cpu_share`); calls resume as it pays back.
    OverBudget,
    /// A call of this kind was set aside and has not returned yet.
    Stuck,
    /// The user-code pool was full, so this click is routed without user code.
    Overload,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::Disabled(reason) => write!(f, "disabled ({reason})"),
            Skip::OverBudget => f.write_str("skipped: over its time budget"),
            Skip::Stuck => f.write_str("skipped: an earlier call has not returned"),
            Skip::Overload => f.write_str("skipped: the user-code pool is full"),
        }
    }
}

/// An admitted call: when it started on the guard's clock.
#[derive(Debug, Clone, Copy)]
pub struct Admitted {
    started: u64,
}

/// One bucket of the window: counts for calls that ended in it.
#[derive(Default)]
struct Bucket {
    /// The bucket's index (time / bucket length); counts of an older index are stale.
    stamp: AtomicU64,
    calls: AtomicU32,
    failures: AtomicU32,
    overruns: AtomicU32,
}

/// Counts over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WindowCounts {
    pub calls: u32,
    pub failures: u32,
    pub overruns: u32,
}

/// Where a kind stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GuardState {
    /// Registered; nothing called yet.
    Loaded,
    /// Called and not disabled.
    Active,
    /// Disabled until a reload brings a changed source.
    Disabled,
}

/// A kind's counters and state, for `/health`, `/metrics`, the Admin API and `switchyard
/// plugins`.
#[derive(Debug, Clone, Serialize)]
pub struct GuardStatus {
    pub state: GuardState,
    /// Why it is disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub calls: u64,
    pub failures: u64,
    /// Calls that took the whole budget or longer (stopped scripts included).
    pub overruns: u64,
    /// Native calls set aside at their deadline.
    pub timeouts: u64,
    /// Calls not made: disabled, over the time budget, stuck or pool full.
    pub skipped: u64,
    /// Calls set aside that have not returned yet.
    pub set_aside: u32,
    /// The sliding window's counts.
    pub window: WindowCounts,
    /// The most recent problems, oldest first.
    pub messages: Vec<String>,
}

/// The guard of one kind, shared by its factory and every instance built from it.
pub struct KindGuard {
    id: u64,
    name: String,
    /// What the kind was built from (script text hash, library copy): a reload keeps the
    /// guard, and so a disabled state, only while this stays the same.
    fingerprint: String,
    policy: GuardPolicy,
    bucket_nanos: u64,
    /// How far `paid_until` may run ahead of now (the burst, on the budget's clock).
    allowance: u64,
    /// Budget-clock nanoseconds per nanosecond of busy time (1 / `cpu_share`).
    cost_factor: f64,
    disabled: AtomicBool,
    reason: Mutex<Option<String>>,
    buckets: [Bucket; BUCKETS],
    calls: AtomicU64,
    failures: AtomicU64,
    overruns: AtomicU64,
    timeouts: AtomicU64,
    skipped: AtomicU64,
    set_aside: AtomicU32,
    /// The time budget's theoretical arrival time (GCRA): each call pushes it by its duration
    /// divided by `cpu_share`; calls are admitted while it is at most the burst ahead of now.
    paid_until: AtomicU64,
    messages: Mutex<VecDeque<String>>,
}

/// Every live guard by id, so that the pool's watchdog can name the kind a stuck thread runs.
fn guards() -> &'static Mutex<HashMap<u64, Weak<KindGuard>>> {
    static GUARDS: OnceLock<Mutex<HashMap<u64, Weak<KindGuard>>>> = OnceLock::new();
    GUARDS.get_or_init(Default::default)
}

impl KindGuard {
    pub fn new(name: &str, fingerprint: &str, policy: &GuardPolicy) -> Arc<KindGuard> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let guard = Arc::new(KindGuard {
            id,
            name: name.to_string(),
            fingerprint: fingerprint.to_string(),
            policy: policy.clone(),
            bucket_nanos: (clock::nanos(policy.window) / BUCKETS as u64).max(1),
            allowance: (clock::nanos(policy.cpu_burst) as f64 / policy.cpu_share.clamp(0.001, 1.0))
                as u64,
            cost_factor: 1.0 / policy.cpu_share.clamp(0.001, 1.0),
            disabled: AtomicBool::new(false),
            reason: Mutex::new(None),
            buckets: Default::default(),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            overruns: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            set_aside: AtomicU32::new(0),
            paid_until: AtomicU64::new(0),
            messages: Mutex::new(VecDeque::new()),
        });
        let mut all = guards().lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|_, guard| guard.strong_count() > 0);
        all.insert(id, Arc::downgrade(&guard));
        guard
    }

    /// The live guard with this id.
    pub(super) fn by_id(id: u64) -> Option<Arc<KindGuard>> {
        guards()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .and_then(Weak::upgrade)
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn policy(&self) -> &GuardPolicy {
        &self.policy
    }

    pub fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::Relaxed)
    }

    /// Admits a call, or says why it is skipped (and counts the skip).
    #[inline]
    pub fn admit(&self) -> Result<Admitted, Skip> {
        let skip = if self.is_disabled() {
            Some(Skip::Disabled(self.reason().unwrap_or_default()))
        } else if super::skipping_user_code() {
            Some(Skip::Overload)
        } else if self.set_aside.load(Ordering::Relaxed) > 0 {
            Some(Skip::Stuck)
        } else {
            None
        };
        let now = clock::now();
        if let Some(skip) = skip.or_else(|| self.over_budget(now).then_some(Skip::OverBudget)) {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return Err(skip);
        }
        super::slot::enter_call(self.id, now);
        Ok(Admitted { started: now })
    }

    fn over_budget(&self, now: u64) -> bool {
        self.paid_until.load(Ordering::Relaxed) > now.saturating_add(self.allowance)
    }

    /// Ends an admitted call: `failure` is its error, if it failed.
    #[inline]
    pub fn finish(&self, call: Admitted, failure: Option<&str>) {
        if super::slot::leave_call() {
            // The watchdog counted this call when it set it aside.
            self.returned_after_set_aside(call.started);
            return;
        }
        let now = clock::now();
        let elapsed = now.saturating_sub(call.started);
        self.account(now, elapsed, failure, false);
    }

    /// Counts a call and updates the window, the time budget and the disabled switch.
    fn account(&self, now: u64, elapsed: u64, failure: Option<&str>, timed_out: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if elapsed > 0 {
            let cost = (elapsed as f64 * self.cost_factor) as u64;
            let _ = self
                .paid_until
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |paid| {
                    Some(paid.max(now.saturating_sub(elapsed)).saturating_add(cost))
                });
        }
        let overrun = timed_out || elapsed >= clock::nanos(self.policy.call_budget);
        let bucket = self.bucket(now);
        bucket.calls.fetch_add(1, Ordering::Relaxed);
        if failure.is_none() && !overrun {
            return;
        }
        let mut problems = Vec::new();
        if let Some(failure) = failure {
            self.failures.fetch_add(1, Ordering::Relaxed);
            bucket.failures.fetch_add(1, Ordering::Relaxed);
            problems.push(failure.to_string());
        }
        if overrun {
            self.overruns.fetch_add(1, Ordering::Relaxed);
            bucket.overruns.fetch_add(1, Ordering::Relaxed);
            if failure.is_none() {
                problems.push(format!(
                    "a call took {} ms (budget {} ms)",
                    elapsed / 1_000_000,
                    self.policy.call_budget.as_millis()
                ));
            }
        }
        self.remember(problems.join("; "));
        self.check_ratios();
    }

    fn bucket(&self, now: u64) -> &Bucket {
        let index = now / self.bucket_nanos;
        let bucket = &self.buckets[(index % BUCKETS as u64) as usize];
        if bucket.stamp.load(Ordering::Relaxed) != index
            && bucket.stamp.swap(index, Ordering::Relaxed) != index
        {
            bucket.calls.store(0, Ordering::Relaxed);
            bucket.failures.store(0, Ordering::Relaxed);
            bucket.overruns.store(0, Ordering::Relaxed);
        }
        bucket
    }

    /// The counts of the last `window`.
    pub fn window(&self) -> WindowCounts {
        let current = clock::now() / self.bucket_nanos;
        let mut counts = WindowCounts::default();
        for bucket in &self.buckets {
            let stamp = bucket.stamp.load(Ordering::Relaxed);
            if stamp + (BUCKETS as u64) > current && stamp <= current {
                counts.calls += bucket.calls.load(Ordering::Relaxed);
                counts.failures += bucket.failures.load(Ordering::Relaxed);
                counts.overruns += bucket.overruns.load(Ordering::Relaxed);
            }
        }
        counts
    }

    fn check_ratios(&self) {
        let counts = self.window();
        if counts.calls < self.policy.min_calls.max(1) {
            return;
        }
        let ratio = |n: u32| f64::from(n) / f64::from(counts.calls);
        let seconds = self.policy.window.as_secs();
        if ratio(counts.failures) >= self.policy.max_failure_ratio {
            self.disable(format!(
                "{} of its last {} calls failed within {seconds} s (limit {:.0}%)",
                counts.failures,
                counts.calls,
                self.policy.max_failure_ratio * 100.0
            ));
        } else if ratio(counts.overruns) >= self.policy.max_overrun_ratio {
            self.disable(format!(
                "{} of its last {} calls took {} ms or more within {seconds} s (limit {:.0}%)",
                counts.overruns,
                counts.calls,
                self.policy.call_budget.as_millis(),
                self.policy.max_overrun_ratio * 100.0
            ));
        }
    }

    /// Disables the kind (once) and says why.
    pub fn disable(&self, reason: String) {
        if self.disabled.swap(true, Ordering::Relaxed) {
            return;
        }
        tracing::error!(kind = %self.name, %reason, "A user-code kind was disabled; it stays off until a reload brings a changed source.");
        *self.reason.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.clone());
        self.remember(format!("disabled: {reason}"));
    }

    pub fn reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The pool's watchdog gave up waiting on a call of this kind (`native_deadline`): the
    /// click went on without it, and the kind takes no calls until it returns.
    pub(super) fn set_aside(&self, started: u64, now: u64) {
        self.set_aside.fetch_add(1, Ordering::Relaxed);
        self.timeouts.fetch_add(1, Ordering::Relaxed);
        let message = format!(
            "a call was still running after {} ms; the click went on without it",
            now.saturating_sub(started) / 1_000_000
        );
        self.account(now, now.saturating_sub(started), Some(&message), true);
    }

    /// A call that was set aside returned after all.
    pub(super) fn returned_after_set_aside(&self, started: u64) {
        self.set_aside.fetch_sub(1, Ordering::Relaxed);
        self.remember(format!(
            "a call set aside returned after {} ms",
            clock::now().saturating_sub(started) / 1_000_000
        ));
    }

    fn remember(&self, message: String) {
        let mut messages = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        if messages.len() == KEPT_MESSAGES {
            messages.pop_front();
        }
        messages.push_back(message);
    }

    pub fn status(&self) -> GuardStatus {
        let calls = self.calls.load(Ordering::Relaxed);
        GuardStatus {
            state: if self.is_disabled() {
                GuardState::Disabled
            } else if calls > 0 {
                GuardState::Active
            } else {
                GuardState::Loaded
            },
            reason: self.reason(),
            calls,
            failures: self.failures.load(Ordering::Relaxed),
            overruns: self.overruns.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            set_aside: self.set_aside.load(Ordering::Relaxed),
            window: self.window(),
            messages: self
                .messages
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned()
                .collect(),
        }
    }
}

impl fmt::Debug for KindGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KindGuard")
            .field("name", &self.name)
            .field("disabled", &self.is_disabled())
            .finish()
    }
}
