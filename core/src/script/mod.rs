//! The Rhai script host: filters, actions and trigger checks written as `.rhai` files.
//!
//! Every engine comes from [`hardened_engine`]: bounded operations, call depth, expression
//! depth, string/array/map sizes, no `eval`, no modules, strict variables, and a wall-clock
//! deadline checked from `on_progress` on *every* operation (Rhai has no timeout of its own;
//! the check is one atomic read of the guard's coarse clock, so a single heavy operation
//! cannot carry a call far past its budget). The time charged is the time between
//! operations, each gap counted up to 2 ms: a call the OS preempted is not failed for the
//! time it did not run. A script that fails, runs too long or returns
//! the wrong type counts as "does not match" (filters) or fails the action; its kind's guard
//! (`crate::guard`, applied by the registry) counts that and disables the kind on a failure
//! or overrun ratio, until the file changes.
//!
//! Scripts see the click through the read-only `Click` type (see [`view`]) and their stream
//! payload as `params`. Top-level statements of a script run once, when it is compiled, not per
//! call.

mod factories;
#[cfg(test)]
mod tests;
mod view;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rhai::{Dynamic, Engine};

use crate::guard::clock;

pub use factories::{
    ScriptActionFactory, ScriptFilterFactory, ScriptKind, ScriptKindType, load_dir,
};
pub use view::ScriptClick;

/// The most one gap between two operations counts towards a call's time: a thread the OS
/// preempted for longer than this is not charged for the time it did not run.
const MAX_STEP: u64 = 2_000_000;

/// The running call's budget on the guard's clock: allowed, spent, and the clock when the
/// last operation was seen (`allowed` is `u64::MAX` outside a call).
#[derive(Clone, Copy)]
struct Budget {
    allowed: u64,
    spent: u64,
    seen: u64,
}

thread_local! {
    static BUDGET: Cell<Budget> = const {
        Cell::new(Budget { allowed: u64::MAX, spent: 0, seen: 0 })
    };
}

/// Runs `f` with the deadline armed for `budget`.
pub(crate) fn with_deadline<T>(budget: Duration, f: impl FnOnce() -> T) -> T {
    let armed = Budget {
        allowed: clock::nanos(budget),
        spent: 0,
        seen: clock::now(),
    };
    let outer = BUDGET.with(|b| b.replace(armed));
    let result = f();
    BUDGET.with(|b| b.set(outer));
    result
}

/// Called on every operation: charges the time since the last one (at most [`MAX_STEP`] per
/// gap) and says whether the call has used up its budget.
fn budget_spent() -> bool {
    let now = clock::now();
    BUDGET.with(|cell| {
        let mut budget = cell.get();
        if now == budget.seen {
            return false;
        }
        budget.spent += now.saturating_sub(budget.seen).min(MAX_STEP);
        budget.seen = now;
        cell.set(budget);
        budget.spent >= budget.allowed
    })
}

/// Why a script could not be loaded or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("{path}:{line}:{column}: {message}")]
    Compile {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
}

/// The one way Switchyard builds a Rhai engine.
pub fn hardened_engine() -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(50_000)
        .set_max_call_levels(16)
        .set_max_expr_depths(64, 32)
        .set_max_string_size(16 * 1024)
        .set_max_array_size(4_096)
        .set_max_map_size(1_024)
        .set_max_modules(0)
        .set_strict_variables(true);
    engine.disable_symbol("eval");
    engine.on_progress(|_| {
        budget_spent().then(|| Dynamic::from("the script ran past its time budget"))
    });
    engine.on_print(|text| tracing::info!(target: "switchyard::script", "{text}"));
    engine.on_debug(|text, source, position| {
        tracing::debug!(target: "switchyard::script", source = source.unwrap_or(""), %position, "{text}")
    });
    view::register(&mut engine);
    engine
}

/// `path` relative to `base` for messages (or as is).
pub(crate) fn display_path(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The scripts directory's subfolders.
pub fn kind_dirs(dir: &Path) -> [(ScriptKindType, PathBuf); 3] {
    [
        (ScriptKindType::Filter, dir.join("filters")),
        (ScriptKindType::Action, dir.join("actions")),
        (ScriptKindType::Trigger, dir.join("triggers")),
    ]
}
