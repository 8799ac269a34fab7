//! Files of landing pages and offers: Keitaro's file editor operations (`add_file`,
//! `get_file`, `update_file`, `remove_file`, `get_structure`, `download`) under
//! `/landing_pages/{id}/…` and `/offers/{id}/…`, and the `archive` field (a base64 ZIP) that
//! creating or updating a landing or offer unpacks into its directory.
//!
//! Files live in [`upload_dir`], where the `local_file` action reads them on the click path.
//! Every path a client names is confined to the object's own directory: it must be relative,
//! without `.`/`..` segments, NUL or control characters, and may not pass through a symbolic
//! link. Archives are checked completely (names, symbolic links, encryption, entry count,
//! unpacked size, every entry's data) before anything is written, then unpacked beside the
//! directory and swapped in, so the click path sees either the old files or the new ones.

use std::collections::BTreeSet;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path as UrlPath, Request, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use base64::Engine;
use serde_json::{Map, Value, json};
use zip::ZipArchive;

use super::input::{Input, Invalid};
use super::ops::{Api, Doc, Shape};
use super::resource::{self, ApiFailure, ApiResult, Draft, Resource};
use super::targets::{LANDINGS, OFFERS};
use crate::api::AppState;
use crate::api::reply::upload_dir;
use crate::registry::FileOwner;
use crate::store::objects::SqlValue;

/// Most files (and directories) an archive may hold.
pub const MAX_ARCHIVE_ENTRIES: usize = 2000;
/// Most bytes an archive may unpack to.
pub const MAX_UNPACKED_BYTES: u64 = 64 * 1024 * 1024;
/// Longest path a client may name, in bytes.
const MAX_PATH_BYTES: usize = 1024;
/// Longest single file or directory name, in bytes.
const MAX_NAME_BYTES: usize = 255;
/// Deepest nesting of directories.
const MAX_DEPTH: usize = 32;
/// Largest file `get_file` shows (bigger ones are downloaded).
const MAX_SHOWN_BYTES: u64 = 16 * 1024 * 1024;
/// Most entries `get_structure` and `download` walk.
const MAX_WALKED_ENTRIES: usize = 20_000;

/// One writer at a time: file writes and archive swaps are rare and must not interleave.
static WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whose files a route works on.
struct Owner {
    resource: &'static Resource,
    file_owner: fn(i64) -> FileOwner,
}

static LANDING_FILES: Owner = Owner {
    resource: &LANDINGS,
    file_owner: FileOwner::Landing,
};

static OFFER_FILES: Owner = Owner {
    resource: &OFFERS,
    file_owner: FileOwner::Offer,
};

/// The file routes of landing pages and offers, documented.
pub fn api() -> Api {
    routes(&LANDING_FILES).merge(routes(&OFFER_FILES))
}

