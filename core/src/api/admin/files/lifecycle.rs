//! What a landing's or offer's create, update and clone do with its files: an `archive` sent
//! with the object is checked, then unpacked and swapped in; a clone gets the original's files.
//! Also the file routes' shared means: one writer at a time, a staging directory, blocking work
//! off the runtime.

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::archive::{Archive, copy_tree, replace_dir};
use crate::api::ApiError;
use crate::api::AppState;
use crate::api::admin::input::Invalid;
use crate::api::admin::schema::Draft;
use crate::api::reply::upload_dir;
use crate::registry::FileOwner;
use crate::store::objects::SqlValue;

/// One writer at a time: file writes and archive swaps are rare and must not interleave.
pub(super) static WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where temporary files and unpacked archives wait before they are renamed into place: beside
/// the upload directories, so the rename stays on one file system.
pub(super) fn staging_dir(state: &AppState) -> PathBuf {
    state
        .config
        .server
        .data_dir
        .join("uploads")
        .join(".staging")
}

pub(super) async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("file task failed: {e}")))?
}

/// The `archive` a create or update carries (absent, null or empty: none).
fn archive_text(input: &Map<String, Value>) -> Option<&Value> {
    input
        .get("archive")
        .filter(|raw| !(raw.is_null() || raw.as_str().is_some_and(|s| s.trim().is_empty())))
}

/// For a landing's or offer's create or update: checks `archive` completely (a 406 on `archive`
/// when it is not a readable, safe ZIP) and, when it is good, makes the object serve it —
/// type `local` and action `local_file` unless the client said otherwise, and an action
/// payload naming the archive's entry page unless the client sent one or the current one
/// names a file of the archive.
pub fn prepare_archive(draft: &mut Draft<'_>, type_column: &'static str, invalid: &mut Invalid) {
    let Some(raw) = archive_text(draft.input) else {
        return;
    };
    let Some(text) = raw.as_str() else {
        invalid.add(
            "archive",
            "archive must be a string: a ZIP file encoded in base64.",
        );
        return;
    };
    let archive =
        match Archive::open(text).and_then(|mut archive| archive.verify().map(|()| archive)) {
            Ok(archive) => archive,
            Err(message) => {
                invalid.add("archive", message);
                return;
            }
        };
    if !draft.input.contains_key(type_column) {
        draft.set(type_column, SqlValue::Text("local".into()));
    }
    if !draft.input.contains_key("action_type") {
        draft.set("action_type", SqlValue::Text("local_file".into()));
    }
    let serves_files = draft.effective("action_type").as_str() == Some("local_file");
    if serves_files && !draft.input.contains_key("action_payload") {
        let current = draft
            .effective("action_payload")
            .as_str()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .and_then(|payload| payload.as_str().map(str::to_string));
        if !current.is_some_and(|page| archive.has_file(&page)) {
            let page = Value::String(archive.entry_page()).to_string();
            draft.set("action_payload", SqlValue::Text(page));
        }
    }
}

/// After a landing's or offer's create or update: unpacks its `archive` (already checked by
/// [`prepare_archive`]) beside its directory and swaps it in, replacing every file it had.
pub async fn unpack_archive(
    state: &AppState,
    offer: bool,
    id: i64,
    input: &Map<String, Value>,
) -> Result<(), ApiError> {
    let Some(text) = archive_text(input).and_then(Value::as_str) else {
        return Ok(());
    };
    let mut archive = Archive::open(text).map_err(ApiError::Internal)?;
    let owner = if offer {
        FileOwner::Offer(id)
    } else {
        FileOwner::Landing(id)
    };
    let target = upload_dir(&state.config.server.data_dir, owner);
    let staging = staging_dir(state);
    let _writer = WRITES.lock().await;
    run_blocking(move || {
        replace_dir(&staging, &target, |fresh| archive.unpack_into(fresh))
            .map_err(ApiError::Internal)
    })
    .await
}

/// After a landing or offer was cloned: the copy gets the original's files.
pub async fn copy_files(
    state: &AppState,
    offer: bool,
    original: i64,
    copy: i64,
) -> Result<(), ApiError> {
    let owner = |id| {
        if offer {
            FileOwner::Offer(id)
        } else {
            FileOwner::Landing(id)
        }
    };
    let source = upload_dir(&state.config.server.data_dir, owner(original));
    if !source.is_dir() {
        return Ok(());
    }
    let target = upload_dir(&state.config.server.data_dir, owner(copy));
    let staging = staging_dir(state);
    let _writer = WRITES.lock().await;
    run_blocking(move || {
        replace_dir(&staging, &target, |fresh| copy_tree(&source, fresh))
            .map_err(ApiError::Internal)
    })
    .await
}
