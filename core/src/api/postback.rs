//! The postback endpoint: `GET|POST /{postback_key}/postback?subid=…&status=…&payout=…`
//! (and `/postback` when `[postback] keyless`). A wrong key answers 404 and changes nothing;
//! every postback with the right key is logged (`logs/postbacks`), an unknown sub id too.

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
use crate::store::{ConversionOutcome, ConversionStatus, NewConversion, ReceivedPostback};

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

/// Logs a postback that recorded nothing, then answers; when the log cannot be written, 500
/// (nothing was recorded, and the network retries).
async fn logged(
    state: &AppState,
    entry: &ReceivedPostback,
    status: StatusCode,
    text: Option<&str>,
    value: serde_json::Value,
) -> Response {
    if let Err(e) = state.store.log_received_postback(entry).await {
        tracing::error!(error = %e, "Could not log a postback.");
        return crate::api::ApiError::Internal(e.to_string()).into_response();
    }
    answer(status, text, value)
}

fn answer(status: StatusCode, text: Option<&str>, value: serde_json::Value) -> Response {
    match text {
        Some(text) => (
            status,
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            text.to_string(),
        )
            .into_response(),
        None => (status, Json(value)).into_response(),
    }
}

async fn receive(
    state: AppState,
    headers: HeaderMap,
    query: Option<String>,
    body: Bytes,
) -> Response {
    let now = unix_now();
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if is_json {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(&body) {
            for (k, v) in map {
                let text = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                params.insert(k, text);
            }
        }
    } else {
        for (k, v) in url::form_urlencoded::parse(&body) {
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
            return answer(
                StatusCode::BAD_REQUEST,
                None,
                json!({"error": error.to_string()}),
            );
        }
    };
    let text = postback.answer.as_deref();
    let click = match state.store.postback_click(&postback.sub_id).await {
        Ok(Some(click)) => click,
        Ok(None) => {
            let message = format!("no click has the sub id `{}`", postback.sub_id);
            tracing::warn!(sub_id = %postback.sub_id, "A postback names an unknown sub id; it is logged.");
            let entry = log("unknown_sub_id", message.clone(), &postback.sub_id);
            let body = json!({"error": format!("subid: {message}")});
            return logged(&state, &entry, StatusCode::NOT_FOUND, None, body).await;
        }
        Err(error) => return crate::api::ApiError::Internal(error.to_string()).into_response(),
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
            &state,
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
        return logged(&state, &entry, StatusCode::OK, text, body).await;
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
            return logged(&state, &entry, StatusCode::BAD_REQUEST, None, body).await;
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
    match state.store.record_conversion(&new).await {
        Ok(outcome) => {
            count_for_cap(&state, &new, outcome);
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
            answer(StatusCode::OK, text, body)
        }
        Err(error) => crate::api::ApiError::Internal(error.to_string()).into_response(),
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
