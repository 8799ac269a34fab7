//! The postback endpoint: `GET|POST /{postback_key}/postback?subid=…&status=…&payout=…`
//! (and `/postback` when `[postback] keyless`). A wrong key answers 404 and changes nothing;
//! every postback with the right key is logged (`logs/postbacks`). A postback whose sub id is
//! not stored yet (its click is still on its way from the journal, or another node recorded
//! it) is parked (`pending`) and answered 200; [`apply_parked`] applies it, with its received
//! time, once the click is stored, or logs it `expired` after `postback.pending_hours`. A
//! postback that meets an unavailable store is held in a journal ([`inbox`]) and answered
//! 200 the same way. What a postback leads to is decided by `conversions::ConversionDesk`;
//! this module only translates HTTP into it and its verdict back into HTTP.

mod inbox;
mod parked;

pub use inbox::Inbox;
pub(crate) use inbox::drain as drain_held;
pub(crate) use parked::apply_parked;

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::AppState;
use crate::conversions::{Arrival, ConversionDesk, Decision, Verdict};
use crate::model::unix_now;
use crate::store::{ConversionOutcome, StoreError};

pub fn router(keyless: bool) -> Router<AppState> {
    let router = Router::new().route("/{key}/postback", get(keyed).post(keyed));
    if keyless {
        router.route("/postback", get(keyless_postback).post(keyless_postback))
    } else {
        router
    }
}

async fn keyed(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let expected = state.secrets.postback_key.as_bytes();
    if !bool::from(key.as_bytes().ct_eq(expected)) {
        tracing::warn!("A postback with a wrong key was refused.");
        return (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response();
    }
    receive(state, headers, query, body).await
}

async fn keyless_postback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    receive(state, headers, query, body).await
}

/// What a postback led to: the HTTP answer it gets.
struct Answer {
    status: StatusCode,
    /// The `return` text, answered as plain text instead of the JSON body.
    text: Option<String>,
    body: serde_json::Value,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self.text {
            Some(text) => (
                self.status,
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; charset=utf-8",
                )],
                text,
            )
                .into_response(),
            None => (self.status, Json(self.body)).into_response(),
        }
    }
}

fn answer(status: StatusCode, text: Option<&str>, body: serde_json::Value) -> Answer {
    Answer {
        status,
        text: text.map(str::to_string),
        body,
    }
}

/// The conversion use case over the app's services.
fn desk(state: &AppState) -> ConversionDesk<'_> {
    ConversionDesk {
        store: state.store.as_ref(),
        config: &state.config.postback,
        snapshot: &state.snapshot,
        caps: &state.traffic.caps,
        postbacks: &state.postbacks,
    }
}

/// The HTTP answer to a postback: what Keitaro answers (200 with the outcome, or the
/// `return` text), 400 naming a bad parameter.
fn answer_for(verdict: Verdict) -> Answer {
    let text = verdict.answer_text.as_deref();
    match verdict.decision {
        Decision::Invalid(message) => {
            answer(StatusCode::BAD_REQUEST, None, json!({"error": message}))
        }
        Decision::Pending(message) => answer(
            StatusCode::OK,
            text,
            json!({"status": "pending", "message": message}),
        ),
        Decision::Ignored(None) => answer(StatusCode::OK, text, json!({"status": "ignored"})),
        Decision::Ignored(Some(message)) => answer(
            StatusCode::OK,
            text,
            json!({"status": "ignored", "message": message}),
        ),
        Decision::Recorded { outcome, status } => {
            let mut body = json!({"status": outcome.name(), "conversion_id": outcome.id()});
            match outcome {
                ConversionOutcome::Transition { from, .. } => {
                    body["previous_status"] = json!(from.as_str());
                }
                ConversionOutcome::Ignored { current, .. } => {
                    body["message"] = json!(format!(
                        "a {} conversion does not become {}",
                        current.as_str(),
                        status.as_str()
                    ));
                }
                _ => {}
            }
            answer(StatusCode::OK, text, body)
        }
        Decision::ClickGone => answer(StatusCode::NOT_FOUND, None, json!({})),
    }
}

async fn receive(
    state: AppState,
    headers: HeaderMap,
    query: Option<String>,
    body: Bytes,
) -> Response {
    let params = request_params(&headers, query, &body);
    let now = unix_now();
    let inbox = state.postback_inbox.as_ref();
    if let Some(inbox) = inbox
        && inbox.held() > 0
    {
        let why = "earlier postbacks wait for the database";
        return inbox.hold(params, now, why).await.into_response();
    }
    let desk = desk(&state);
    let attempt = desk.record(&params, now, Arrival::Received);
    let error = match inbox::within_store_wait(attempt).await {
        Ok(verdict) => return answer_for(verdict).into_response(),
        Err(error) => error,
    };
    if error.is_about_the_data() || matches!(error, StoreError::Corrupt(_)) {
        tracing::error!(%error, "A postback could not be recorded.");
        return crate::api::ApiError::Internal(error.to_string()).into_response();
    }
    match inbox {
        Some(inbox) => {
            tracing::warn!(%error, "A postback met an unavailable database; it is held until the database is back.");
            inbox
                .hold(params, now, "the database cannot be reached")
                .await
                .into_response()
        }
        None => {
            // `memory` durability: nowhere to hold it; the sender retries a 503.
            tracing::error!(%error, "A postback could not be recorded; answered 503.");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                json!({"error": "the postback cannot be recorded now; retry later"}),
            )
            .into_response()
        }
    }
}

/// The postback's parameters: the body's (form or JSON), then the query's, which win.
fn request_params(
    headers: &HeaderMap,
    query: Option<String>,
    body: &Bytes,
) -> BTreeMap<String, String> {
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if is_json {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) {
            for (k, v) in map {
                let text = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                params.insert(k, text);
            }
        }
    } else {
        for (k, v) in url::form_urlencoded::parse(body) {
            params.insert(k.into_owned(), v.into_owned());
        }
    }
    // The query wins over the body.
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        params.insert(k.into_owned(), v.into_owned());
    }
    // PostgreSQL cannot store NUL in text, and no parameter has a use for one: dropped.
    if params
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        params = params
            .into_iter()
            .map(|(k, v)| (k.replace('\0', ""), v.replace('\0', "")))
            .collect();
    }
    params
}
