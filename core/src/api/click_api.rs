//! Keitaro's Click API: `/click_api/v1`, `/click_api/v2`, `/click_api/v3` and `/api.php` (v2),
//! by GET query or POST form (or JSON). A server-side client sends the visitor's details; the
//! tracker routes the click exactly like a campaign link and answers what the visitor should
//! get (status, headers, body), the visitor cookie to keep, and optionally the processing log
//! and an info block.
//!
//! Choices where Keitaro's documents are silent (documented in README): `info` is returned when
//! `info=1`, `log` when `log=1`; `info.offer_id` is an array (as the v2 document types it);
//! `info.token` is a landing token usable with `/?_lp=1&_token=`; client mistakes answer
//! `{"status": 4xx, "body": {"error": …}}` with the same HTTP status.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine;
use serde_json::{Map, Value, json};

use super::AppState;
use super::client::{client_ip, header_text, language};
use super::reply::resolve;
use crate::net::normalise_ip;
use crate::traffic::{LandingToken, RouteOptions, Visit};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/click_api/{version}", any(click_api))
        .route("/api.php", any(api_php))
}

/// Parameters that steer the API rather than describe the click.
const CONTROL: &[&str] = &[
    "token",
    "ip",
    "user_agent",
    "ua",
    "language",
    "landing_id",
    "uniqueness_cookie",
    "log",
    "info",
    "force_redirect_offer",
    "original_host",
    "original_method",
    "uri",
    "prefetch",
    "referrer",
    "se_referrer",
    "x_requested_with",
    "version",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
    V3,
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "status": status.as_u16(), "body": { "error": message } })),
    )
        .into_response()
}

async fn api_php(
    state: State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    query: RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(state, peer, query, headers, body, Version::V2).await
}

async fn click_api(
    state: State<AppState>,
    Path(version): Path<String>,
    peer: ConnectInfo<SocketAddr>,
    query: RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let version = match version.as_str() {
        "v1" => Version::V1,
        "v2" => Version::V2,
        "v3" => Version::V3,
        _ => {
            return error(
                StatusCode::FORBIDDEN,
                "Unknown Click API version; use v1, v2 or v3.",
            );
        }
    };
    handle(state, peer, query, headers, body, version).await
}

/// The request's parameters: the query string, then the body (form or JSON object).
fn parameters(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    let mut params: Vec<(String, String)> = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    if body.is_empty() {
        return Ok(params);
    }
    let content_type = header_text(headers, "content-type").to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("the JSON body is invalid: {e}"))?;
        let Value::Object(map) = value else {
            return Err("the JSON body must be an object".into());
        };
        for (key, value) in map {
            match value {
                Value::Object(inner) => params.extend(
                    inner
                        .into_iter()
                        .map(|(k, v)| (format!("{key}[{k}]"), plain(&v))),
                ),
                other => params.push((key, plain(&other))),
            }
        }
    } else {
        params.extend(url::form_urlencoded::parse(body).into_owned());
    }
    Ok(params)
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn truthy(value: Option<&str>) -> bool {
    matches!(value.map(str::trim), Some("1" | "true" | "yes" | "on"))
}

