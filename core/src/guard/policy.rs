//! How much a kind of user code may cost before the guard steps in (`[user_code]` in
//! config.toml).

use std::time::Duration;

/// The limits every script and native kind runs under. See README "User code budgets".
#[derive(Debug, Clone, PartialEq)]
pub struct GuardPolicy {
    /// One call's time budget: a Rhai call is stopped when it runs out (within about a
    /// millisecond), and any call that takes this long counts as an overrun.
    pub call_budget: Duration,
    /// A native call still running after this long is set aside: the click goes on without it
    /// (re-routed with the kind skipped) and the kind takes no new calls until it returns.
    pub native_deadline: Duration,
    /// A call set aside that has still not returned after this long disables its kind.
    pub hang_after: Duration,
    /// The sliding window over which failure and overrun ratios are taken.
    pub window: Duration,
    /// Calls in the window before a ratio can disable a kind.
    pub min_calls: u32,
    /// Disable a kind when at least this share of its calls in the window failed (errors,
    /// panics, wrong answers, stopped scripts).
    pub max_failure_ratio: f64,
    /// Disable a kind when at least this share of its calls in the window overran the budget.
    pub max_overrun_ratio: f64,
    /// The share of one core a kind may keep busy over time (0.2 = 200 ms per second); past
    /// it, calls are skipped until its time has paid back.
    pub cpu_share: f64,
    /// How much time a kind may spend at once before `cpu_share` applies.
    pub cpu_burst: Duration,
}

impl Default for GuardPolicy {
    fn default() -> Self {
        GuardPolicy {
            call_budget: Duration::from_millis(5),
            native_deadline: Duration::from_millis(50),
            hang_after: Duration::from_secs(1),
            window: Duration::from_secs(60),
            min_calls: 20,
            max_failure_ratio: 0.2,
            max_overrun_ratio: 0.2,
            cpu_share: 0.2,
            cpu_burst: Duration::from_millis(50),
        }
    }
}
