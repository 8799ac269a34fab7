//! The postback endpoint: `GET|POST /{postback_key}/postback?subid=…&status=…&payout=…`
//! (and `/postback` when `[postback] keyless`). A wrong key answers 404 and changes nothing;
//! every postback with the right key is logged (`logs/postbacks`). A postback whose sub id is
//! not stored yet (its click is still on its way from the journal, or another node recorded
//! it) is parked (`pending`) and answered 200; [`apply_parked`] applies it, with its received
//! time, once the click is stored, or logs it `expired` after `postback.pending_hours`.

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
use crate::outbound::{Macros, OutgoingPostback, expand, fires};
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
    match accept(&state, params, unix_now(), Arrival::Received).await {
        Ok(answer) => answer.into_response(),
        Err(error) => {
            tracing::error!(%error, "A postback could not be recorded.");
            crate::api::ApiError::Internal(error.to_string()).into_response()
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
    let outcome = state.store.record_conversion(&new).await?;
    count_for_cap(state, &new, outcome);
    if matches!(
        outcome,
        ConversionOutcome::Accepted { .. } | ConversionOutcome::Transition { .. }
    ) {
        let state = state.clone();
        let new = new.clone();
        tokio::spawn(async move { queue_postbacks(&state, &new, outcome.id()).await });
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

/// How often parked postbacks are checked for their click.
const PARKED_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// How often parked postbacks past their retention are expired.
const EXPIRY_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Applies parked postbacks once their click is stored (in the order they came, with the
/// time they came), and logs the ones whose click never came within `postback.pending_hours`
/// as `expired`; until `stop`. Applying is idempotent like any postback, so two nodes doing it
/// at once count the conversion once.
pub(crate) async fn apply_parked(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut last_expiry: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PARKED_POLL) => {}
            _ = stop.changed() => return,
        }
        let ready = match state.store.ready_postbacks(100).await {
            Ok(ready) => ready,
            Err(error) => {
                tracing::debug!(%error, "Parked postbacks cannot be read now.");
                continue;
            }
        };
        for pending in ready {
            let params = serde_json::from_str(&pending.params).unwrap_or_default();
            match accept(&state, params, pending.received_at, Arrival::Parked).await {
                Ok(answer) if answer.status == StatusCode::NOT_FOUND => {}
                Ok(_) => {
                    if let Err(error) = state.store.unpark_postback(pending.id).await {
                        tracing::warn!(%error, "An applied postback stays parked; applying it again changes nothing.");
                    }
                }
                Err(error)
                    if error.is_about_the_data() || matches!(error, StoreError::Corrupt(_)) =>
                {
                    // It would fail for ever: logged as invalid and dropped, so it does not
                    // hold back the parked postbacks behind it.
                    tracing::error!(%error, sub_id = %pending.sub_id, "A parked postback cannot be recorded; it is logged as invalid.");
                    let entry = ReceivedPostback {
                        id: 0,
                        sub_id: pending.sub_id.clone(),
                        tid: String::new(),
                        status: String::new(),
                        outcome: "invalid".into(),
                        message: error.to_string(),
                        conversion_id: None,
                        params: pending.params.clone(),
                        created_at: unix_now(),
                    };
                    if state.store.log_received_postback(&entry).await.is_ok() {
                        let _ = state.store.unpark_postback(pending.id).await;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "A parked postback could not be applied yet.");
                    break;
                }
            }
        }
        if last_expiry.is_none_or(|at| at.elapsed() >= EXPIRY_EVERY) {
            last_expiry = Some(tokio::time::Instant::now());
            expire_parked(&state).await;
        }
    }
}

/// Logs and removes the parked postbacks past their retention.
async fn expire_parked(state: &AppState) {
    let retention = state.config.postback.pending_retention;
    let before = unix_now() - retention.as_secs() as i64;
    let Ok(stale) = state.store.stale_postbacks(before, 1_000).await else {
        return;
    };
    for pending in stale {
        if !matches!(state.store.unpark_postback(pending.id).await, Ok(true)) {
            continue;
        }
        let params: BTreeMap<String, String> =
            serde_json::from_str(&pending.params).unwrap_or_default();
        let entry = ReceivedPostback {
            id: 0,
            sub_id: pending.sub_id.clone(),
            tid: params.get("tid").cloned().unwrap_or_default(),
            status: params.get("status").cloned().unwrap_or_default(),
            outcome: "expired".into(),
            message: format!(
                "no click with the sub id `{}` arrived within {} h",
                pending.sub_id,
                retention.as_secs() / 3_600
            ),
            conversion_id: None,
            params: pending.params.clone(),
            created_at: unix_now(),
        };
        if let Err(error) = state.store.log_received_postback(&entry).await {
            tracing::error!(%error, "Could not log an expired postback.");
        }
        tracing::warn!(sub_id = %pending.sub_id, "A parked postback expired: its click never arrived.");
    }
}

/// Queues the campaign's and the traffic source's postbacks that fire for the conversion's
/// new status (runs after the answer, off the request path).
async fn queue_postbacks(state: &AppState, new: &NewConversion, conversion_id: i64) {
    let click = &new.click;
    let targets = match state
        .store
        .postback_targets(click.campaign_id, click.ts_id)
        .await
    {
        Ok(targets) => targets,
        Err(error) => {
            tracing::error!(error = %error, "Could not read the postbacks of a campaign.");
            return;
        }
    };
    let id = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let revenue = new.revenue.unwrap_or(new.default_revenue).to_string();
    let macros: Macros = vec![
        ("subid", click.sub_id.clone()),
        ("sub_id", click.sub_id.clone()),
        ("tid", new.tid.clone()),
        ("status", new.status.as_str().to_string()),
        ("original_status", new.original_status.clone()),
        ("payout", revenue.clone()),
        ("revenue", revenue),
        ("cost", new.cost.to_string()),
        ("currency", state.config.postback.currency.clone()),
        ("conversion_id", conversion_id.to_string()),
        ("click_id", click.click_id.to_string()),
        ("campaign_id", click.campaign_id.to_string()),
        ("stream_id", id(click.stream_id)),
        ("landing_id", id(click.landing_id)),
        ("offer_id", id(click.offer_id)),
        ("ts_id", id(click.ts_id)),
    ];
    let body: serde_json::Value = macros
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let status = new.status.as_str();
    let campaign: Vec<serde_json::Value> =
        serde_json::from_str(&targets.campaign_postbacks).unwrap_or_default();
    for postback in campaign {
        let url = postback
            .get("url")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        let statuses: Vec<String> = postback
            .get("statuses")
            .and_then(serde_json::Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if url.is_empty() || !fires(&statuses, status) {
            continue;
        }
        let method = postback
            .get("method")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("GET")
            .to_ascii_uppercase();
        state
            .postbacks
            .send(OutgoingPostback {
                conversion_id,
                origin: "campaign",
                method: if method == "POST" {
                    "POST".into()
                } else {
                    "GET".into()
                },
                url: expand(url, &macros),
                body: body.clone(),
            })
            .await;
    }
    if let Some((url, statuses)) = targets.traffic_source
        && !url.trim().is_empty()
    {
        let statuses: Vec<String> = serde_json::from_str(&statuses).unwrap_or_default();
        if fires(&statuses, status) {
            state
                .postbacks
                .send(OutgoingPostback {
                    conversion_id,
                    origin: "traffic_source",
                    method: "GET".into(),
                    url: expand(url.trim(), &macros),
                    body,
                })
                .await;
        }
    }
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