async fn handle(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
    version: Version,
) -> Response {
    let params = match parameters(query.as_deref(), &headers, &body) {
        Ok(params) => params,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let get = |name: &str| {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(token) = get("token").map(str::trim).filter(|t| !t.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "The `token` parameter (the campaign's Click API token) is required.",
        );
    };
    let snapshot = state.snapshot.load();
    let Some(route) = snapshot.campaign_by_token(token) else {
        return error(StatusCode::NOT_FOUND, "No active campaign has this token.");
    };
    let ip = match get("ip").map(str::trim).filter(|ip| !ip.is_empty()) {
        Some(text) => match text.parse::<IpAddr>() {
            Ok(ip) => normalise_ip(ip),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("`ip` = `{text}` is not an IP address."),
                );
            }
        },
        None => client_ip(peer, &headers, &state.config.server.trusted_proxies),
    };
    let landing_id = match get("landing_id").map(str::trim).filter(|v| !v.is_empty()) {
        Some(text) => match text.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("`landing_id` = `{text}` is not a number."),
                );
            }
        },
        None => None,
    };

    // The visitor's original request headers, as `original_headers[Name]=value`.
    let mut original_headers: Vec<(String, String)> = params
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("original_headers[")?.strip_suffix(']')?;
            Some((name.to_ascii_lowercase(), v.clone()))
        })
        .filter(|(name, value)| !name.is_empty() && !value.contains(['\r', '\n']))
        .collect();
    let original = |name: &str| {
        original_headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let user_agent = get("user_agent")
        .or(get("ua"))
        .map(str::to_string)
        .or_else(|| original("user-agent"))
        .unwrap_or_default();
    let referrer = get("referrer")
        .filter(|r| !r.is_empty())
        .or(get("se_referrer"))
        .map(str::to_string)
        .or_else(|| original("referer"))
        .unwrap_or_default();
    let language = match get("language").filter(|l| !l.is_empty()) {
        Some(lang) => lang
            .split(['-', '_', ','])
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
        None => {
            let mut map = HeaderMap::new();
            if let Some(value) = original("accept-language").and_then(|v| v.parse().ok()) {
                map.insert(header::ACCEPT_LANGUAGE, value);
            }
            language(&map)
        }
    };
    let host = get("original_host")
        .map(str::to_string)
        .or_else(|| original("host"))
        .unwrap_or_else(|| header_text(&headers, "host"));
    if let Some(xrw) = get("x_requested_with").filter(|v| !v.is_empty()) {
        original_headers.push(("x-requested-with".into(), xrw.to_string()));
    }
    if truthy(get("prefetch")) {
        original_headers.push(("purpose".into(), "prefetch".into()));
    }
    // Click parameters: the original page's query (`uri`), then the request's own.
    let mut click_params: Vec<(String, String)> = get("uri")
        .and_then(|uri| uri.split_once('?').map(|(_, q)| q.to_string()))
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    click_params.extend(
        params
            .iter()
            .filter(|(k, _)| !CONTROL.contains(&k.as_str()) && !k.starts_with("original_headers["))
            .cloned(),
    );
    let visit = std::sync::Arc::new(Visit {
        ip,
        user_agent,
        referrer,
        language,
        query: click_params,
        headers: original_headers,
        host: host
            .chars()
            .filter(|c| !c.is_control() && !c.is_whitespace())
            .collect(),
        scheme: if get("uri").is_some_and(|u| u.starts_with("https://")) {
            "https".into()
        } else {
            "http".into()
        },
        cookie: get("uniqueness_cookie")
            .filter(|c| !c.is_empty())
            .map(str::to_string),
    });
    let options = RouteOptions {
        trace: truthy(get("log")),
        force_offer: truthy(get("force_redirect_offer")),
        landing_id,
        dry_run: false,
        offer_id: None,
    };
    let mut result = state.router(&snapshot).click(route, &visit, &options).await;
    result.click.request_url = crate::model::bounded_text(get("uri").unwrap_or_default());
    let landing_token = LandingToken::issue(
        &state.traffic.signer,
        &result.click,
        &visit.query,
        result.click.created_at,
        result.cookie_ttl_hours * 3_600,
    );
    let answer = resolve(&state, result.reply).await;
    let click = result.click;

    let mut response_headers: Vec<String> = Vec::new();
    if let Some(location) = &answer.location {
        response_headers.push(format!("Location: {location}"));
    }
    for (name, value) in &answer.headers {
        if !name.eq_ignore_ascii_case("content-type") && !name.eq_ignore_ascii_case("set-cookie") {
            response_headers.push(format!("{name}: {value}"));
        }
    }
    let body = if answer.location.is_some() && answer.body.is_empty() {
        Value::Null
    } else if is_binary(&answer.content_type) {
        Value::String(base64::engine::general_purpose::STANDARD.encode(&answer.body))
    } else {
        Value::String(String::from_utf8_lossy(&answer.body).into_owned())
    };
    let mut out = Map::new();
    out.insert("body".into(), body);
    out.insert(
        "contentType".into(),
        Value::String(answer.content_type.clone()),
    );
    out.insert("headers".into(), json!(response_headers));
    out.insert("status".into(), json!(answer.status));
    out.insert(
        "uniqueness_cookie".into(),
        Value::String(result.cookie.clone()),
    );
    if options.trace {
        out.insert("log".into(), json!(result.log));
    }
    if truthy(get("info")) {
        out.insert(
            "info".into(),
            json!({
                "type": result.info_type,
                "url": answer.location,
                "campaign_id": click.campaign_id,
                "stream_id": click.stream_id,
                "landing_id": click.landing_id,
                "offer_id": click.offer_id.map(|id| vec![id]).unwrap_or_default(),
                "sub_id": click.sub_id,
                "token": landing_token,
                "is_bot": click.is_bot,
                "uniqueness": {
                    "campaign": result.uniqueness.campaign,
                    "stream": result.uniqueness.stream,
                    "global": result.uniqueness.global,
                },
            }),
        );
    }
    if version == Version::V3 {
        out.insert(
            "cookies".into(),
            json!({ super::traffic::VISITOR_COOKIE: result.cookie }),
        );
        out.insert("cookies_ttl".into(), json!(result.cookie_ttl_hours));
    }
    if result.record {
        state.recorder.record(click).await;
    }
    axum::Json(Value::Object(out)).into_response()
}

/// Bodies that are not text travel base64-encoded.
fn is_binary(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.starts_with("image/")
        || ct.starts_with("application/pdf")
        || ct.starts_with("application/octet-stream")
        || ct.starts_with("font/")
        || ct.starts_with("audio/")
        || ct.starts_with("video/")
}
