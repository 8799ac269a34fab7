//! Line lists for the `{from_file:NAME}` macro: `NAME.txt` files in a directory
//! (`<data_dir>/macro_files`), read into memory at start and re-read when a file changes (a
//! poll of modification times, off the click path). A click picks one non-empty line at random;
//! an unknown name gives an empty value.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rand::seq::IndexedRandom;

/// Files larger than this are skipped (with a warning): the lists live in memory.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The loaded lists by name.
#[derive(Default)]
pub struct MacroFiles {
    dir: Option<PathBuf>,
    lists: ArcSwap<HashMap<String, Arc<[String]>>>,
    /// (name, modified, length) of each file last loaded, to notice changes.
    seen: std::sync::Mutex<Vec<(String, Option<SystemTime>, u64)>>,
}

impl MacroFiles {
    /// Lists from `dir` (which may not exist yet).
    pub fn open(dir: PathBuf) -> MacroFiles {
        let files = MacroFiles {
            dir: Some(dir),
            ..MacroFiles::default()
        };
        files.reload_if_changed();
        files
    }

    /// A random line of the list `name`, if it has any.
    pub fn pick(&self, name: &str) -> Option<String> {
        let lists = self.lists.load();
        lists
            .get(name.trim())
            .and_then(|lines| lines.choose(&mut rand::rng()).cloned())
    }

    fn listing(dir: &Path) -> Vec<(String, Option<SystemTime>, u64)> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut found: Vec<(String, Option<SystemTime>, u64)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let path = entry.path();
                let name = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".txt")?
                    .to_string();
                let meta = entry.metadata().ok()?;
                meta.is_file()
                    .then(|| (name, meta.modified().ok(), meta.len()))
            })
            .collect();
        found.sort();
        found
    }

    /// Re-reads the directory when a file was added, removed or changed. Blocking IO.
    pub fn reload_if_changed(&self) {
        let Some(dir) = &self.dir else { return };
        let listing = Self::listing(dir);
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if *seen == listing {
            return;
        }
        let mut lists = HashMap::new();
        for (name, _, length) in &listing {
            if *length > MAX_FILE_BYTES {
                tracing::warn!(
                    file = name,
                    length,
                    "Skipping a macro file larger than 4 MiB."
                );
                continue;
            }
            match std::fs::read_to_string(dir.join(format!("{name}.txt"))) {
                Ok(text) => {
                    let lines: Vec<String> = text
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_string)
                        .collect();
                    lists.insert(name.clone(), Arc::from(lines));
                }
                Err(error) => tracing::warn!(file = name, %error, "Cannot read a macro file."),
            }
        }
        tracing::info!(files = lists.len(), "Macro files loaded.");
        self.lists.store(Arc::new(lists));
        *seen = listing;
    }

    /// Polls the directory every `every` on a blocking thread.
    pub fn spawn_watcher(self: &Arc<Self>, every: Duration) {
        let files = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let files = Arc::clone(&files);
                let _ = tokio::task::spawn_blocking(move || files.reload_if_changed()).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_picked_and_changes_noticed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("domains.txt"),
            "a.example\n\n  b.example  \n",
        )
        .unwrap();
        std::fs::write(dir.path().join("ignored.csv"), "x").unwrap();
        let files = MacroFiles::open(dir.path().to_path_buf());
        for _ in 0..20 {
            let picked = files.pick("domains").unwrap();
            assert!(picked == "a.example" || picked == "b.example", "{picked}");
        }
        assert_eq!(files.pick("ignored"), None);
        assert_eq!(files.pick("missing"), None);
        std::fs::write(
            dir.path().join("domains.txt"),
            "c.example\nc.example\nc.example\n",
        )
        .unwrap();
        files.reload_if_changed();
        assert_eq!(files.pick("domains").unwrap(), "c.example");
    }
}
