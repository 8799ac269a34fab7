//! The live routing snapshot and the only code that replaces it. A rebuild reads the store,
//! compiles a new snapshot beside the live one and swaps it in; a failed rebuild keeps the
//! old snapshot serving and remembers the error. Also what feeds rebuilds: the plugin
//! supervisor (`supervisor.rs`, which also loads the trigger checks of `trigger_check.rs`) and
//! the campaigns directory (`campaign_files.rs`).

mod campaign_files;
mod supervisor;
mod trigger_check;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use last_error::LastError;

pub use campaign_files::{CampaignFiles, FilesStatus};
pub use supervisor::{
    KindStatus, LoadedPlugins, PluginReport, Supervisor, load_plugins, load_plugins_after,
};
pub use trigger_check::{CheckSource, TriggerCheck};

use crate::registry::Registry;
use crate::store::{RoutingSource, StoreError};
use crate::traffic::{ConversionCaps, RoutingSnapshot};

/// Holds the current snapshot; handlers `load()` it once per request.
pub struct SnapshotCell {
    current: ArcSwap<RoutingSnapshot>,
    registry: ArcSwap<Registry>,
    generation: AtomicU64,
    last_error: LastError,
    /// One rebuild at a time, so a rebuild that read the store earlier never replaces one that
    /// read it later (Admin API writes rebuild concurrently).
    rebuilding: tokio::sync::Mutex<()>,
    /// The click path's offer cap counts, once the server has them: a rebuild that brings a
    /// new cap reads its count first ([`restore_caps`]).
    caps: std::sync::OnceLock<Arc<ConversionCaps>>,
}

impl Default for SnapshotCell {
    fn default() -> Self {
        SnapshotCell {
            current: ArcSwap::from_pointee(RoutingSnapshot::default()),
            registry: ArcSwap::from_pointee(Registry::builtin()),
            generation: AtomicU64::new(0),
            last_error: LastError::default(),
            rebuilding: tokio::sync::Mutex::new(()),
            caps: std::sync::OnceLock::new(),
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

    /// From now on, rebuilds keep `caps` in step with the offers' caps (see [`restore_caps`]).
    pub fn track_caps(&self, caps: Arc<ConversionCaps>) {
        let _ = self.caps.set(caps);
    }

    /// Rebuilds from the store and swaps. On failure the old snapshot keeps serving.
    pub async fn rebuild(&self, store: &dyn RoutingSource) -> Result<u64, StoreError> {
        let _one_at_a_time = self.rebuilding.lock().await;
        match self.build(store).await {
            Ok(snapshot) => {
                let generation = snapshot.generation;
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

    /// A new snapshot from the store, with the counts of caps new to it read before it serves.
    async fn build(&self, store: &dyn RoutingSource) -> Result<RoutingSnapshot, StoreError> {
        let data = store.routing_data().await?;
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let snapshot = RoutingSnapshot::build(generation, data, &self.registry.load());
        if let Some(caps) = self.caps.get() {
            restore_caps(store, &snapshot, caps).await?;
        }
        Ok(snapshot)
    }
}

/// Reads today's conversions into `caps` for the snapshot's capped offers that have no count
/// read in their cap's zone yet (all of them at start; later, caps added, moved to another
/// zone, or back), and forgets the counts of offers the snapshot does not cap. Postbacks count
/// in memory only for capped offers, so without this a cap added at run time would start from
/// zero until a restart. A store error fails the rebuild (the old snapshot keeps serving). A
/// postback that lands between this read and the new snapshot's swap is not counted for a cap
/// that snapshot adds (it is in the store, so the next restart counts it).
pub async fn restore_caps(
    store: &dyn RoutingSource,
    snapshot: &RoutingSnapshot,
    caps: &ConversionCaps,
) -> Result<(), StoreError> {
    let now = crate::model::unix_now();
    let mut capped = std::collections::HashSet::new();
    for offer in snapshot.offers() {
        let Some(cap) = offer.cap else {
            continue;
        };
        capped.insert(offer.id);
        if caps.needs_restore(offer.id, cap.timezone) {
            let since = crate::traffic::day_start(cap.timezone, now);
            let count = store.offer_conversions_since(offer.id, since).await?;
            caps.restore(offer.id, cap.timezone, now, count);
        }
    }
    caps.keep_only(&capped);
    Ok(())
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
