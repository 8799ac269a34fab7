//! The postback endpoint: `GET|POST /{postback_key}/postback?subid=…&status=…&payout=…`
//! (and `/postback` when `[postback] keyless`). A wrong key answers 404 and changes nothing;
//! every postback with the right key is logged (`logs/postbacks`). A postback whose sub id is
//! not stored yet (its click is still on its way from the journal, or another node recorded
//! it) is parked (`pending`) and answered 200; [`apply_parked`] applies it, with its received
//! time, once the click is stored, or logs it `expired` after `postback.pending_hours`. A
//! postback that meets an unavailable store is held in a journal ([`inbox`]) and answered
//! 200 the same way; a conversion's outgoing postbacks are queued in its own transaction
//! ([`outgoing`]).

mod inbox;
mod outgoing;
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
use crate::conversions::{convert, parse_postback};
use crate::model::unix_now;
use crate::store::{
    ConversionOutcome, ConversionStatus, NewConversion, PendingPostback, ReceivedPostback,
    StoreError,
};

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

/// Logs a postback that recorded nothing, then answers; when the log cannot be written, the
/// error (nothing was recorded, and the network retries).
async fn logged(
    state: &AppState,
    entry: &ReceivedPostback,
    status: StatusCode,
    text: Option<&str>,
    value: serde_json::Value,
) -> Result<Answer, StoreError> {
    state.store.log_received_postback(entry).await?;
    Ok(answer(status, text, value))
}