fn routes(owner: &'static Owner) -> Api {
    let base = format!("/{}/{{id}}", owner.resource.path);
    let tag = owner.resource.tag;
    let noun = owner.resource.noun;
    Api::default()
        .route(
            Method::POST,
            &format!("{base}/add_file"),
            Doc::new(tag, format!("Create a file of a {noun} (409 when it exists)"))
                .query("path", true)
                .request(Shape::Json(
                    "The file's content: JSON {\"data\": \"…\"}, a form field data=…, or the raw body \
                     sent as application/octet-stream or text/plain. No content creates an empty file.",
                ))
                .response(Shape::Json("{\"path\": \"order/success.html\"}")),
            post(move |State(state): State<AppState>, UrlPath(id): UrlPath<i64>, input: FileInput| async move {
                write_file(&state, owner, id, input, WriteMode::Create).await
            }),
        )
        .route(
            Method::PUT,
            &format!("{base}/update_file"),
            Doc::new(tag, format!("Save a file of a {noun} (created when missing)"))
                .query("path", true)
                .query("data", true)
                .request(Shape::Json(
                    "data may also come in a JSON or form body, or as the raw body sent as \
                     application/octet-stream or text/plain.",
                ))
                .response(Shape::Json("{\"path\": \"order/success.html\"}")),
            put(move |State(state): State<AppState>, UrlPath(id): UrlPath<i64>, input: FileInput| async move {
                write_file(&state, owner, id, input, WriteMode::Save).await
            }),
        )
        .route(
            Method::GET,
            &format!("{base}/get_file"),
            Doc::new(tag, format!("Read a file of a {noun}"))
                .query("path", true)
                .response(Shape::Json(
                    "{\"path\": \"…\", \"data\": \"…\", \"encoding\": \"utf-8\"}; a file that is not UTF-8 text \
                     comes base64-encoded with \"encoding\": \"base64\".",
                )),
            get(move |State(state): State<AppState>, UrlPath(id): UrlPath<i64>, input: FileInput| async move {
                read_file(&state, owner, id, input).await
            }),
        )
        .route(
            Method::DELETE,
            &format!("{base}/remove_file"),
            Doc::new(tag, format!("Remove a file (or a directory with its contents) of a {noun}"))
                .query("path", true)
                .response(Shape::Json("{\"success\": true}")),
            delete(move |State(state): State<AppState>, UrlPath(id): UrlPath<i64>, input: FileInput| async move {
                remove_file(&state, owner, id, input).await
            }),
        )
        .route(
            Method::GET,
            &format!("{base}/get_structure"),
            Doc::new(tag, format!("The file tree of a {noun}")).response(Shape::Json(
                "EditorFiles: {name, type (directory or file), ext, path, children} from the root \
                 (name and path empty); paths are relative and go to get_file.",
            )),
            get(move |State(state): State<AppState>, UrlPath(id): UrlPath<i64>| async move {
                structure(&state, owner, id).await
            }),
        )
        .route(
            Method::GET,
            &format!("{base}/download"),
            Doc::new(tag, format!("The files of a {noun} as a ZIP"))
                .response(Shape::Json("A ZIP file (application/zip), not JSON.")),
            get(move |State(state): State<AppState>, UrlPath(id): UrlPath<i64>| async move {
                download(&state, owner, id).await
            }),
        )
}

// ---------------------------------------------------------------------------------------------
// Paths

/// A path inside an object's directory, as a client or an archive names it: relative,
/// `/`-separated, every segment a plain name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RelPath(String);

