//! Traffic endpoints: campaign links (`/{alias}`).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::client::{client_ip, header_text, language};
use crate::traffic::{Answer, Visit, handle_campaign};

pub fn router() -> Router<AppState> {
    Router::new().route("/{alias}", get(campaign_link).post(campaign_link))
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
    let visit = Visit {
        ip: client_ip(peer, &headers, &state.config.server.trusted_proxies),
        user_agent: header_text(&headers, "user-agent"),
        referrer: header_text(&headers, "referer"),
        language: language(&headers),
        query: query
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default(),
    };
    let outcome = handle_campaign(route, &visit);
    if let Some(click) = outcome.click {
        state.recorder.record(click);
    }
    answer_response(outcome.answer)
}

fn answer_response(answer: Answer) -> Response {
    let no_cache = [(header::CACHE_CONTROL, "no-cache, no-store, must-revalidate")];
    match answer {
        Answer::Redirect(url) => match HeaderValue::from_str(&url) {
            Ok(location) => {
                (StatusCode::FOUND, no_cache, [(header::LOCATION, location)]).into_response()
            }
            Err(_) => {
                tracing::warn!(
                    url,
                    "A redirect URL is not a valid header value; answering empty."
                );
                (StatusCode::OK, no_cache).into_response()
            }
        },
        Answer::NotFound => (StatusCode::NOT_FOUND, no_cache).into_response(),
        Answer::Empty => (StatusCode::OK, no_cache).into_response(),
    }
}
