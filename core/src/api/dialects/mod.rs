//! The other vendors' click APIs ("dialects"), each a module that can be switched off in
//! `[dialects]`, all over the same click store as Keitaro's links and Click API:
//!
//! - [`open_api`] (seed 001): `/backend/open-api/v1/users/clicks[/{id}]`, Bearer token.
//! - [`hoqu`] (seed 003): `/api/click/create?secure_key=…`.
//! - [`rest_clicks`] (seed 004): `[base]/clicks[/{clickId}]`, Bearer token.
//!
//! A click created through a dialect is routed through its campaign like a Click API click
//! (streams, filters, enrichment, uniqueness) and then written to the store at once, not
//! queued: these are management APIs whose callers get a stored click id back and may read or
//! change the click with the next request. Keys are compared as SHA-256 hashes in constant
//! time and never logged. Every choice the seeds leave open is listed in README "Other click
//! APIs (dialects)".

mod hoqu;
mod open_api;
mod rest_clicks;

use std::net::IpAddr;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{Map, Value};

use super::AppState;
use super::client::header_text;
use crate::config::Dialect;
use crate::net::normalise_ip;
use crate::store::StoreError;
use crate::traffic::Visit;

/// The routes of every enabled dialect.
pub fn router(state: AppState) -> Router<AppState> {
    let dialects = state.config.dialects.clone();
    let mut router = Router::new();
    if dialects.open_api {
        router = router.merge(open_api::router(state.clone()));
    }
    if dialects.hoqu {
        router = router.merge(hoqu::router());
    }
    if dialects.rest_clicks {
        router = router.merge(rest_clicks::router(state, &dialects.rest_clicks_base_path));
    }
    router
}

/// Puts `router` behind `Authorization: Bearer <token>` with the dialect's key (401 otherwise).
fn bearer_protected(
    router: Router<AppState>,
    state: AppState,
    dialect: Dialect,
) -> Router<AppState> {
    router.route_layer(middleware::from_fn_with_state(
        (state, dialect),
        check_bearer,
    ))
}

async fn check_bearer(
    State((state, dialect)): State<(AppState, Dialect)>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer_token(request.headers()) else {
        return unauthorized(
            "The Authorization header with a Bearer token is required.",
            false,
        );
    };
    let valid = state
        .secrets
        .dialect_key_hash(dialect)
        .is_some_and(|hash| crate::secrets::key_matches(token, hash));
    if !valid {
        return unauthorized("The Bearer token is not valid.", true);
    }
    next.run(request).await
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive), if any.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn unauthorized(message: &str, invalid: bool) -> Response {
    let challenge = if invalid {
        "Bearer error=\"invalid_token\""
    } else {
        "Bearer"
    };
    let mut response = DialectError {
        status: StatusCode::UNAUTHORIZED,
        message: message.to_string(),
        fields: Vec::new(),
    }
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// An error of the Bearer dialects: `{"message": …, "errors": {"field": ["…"]}}` (the field
/// list only for invalid input). Internal details are logged, never sent.
#[derive(Debug)]
pub(crate) struct DialectError {
    status: StatusCode,
    message: String,
    fields: Vec<(String, String)>,
}

impl DialectError {
    /// 400: one field is invalid.
    fn field(field: &str, message: impl Into<String>) -> Self {
        DialectError::fields(vec![(field.to_string(), message.into())])
    }

    /// 400: these fields are invalid (the first message is the summary).
    fn fields(fields: Vec<(String, String)>) -> Self {
        let message = match fields.len() {
            0 => "The request is not valid.".to_string(),
            1 => fields[0].1.clone(),
            n => format!("{} (and {} more errors)", fields[0].1, n - 1),
        };
        DialectError {
            status: StatusCode::BAD_REQUEST,
            message,
            fields,
        }
    }

    fn not_found(message: &str) -> Self {
        DialectError {
            status: StatusCode::NOT_FOUND,
            message: message.to_string(),
            fields: Vec::new(),
        }
    }

    fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "A click dialect request failed.");
        DialectError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "Server error.".to_string(),
            fields: Vec::new(),
        }
    }
}

impl From<StoreError> for DialectError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { what } => DialectError {
                status: StatusCode::CONFLICT,
                message: format!("{what} already exists."),
                fields: Vec::new(),
            },
            other => DialectError::internal(other),
        }
    }
}