impl RelPath {
    /// Checks `raw`; the message says what is wrong. One trailing `/` is allowed (a directory).
    pub fn parse(raw: &str) -> Result<RelPath, String> {
        if raw.is_empty() {
            return Err("must not be empty.".into());
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(format!("must be at most {MAX_PATH_BYTES} bytes."));
        }
        if raw.contains('\0') {
            return Err("must not contain NUL.".into());
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters.".into());
        }
        if raw.contains('\\') {
            return Err("must use / to separate directories.".into());
        }
        let bytes = raw.as_bytes();
        if raw.starts_with('/')
            || (bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic())
        {
            return Err(
                "must be relative to the object's directory (like order/success.html).".into(),
            );
        }
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        let segments: Vec<&str> = trimmed.split('/').collect();
        if segments.len() > MAX_DEPTH {
            return Err(format!("must be at most {MAX_DEPTH} directories deep."));
        }
        for segment in &segments {
            match *segment {
                "" => return Err("must not contain empty segments (//).".into()),
                "." | ".." => return Err("must not contain . or .. segments.".into()),
                name if name.len() > MAX_NAME_BYTES => {
                    return Err(format!(
                        "must not have names longer than {MAX_NAME_BYTES} bytes."
                    ));
                }
                _ => {}
            }
        }
        Ok(RelPath(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The path under `root`.
    pub fn under(&self, root: &Path) -> PathBuf {
        let mut path = root.to_path_buf();
        path.extend(self.segments());
        path
    }

    fn parent(&self) -> Option<RelPath> {
        self.0
            .rsplit_once('/')
            .map(|(parent, _)| RelPath(parent.to_string()))
    }
}

/// Refuses a path that passes through a symbolic link below `root` (the API never makes one;
/// one placed by hand could lead out of the directory).
fn refuse_links(root: &Path, path: &RelPath) -> Result<(), Invalid> {
    let mut at = root.to_path_buf();
    for segment in path.segments() {
        at.push(segment);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Invalid::one("path", "path passes through a symbolic link."));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Requests

/// A file operation's parameters: `path` and `data` from the query string, a JSON or form body,
/// or (with `Content-Type: application/octet-stream` or `text/plain`) the raw body as `data`.
pub struct FileInput {
    fields: Map<String, Value>,
    raw: Option<Bytes>,
}

impl<S: Send + Sync> FromRequest<S> for FileInput {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("application/octet-stream")
            || content_type.starts_with("text/plain")
        {
            let mut fields = Map::new();
            if let Some(query) = request.uri().query() {
                super::input::merge_pairs(
                    &mut fields,
                    url::form_urlencoded::parse(query.as_bytes()),
                );
            }
            let body = Bytes::from_request(request, state)
                .await
                .map_err(IntoResponse::into_response)?;
            return Ok(FileInput {
                fields,
                raw: Some(body),
            });
        }
        let input = Input::from_request(request, state).await?;
        Ok(FileInput {
            fields: input.fields,
            raw: None,
        })
    }
}

impl FileInput {
    fn path(&self) -> Result<RelPath, Invalid> {
        let Some(raw) = self.fields.get("path") else {
            return Err(Invalid::one("path", "path is required."));
        };
        let Value::String(text) = raw else {
            return Err(Invalid::one("path", "path must be a string."));
        };
        RelPath::parse(text).map_err(|m| Invalid::one("path", format!("path {m}")))
    }

    /// The content sent, if any.
    fn data(&self) -> Result<Option<Vec<u8>>, Invalid> {
        if let Some(raw) = &self.raw {
            return Ok(Some(raw.to_vec()));
        }
        match self.fields.get("data") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone().into_bytes())),
            Some(Value::Number(n)) => Ok(Some(n.to_string().into_bytes())),
            Some(_) => Err(Invalid::one(
                "data",
                "data must be a string (the file's content).",
            )),
        }
    }
}

/// The directory of an existing object (404 when there is no such object).
async fn object_dir(state: &AppState, owner: &Owner, id: i64) -> Result<PathBuf, ApiFailure> {
    resource::load(state, owner.resource, id).await?;
    Ok(upload_dir(
        &state.config.server.data_dir,
        (owner.file_owner)(id),
    ))
}

/// Where temporary files and unpacked archives wait before they are renamed into place: beside
/// the upload directories, so the rename stays on one file system.
fn staging_dir(state: &AppState) -> PathBuf {
    state
        .config
        .server
        .data_dir
        .join("uploads")
        .join(".staging")
}

fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    )
}

fn io_failure(error: std::io::Error, path: &RelPath) -> ApiFailure {
    use std::io::ErrorKind;
    let shown = path.as_str();
    match error.kind() {
        ErrorKind::NotFound => ApiFailure::NotFound(format!("{shown} not found")),
        ErrorKind::AlreadyExists
        | ErrorKind::NotADirectory
        | ErrorKind::IsADirectory
        | ErrorKind::DirectoryNotEmpty => ApiFailure::Conflict(format!(
            "{shown} conflicts with an existing file or directory"
        )),
        _ => ApiFailure::Internal(format!("file operation on {shown}: {error}")),
    }
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiFailure> + Send + 'static,
) -> Result<T, ApiFailure> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiFailure::Internal(format!("file task failed: {e}")))?
}

// ---------------------------------------------------------------------------------------------
// Single files

#[derive(Clone, Copy, PartialEq, Eq)]
enum WriteMode {
    /// `add_file`: the path must be free.
    Create,
    /// `update_file`: replace or create.
    Save,
}

