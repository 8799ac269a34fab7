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

mod archive;
pub(super) mod lifecycle;
mod paths;

use std::path::PathBuf;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path as UrlPath, Request, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::input::{Input, Invalid};
use super::ops::{Api, Doc, Shape};
use super::resource::{self, ApiError, ApiResult, Resource};
use super::targets::{LANDINGS, OFFERS};
use crate::api::AppState;
use crate::api::reply::upload_dir;
use crate::registry::FileOwner;

use archive::pack;
use lifecycle::{WRITES, run_blocking, staging_dir};
use paths::{RelPath, refuse_links, tree, walk};

/// Largest file `get_file` shows (bigger ones are downloaded).
const MAX_SHOWN_BYTES: u64 = 16 * 1024 * 1024;

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
        if content_type.starts_with("multipart/") {
            // Read as a urlencoded form it would silently lose the content.
            return Err(ApiError::BadRequest(
                "multipart bodies are not read here: send data as JSON {\"data\": …}, a urlencoded form, \
                 or the raw body as application/octet-stream"
                    .into(),
            )
            .into_response());
        }
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
async fn object_dir(state: &AppState, owner: &Owner, id: i64) -> Result<PathBuf, ApiError> {
    resource::load(state, owner.resource, id).await?;
    Ok(upload_dir(
        &state.config.server.data_dir,
        (owner.file_owner)(id),
    ))
}

fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    )
}

fn io_failure(error: std::io::Error, path: &RelPath) -> ApiError {
    use std::io::ErrorKind;
    let shown = path.as_str();
    match error.kind() {
        ErrorKind::NotFound => ApiError::NotFound(format!("{shown} not found")),
        ErrorKind::AlreadyExists
        | ErrorKind::NotADirectory
        | ErrorKind::IsADirectory
        | ErrorKind::DirectoryNotEmpty => ApiError::Conflict(format!(
            "{shown} conflicts with an existing file or directory"
        )),
        _ => ApiError::Internal(format!("file operation on {shown}: {error}")),
    }
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
                return Err(ApiError::Conflict(format!(
                    "{} is a directory",
                    path.as_str()
                )));
            }
            Ok(_) if mode == WriteMode::Create => {
                return Err(ApiError::Conflict(format!(
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
            return Err(ApiError::BadRequest(format!(
                "{} is a directory",
                path.as_str()
            )));
        }
        if meta.len() > MAX_SHOWN_BYTES {
            return Err(ApiError::BadRequest(format!(
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

async fn structure(state: &AppState, owner: &Owner, id: i64) -> ApiResult {
    let root = object_dir(state, owner, id).await?;
    run_blocking(move || {
        let entries = walk(&root)
            .map_err(|e| ApiError::Internal(format!("listing {}: {e}", root.display())))?;
        Ok(Json(tree(&entries)).into_response())
    })
    .await
}

async fn download(state: &AppState, owner: &Owner, id: i64) -> ApiResult {
    let root = object_dir(state, owner, id).await?;
    let file_name = format!("{}_{id}.zip", owner.resource.path.trim_end_matches('s'));
    let zipped = run_blocking(move || {
        pack(&root).map_err(|e| ApiError::Internal(format!("packing {}: {e}", root.display())))
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
