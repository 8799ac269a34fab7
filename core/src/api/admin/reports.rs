//! Report endpoints of the Admin API: `report/build`, `report/definition`, `clicks/log`,
//! `conversions/log` and the logs (`logs/types`, `logs/{type}`). Bodies may be JSON (with or
//! without a Content-Type) or forms; a bad request answers 400 naming the field.

use std::collections::HashMap;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Map, Value, json};

use super::input::Input;
use super::ops::{Api, Doc, Shape};
use super::resource::{ApiError, ApiResult};
use crate::api::AppState;
use crate::model::unix_now;
use crate::report::{
    Cell, LogQuery, METRICS, column, column_kind_name, conversion_column, grouping_names,
    parse_conversion_log_query, parse_log_query, parse_report_query,
};

pub fn api() -> Api {
    const TAG: &str = "Reports";
    let report = |what: &'static str| Shape::Json(what);
    Api::default()
        .route(
            Method::POST,
            "/clicks/log",
            Doc::new(TAG, "The click log: {range, columns, filters, sort, limit, offset}")
                .request(report("{range, columns, filters, sort, limit, offset}"))
                .response(report("{rows, total}")),
            post(clicks_log),
        )
        .route(
            Method::POST,
            "/conversions/log",
            Doc::new(TAG, "The conversion log: {range, columns, filters, sort, limit, offset}")
                .request(report("{range, columns, filters, sort, limit, offset}"))
                .response(report("{rows, total}")),
            post(conversions_log),
        )
        .alias("/conversions/log", get(conversions_log))
        .route(
            Method::POST,
            "/report/build",
            Doc::new(TAG, "Build a report: {range, grouping, metrics, filters, sort, limit, offset, summary}")
                .request(report("{range, grouping, metrics, filters, sort, limit, offset, summary}"))
                .response(report("{rows, total, summary, meta}")),
            post(report_build),
        )
        .route(
            Method::GET,
            "/report/definition",
            Doc::new(TAG, "Every grouping, column, metric (with its formula), operator and interval")
                .response(report("The report definition.")),
            get(report_definition),
        )
        .alias("/report/definition", post(report_definition))
        .route(
            Method::GET,
            "/report/labels",
            Doc::new(TAG, "A campaign's labels of one ref")
                .query("campaign_id", true)
                .query("ref_name", true)
                .query("label_name", false)
                .response(report("{value: label}")),
            get(get_labels),
        )
        .route(
            Method::POST,
            "/report/labels",
            Doc::new(TAG, "Set a campaign's labels of one ref: {campaign_id, ref_name, items}")
                .request(report("{campaign_id, ref_name, items}"))
                .response(report("{success}")),
            post(set_labels),
        )
        .route(
            Method::POST,
            "/clicks/clean",
            Doc::new(TAG, "Delete the clicks of a period (with their conversions): {start_date, end_date, campaign_id, timezone}")
                .request(report("{start_date, end_date, campaign_id, timezone}"))
                .response(report("{success, deleted}")),
            post(clean_clicks),
        )
        .route(
            Method::POST,
            "/logs/types",
            Doc::new("Logs", "The log types").response(report("[type]")),
            post(log_types),
        )
        .alias("/logs/types", get(log_types))
        .route(
            Method::GET,
            "/logs/{type}",
            Doc::new("Logs", "Entries of a log (postbacks, sent_postbacks)")
                .query("limit", false)
                .query("offset", false)
                .query("query", false)
                .response(report("[{datetime, jid, message}]")),
            get(read_log),
        )
        .route(
            Method::DELETE,
            "/logs/{type}",
            Doc::new("Logs", "Clear a log").response(report("{success}")),
            delete(clear_log),
        )
}

/// A 400 naming the field (the parsers' errors start with it).
fn bad(error: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(error.to_string())
}

