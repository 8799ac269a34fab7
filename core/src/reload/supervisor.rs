//! The reload supervisor: the only code that changes the registry. It loads every plugin
//! source (built-ins, Rhai scripts, native libraries) into a new registry beside the live one,
//! and swaps registry and routing snapshot only when everything loaded; otherwise the previous
//! registry and snapshot keep serving and every error is reported. A debounced file watcher
//! triggers it when config.toml, the scripts or the plugin directory change.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use super::SnapshotCell;
use super::trigger_check::{CheckSource, TriggerCheck};
use crate::config::PluginsConfig;
use crate::guard::{GuardState, GuardStatus};
use crate::registry::{KindInfo, Registry};
use crate::script::{ScriptKind, ScriptKindType};
use crate::store::Store;

/// One kind as the plugin listing shows it.
#[derive(Debug, Clone, Serialize)]
pub struct KindStatus {
    /// `filter`, `action` or `trigger`.
    pub kind: String,
    #[serde(flatten)]
    pub info: KindInfo,
    /// `active`, `loaded` (not called yet) or `disabled` (by its guard; `reason` says why).
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The guard's counters (kinds that are not built in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardStatus>,
    /// Recent problems, oldest first.
    pub messages: Vec<String>,
}

/// What `/health`, the Admin API and `switchyard plugins` show about plugins.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PluginReport {
    /// Counts successful plugin reloads (the first load is 1).
    pub generation: u64,
    /// Errors of the last reload attempt; empty when it succeeded.
    pub last_errors: Vec<String>,
    pub kinds: Vec<KindStatus>,
    /// Native libraries with their state and per-kind counters.
    pub libraries: Vec<crate::native::PluginStatus>,
}

/// A registry with everything that went into it.
pub struct LoadedPlugins {
    pub registry: Registry,
    pub scripts: Vec<Arc<ScriptKind>>,
    pub libraries: Vec<crate::native::LoadedPlugin>,
}

/// Loads built-ins and every plugin source. `Err` lists every problem found.
pub fn load_plugins(config: &PluginsConfig) -> Result<LoadedPlugins, Vec<String>> {
    load_plugins_after(config, None)
}

/// [`load_plugins`] for a registry that replaces `previous`: kinds whose source did not
/// change keep their guard (counters and a disabled state).
pub fn load_plugins_after(
    config: &PluginsConfig,
    previous: Option<&Registry>,
) -> Result<LoadedPlugins, Vec<String>> {
    let mut registry = Registry::builtin_after(previous, &config.guard);
    let mut errors = Vec::new();
    let (scripts, script_errors) =
        crate::script::load_dir(&config.scripts_dir, config.guard.call_budget);
    errors.extend(
        script_errors
            .iter()
            .map(|e| format!("{}: {e}", config.scripts_dir.display())),
    );
    for script in &scripts {
        let added =
            match script.kind {
                ScriptKindType::Filter => registry
                    .add_filter(Arc::new(crate::script::ScriptFilterFactory(script.clone()))),
                ScriptKindType::Action => registry
                    .add_action(Arc::new(crate::script::ScriptActionFactory(script.clone()))),
                ScriptKindType::Trigger => {
                    registry.guard_for(&script.info.name, script.fingerprint());
                    Ok(())
                }
            };
        if let Err(error) = added {
            errors.push(format!("{}: {error}", script.path.display()));
        }
    }
    let mut libraries = Vec::new();
    if config.native_dir.is_dir() {
        let (loaded, native_errors) =
            crate::native::load_dir(&config.native_dir, &config.cache_dir);
        errors.extend(native_errors.iter().map(|e| e.to_string()));
        for library in loaded {
            let registered = crate::native::check_trigger_names(&library, &libraries)
                .and_then(|()| crate::native::register_into(&library, &mut registry));
            match registered {
                Ok(()) => {
                    for trigger in library.triggers() {
                        registry.guard_for(&trigger.info().name, trigger.fingerprint());
                    }
                    libraries.push(library)
                }
                Err(error) => errors.push(error.to_string()),
            }
        }
    }
    if errors.is_empty() {
        Ok(LoadedPlugins {
            registry,
            scripts,
            libraries,
        })
    } else {
        Err(errors)
    }
}

struct State {
    generation: u64,
    last_errors: Vec<String>,
    scripts: Vec<Arc<ScriptKind>>,
    libraries: Vec<crate::native::LoadedPlugin>,
}

/// Owns plugin reloads for a running server.
pub struct Supervisor {
    cell: Arc<SnapshotCell>,
    store: Arc<dyn Store>,
    config: PluginsConfig,
    config_file: Option<PathBuf>,
    state: Mutex<State>,
    /// Serialises reloads (a watcher event and an API call may race).
    reload_lock: tokio::sync::Mutex<()>,
    /// The campaigns directory, when configured (set once at start).
    campaign_files: std::sync::OnceLock<Arc<crate::reload::CampaignFiles>>,
}