impl IntoResponse for DialectError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("message".into(), Value::String(self.message));
        if !self.fields.is_empty() {
            let mut errors: Map<String, Value> = Map::new();
            for (field, message) in self.fields {
                if let Value::Array(list) = errors
                    .entry(field)
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    list.push(Value::String(message));
                }
            }
            body.insert("errors".into(), Value::Object(errors));
        }
        (self.status, axum::Json(Value::Object(body))).into_response()
    }
}

/// The request body as a JSON object (an empty body is an empty object).
fn json_object(body: &[u8]) -> Result<Map<String, Value>, DialectError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(DialectError::field(
            "body",
            "The body must be a JSON object.",
        )),
        Err(error) => Err(DialectError::field(
            "body",
            format!("The body is not valid JSON: {error}."),
        )),
    }
}

/// A text field of a JSON object: strings, numbers and booleans as text, null/absent as None;
/// longer than `max` bytes or an array/object is invalid.
fn text_field(
    map: &Map<String, Value>,
    name: &str,
    max: usize,
    errors: &mut Vec<(String, String)>,
) -> Option<String> {
    let text = match map.get(name)? {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => {
            errors.push((name.into(), format!("The {name} must be a string.")));
            return None;
        }
    };
    if text.len() > max {
        errors.push((
            name.into(),
            format!("The {name} may not be greater than {max} characters."),
        ));
        return None;
    }
    // PostgreSQL cannot store NUL in text, and no field has a use for one.
    if text.contains('\0') {
        errors.push((
            name.into(),
            format!("The {name} must not contain NUL characters."),
        ));
        return None;
    }
    Some(text)
}

/// A positive integer field given as a JSON number or a numeric string.
fn id_field(
    map: &Map<String, Value>,
    name: &str,
    errors: &mut Vec<(String, String)>,
) -> Option<i64> {
    let value = map.get(name)?;
    let parsed = match value {
        Value::Null => return None,
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match parsed.filter(|id| *id > 0) {
        Some(id) => Some(id),
        None => {
            errors.push((
                name.into(),
                format!("The {name} must be a positive integer."),
            ));
            None
        }
    }
}

/// A positive integer query value.
fn parse_id(text: &str) -> Option<i64> {
    text.trim().parse::<i64>().ok().filter(|id| *id > 0)
}

/// An IP address as a client sends it.
fn parse_ip(text: &str) -> Option<IpAddr> {
    text.trim().parse::<IpAddr>().ok().map(normalise_ip)
}

/// A time as the seeds write it: `2024-07-08 13:40:00` (UTC), `2024-07-08` (the day's start,
/// or its last second with `end_of_day`), RFC 3339 (`2021-01-01T00:00:00+00:00`, also with the
/// `+` of the offset decoded to a space, as an unencoded query string gives it), or Unix seconds.
fn parse_time(text: &str, end_of_day: bool) -> Option<i64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let time = if end_of_day {
            date.and_hms_opt(23, 59, 59)
        } else {
            date.and_hms_opt(0, 0, 0)
        }?;
        return Some(Utc.from_utc_datetime(&time).timestamp());
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Some(Utc.from_utc_datetime(&time).timestamp());
        }
    }
    let repaired = match text.rsplit_once(' ') {
        Some((head, offset))
            if head.contains('T') && offset.len() == 5 && offset.as_bytes()[2] == b':' =>
        {
            format!("{head}+{offset}")
        }
        _ => text.to_string(),
    };
    DateTime::parse_from_rfc3339(&repaired)
        .ok()
        .map(|t| t.timestamp())
}

