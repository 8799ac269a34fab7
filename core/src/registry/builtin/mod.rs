//! The built-in catalogue: Keitaro's filters and actions under their exact names.

mod actions;
mod filters;
#[cfg(test)]
mod filters_tests;
pub mod payload;

use super::Registry;

/// Registers every built-in kind.
pub fn register(registry: &mut Registry) {
    filters::register(registry);
    actions::register(registry);
}