async fn write_file(
    state: &AppState,
    owner: &Owner,
    id: i64,
    input: FileInput,
    mode: WriteMode,
) -> ApiResult {
    let root = object_dir(state, owner, id).await?;
    let path = input.path()?;
    let data = input.data()?;
    let data = match (data, mode) {
        (Some(data), _) => data,
        (None, WriteMode::Create) => Vec::new(),
        (None, WriteMode::Save) => return Err(Invalid::one("data", "data is required.").into()),
    };
    let staging = staging_dir(state);
    let _writer = WRITES.lock().await;
    let shown = path.clone();
    run_blocking(move || {
        refuse_links(&root, &path)?;
        let target = path.under(&root);
        match std::fs::symlink_metadata(&target) {
            Ok(meta) if meta.is_dir() => {
                return Err(ApiFailure::Conflict(format!(
                    "{} is a directory",
                    path.as_str()
                )));
            }
            Ok(_) if mode == WriteMode::Create => {
                return Err(ApiFailure::Conflict(format!(
                    "{} already exists; change it with update_file",
                    path.as_str()
                )));
            }
            _ => {}
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_failure(e, &path))?;
        }
        std::fs::create_dir_all(&staging).map_err(|e| io_failure(e, &path))?;
        // Written aside and renamed, so a click never reads half a file.
        let temporary = staging.join(unique_name("file"));
        let written =
            std::fs::write(&temporary, &data).and_then(|()| std::fs::rename(&temporary, &target));
        if let Err(error) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(io_failure(error, &path));
        }
        Ok(())
    })
    .await?;
    Ok(Json(json!({ "path": shown.as_str() })).into_response())
}

async fn read_file(state: &AppState, owner: &Owner, id: i64, input: FileInput) -> ApiResult {
    let root = object_dir(state, owner, id).await?;
    let path = input.path()?;
    run_blocking(move || {
        refuse_links(&root, &path)?;
        let target = path.under(&root);
        let meta = std::fs::metadata(&target).map_err(|e| io_failure(e, &path))?;
        if meta.is_dir() {
            return Err(ApiFailure::BadRequest(format!(
                "{} is a directory",
                path.as_str()
            )));
        }
        if meta.len() > MAX_SHOWN_BYTES {
            return Err(ApiFailure::BadRequest(format!(
                "{} is larger than {MAX_SHOWN_BYTES} bytes; use download",
                path.as_str()
            )));
        }
        let bytes = std::fs::read(&target).map_err(|e| io_failure(e, &path))?;
        let answer = match String::from_utf8(bytes) {
            Ok(text) => json!({ "path": path.as_str(), "data": text, "encoding": "utf-8" }),
            Err(error) => json!({
                "path": path.as_str(),
                "data": base64::engine::general_purpose::STANDARD.encode(error.as_bytes()),
                "encoding": "base64",
            }),
        };
        Ok(Json(answer).into_response())
    })
    .await
}