/// `2024-10-10 11:24:09` (UTC).
fn format_plain_time(seconds: i64) -> String {
    DateTime::<Utc>::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// `2021-01-01T00:00:00+00:00`.
fn format_rfc3339(seconds: i64) -> String {
    DateTime::<Utc>::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// The primary language subtag of a locale (`en_US`, `en-GB` -> `en`), or "".
fn locale_language(locale: &str) -> String {
    let primary = locale
        .split(['-', '_', ',', ';'])
        .next()
        .unwrap_or("")
        .trim();
    if primary.len() <= 8 && primary.chars().all(|c| c.is_ascii_alphabetic()) {
        primary.to_ascii_lowercase()
    } else {
        String::new()
    }
}

/// The visit of a click a dialect creates: the client's facts from the request body, the
/// tracker's host from the API request (for `{current_domain}` and landing links), no headers.
fn api_visit(
    headers: &HeaderMap,
    ip: IpAddr,
    user_agent: &str,
    referrer: &str,
    language: &str,
    query: Vec<(String, String)>,
) -> Visit {
    let mut visit = Visit::new(ip, user_agent);
    visit.referrer = referrer.to_string();
    visit.language = language.to_string();
    visit.query = query;
    let host: String = header_text(headers, "host")
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace())
        .collect();
    if !host.is_empty() {
        visit.host = host;
    }
    visit
}

/// The query pairs of a URL (empty when it has none).
fn url_query(url: &str) -> Vec<(String, String)> {
    url.split_once('?')
        .map(|(_, query)| query.split('#').next().unwrap_or(""))
        .map(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .take(256)
                .collect()
        })
        .unwrap_or_default()
}

/// Empty text as JSON null.
fn text_or_null(text: &str) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        Value::String(text.to_string())
    }
}

/// A UUID-shaped identifier derived from `seed` (RFC 9562 version 8: custom, name-based).
fn uuid_from(seed: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Now and then, forget request keys whose window has passed (they are reclaimed anyway; this
/// keeps the table from growing with one-off visitors).
fn prune_keys_sometimes(state: &AppState, window_start: i64) {
    use rand::Rng;
    if rand::rng().random_range(0..128) != 0 {
        return;
    }
    let store = state.store.clone();
    tokio::spawn(async move {
        if let Err(error) = store.prune_click_keys(window_start).await {
            tracing::warn!(%error, "Old click request keys could not be pruned.");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_refuse_nul_and_overlong_values() {
        let map = serde_json::json!({"a": "ok", "b": "x\u{0}y", "c": "long", "d": 5})
            .as_object()
            .cloned()
            .unwrap();
        let mut errors = Vec::new();
        assert_eq!(
            text_field(&map, "a", 10, &mut errors).as_deref(),
            Some("ok")
        );
        assert_eq!(text_field(&map, "d", 10, &mut errors).as_deref(), Some("5"));
        assert_eq!(text_field(&map, "b", 10, &mut errors), None);
        assert_eq!(text_field(&map, "c", 2, &mut errors), None);
        assert_eq!(errors.len(), 2);
        assert!(errors[0].1.contains("NUL"), "{errors:?}");
    }

    #[test]
    fn times_in_every_documented_form() {
        assert_eq!(
            parse_time("2024-07-08 13:40:00", false),
            Some(1_720_446_000)
        );
        assert_eq!(parse_time("2024-07-08", false), Some(1_720_396_800));
        assert_eq!(parse_time("2024-07-08", true), Some(1_720_483_199));
        assert_eq!(
            parse_time("2021-01-01T00:00:00+00:00", false),
            Some(1_609_459_200)
        );
        assert_eq!(
            parse_time("2021-01-01T00:00:00 00:00", false),
            Some(1_609_459_200),
            "an unencoded + arrives as a space"
        );
        assert_eq!(
            parse_time("2021-01-01T02:00:00+02:00", false),
            Some(1_609_459_200)
        );
        assert_eq!(parse_time("1609459200", false), Some(1_609_459_200));
        assert_eq!(parse_time("yesterday", false), None);
        assert_eq!(parse_time("", false), None);
        assert_eq!(format_plain_time(1_728_559_449), "2024-10-10 11:24:09");
        assert_eq!(format_rfc3339(1_609_459_200), "2021-01-01T00:00:00+00:00");
    }

    #[test]
    fn bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&headers), None);
    }

    #[test]
    fn uuids_are_stable_and_well_formed() {
        let a = uuid_from("visitor-1");
        assert_eq!(a, uuid_from("visitor-1"));
        assert_ne!(a, uuid_from("visitor-2"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8", "version 8");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "RFC variant");
    }

    #[test]
    fn locales_give_the_language() {
        assert_eq!(locale_language("en_US"), "en");
        assert_eq!(locale_language("de-DE"), "de");
        assert_eq!(locale_language("<script>"), "");
    }
}
