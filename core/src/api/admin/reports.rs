//! Report endpoints of the Admin API (so far: `clicks/log`).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::TimeZone;
use serde_json::{Map, Value, json};

use crate::api::AppState;
use crate::model::{Money, unix_now};
use crate::report::{Cell, parse_log_query};

pub fn router() -> Router<AppState> {
    Router::new().route("/clicks/log", post(clicks_log))
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

/// `POST clicks/log`: `{range, columns, filters, sort|order, limit, offset}` ->
/// `{rows: [{column: value}], total}`. Times are shown in the range's time zone.
async fn clicks_log(State(state): State<AppState>, body: Bytes) -> Response {
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(error) => return bad_request(format!("the body is not valid JSON: {error}")),
        }
    };
    let query = match parse_log_query(&body, unix_now()) {
        Ok(query) => query,
        Err(error) => return bad_request(error.to_string()),
    };
    let (rows, total) = match state.store.clicks_log(&query).await {
        Ok(found) => found,
        Err(error) => return crate::api::ApiError::Internal(error.to_string()).into_response(),
    };
    let show_time = |at: Option<i64>| {
        at.and_then(|t| query.timezone.timestamp_opt(t, 0).single())
            .map(|t| Value::String(t.format("%Y-%m-%d %H:%M:%S").to_string()))
            .unwrap_or(Value::Null)
    };
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|cells| {
            let mut row = Map::new();
            for (column, cell) in query.columns.iter().zip(cells) {
                let value = match cell {
                    Cell::Text(text) => Value::String(text),
                    Cell::Int(number) => number.map(Value::from).unwrap_or(Value::Null),
                    Cell::Bool(flag) => Value::Bool(flag),
                    Cell::Money(micros) => {
                        serde_json::to_value(Money::from_micros(micros)).unwrap_or(Value::Null)
                    }
                    Cell::Time(at) => show_time(at),
                };
                row.insert(column.name.clone(), value);
            }
            Value::Object(row)
        })
        .collect();
    Json(json!({ "rows": rows, "total": total })).into_response()
}