async fn remove_file(state: &AppState, owner: &Owner, id: i64, input: FileInput) -> ApiResult {
    let root = object_dir(state, owner, id).await?;
    let path = input.path()?;
    let _writer = WRITES.lock().await;
    run_blocking(move || {
        refuse_links(&root, &path)?;
        let target = path.under(&root);
        let meta = std::fs::symlink_metadata(&target).map_err(|e| io_failure(e, &path))?;
        let removed = if meta.is_dir() {
            // Does not follow links inside the directory.
            std::fs::remove_dir_all(&target)
        } else {
            std::fs::remove_file(&target)
        };
        removed.map_err(|e| io_failure(e, &path))?;
        Ok(Json(json!({ "success": true })).into_response())
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// The tree and the download

/// A file or directory under an object's directory (symbolic links are left out).
struct Entry {
    path: RelPath,
    dir: bool,
}

/// Every file and directory under `root`, parents before children, names sorted.
fn walk(root: &Path) -> std::io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut pending = vec![None::<RelPath>];
    while let Some(dir) = pending.pop() {
        let at = dir
            .as_ref()
            .map_or_else(|| root.to_path_buf(), |d| d.under(root));
        let listing = match std::fs::read_dir(&at) {
            Ok(listing) => listing,
            Err(error) if dir.is_none() && error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(entries);
            }
            Err(error) => return Err(error),
        };
        let mut children = Vec::new();
        for item in listing {
            let item = item?;
            let kind = item.file_type()?;
            let Some(name) = item.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if kind.is_symlink() || !(kind.is_dir() || kind.is_file()) {
                continue;
            }
            let joined = match &dir {
                Some(parent) => format!("{}/{name}", parent.as_str()),
                None => name,
            };
            let Ok(path) = RelPath::parse(&joined) else {
                continue;
            };
            children.push(Entry {
                path,
                dir: kind.is_dir(),
            });
        }
        children.sort_by(|a, b| a.path.cmp(&b.path));
        for child in children.iter().rev().filter(|c| c.dir) {
            pending.push(Some(child.path.clone()));
        }
        entries.extend(children);
        if entries.len() > MAX_WALKED_ENTRIES {
            return Err(std::io::Error::other(format!(
                "more than {MAX_WALKED_ENTRIES} files"
            )));
        }
    }
    Ok(entries)
}

fn name_of(path: &RelPath) -> &str {
    path.as_str().rsplit('/').next().unwrap_or("")
}

fn extension_of(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext,
        _ => "",
    }
}

/// The EditorFiles tree: directories first, then files, each by name.
fn tree(entries: &[Entry]) -> Value {
    fn node(entries: &[Entry], parent: Option<&RelPath>) -> Vec<Value> {
        let mut children: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.path.parent().as_ref() == parent)
            .collect();
        children.sort_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.path.cmp(&b.path)));
        children
            .into_iter()
            .map(|entry| {
                let name = name_of(&entry.path);
                if entry.dir {
                    json!({
                        "name": name, "type": "directory", "ext": "", "path": entry.path.as_str(),
                        "children": node(entries, Some(&entry.path)),
                    })
                } else {
                    json!({
                        "name": name, "type": "file", "ext": extension_of(name), "path": entry.path.as_str(),
                        "children": [],
                    })
                }
            })
            .collect()
    }
    json!({ "name": "", "type": "directory", "ext": "", "path": "", "children": node(entries, None) })
}

async fn structure(state: &AppState, owner: &Owner, id: i64) -> ApiResult {
    let root = object_dir(state, owner, id).await?;
    run_blocking(move || {
        let entries = walk(&root)
            .map_err(|e| ApiFailure::Internal(format!("listing {}: {e}", root.display())))?;
        Ok(Json(tree(&entries)).into_response())
    })
    .await
}

async fn download(state: &AppState, owner: &Owner, id: i64) -> ApiResult {
    let root = object_dir(state, owner, id).await?;
    let file_name = format!("{}_{id}.zip", owner.resource.path.trim_end_matches('s'));
    let zipped = run_blocking(move || {
        pack(&root).map_err(|e| ApiFailure::Internal(format!("packing {}: {e}", root.display())))
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        zipped,
    )
        .into_response())
}

