//! Switchyard: a self-hosted traffic distribution system and click tracker.
//!
//! The crate is laid out along a click's path: `api` receives it, `traffic` routes it against
//! the `reload`-managed routing snapshot, `recorder` writes it through the `store`. Filters
//! and actions come from the `registry` (built in, scripts, and `native` libraries). See
//! ARCHITECTURE.md at the repository root for the map and the invariants.

// `unsafe` is allowed only in `native` (dynamic loading and the plugin C ABI), which opts in.
#![deny(unsafe_code)]

pub mod api;
pub mod cli;
pub mod config;
pub mod conversions;
pub mod enrich;
pub mod fetch;
pub mod files;
pub mod ids;
pub mod journal;
pub mod model;
pub mod native;
pub mod net;
pub mod outbound;
pub mod recorder;
pub mod registry;
pub mod reload;
pub mod report;
pub mod script;
pub mod secrets;
pub mod seed;
pub mod server;
pub mod store;
pub mod template;
pub mod traffic;
pub mod triggers;
pub mod visit;
