//! The live routing snapshot and the only code that replaces it. A rebuild reads the store,
//! compiles a new snapshot beside the live one and swaps it in; a failed rebuild keeps the
//! old snapshot serving and remembers the error.

mod supervisor;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use last_error::LastError;

pub use supervisor::{KindStatus, LoadedPlugins, PluginReport, Supervisor, load_plugins};

use crate::registry::Registry;
use crate::store::{Store, StoreError};
use crate::traffic::RoutingSnapshot;

/// Holds the current snapshot; handlers `load()` it once per request.
pub struct SnapshotCell {
    current: ArcSwap<RoutingSnapshot>,
    registry: ArcSwap<Registry>,
    generation: AtomicU64,
    last_error: LastError,
    /// One rebuild at a time, so a rebuild that read the store earlier never replaces one that
    /// read it later (Admin API writes rebuild concurrently).
    rebuilding: tokio::sync::Mutex<()>,
}

impl Default for SnapshotCell {
    fn default() -> Self {
        SnapshotCell {
            current: ArcSwap::from_pointee(RoutingSnapshot::default()),
            registry: ArcSwap::from_pointee(Registry::builtin()),
            generation: AtomicU64::new(0),
            last_error: LastError::default(),
            rebuilding: tokio::sync::Mutex::new(()),
        }
    }
}

impl SnapshotCell {
    /// The snapshot to route this request with.
    pub fn load(&self) -> Arc<RoutingSnapshot> {
        self.current.load_full()
    }

    /// The registry snapshots are built with.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.load_full()
    }

    /// Replaces the registry (new scripts or plugins); the next rebuild uses it.
    pub fn set_registry(&self, registry: Registry) {
        self.registry.store(Arc::new(registry));
    }

    /// The generation now serving (0 before the first build).
    pub fn generation(&self) -> u64 {
        self.current.load().generation
    }

    /// The error of the last failed rebuild, if the last rebuild failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.get()
    }

    /// Rebuilds from the store and swaps. On failure the old snapshot keeps serving.
    pub async fn rebuild(&self, store: &dyn Store) -> Result<u64, StoreError> {
        let _one_at_a_time = self.rebuilding.lock().await;
        match store.routing_data().await {
            Ok(data) => {
                let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
                let registry = self.registry.load();
                let snapshot = RoutingSnapshot::build(generation, data, &registry);
                for warning in &snapshot.warnings {
                    tracing::warn!(generation, "{warning}");
                }
                let campaigns = snapshot.campaign_count();
                self.current.store(Arc::new(snapshot));
                self.last_error.set(None);
                tracing::info!(generation, campaigns, "Routing snapshot rebuilt.");
                Ok(generation)
            }
            Err(error) => {
                tracing::error!(%error, "Rebuilding the routing snapshot failed; continuing with the previous one.");
                self.last_error.set(Some(error.to_string()));
                Err(error)
            }
        }
    }
}

mod last_error {
    use std::sync::Mutex;

    /// The last rebuild error; read rarely (health), written on rebuild.
    #[derive(Default)]
    pub struct LastError(Mutex<Option<String>>);

    impl LastError {
        pub fn get(&self) -> Option<String> {
            self.0.lock().map(|e| e.clone()).unwrap_or(None)
        }

        pub fn set(&self, value: Option<String>) {
            if let Ok(mut slot) = self.0.lock() {
                *slot = value;
            }
        }
    }
}