/// `logs/{type}` names one of [`LOG_TYPES`].
fn known_log(kind: &str) -> Result<(), ApiError> {
    if LOG_TYPES.iter().any(|(k, _)| *k == kind) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("type: unknown log `{kind}`")))
    }
}

fn log_rows(query: &LogQuery, rows: Vec<Vec<Cell>>) -> Vec<Value> {
    rows.into_iter()
        .map(|cells| {
            let mut row = Map::new();
            for (column, cell) in query.columns.iter().zip(cells) {
                row.insert(column.name.clone(), cell.to_json(query.timezone));
            }
            Value::Object(row)
        })
        .collect()
}

/// `POST clicks/log`: `{range, columns, filters, sort|order, limit, offset}` ->
/// `{rows: [{column: value}], total}`. Times are shown in the range's time zone.
async fn clicks_log(State(state): State<AppState>, input: Input) -> ApiResult {
    let request = Value::Object(input.fields);
    let query = parse_log_query(&request, unix_now()).map_err(bad)?;
    let (rows, total) = state.reports.clicks_log(&query).await?;
    Ok(Json(json!({ "rows": log_rows(&query, rows), "total": total })).into_response())
}

/// `GET|POST conversions/log`: like `clicks/log` over conversions (`range` by the time the
/// postback arrived).
async fn conversions_log(State(state): State<AppState>, input: Input) -> ApiResult {
    let request = Value::Object(input.fields);
    let query = parse_conversion_log_query(&request, unix_now()).map_err(bad)?;
    let (rows, total) = state.reports.conversions_log(&query).await?;
    Ok(Json(json!({ "rows": log_rows(&query, rows), "total": total })).into_response())
}

/// `POST report/build`: `{range, grouping, metrics, filters, sort, limit, offset, summary}` ->
/// `{rows, total, summary?, meta}`.
async fn report_build(State(state): State<AppState>, input: Input) -> ApiResult {
    let started = Instant::now();
    let request = Value::Object(input.fields);
    let query = parse_report_query(&request, unix_now()).map_err(bad)?;
    let rows = state.reports.report_rows(&query.sql).await?;
    let mut names = HashMap::new();
    for (table, ids) in query.named_ids(&rows) {
        let found = state.reports.object_names(table, &ids).await?;
        names.extend(found.into_iter().map(|(id, name)| ((table, id), name)));
    }
    let mut answer = query.answer(rows, &names);
    answer["meta"] = json!({
        "datetime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        "execution_time": format!("{:.4}", started.elapsed().as_secs_f64()),
    });
    Ok(Json(answer).into_response())
}

/// `GET report/definition`: the groupings, metrics, filter operators and intervals
/// `report/build` accepts.
async fn report_definition() -> Response {
    let click_columns = [
        "click_id",
        "sub_id",
        "visitor_code",
        "campaign_id",
        "parent_campaign_id",
        "stream_id",
        "landing_id",
        "offer_id",
        "ts_id",
        "datetime",
        "landing_clicked_datetime",
        "ip",
        "user_agent",
        "referrer",
        "language",
        "country_code",
        "country",
        "region",
        "city",
        "isp",
        "operator",
        "connection_type",
        "device_type",
        "device_model",
        "os",
        "os_version",
        "browser",
        "browser_version",
        "source",
        "keyword",
        "search_engine",
        "x_requested_with",
        "ad_campaign_id",
        "external_id",
        "creative_id",
        "destination",
        "is_unique_campaign",
        "is_unique_stream",
        "is_unique_global",
        "is_bot",
        "is_using_proxy",
        "is_lead",
        "is_sale",
        "is_rejected",
        "cost",
        "revenue",
        "profit",
    ];
    let mut dimensions: Vec<Value> = click_columns
        .iter()
        .filter_map(|name| column(name))
        .map(|c| json!({"name": c.name, "type": column_kind_name(c.kind)}))
        .collect();
    dimensions.push(json!({"name": "sub_id_1..sub_id_30", "type": "string"}));
    dimensions.push(json!({"name": "extra_param_1..extra_param_10", "type": "string"}));
    for name in grouping_names() {
        dimensions.push(json!({"name": name, "type": "grouping"}));
    }
    let metrics: Vec<Value> = METRICS
        .iter()
        .map(|m| json!({"name": m.name, "type": format!("{:?}", m.kind).to_lowercase(), "description": m.description}))
        .collect();
    let conversion_columns: Vec<Value> = [
        "conversion_id",
        "sub_id",
        "tid",
        "status",
        "previous_status",
        "original_status",
        "revenue",
        "cost",
        "profit",
        "currency",
        "click_id",
        "campaign_id",
        "stream_id",
        "landing_id",
        "offer_id",
        "ts_id",
        "affiliate_network_id",
        "datetime",
        "postback_datetime",
        "click_datetime",
        "params",
    ]
    .iter()
    .filter_map(|name| conversion_column(name))
    .map(|c| json!({"name": c.name, "type": column_kind_name(c.kind)}))
    .collect();
    Json(json!({
        "dimensions": dimensions,
        "metrics": metrics,
        "conversion_columns": conversion_columns,
        "operators": crate::report::OPERATORS.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        "intervals": crate::report::INTERVALS,
    }))
    .into_response()
}

