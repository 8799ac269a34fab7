//! Switchyard: a self-hosted traffic distribution system and click tracker.
//!
//! The crate is laid out along a click's path: `api` receives it, `traffic` routes it against
//! the `reload`-managed routing snapshot, `recorder` writes it through the `store`. Filters
//! and actions come from the `registry` (built in, scripts, and `native` libraries). See
//! ARCHITECTURE.md at the repository root for the map and the invariants.

// `unsafe` is allowed only in `native` (dynamic loading and the plugin C ABI), which opts in.
#![deny(unsafe_code)]

// The public surface is what the binary (`main.rs`: `cli`), the integration tests, the
// benchmarks and the plugin crates use; everything else is private to the crate.

mod api;
pub mod cli;
pub mod config;
mod conversions;
pub mod enrich;
mod fetch;
pub mod files;
pub mod guard;
mod ids;
pub mod journal;
pub mod model;
pub mod native;
mod net;
mod outbound;
mod recorder;
pub mod registry;
pub mod reload;
pub mod report;
mod script;
pub mod secrets;
mod seed;
pub mod server;
pub mod store;
mod template;
pub mod traffic;
pub mod triggers;
mod visit;
