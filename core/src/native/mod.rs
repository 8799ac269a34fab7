//! The native plugin host: loads dynamic libraries built with `switchyard-plugin-sdk` and
//! registers their filter and action kinds beside the built-in and script ones. Their trigger
//! check kinds are kept by the reload supervisor and run by the trigger runner
//! ([`NativeTriggerKind`], conditions `native:NAME`).
//!
//! This module is the one place in `core` where `unsafe` is allowed: dynamic loading and the
//! C ABI cannot be written without it. Every block says why it is sound.
//!
//! # Loading
//!
//! [`load_library`] (or [`load_dir`] for every library directly in a directory):
//!
//! 1. copies the file to `<cache_dir>/<sha256>.<ext>` and opens the *copy*: the dynamic
//!    loader caches by path, so opening a rebuilt file at the same path would return the old
//!    code while the old handle is open. The content-addressed copy gives every build its own
//!    path, and a copy is never written once it exists (it may be mapped);
//! 2. reads the `switchyard_plugin_header` symbol *first* and refuses the library unless the
//!    magic, the ABI version and the header size match ([`PluginError::AbiMismatch`] names
//!    the file and both versions). No function of the library is called before that (the
//!    platform loader does run a library's own initialisers when it opens it; Rust cdylibs
//!    built with the SDK have none);
//! 3. reads `switchyard_plugin_declaration`, checks the size of every ABI structure, the kind
//!    names and their payload examples;
//! 4. wraps each kind in an adapter that implements the ordinary
//!    [`FilterFactory`](crate::registry::FilterFactory) /
//!    [`ActionFactory`](crate::registry::ActionFactory) traits, named `native:<kind>` with
//!    `Origin::Native { library }`.
//!
//! Libraries are **never unloaded**: instances built from them may live in an old routing
//! snapshot that in-flight requests still use, and `dlclose` is best effort anyway (thread
//! local destructors keep a library mapped). Each load of a new build costs one mapping for
//! the life of the process; [`prune_cache`] removes stale copies at start-up.
//!
//! # Calls
//!
//! Every call goes through `catch_unwind` on both sides (the SDK's exports catch the plugin's
//! panics and return them as a status; the adapters guard the host's side). Budgets are not
//! this module's business: the registry puts every native kind under the same guard as a
//! script (`crate::guard`): calls are timed, failures and overruns counted over a window, a
//! kind disabled on a ratio, and a call still running at its deadline set aside by the
//! user-code pool's watchdog so that the click goes on without it. A synchronous call into
//! foreign code cannot be preempted; a call that never returns keeps its (replaced) thread.
//! [`LoadedPlugin::status`] lists each kind with its guard's counters ([`PluginStatus`]).
//!
//! # Intended use (the reload supervisor)
//!
//! The supervisor that watches the plugin directory owns the timing; this module only loads:
//!
//! ```text
//! native::prune_cache(&cache_dir)                    // once, at start-up (optional)
//! let (plugins, errors) = native::load_dir(&plugin_dir, &cache_dir);
//! let mut registry = Registry::builtin();            // (+ script kinds)
//! for plugin in &plugins {
//!     native::register_into(plugin, &mut registry)?; // all kinds of a library, or none
//! }
//! // build the routing snapshot with `registry`, swap it in; report `errors` and
//! // `plugin.status(registry.guards())` / `PluginStatus::failed(&error)` on /health and in
//! // the Admin API.
//! ```
//!
//! On a change in the directory it loads again and builds a new registry and snapshot: an
//! unchanged file maps to the same copy and reuses the open library (and its guards); a
//! changed file gets a new copy and its new code. Kinds are resolved when a snapshot is
//! built, so a snapshot keeps the instances (and code) it was built with until it is dropped.
//! Keep the cache directory outside the plugin directory's top level (a subdirectory is fine:
//! [`load_dir`] does not recurse), e.g. `<data_dir>/plugin-cache`.

#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod adapter;
mod error;
mod library;
mod status;
mod trigger;

use crate::registry::Registry;

pub use error::PluginError;
pub use library::{LoadedPlugin, load_dir, load_library, prune_cache};
pub use status::{KindStatus, PluginState, PluginStatus};
pub use trigger::NativeTriggerKind;

/// The plugin ABI version this host loads (plugins must match it exactly).
pub use switchyard_plugin_sdk::ABI_VERSION;

/// The prefix of every native kind's registered name (`native:ip_reputation`).
pub const NAME_PREFIX: &str = "native:";

/// Registers every filter and action kind of `plugin` in `registry`, or none: when one of its
/// names is taken (by another library, a script or a built-in), nothing is registered and the
/// error says which name and by whom. Trigger check kinds are not registry kinds; see
/// [`check_trigger_names`].
pub fn register_into(plugin: &LoadedPlugin, registry: &mut Registry) -> Result<(), PluginError> {
    let conflict = |source| PluginError::Conflict {
        file: plugin.source().to_path_buf(),
        source,
    };
    let mut trial = registry.clone();
    for kind in &plugin.filters {
        trial.add_filter(kind.clone()).map_err(conflict)?;
    }
    for kind in &plugin.actions {
        trial.add_action(kind.clone()).map_err(conflict)?;
    }
    *registry = trial;
    Ok(())
}

/// Refuses `plugin` when one of its trigger check kinds is already declared by a library in
/// `accepted` (trigger names share the `native:` space across libraries).
pub fn check_trigger_names(
    plugin: &LoadedPlugin,
    accepted: &[LoadedPlugin],
) -> Result<(), PluginError> {
    for name in plugin.trigger_names() {
        if let Some(other) = accepted
            .iter()
            .find(|other| other.trigger_names().any(|taken| taken == name))
        {
            return Err(PluginError::TriggerConflict {
                file: plugin.source().to_path_buf(),
                name: name.to_string(),
                other: other.source().to_path_buf(),
            });
        }
    }
    Ok(())
}
