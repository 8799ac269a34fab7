//! Turning an action's [`Reply`] into an HTTP answer: the IO some replies need (fetching for
//! `curl`/`remote`, reading uploaded files for `local_file`) happens here, outside the click
//! pipeline, with the fetcher's SSRF guard and limits.

use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::registry::{FetchMode, FileOwner, Reply};

/// How long a `remote` action's answer is reused.
const REMOTE_CACHE_TTL: Duration = Duration::from_secs(60);

/// A reply with its IO done: what both the campaign links and the Click API send.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    /// Redirect target, if the answer is a redirect.
    pub location: Option<String>,
    pub content_type: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    fn empty(status: u16) -> Answer {
        Answer {
            status,
            location: None,
            content_type: "text/html; charset=utf-8".into(),
            body: Vec::new(),
            headers: Vec::new(),
        }
    }

    fn redirect(url: String, status: u16) -> Answer {
        Answer {
            location: Some(url),
            ..Answer::empty(status)
        }
    }
}

/// [`resolve`] bounded by `server.request_timeout` (an empty 503 when it runs out), for the
/// traffic routes, which are outside the router's timeout layer; a reply that needs no IO
/// sets no timer.
pub async fn resolve_in_time(state: &AppState, reply: Reply) -> Answer {
    if !matches!(reply, Reply::Fetch { .. } | Reply::LocalFile { .. }) {
        return resolve(state, reply).await;
    }
    tokio::time::timeout(super::request_timeout(&state.config), resolve(state, reply))
        .await
        .unwrap_or_else(|_| Answer::empty(503))
}

/// Carries out `reply`'s IO. Failures are logged and answered with an empty 200 (the click
/// still gets an answer; nothing of the target's internals leaks).
pub async fn resolve(state: &AppState, reply: Reply) -> Answer {
    match reply {
        Reply::Redirect { url, status } => Answer::redirect(url, status),
        Reply::Content {
            status,
            content_type,
            body,
            headers,
        } => Answer {
            status,
            location: None,
            content_type,
            body,
            headers,
        },
        Reply::ToCampaign { .. } => Answer::empty(200),
        Reply::Fetch {
            url,
            mode: FetchMode::Curl,
        } => match state.fetcher.get(&url).await {
            Ok(fetched) => Answer {
                status: 200,
                location: None,
                content_type: fetched.content_type,
                body: fetched.body,
                headers: Vec::new(),
            },
            Err(error) => {
                tracing::warn!(%error, "The curl action could not fetch its page.");
                Answer::empty(200)
            }
        },
        Reply::Fetch {
            url,
            mode: FetchMode::Remote,
        } => match remote_target(state, &url).await {
            Ok(target) => Answer::redirect(target, 302),
            Err(error) => {
                tracing::warn!(%error, "The remote action found no target.");
                Answer::empty(200)
            }
        },
        Reply::LocalFile { owner, path } => {
            match read_upload(&state.config.server.data_dir, owner, &path).await {
                Ok((content_type, body)) => Answer {
                    status: 200,
                    location: None,
                    content_type,
                    body,
                    headers: Vec::new(),
                },
                Err(status) => Answer::empty(status),
            }
        }
    }
}

/// The `remote` action: the fetched body is the URL to redirect to (cached for a minute).
async fn remote_target(state: &AppState, url: &str) -> Result<String, String> {
    if let Some((at, target)) = state.remote_cache.get(url)
        && at.elapsed() < REMOTE_CACHE_TTL
    {
        return Ok(target);
    }
    let fetched = state.fetcher.get(url).await.map_err(|e| e.to_string())?;
    let target = String::from_utf8_lossy(&fetched.body).trim().to_string();
    crate::template::check_http_url(&target)?;
    state
        .remote_cache
        .insert(url.to_string(), (Instant::now(), target.clone()));
    Ok(target)
}

/// The directory holding an uploaded landing's or offer's files.
pub fn upload_dir(data_dir: &Path, owner: FileOwner) -> PathBuf {
    match owner {
        FileOwner::Landing(id) => data_dir
            .join("uploads")
            .join("landings")
            .join(id.to_string()),
        FileOwner::Offer(id) => data_dir.join("uploads").join("offers").join(id.to_string()),
    }
}

/// Reads `path` inside the owner's upload directory; anything that would leave it is refused.
async fn read_upload(
    data_dir: &Path,
    owner: FileOwner,
    path: &str,
) -> Result<(String, Vec<u8>), u16> {
    let relative = Path::new(path.trim_start_matches('/'));
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(404);
    }
    let full = upload_dir(data_dir, owner).join(relative);
    let body = tokio::fs::read(&full).await.map_err(|_| 404u16)?;
    Ok((content_type_for(&full).to_string(), body))
}

/// A content type from a file extension.
pub fn content_type_for(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "application/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("pdf") => "application/pdf",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// The HTTP response for an answer, with no-cache headers and extra headers (e.g. Set-Cookie).
pub fn http_response(answer: Answer, extra: Vec<(HeaderName, HeaderValue)>) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    if let Some(location) = &answer.location {
        match HeaderValue::from_str(location) {
            Ok(value) => {
                headers.insert(header::LOCATION, value);
            }
            Err(_) => {
                tracing::warn!(
                    location,
                    "A redirect target is not a valid header value; answering empty."
                );
                return (StatusCode::OK, headers).into_response();
            }
        }
    } else if let Ok(value) = HeaderValue::from_str(&answer.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    for (name, value) in &answer.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    for (name, value) in extra {
        headers.append(name, value);
    }
    (status, headers, axum::body::Body::from(answer.body)).into_response()
}
