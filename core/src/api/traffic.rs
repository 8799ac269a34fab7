//! Traffic endpoints: campaign links (`/{alias}`), the landing -> offer link
//! (`/?_lp=1&_token=…`) and the second hop of `double_meta` (`/?_hop=…`).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::client::visit_from_request;
use super::reply::{http_response, resolve_in_time};
use crate::model::unix_now;
use crate::store::LandingClick;
use crate::traffic::{LandingToken, RouteOptions};

/// The visitor cookie's name.
pub const VISITOR_COOKIE: &str = "_sy_v";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(root).post(root))
        .route("/{alias}", get(campaign_link).post(campaign_link))
}

/// `GET /{alias}`: route a visitor through the campaign with that alias.
async fn campaign_link(
    State(state): State<AppState>,
    Path(alias): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let snapshot = state.snapshot.load();
    let Some(route) = snapshot.campaign_by_alias(&alias) else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let visit = std::sync::Arc::new(visit_from_request(
        &state,
        peer,
        &headers,
        query.as_deref(),
        VISITOR_COOKIE,
    ));
    let mut result = state
        .router(&snapshot)
        .click(route, &visit, &RouteOptions::default())
        .await;
    let requested = match query.as_deref().filter(|q| !q.is_empty()) {
        Some(query) => visit.url(format_args!("/{alias}?{query}")),
        None => visit.url(format_args!("/{alias}")),
    };
    result.click.request_url = crate::model::bounded_text(&requested);
    let cookie = visitor_cookie(&result.cookie, result.cookie_ttl_hours);
    if result.record {
        state.recorder.record(result.click).await;
    }
    let answer = resolve_in_time(&state, result.reply).await;
    http_response(answer, cookie.into_iter().collect())
}

fn visitor_cookie(value: &str, ttl_hours: i64) -> Option<(HeaderName, HeaderValue)> {
    let max_age = ttl_hours.clamp(1, 24 * 365) * 3_600;
    HeaderValue::from_str(&format!(
        "{VISITOR_COOKIE}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax"
    ))
    .ok()
    .map(|v| (header::SET_COOKIE, v))
}

/// `GET /`: the landing -> offer link and the double-meta hop; anything else is 404.
async fn root(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let pairs: Vec<(String, String)> = query
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(token) = get("_hop") {
        return hop(&state, token);
    }
    if get("_lp").is_some() {
        let Some(token) = get("_token") else {
            return (StatusCode::BAD_REQUEST, "The landing link has no _token.").into_response();
        };
        let now = unix_now();
        let Some(token) = LandingToken::verify(&state.traffic, token, now) else {
            return (
                StatusCode::NOT_FOUND,
                "The landing link is invalid or expired.",
            )
                .into_response();
        };
        let offer_id = get("offer_id").and_then(|id| id.parse::<i64>().ok());
        let visit = std::sync::Arc::new(visit_from_request(
            &state,
            peer,
            &headers,
            query.as_deref(),
            VISITOR_COOKIE,
        ));
        let snapshot = state.snapshot.load();
        let Some(result) = state
            .router(&snapshot)
            .landing_click(&token, &visit, offer_id)
            .await
        else {
            return (
                StatusCode::NOT_FOUND,
                "The campaign of this landing link is no longer active.",
            )
                .into_response();
        };
        if result.record
            && let Some(offer_id) = result.click.offer_id
        {
            state
                .recorder
                .record_landing_click(LandingClick {
                    sub_id: result.click.sub_id.clone(),
                    offer_id,
                    at: now,
                    destination: result.click.destination.clone(),
                })
                .await;
        }
        let answer = resolve_in_time(&state, result.reply).await;
        return http_response(answer, Vec::new());
    }
    (StatusCode::NOT_FOUND, "Not Found").into_response()
}

/// The second page of `double_meta`: a meta refresh to the signed target.
fn hop(state: &AppState, token: &str) -> Response {
    let target = state
        .traffic
        .signer
        .verify(token)
        .filter(|p| p.get("k").and_then(|k| k.as_str()) == Some("hop"))
        .filter(|p| {
            p.get("exp")
                .and_then(|e| e.as_i64())
                .is_some_and(|e| e >= unix_now())
        })
        .and_then(|p| p.get("u").and_then(|u| u.as_str()).map(str::to_string))
        .filter(|u| crate::template::check_http_url(u).is_ok());
    let Some(url) = target else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let mut escaped = String::with_capacity(url.len());
    crate::template::html_escape_into(&url, &mut escaped);
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\"><meta http-equiv=\"refresh\" content=\"0; url={escaped}\"></head><body></body></html>\n"
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache, no-store"),
        ],
        body,
    )
        .into_response()
}