/// The logs `logs/{type}` serves.
const LOG_TYPES: &[(&str, &str)] = &[
    ("postbacks", "Received postbacks"),
    ("sent_postbacks", "Sent postbacks"),
];

async fn log_types() -> Response {
    let types: Vec<Value> = LOG_TYPES
        .iter()
        .map(|(key, name)| json!({"key": key, "name": name}))
        .collect();
    Json(Value::Array(types)).into_response()
}

/// `GET logs/{type}?limit=&offset=`: entries, newest first.
async fn read_log(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    input: Input,
) -> ApiResult {
    known_log(&kind)?;
    let query = Value::Object(input.fields);
    let number = |key: &str, default: i64, max: i64| -> Result<i64, String> {
        match query.get(key).and_then(Value::as_str) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| (0..=max).contains(n))
                .ok_or_else(|| format!("{key}: must be a whole number from 0 to {max}")),
        }
    };
    let limit = number("limit", 100, 10_000).map_err(bad)?;
    let offset = number("offset", 0, i64::from(i32::MAX)).map_err(bad)?;
    if kind == "sent_postbacks" {
        let entries = state.store.sent_postbacks(limit, offset).await?;
        return Ok(Json(Value::Array(
            entries
                .into_iter()
                .map(|e| {
                    json!({
                        "id": e.id,
                        "conversion_id": e.conversion_id,
                        "origin": e.origin,
                        "method": e.method,
                        "url": e.url,
                        "body": e.body,
                        "status": e.http_status,
                        "attempts": e.attempts,
                        "error": e.error,
                        "datetime": Cell::Time(Some(e.created_at)).to_json(chrono_tz::UTC),
                    })
                })
                .collect(),
        ))
        .into_response());
    }
    let entries = state.store.received_postbacks(limit, offset).await?;
    let rows: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            // The parameters as they were stored (JSON text), or as text if not JSON.
            let params =
                serde_json::from_str::<Value>(&e.params).unwrap_or(Value::String(e.params));
            json!({
                "id": e.id,
                "sub_id": e.sub_id,
                "tid": e.tid,
                "status": e.status,
                "outcome": e.outcome,
                "message": e.message,
                "conversion_id": e.conversion_id,
                "params": params,
                "datetime": Cell::Time(Some(e.created_at)).to_json(chrono_tz::UTC),
            })
        })
        .collect();
    Ok(Json(Value::Array(rows)).into_response())
}

