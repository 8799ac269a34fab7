//! Clicks the recorder could not write and did not lose: those the store refused for their
//! own data (a value out of range, a text the database cannot hold: retrying them would fail
//! for ever and hold every later click behind them), and those still unwritten when shutdown
//! gave up on an unreachable store. They are appended to `set-aside/clicks.jsonl` in the data
//! directory, one JSON object a line (`{"at": unix seconds, "reason": text, "click": {…}}`),
//! counted at `/health`, and written into the store again by `switchyard replay-set-aside`
//! (which keeps, in the same file, the ones the store still refuses).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::Click;
use crate::store::{ClickWriter, StoreError};

/// The set-aside file of one data directory.
#[derive(Debug, Clone)]
pub struct SetAside {
    path: PathBuf,
}

/// One line of the file.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    at: i64,
    reason: String,
    click: Click,
}

/// What [`SetAside::replay`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Clicks the store now holds (written now, or already there).
    pub written: u64,
    /// Clicks the store refused again; they stay in the file.
    pub kept: u64,
    /// Lines that were not a set-aside click (left in the file, untouched).
    pub unreadable: u64,
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{path}: {error}")]
    File { path: String, error: std::io::Error },
    #[error("the store is unavailable; the clicks not yet written stay for the next replay: {0}")]
    Store(StoreError),
}

impl SetAside {
    /// The file under `data_dir` (created on the first click set aside).
    pub fn in_data_dir(data_dir: &Path) -> SetAside {
        SetAside {
            path: data_dir.join("set-aside").join("clicks.jsonl"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `click` with the reason it was set aside, and syncs the file: this runs only
    /// for clicks that would otherwise be lost, so it is rare and worth the fsync.
    pub fn keep(&self, click: &Click, reason: &str) -> std::io::Result<()> {
        let entry = Entry {
            at: chrono::Utc::now().timestamp(),
            reason: reason.to_string(),
            click: click.clone(),
        };
        let mut line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(&line)?;
        file.sync_data()
    }

    /// Keeps a journal record that does not decode (written by another version of
    /// Switchyard) as it is, framed like the journal, in `set-aside/{file}`
    /// (`undecodable.journal` for clicks, `undecodable-postbacks.journal` for held postbacks).
    pub fn keep_record(&self, file: &str, payload: &[u8]) -> std::io::Result<()> {
        let mut framed = Vec::with_capacity(payload.len() + 8);
        crate::journal::frame_record(payload, &mut framed);
        let path = self.path.with_file_name(file);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        file.write_all(&framed)?;
        file.sync_data()
    }

    /// Writes every set-aside click into `store`, one at a time (so one that is refused again
    /// does not hold the others back); the ones still refused, and any line it could not read,
    /// are appended to the file again. The file is first renamed to `clicks.jsonl.replaying`,
    /// so clicks a running tracker sets aside meanwhile go to a new file and are never
    /// overwritten; a replay stopped by an unreachable store leaves that file for the next
    /// replay, which takes it up first (clicks written before are written again: inserts are
    /// idempotent).
    pub async fn replay(&self, store: &dyn ClickWriter) -> Result<ReplayReport, ReplayError> {
        let working = self.path.with_extension("jsonl.replaying");
        let file_error = |error| ReplayError::File {
            path: working.display().to_string(),
            error,
        };
        let mut report = ReplayReport::default();
        if !working.exists() {
            match std::fs::rename(&self.path, &working) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(report),
                Err(error) => return Err(file_error(error)),
            }
        }
        let file = File::open(&working).map_err(file_error)?;
        let mut remaining = Vec::new();
        for line in BufReader::new(file).split(b'\n') {
            let line = line.map_err(file_error)?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Ok(mut entry) = serde_json::from_slice::<Entry>(&line) else {
                report.unreadable += 1;
                remaining.extend_from_slice(&line);
                remaining.push(b'\n');
                continue;
            };
            match store
                .insert_clicks(std::slice::from_ref(&entry.click))
                .await
            {
                Ok(_) => report.written += 1,
                Err(error) if error.is_about_the_data() => {
                    report.kept += 1;
                    entry.reason = error.to_string();
                    remaining.extend(
                        serde_json::to_vec(&entry)
                            .map_err(std::io::Error::other)
                            .map_err(file_error)?,
                    );
                    remaining.push(b'\n');
                }
                Err(error) => return Err(ReplayError::Store(error)),
            }
        }
        if !remaining.is_empty() {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(file_error)?;
            file.write_all(&remaining)
                .and_then(|_| file.sync_data())
                .map_err(file_error)?;
        }
        std::fs::remove_file(&working).map_err(file_error)?;
        Ok(report)
    }
}
