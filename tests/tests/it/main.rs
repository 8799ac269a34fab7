//! Switchyard's integration tests: one binary, one module per capability.

mod admin;
mod admin_files;
mod click_api;
mod click_rows;
mod conversions;
mod dialects;
mod faults;
mod files;
mod foundation;
mod integrity;
mod native;
mod plugins;
mod reports;
mod routing;
mod triggers;
mod user_code;

/// The `switchyard` binary built for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_switchyard-it")
}