impl Supervisor {
    pub fn new(
        cell: Arc<SnapshotCell>,
        store: Arc<dyn Store>,
        config: PluginsConfig,
        config_file: Option<PathBuf>,
    ) -> Self {
        Supervisor {
            cell,
            store,
            config,
            config_file,
            state: Mutex::new(State {
                generation: 0,
                last_errors: Vec::new(),
                scripts: Vec::new(),
                libraries: Vec::new(),
            }),
            reload_lock: tokio::sync::Mutex::new(()),
            campaign_files: std::sync::OnceLock::new(),
        }
    }

    /// Puts the campaigns directory under this supervisor (before `spawn_watcher`).
    pub fn set_campaign_files(&self, files: Arc<crate::reload::CampaignFiles>) {
        let _ = self.campaign_files.set(files);
    }

    /// The campaigns directory, when configured.
    pub fn campaign_files(&self) -> Option<&Arc<crate::reload::CampaignFiles>> {
        self.campaign_files.get()
    }

    /// Loads the campaigns directory (checked with the current registry) into the store and
    /// the snapshot; a directory with problems changes nothing. `Ok(None)` when none is
    /// configured, else how many objects changed.
    pub async fn reload_campaign_files(&self) -> Result<Option<usize>, Vec<String>> {
        let Some(files) = self.campaign_files.get() else {
            return Ok(None);
        };
        let _guard = self.reload_lock.lock().await;
        files.load(self.store.as_ref(), &self.cell).await.map(Some)
    }

    /// Loads every plugin source; on success swaps the registry and rebuilds the snapshot, on
    /// failure keeps both and records the errors. Returns the routing generation now serving.
    pub async fn reload(&self) -> Result<u64, Vec<String>> {
        let _guard = self.reload_lock.lock().await;
        let config = self.config.clone();
        let previous = self.cell.registry();
        let loaded =
            tokio::task::spawn_blocking(move || load_plugins_after(&config, Some(&previous)))
                .await
                .unwrap_or_else(|e| Err(vec![format!("loading plugins panicked: {e}")]));
        match loaded {
            Ok(loaded) => {
                self.cell.set_registry(loaded.registry);
                let rebuilt = self
                    .cell
                    .rebuild(self.store.as_ref())
                    .await
                    .map_err(|e| vec![e.to_string()]);
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                state.scripts = loaded.scripts;
                state.libraries = loaded.libraries;
                // Copies left by earlier runs or replaced builds: this process never opened
                // them, so they can go (opened copies stay; libraries are never unloaded).
                if self.config.cache_dir.is_dir() {
                    match crate::native::prune_cache(&self.config.cache_dir) {
                        Ok(0) => {}
                        Ok(removed) => tracing::info!(removed, "Pruned stale plugin copies."),
                        Err(error) => tracing::warn!(%error, "Cannot prune the plugin cache."),
                    }
                }
                match rebuilt {
                    Ok(generation) => {
                        state.generation += 1;
                        state.last_errors.clear();
                        tracing::info!(
                            plugins_generation = state.generation,
                            generation,
                            scripts = state.scripts.len(),
                            "Plugins reloaded."
                        );
                        Ok(generation)
                    }
                    Err(errors) => {
                        state.last_errors = errors.clone();
                        Err(errors)
                    }
                }
            }
            Err(errors) => {
                for error in &errors {
                    tracing::error!(%error, "Plugin reload failed; continuing with the previous configuration.");
                }
                self.state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .last_errors = errors.clone();
                Err(errors)
            }
        }
    }

    /// The current plugin listing.
    pub fn report(&self) -> PluginReport {
        let registry = self.cell.registry();
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let guards = registry.guards();
        let status = |kind: &str, info: &KindInfo| {
            let guard = guards.get(&info.name).map(|g| g.status());
            KindStatus {
                kind: kind.into(),
                info: info.clone(),
                state: match guard.as_ref().map(|g| g.state) {
                    Some(GuardState::Disabled) => "disabled",
                    Some(GuardState::Loaded) => "loaded",
                    Some(GuardState::Active) | None => "active",
                }
                .into(),
                reason: guard.as_ref().and_then(|g| g.reason.clone()),
                messages: guard
                    .as_ref()
                    .map(|g| g.messages.clone())
                    .unwrap_or_default(),
                guard,
            }
        };
        let mut kinds: Vec<KindStatus> = Vec::new();
        kinds.extend(registry.filters().map(|info| status("filter", info)));
        kinds.extend(registry.actions().map(|info| status("action", info)));
        kinds.extend(
            state
                .scripts
                .iter()
                .filter(|s| s.kind == ScriptKindType::Trigger)
                .map(|script| status("trigger", &script.info)),
        );
        kinds.extend(
            state
                .libraries
                .iter()
                .flat_map(|l| l.triggers())
                .map(|trigger| status("trigger", trigger.info())),
        );
        PluginReport {
            generation: state.generation,
            last_errors: state.last_errors.clone(),
            kinds,
            libraries: state.libraries.iter().map(|l| l.status(guards)).collect(),
        }
    }

