//! The campaigns directory in a running tracker: loaded at start and again whenever a file
//! changes (through the reload supervisor's watcher). A load that finds any problem changes
//! nothing: the previous objects and routing keep serving, and the problems are reported at
//! `/health` and in the log.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use super::SnapshotCell;
use crate::store::Store;

/// What `/health` shows about the campaigns directory.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FilesStatus {
    pub dir: String,
    /// Counts successful loads.
    pub generation: u64,
    /// Objects (streams included) the directory declared at the last successful load.
    pub objects: usize,
    /// Changes the last successful load wrote.
    pub last_changes: usize,
    /// Problems of the last load; empty when it succeeded.
    pub last_errors: Vec<String>,
}

/// Loads the campaigns directory into the store and the routing snapshot.
pub struct CampaignFiles {
    dir: PathBuf,
    status: Mutex<FilesStatus>,
}

impl CampaignFiles {
    pub fn new(dir: PathBuf) -> Self {
        CampaignFiles {
            status: Mutex::new(FilesStatus {
                dir: dir.display().to_string(),
                ..Default::default()
            }),
            dir,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn status(&self) -> FilesStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads and checks the directory with the current registry; when everything is valid,
    /// writes the changes in one transaction and rebuilds the snapshot. Returns how many
    /// objects changed; `Err` lists every problem (and nothing changed).
    pub async fn load(&self, store: &dyn Store, cell: &SnapshotCell) -> Result<usize, Vec<String>> {
        let registry = cell.registry();
        let dir = self.dir.clone();
        let loaded = tokio::task::spawn_blocking(move || crate::files::load_dir(&dir, &registry))
            .await
            .unwrap_or_else(|e| {
                Err(vec![crate::files::FileProblem {
                    file: String::new(),
                    line: None,
                    path: String::new(),
                    message: format!("reading the campaigns directory panicked: {e}"),
                }])
            })
            .map_err(|problems| problems.iter().map(ToString::to_string).collect::<Vec<_>>());
        let result = match loaded {
            Ok(loaded) => self
                .apply(store, cell, &loaded)
                .await
                .map(|changes| (changes, loaded.set.object_count())),
            Err(problems) => Err(problems),
        };
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok((changes, objects)) => {
                status.generation += 1;
                status.objects = objects;
                status.last_changes = changes;
                status.last_errors.clear();
                tracing::info!(dir = %self.dir.display(), objects, changes, "Campaign files loaded.");
                Ok(changes)
            }
            Err(problems) => {
                for problem in &problems {
                    tracing::error!(dir = %self.dir.display(), "{problem}");
                }
                tracing::error!(
                    dir = %self.dir.display(),
                    problems = problems.len(),
                    "The campaign files have problems; continuing with the previous state."
                );
                status.last_errors = problems.clone();
                Err(problems)
            }
        }
    }

    async fn apply(
        &self,
        store: &dyn Store,
        cell: &SnapshotCell,
        loaded: &crate::files::LoadedDir,
    ) -> Result<usize, Vec<String>> {
        let fail =
            |e: crate::store::StoreError| vec![format!("cannot apply the campaign files: {e}")];
        let stored = store.file_objects().await.map_err(fail)?;
        let plan = crate::files::plan_changes(loaded, &stored);
        if plan.is_empty() {
            return Ok(0);
        }
        store.apply_files(&plan).await.map_err(fail)?;
        for change in &plan.changes {
            tracing::info!("Campaign files: {change}");
        }
        cell.rebuild(store).await.map_err(|e| vec![e.to_string()])?;
        Ok(plan.changes.len())
    }
}
