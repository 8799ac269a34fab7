//! What the host lists about a library and its kinds. A kind's counters and state are its
//! guard's (`crate::guard`, kept by the registry), so this only assembles them per library.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::PluginError;
use crate::guard::{GuardState, GuardStatus, KindGuard};

/// Where a library or kind stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginState {
    /// Loaded and registered; nothing called yet.
    Loaded,
    /// Called at least once and not disabled.
    Active,
    /// The library could not be loaded (see the messages).
    Failed,
    /// Disabled by its guard (every kind, for a library): filters count as "does not match",
    /// actions fall back. A reload of a changed library starts afresh.
    Disabled,
}

impl From<GuardState> for PluginState {
    fn from(state: GuardState) -> Self {
        match state {
            GuardState::Loaded => PluginState::Loaded,
            GuardState::Active => PluginState::Active,
            GuardState::Disabled => PluginState::Disabled,
        }
    }
}

/// One kind of a loaded library, as listed by the host.
#[derive(Debug, Clone, Serialize)]
pub struct KindStatus {
    /// The registered name (`native:ip_reputation`).
    pub name: String,
    /// `filter`, `action` or `trigger`.
    pub role: &'static str,
    pub state: PluginState,
    /// The guard's counters; absent while the kind is not registered.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardStatus>,
}

impl KindStatus {
    pub(super) fn of(
        name: &str,
        role: &'static str,
        guards: &BTreeMap<String, Arc<KindGuard>>,
    ) -> KindStatus {
        let guard = guards.get(name).map(|g| g.status());
        KindStatus {
            name: name.to_string(),
            role,
            state: guard
                .as_ref()
                .map_or(PluginState::Loaded, |g| g.state.into()),
            guard,
        }
    }
}

/// A library in the plugin directory, as listed by the host (`/health`, the Admin API).
#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    /// The library file as found in the plugin directory.
    pub library: String,
    /// The content-addressed copy that was actually loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded_copy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub state: PluginState,
    pub messages: Vec<String>,
    pub kinds: Vec<KindStatus>,
}

impl PluginStatus {
    /// The status of a library that could not be loaded.
    pub fn failed(error: &PluginError) -> PluginStatus {
        PluginStatus {
            library: error.file().display().to_string(),
            loaded_copy: None,
            name: None,
            version: None,
            state: PluginState::Failed,
            messages: vec![error.to_string()],
            kinds: Vec::new(),
        }
    }

    /// A library's state from its kinds': disabled when every kind is, active when any was
    /// called, loaded otherwise.
    pub(crate) fn aggregate(kinds: &[KindStatus]) -> PluginState {
        if !kinds.is_empty() && kinds.iter().all(|k| k.state == PluginState::Disabled) {
            PluginState::Disabled
        } else if kinds.iter().any(|k| k.state != PluginState::Loaded) {
            PluginState::Active
        } else {
            PluginState::Loaded
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_is_disabled_only_when_every_kind_is() {
        let kind = |state| KindStatus {
            name: "k".into(),
            role: "filter",
            state,
            guard: None,
        };
        use PluginState::*;
        assert_eq!(PluginStatus::aggregate(&[]), Loaded);
        assert_eq!(PluginStatus::aggregate(&[kind(Loaded)]), Loaded);
        assert_eq!(
            PluginStatus::aggregate(&[kind(Loaded), kind(Disabled)]),
            Active
        );
        assert_eq!(
            PluginStatus::aggregate(&[kind(Disabled), kind(Disabled)]),
            Disabled
        );
    }
}