    /// Watches the plugin sources and config.toml; reloads after `debounce` of quiet.
    pub fn spawn_watcher(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        use notify::{EventKind, RecursiveMode, Watcher};
        let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
        // Only paths a reload reads are passed on: the config file's directory may also hold
        // the SQLite database, whose every write is an event.
        let interest = self.clone();
        let handler = move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && matches!(
                    event.kind,
                    EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
                )
            {
                for path in event.paths {
                    if interest.is_config_file(&path)
                        || interest.is_plugin_source(&path)
                        || interest.is_campaign_file(&path)
                    {
                        let _ = tx.send(path);
                    }
                }
            }
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::warn!(%error, "Cannot watch files; plugins reload only on restart.");
                return None;
            }
        };
        let mut watched = Vec::new();
        let campaigns_dir = self.campaign_files.get().map(|f| f.dir().to_path_buf());
        for dir in [&self.config.scripts_dir, &self.config.native_dir]
            .into_iter()
            .chain(campaigns_dir.as_ref())
        {
            if dir.is_dir() {
                match watcher.watch(dir, RecursiveMode::Recursive) {
                    Ok(()) => watched.push(dir.display().to_string()),
                    Err(error) => {
                        tracing::warn!(dir = %dir.display(), %error, "Cannot watch a plugin directory.")
                    }
                }
            }
        }
        // Watch the config file's directory (editors replace files by rename).
        if let Some(dir) = self
            .config_file
            .as_deref()
            .and_then(Path::parent)
            .filter(|d| d.is_dir())
            && watcher.watch(dir, RecursiveMode::NonRecursive).is_ok()
        {
            watched.push(dir.display().to_string());
        }
        tracing::info!(?watched, "Watching for plugin and configuration changes.");
        let supervisor = self.clone();
        let debounce = self.config.debounce;
        Some(tokio::spawn(async move {
            let _watcher = watcher;
            while let Some(first) = rx.recv().await {
                let mut paths = vec![first];
                loop {
                    match tokio::time::timeout(debounce, rx.recv()).await {
                        Ok(Some(path)) => paths.push(path),
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                if paths.iter().any(|p| supervisor.is_config_file(p)) {
                    supervisor.check_config_file();
                }
                let plugins_changed = paths.iter().any(|p| supervisor.is_plugin_source(p));
                if plugins_changed {
                    let _ = supervisor.reload().await;
                }
                // A plugin change may fix campaign files that named a missing kind.
                let retry = plugins_changed
                    && supervisor
                        .campaign_files
                        .get()
                        .is_some_and(|f| !f.status().last_errors.is_empty());
                if retry || paths.iter().any(|p| supervisor.is_campaign_file(p)) {
                    let _ = supervisor.reload_campaign_files().await;
                }
            }
        }))
    }

    fn is_plugin_source(&self, path: &Path) -> bool {
        path.starts_with(&self.config.scripts_dir) || path.starts_with(&self.config.native_dir)
    }

    fn is_campaign_file(&self, path: &Path) -> bool {
        self.campaign_files
            .get()
            .is_some_and(|files| path.starts_with(files.dir()))
    }

    fn is_config_file(&self, path: &Path) -> bool {
        self.config_file.as_deref().is_some_and(|file| {
            path.file_name() == file.file_name() && path.parent() == file.parent()
        })
    }

    /// config.toml changed: validate it and report. Its settings apply at the next start.
    fn check_config_file(&self) {
        let Some(file) = &self.config_file else {
            return;
        };
        match crate::config::load(file) {
            Ok(_) => {
                tracing::info!(file = %file.display(), "The configuration file changed and is valid; its settings take effect at the next start.")
            }
            Err(error) => {
                tracing::error!(file = %file.display(), "The configuration file changed and is invalid:\n{error}");
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                state.last_errors = error
                    .problems
                    .iter()
                    .map(|p| format!("{}: {}", p.location, p.message))
                    .collect();
            }
        }
    }

    /// The loaded trigger script named `name` (`script:NAME`).
    pub fn trigger_script(&self, name: &str) -> Option<Arc<ScriptKind>> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .scripts
            .iter()
            .find(|s| s.kind == ScriptKindType::Trigger && s.info.name == name)
            .cloned()
    }

    /// The loaded native trigger check named `name` (`native:NAME`).
    pub fn native_trigger(&self, name: &str) -> Option<Arc<crate::native::NativeTriggerKind>> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .libraries
            .iter()
            .flat_map(|l| l.triggers())
            .find(|k| k.info().name == name)
            .cloned()
    }

    /// The check a trigger condition names: `script:NAME` or `native:NAME`; `None` for other
    /// conditions and for names that are not loaded.
    pub fn trigger_check(&self, name: &str) -> Option<TriggerCheck> {
        let source = if name.starts_with("script:") {
            self.trigger_script(name).map(CheckSource::Script)
        } else if name.starts_with(crate::native::NAME_PREFIX) {
            self.native_trigger(name).map(CheckSource::Native)
        } else {
            None
        }?;
        let guard = self.cell.registry().guards().get(name)?.clone();
        Some(TriggerCheck { source, guard })
    }

    /// How long the watcher waits for quiet.
    pub fn debounce(&self) -> Duration {
        self.config.debounce
    }
}
