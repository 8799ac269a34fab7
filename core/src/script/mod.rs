//! The Rhai script host: filters, actions and trigger checks written as `.rhai` files.
//!
//! Every engine comes from [`hardened_engine`]: bounded operations, call depth, expression
//! depth, string/array/map sizes, no `eval`, no modules, strict variables, and a wall-clock
//! deadline checked from `on_progress` (Rhai has no timeout of its own). A script that fails,
//! runs too long or returns the wrong type counts as "does not match" (filters) or fails the
//! action; after [`MAX_CONSECUTIVE_FAILURES`] failures in a row its kind is disabled and
//! reported, and it stays disabled until the file changes (the next reload builds it afresh).
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
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine};

pub use factories::{
    ScriptActionFactory, ScriptFilterFactory, ScriptKind, ScriptKindType, load_dir,
};
pub use view::ScriptClick;

/// Consecutive failures after which a script kind is disabled.
pub const MAX_CONSECUTIVE_FAILURES: u64 = 20;

/// Wall-clock budget of one script call.
pub const CALL_BUDGET: Duration = Duration::from_millis(5);

thread_local! {
    /// When the running script call must stop (set around each call).
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` with the deadline armed for `budget`.
pub(crate) fn with_deadline<T>(budget: Duration, f: impl FnOnce() -> T) -> T {
    DEADLINE.with(|d| d.set(Some(Instant::now() + budget)));
    let result = f();
    DEADLINE.with(|d| d.set(None));
    result
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
    engine.on_progress(|operations| {
        if operations % 256 != 0 {
            return None;
        }
        let expired = DEADLINE.with(|d| d.get().is_some_and(|deadline| Instant::now() >= deadline));
        expired.then(|| Dynamic::from("the script ran past its time budget"))
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
