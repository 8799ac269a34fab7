//! The guard around user code: every filter, action and trigger check that is not built in (a
//! Rhai script or a native plugin) runs under the same rules, applied by the registry whatever
//! the origin.
//!
//! - Each kind has a [`KindGuard`]: it measures every call on a coarse [`clock`], keeps a
//!   sliding window of calls, failures and overruns, and disables the kind when the failure
//!   or overrun *ratio* reaches the [`GuardPolicy`]'s limit. A kind also has a time budget (a
//!   share of one core, with a burst); past it, calls are skipped until it pays back. A
//!   disabled kind stays disabled until a reload brings a changed source (the guard is kept
//!   across reloads while the kind's fingerprint is the same).
//! - A skipped or failed call never costs the click: a filter counts as not matching, an
//!   action falls back to the campaign's default stream, a trigger check reports an error. The
//!   routing trace says which kind was skipped and why.
//! - Clicks of campaigns that run user code are routed on the [`UserCodePool`], off the async
//!   workers, whose watchdog sets aside a call that overruns `native_deadline` (see `pool`).

pub mod clock;
mod kind;
mod policy;
mod pool;
mod slot;

use std::cell::Cell;

pub use kind::{Admitted, GuardState, GuardStatus, KindGuard, Skip, WindowCounts};
pub use policy::GuardPolicy;
pub use pool::{MAX_SET_ASIDE, PoolStatus, UserCodePool};

thread_local! {
    /// Set while a click is routed without user code (the pool was full).
    static SKIPPING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every user-code call skipped ([`Skip::Overload`]).
pub fn skip_user_code<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            SKIPPING.with(|s| s.set(self.0));
        }
    }
    let _reset = Reset(SKIPPING.with(|s| s.replace(true)));
    f()
}

#[inline]
fn skipping_user_code() -> bool {
    SKIPPING.with(Cell::get)
}

#[cfg(test)]
mod tests;