/// `DELETE logs/{type}`: empties the log.
async fn clear_log(State(state): State<AppState>, Path(kind): Path<String>) -> ApiResult {
    known_log(&kind)?;
    let removed = if kind == "sent_postbacks" {
        state.store.clear_sent_postbacks().await?
    } else {
        state.store.clear_received_postbacks().await?
    };
    Ok(Json(json!({"success": true, "removed": removed})).into_response())
}

fn id_of(request: &Value, key: &str) -> Result<i64, String> {
    request
        .get(key)
        .and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        })
        .filter(|id| *id > 0)
        .ok_or_else(|| format!("{key}: a campaign id is required"))
}

fn ref_name_of(request: &Value) -> Result<String, String> {
    let name = request
        .get("ref_name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string();
    if crate::report::is_label_ref(&name) {
        Ok(name)
    } else {
        Err(format!(
            "ref_name: `{name}` is not one of {}",
            crate::report::LABEL_REFS
        ))
    }
}

/// `GET report/labels?campaign_id=&ref_name=`: `{value: label}`.
async fn get_labels(State(state): State<AppState>, input: Input) -> ApiResult {
    let request = Value::Object(input.fields);
    let campaign_id = id_of(&request, "campaign_id").map_err(bad)?;
    let ref_name = ref_name_of(&request).map_err(bad)?;
    let labels = state.reports.labels(campaign_id, &ref_name).await?;
    Ok(Json(Value::Object(
        labels
            .into_iter()
            .map(|(value, label)| (value, Value::String(label)))
            .collect(),
    ))
    .into_response())
}

/// `POST report/labels`: `{campaign_id, ref_name, items: {value: "whitelist" | "blacklist" |
/// ""}}` (an empty label removes one).
async fn set_labels(State(state): State<AppState>, input: Input) -> ApiResult {
    let request = Value::Object(input.fields);
    let campaign_id = id_of(&request, "campaign_id").map_err(bad)?;
    let ref_name = ref_name_of(&request).map_err(bad)?;
    let Some(Value::Object(items)) = request.get("items") else {
        return Err(bad("items: an object {value: label} is required"));
    };
    if items.len() > 10_000 {
        return Err(bad("items: at most 10000 values at once"));
    }
    let mut changes = Vec::new();
    for (value, label) in items {
        let label = match label {
            Value::Null => None,
            Value::String(s) if s.trim().is_empty() => None,
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                l @ ("whitelist" | "blacklist") => Some(l.to_string()),
                other => {
                    return Err(bad(format!(
                        "items.{value}: `{other}` is not whitelist, blacklist or empty"
                    )));
                }
            },
            _ => return Err(bad(format!("items.{value}: must be a label"))),
        };
        if value.chars().count() > 255 {
            return Err(bad("items: a value is longer than 255 characters"));
        }
        changes.push((value.clone(), label));
    }
    let changed = state
        .reports
        .set_labels(campaign_id, &ref_name, &changes)
        .await?;
    Ok(Json(json!({"success": true, "changed": changed})).into_response())
}

/// `POST clicks/clean`: `{start_date, end_date, campaign_id?, timezone?}` deletes the clicks
/// of the period and their conversions.
async fn clean_clicks(State(state): State<AppState>, input: Input) -> ApiResult {
    let request = Value::Object(input.fields);
    let tz = super::costs::zone(&request).map_err(bad)?;
    let from =
        super::costs::moment(request.get("start_date"), "start_date", tz, false).map_err(bad)?;
    let to = super::costs::moment(request.get("end_date"), "end_date", tz, true).map_err(bad)?;
    let campaign_id = match request.get("campaign_id") {
        None | Some(Value::Null) => None,
        Some(_) => Some(id_of(&request, "campaign_id").map_err(bad)?),
    };
    let (clicks, conversions) = state.store.clean_clicks(from, to, campaign_id).await?;
    Ok(Json(json!({
        "success": true,
        "deleted_clicks": clicks,
        "deleted_conversions": conversions,
    }))
    .into_response())
}