/// A ZIP of every file and directory under `root` (deflated).
fn pack(root: &Path) -> Result<Vec<u8>, String> {
    let entries = walk(root).map_err(|e| e.to_string())?;
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for entry in &entries {
        if entry.dir {
            writer
                .add_directory(format!("{}/", entry.path.as_str()), options)
                .map_err(|e| e.to_string())?;
            continue;
        }
        let bytes = std::fs::read(entry.path.under(root)).map_err(|e| e.to_string())?;
        writer
            .start_file(entry.path.as_str(), options)
            .map_err(|e| e.to_string())?;
        writer.write_all(&bytes).map_err(|e| e.to_string())?;
    }
    Ok(writer.finish().map_err(|e| e.to_string())?.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Archives

/// A ZIP whose names, kinds, count and sizes passed the checks; its data is checked as it is
/// read (see [`Archive::each_file`]).
pub struct Archive {
    zip: ZipArchive<Cursor<Vec<u8>>>,
    /// (entry index, path, is a directory), in archive order.
    entries: Vec<(usize, RelPath, bool)>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("entries", &self.entries.len())
            .finish()
    }
}

/// ZIP tools add these; they are not part of a landing.
fn is_tool_litter(name: &str) -> bool {
    name.starts_with("__MACOSX/")
        || name == "__MACOSX"
        || name.rsplit('/').next() == Some(".DS_Store")
}

impl Archive {
    /// Decodes a base64 ZIP (whitespace and a `data:…;base64,` prefix allowed) and checks every
    /// entry's name and kind, the entry count and the sizes the archive declares.
    pub fn open(text: &str) -> Result<Archive, String> {
        let text = match text.trim_start().strip_prefix("data:") {
            Some(rest) => rest
                .split_once(";base64,")
                .map(|(_, data)| data)
                .unwrap_or(rest),
            None => text,
        };
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let lenient = base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
        let bytes = base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, lenient)
            .decode(&compact)
            .or_else(|_| {
                base64::engine::GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient)
                    .decode(&compact)
            })
            .map_err(|e| format!("archive is not valid base64: {e}."))?;
        let mut zip = ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| format!("archive is not a ZIP file: {e}."))?;
        if zip.len() > MAX_ARCHIVE_ENTRIES {
            return Err(format!(
                "archive holds {} entries; at most {MAX_ARCHIVE_ENTRIES} are allowed.",
                zip.len()
            ));
        }
        let mut entries = Vec::new();
        let mut declared: u64 = 0;
        let mut files = BTreeSet::new();
        let mut dirs = BTreeSet::new();
        for index in 0..zip.len() {
            let entry = zip
                .by_index_raw(index)
                .map_err(|e| format!("archive entry {index} cannot be read: {e}."))?;
            let raw_name = String::from_utf8_lossy(entry.name_raw()).into_owned();
            if is_tool_litter(&raw_name) {
                continue;
            }
            let name = raw_name.replace('\\', "/");
            let path =
                RelPath::parse(&name).map_err(|m| format!("archive entry {raw_name:?} {m}"))?;
            if entry.is_symlink() {
                return Err(format!(
                    "archive entry {raw_name:?} is a symbolic link; links are not allowed."
                ));
            }
            if entry.encrypted() {
                return Err(format!(
                    "archive entry {raw_name:?} is encrypted; send an unencrypted ZIP."
                ));
            }
            let dir = entry.is_dir();
            if !dir {
                declared = declared.saturating_add(entry.size());
                if declared > MAX_UNPACKED_BYTES {
                    return Err(format!(
                        "archive unpacks to more than {MAX_UNPACKED_BYTES} bytes."
                    ));
                }
                if !files.insert(path.clone()) {
                    return Err(format!("archive holds {} twice.", path.as_str()));
                }
            }
            let mut parent = if dir {
                Some(path.clone())
            } else {
                path.parent()
            };
            while let Some(at) = parent {
                parent = at.parent();
                dirs.insert(at);
            }
            drop(entry);
            entries.push((index, path, dir));
        }
        if let Some(clash) = files.intersection(&dirs).next() {
            return Err(format!(
                "archive holds {} both as a file and as a directory.",
                clash.as_str()
            ));
        }
        if files.is_empty() {
            return Err("archive holds no files.".into());
        }
        Ok(Archive { zip, entries })
    }

    /// The page a `local_file` action should serve: `index.html` (or `.htm`, `.php`) nearest to
    /// the root, else the first HTML file.
    pub fn entry_page(&self) -> String {
        let files = || {
            self.entries
                .iter()
                .filter(|(_, _, dir)| !dir)
                .map(|(_, path, _)| path.as_str())
        };
        let depth = |path: &str| path.matches('/').count();
        ["index.html", "index.htm", "index.php"]
            .iter()
            .find_map(|index| {
                files()
                    .filter(|path| name_of_str(path) == *index)
                    .min_by_key(|path| depth(path))
            })
            .or_else(|| {
                files()
                    .filter(|path| {
                        matches!(
                            extension_of(name_of_str(path))
                                .to_ascii_lowercase()
                                .as_str(),
                            "html" | "htm"
                        )
                    })
                    .min_by_key(|path| depth(path))
            })
            .unwrap_or("index.html")
            .to_string()
    }

    pub fn has_file(&self, path: &str) -> bool {
        self.entries
            .iter()
            .any(|(_, p, dir)| !dir && p.as_str() == path)
    }

    /// Reads every entry, handing each file's data to `take` through a reader bounded by what
    /// is left of [`MAX_UNPACKED_BYTES`] (declared sizes are not trusted); directories get `None`.
    /// Damaged data (a bad checksum, a broken stream) and unsupported compression fail here.
    fn each_entry(
        &mut self,
        mut take: impl FnMut(&RelPath, Option<&mut dyn Read>) -> std::io::Result<()>,
    ) -> Result<(), String> {
        let mut left = MAX_UNPACKED_BYTES;
        for (index, path, dir) in &self.entries {
            if *dir {
                take(path, None).map_err(|e| {
                    format!(
                        "archive entry {} could not be unpacked: {e}.",
                        path.as_str()
                    )
                })?;
                continue;
            }
            let entry = self
                .zip
                .by_index(*index)
                .map_err(|e| format!("archive entry {} cannot be read: {e}.", path.as_str()))?;
            let mut counted = CountingReader {
                inner: entry.take(left + 1),
                count: 0,
            };
            take(path, Some(&mut counted))
                .map_err(|e| format!("archive entry {} is damaged: {e}.", path.as_str()))?;
            // Drain what the taker left unread, so the checksum is verified and the size counted.
            std::io::copy(&mut counted, &mut std::io::sink())
                .map_err(|e| format!("archive entry {} is damaged: {e}.", path.as_str()))?;
            if counted.count > left {
                return Err(format!(
                    "archive unpacks to more than {MAX_UNPACKED_BYTES} bytes."
                ));
            }
            left -= counted.count;
        }
        Ok(())
    }

    /// Reads every entry's data without keeping it: the check before anything is written.
    pub fn verify(&mut self) -> Result<(), String> {
        self.each_entry(|_, _| Ok(()))
    }

    /// Unpacks into `fresh` (a new, empty directory).
    fn unpack_into(&mut self, fresh: &Path) -> Result<(), String> {
        self.each_entry(|path, data| {
            let target = path.under(fresh);
            match data {
                None => std::fs::create_dir_all(&target),
                Some(reader) => {
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    let mut file = std::fs::File::create_new(&target)?;
                    std::io::copy(reader, &mut file)?;
                    Ok(())
                }
            }
        })
    }
}