/// How a postback reached [`accept`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// Over HTTP just now.
    Received,
    /// Parked earlier, its click now stored.
    Parked,
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
    let attempt = accept(&state, params.clone(), now, Arrival::Received);
    let error = match tokio::time::timeout(inbox::STORE_WAIT, attempt).await {
        Ok(Ok(answer)) => return answer.into_response(),
        Ok(Err(error)) => error,
        Err(_) => StoreError::Connect(format!(
            "no answer within {} ms",
            inbox::STORE_WAIT.as_millis()
        )),
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

/// Records a postback received at `now`: logs it, records its conversion (idempotently),
/// queues the outgoing postbacks, or parks it while its click is not stored.
async fn accept(
    state: &AppState,
    params: BTreeMap<String, String>,
    now: i64,
    arrival: Arrival,
) -> Result<Answer, StoreError> {
    let params_json = serde_json::to_string(&params).unwrap_or_default();
    let log = |outcome: &str, message: String, sub_id: &str| ReceivedPostback {
        id: 0,
        sub_id: sub_id.to_string(),
        tid: params.get("tid").cloned().unwrap_or_default(),
        status: params.get("status").cloned().unwrap_or_default(),
        outcome: outcome.to_string(),
        message,
        conversion_id: None,
        params: params_json.clone(),
        created_at: now,
    };
    let sub_id_param = params
        .get("subid")
        .or(params.get("sub_id"))
        .cloned()
        .unwrap_or_default();

    let postback = match parse_postback(&params) {
        Ok(postback) => postback,
        Err(error) => {
            if let Err(e) = state
                .store
                .log_received_postback(&log("invalid", error.to_string(), &sub_id_param))
                .await
            {
                tracing::error!(error = %e, "Could not log a postback.");
            }
            return Ok(answer(
                StatusCode::BAD_REQUEST,
                None,
                json!({"error": error.to_string()}),
            ));
        }
    };
    let text = postback.answer.as_deref();
    // Earlier postbacks of this click still parked: this one goes behind them, so that they
    // apply in the order they came.
    let behind = arrival == Arrival::Received
        && state.store.parked_postbacks_for(&postback.sub_id).await? > 0;
    let click = if behind {
        None
    } else {
        state.store.postback_click(&postback.sub_id).await?
    };
    let Some(click) = click else {
        if arrival == Arrival::Parked {
            // The click went away after it was stored: it stays parked until it expires.
            return Ok(answer(StatusCode::NOT_FOUND, None, json!({})));
        }
        let message = if behind {
            format!(
                "earlier postbacks for the sub id `{}` are waiting; this one is recorded after them",
                postback.sub_id
            )
        } else {
            let hours = state.config.postback.pending_retention.as_secs() / 3_600;
            tracing::info!(sub_id = %postback.sub_id, "A postback names a sub id not stored yet; it waits for its click.");
            format!(
                "no click has the sub id `{}` yet; the conversion is recorded when it arrives (within {hours} h)",
                postback.sub_id
            )
        };
        let entry = log("pending", message.clone(), &postback.sub_id);
        let pending = PendingPostback {
            id: 0,
            sub_id: postback.sub_id.clone(),
            params: params_json.clone(),
            received_at: now,
        };
        state.store.park_postback(&pending, &entry).await?;
        let body = json!({"status": "pending", "message": message});
        return Ok(answer(StatusCode::OK, text, body));
    };
    let Some(status) = postback.status else {
        let entry = log(
            "ignored",
            format!(
                "status `{}` is ignored (ignore_status)",
                postback.original_status
            ),
            &postback.sub_id,
        );
        return logged(
            state,
            &entry,
            StatusCode::OK,
            text,
            json!({"status": "ignored"}),
        )
        .await;
    };
    if status == ConversionStatus::Rebill && (!click.upsell || postback.tid.is_empty()) {
        let message = if postback.tid.is_empty() {
            "a rebill needs its own tid".to_string()
        } else {
            "the click's offer does not allow upsells, so it takes no rebills".to_string()
        };
        let entry = log("ignored", message.clone(), &postback.sub_id);
        let body = json!({"status": "ignored", "message": message});
        return logged(state, &entry, StatusCode::OK, text, body).await;
    }
    let config = &state.config.postback;
    let converted = |amount, currency: &str| convert(amount, currency, config);
    let (revenue, cost) = match (
        postback.payout.map(|p| converted(p, &postback.currency)),
        converted(postback.cost, &postback.currency),
    ) {
        (Some(None), _) | (_, None) => {
            let message = format!(
                "currency: no rate from {} to {} (set [postback] rates)",
                postback.currency, config.currency
            );
            let entry = log("invalid", message.clone(), &postback.sub_id);
            let body = json!({"error": message});
            return logged(state, &entry, StatusCode::BAD_REQUEST, None, body).await;
        }
        (revenue, Some(cost)) => (revenue.flatten(), cost),
    };
    let default_revenue = converted(click.payout, &click.payout_currency).unwrap_or(click.payout);
    let key = if click.upsell || status == ConversionStatus::Rebill {
        postback.tid.clone()
    } else {
        String::new()
    };
    let new = NewConversion {
        tid: key,
        status,
        original_status: postback.original_status.clone(),
        revenue,
        default_revenue,
        cost,
        currency: if postback.currency.is_empty() {
            config.currency.clone()
        } else {
            postback.currency.clone()
        },
        sub_id_updates: postback.sub_id_updates.clone(),
        params: params_json.clone(),
        at: now,
        click,
    };
    let targets = state
        .store
        .postback_targets(new.click.campaign_id, new.click.ts_id)
        .await?;
    let outgoing = outgoing::plan(&targets, &new, &config.currency);
    let outcome = state.store.record_conversion(&new, &outgoing).await?;
    count_for_cap(state, &new, outcome);
    if matches!(
        outcome,
        ConversionOutcome::Accepted { .. } | ConversionOutcome::Transition { .. }
    ) {
        state.postbacks.wake();
    }
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
    Ok(answer(StatusCode::OK, text, body))
}

/// Keeps the in-memory daily count of the click's offer (for its cap) in step: a new
/// conversion that is not rejected counts, a counted one that becomes rejected stops counting.
fn count_for_cap(state: &AppState, new: &NewConversion, outcome: ConversionOutcome) {
    let Some(offer) = new.click.offer_id else {
        return;
    };
    let Some(cap) = state.snapshot.load().offer(offer).and_then(|o| o.cap) else {
        return;
    };
    let delta = match outcome {
        ConversionOutcome::Accepted { .. } if new.status != ConversionStatus::Rejected => 1,
        ConversionOutcome::Transition { .. } if new.status == ConversionStatus::Rejected => -1,
        _ => 0,
    };
    if delta != 0 {
        state.traffic.caps.add(offer, cap.timezone, new.at, delta);
    }
}