fn name_of_str(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
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
) -> Result<(), ApiFailure> {
    let Some(text) = archive_text(input).and_then(Value::as_str) else {
        return Ok(());
    };
    let mut archive = Archive::open(text).map_err(ApiFailure::Internal)?;
    let owner = if offer {
        FileOwner::Offer(id)
    } else {
        FileOwner::Landing(id)
    };
    let target = upload_dir(&state.config.server.data_dir, owner);
    let staging = staging_dir(state);
    let _writer = WRITES.lock().await;
    run_blocking(move || replace_dir(&mut archive, &staging, &target).map_err(ApiFailure::Internal))
        .await
}

fn replace_dir(archive: &mut Archive, staging: &Path, target: &Path) -> Result<(), String> {
    let failed = |what: &str, e: std::io::Error| format!("{what}: {e}");
    std::fs::create_dir_all(staging).map_err(|e| failed("creating the staging directory", e))?;
    let fresh = staging.join(unique_name("unpack"));
    std::fs::create_dir(&fresh).map_err(|e| failed("creating the unpack directory", e))?;
    if let Err(message) = archive.unpack_into(&fresh) {
        let _ = std::fs::remove_dir_all(&fresh);
        return Err(message);
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| failed("creating the upload directory", e))?;
    }
    let old = staging.join(unique_name("replaced"));
    let had_files = match std::fs::rename(target, &old) {
        Ok(()) => true,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&fresh);
            return Err(failed("moving the old files aside", error));
        }
    };
    if let Err(error) = std::fs::rename(&fresh, target) {
        if had_files {
            let _ = std::fs::rename(&old, target);
        }
        let _ = std::fs::remove_dir_all(&fresh);
        return Err(failed("moving the unpacked files into place", error));
    }
    if had_files && let Err(error) = std::fs::remove_dir_all(&old) {
        tracing::warn!(%error, path = %old.display(), "The replaced files could not be removed.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_of(entries: &[(&str, &[u8])]) -> String {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in entries {
            if name.ends_with('/') {
                writer.add_directory(*name, options).unwrap();
            } else {
                writer.start_file(*name, options).unwrap();
                writer.write_all(data).unwrap();
            }
        }
        let bytes = writer.finish().unwrap().into_inner();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn paths_stay_inside() {
        for good in [
            "index.html",
            "css/site.css",
            "a/b/c.js",
            "dir/",
            "..hidden",
            "a..b/c",
        ] {
            assert!(RelPath::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            ".",
            "a//b",
            "a\\..\\b",
            "a\0b",
            "C:/x",
            "a\nb",
        ] {
            assert!(RelPath::parse(bad).is_err(), "{bad:?}");
        }
        assert!(RelPath::parse(&"a/".repeat(40)).is_err());
        assert!(RelPath::parse(&"n".repeat(300)).is_err());
        assert_eq!(RelPath::parse("css/").unwrap().as_str(), "css");
    }

    #[test]
    fn archives_are_checked_before_use() {
        let mut good = Archive::open(&zip_of(&[
            ("index.html", b"<h1>hi</h1>"),
            ("css/", b""),
            ("css/a.css", b"b{}"),
        ]))
        .unwrap();
        good.verify().unwrap();
        assert_eq!(good.entry_page(), "index.html");
        let nested = Archive::open(&zip_of(&[
            ("site/index.html", b"x"),
            ("site/about.html", b"y"),
        ]))
        .unwrap();
        assert_eq!(nested.entry_page(), "site/index.html");
        assert!(
            Archive::open("not base64 !!")
                .unwrap_err()
                .contains("base64")
        );
        assert!(Archive::open("aGVsbG8=").unwrap_err().contains("not a ZIP"));
        assert!(
            Archive::open(&zip_of(&[("../evil.html", b"x")]))
                .unwrap_err()
                .contains("..")
        );
        assert!(
            Archive::open(&zip_of(&[("/abs.html", b"x")]))
                .unwrap_err()
                .contains("relative")
        );
        assert!(
            Archive::open(&zip_of(&[("css/", b"")]))
                .unwrap_err()
                .contains("no files")
        );
        assert!(
            Archive::open(&zip_of(&[("a", b"x"), ("a/b", b"y")]))
                .unwrap_err()
                .contains("both")
        );
        // macOS litter is skipped, not refused.
        let litter = Archive::open(&zip_of(&[
            ("__MACOSX/._index.html", b"x"),
            ("index.html", b"y"),
        ]))
        .unwrap();
        assert_eq!(litter.entries.len(), 1);
    }

    #[test]
    fn symlinks_in_archives_are_refused() {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        writer.add_symlink("link", "/etc/passwd", options).unwrap();
        writer.start_file("index.html", options).unwrap();
        writer.write_all(b"x").unwrap();
        let text =
            base64::engine::general_purpose::STANDARD.encode(writer.finish().unwrap().into_inner());
        assert!(Archive::open(&text).unwrap_err().contains("symbolic link"));
    }

    #[test]
    fn a_zip_bomb_stops_at_the_limit() {
        // 70 MiB of zeros deflate to about 70 KiB; the declared size alone refuses it.
        let zeros = vec![0u8; 70 * 1024 * 1024];
        let text = zip_of(&[("big.bin", &zeros)]);
        assert!(Archive::open(&text).unwrap_err().contains("more than"));
    }
}
