//! Costs after the fact: `campaigns/{id}/update_costs` and the bulk `clicks/update_costs`
//! spread a total over the matching clicks (exactly: the click costs add up to the total).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::{NaiveDate, NaiveDateTime};
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::input::Input;
use super::ops::{Api, Doc, Shape};
use super::resource::{ApiError, ApiResult};
use crate::api::AppState;
use crate::conversions::convert;
use crate::model::Money;
use crate::report::{Bound, Condition, Operator, column};
use crate::store::CostSpread;

pub fn api() -> Api {
    Api::default()
        .route(
            Method::POST,
            "/campaigns/{id}/update_costs",
            Doc::new("Campaigns", "Spread a cost over a campaign's clicks of a period")
                .request(Shape::Json("{start_date, end_date, timezone, cost, currency, only_campaign_uniques, filters}"))
                .response(Shape::Json("{success, clicks}")),
            post(campaign_costs),
        )
        .route(
            Method::POST,
            "/clicks/update_costs",
            Doc::new("Reports", "Spread costs over the clicks of several campaigns")
                .request(Shape::Json("{campaign_ids, costs: [{start_date, end_date, cost, filters}], timezone, currency, only_campaign_uniques}"))
                .response(Shape::Json("{success, clicks}")),
            post(bulk_costs),
        )
}

/// Filter keys `update_costs` accepts (Keitaro's cost filters).
fn cost_filter_column(name: &str) -> Option<crate::report::Column> {
    let allowed = matches!(
        name,
        "keyword" | "external_id" | "creative_id" | "ad_campaign_id" | "source"
    ) || name
        .strip_prefix("sub_id_")
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| (1..=crate::model::SUB_ID_COUNT).contains(&n));
    if allowed { column(name) } else { None }
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A start or end in the time zone: `YYYY-MM-DD HH:MM[:SS]` or a date (an end date includes
/// its whole day).
pub(super) fn moment(value: Option<&Value>, field: &str, tz: Tz, end: bool) -> Result<i64, String> {
    let text = value
        .and_then(text_of)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("{field}: is required"))?;
    let at = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(&text, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                .ok()
                .and_then(|d| if end { d.succ_opt() } else { Some(d) })
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .ok_or_else(|| format!("{field}: `{text}` is not a date or date and time"))?;
    crate::report::local_time(tz, at)
        .ok_or_else(|| format!("{field}: `{text}` does not exist in {tz}"))
}

/// One cost of a request: its range, total and filters, in `tz` and `currency`.
fn spread(
    item: &Value,
    prefix: &str,
    campaign_ids: Vec<i64>,
    tz: Tz,
    currency: &str,
    only_uniques: bool,
    state: &AppState,
) -> Result<CostSpread, String> {
    let field = |f: &str| format!("{prefix}{f}");
    let from = moment(item.get("start_date"), &field("start_date"), tz, false)?;
    let to = moment(item.get("end_date"), &field("end_date"), tz, true)?;
    if to <= from {
        return Err(format!("{}: must be after start_date", field("end_date")));
    }
    let cost_text = item
        .get("cost")
        .and_then(text_of)
        .ok_or_else(|| format!("{}: is required", field("cost")))?;
    let cost: Money = cost_text
        .parse()
        .map_err(|e| format!("{}: {e}", field("cost")))?;
    if cost.micros() < 0 {
        return Err(format!("{}: must not be negative", field("cost")));
    }
    let total = convert(cost, currency, &state.config.postback).ok_or_else(|| {
        format!(
            "currency: no rate from {currency} to {} (set [postback] rates)",
            state.config.postback.currency
        )
    })?;
    let mut conditions = Vec::new();
    match item.get("filters") {
        None | Some(Value::Null) => {}
        Some(Value::Object(filters)) => {
            for (name, value) in filters {
                let column = cost_filter_column(name)
                    .ok_or_else(|| format!("{}: unknown filter `{name}`", field("filters")))?;
                let values: Vec<Bound> = match value {
                    Value::Array(items) => items.iter().filter_map(text_of).collect::<Vec<_>>(),
                    other => text_of(other)
                        .map(|t| t.split(',').map(|p| p.trim().to_string()).collect())
                        .unwrap_or_default(),
                }
                .into_iter()
                .map(Bound::Text)
                .collect();
                if values.is_empty() || values.len() > 1_000 {
                    return Err(format!(
                        "{}: needs between 1 and 1000 values",
                        field(&format!("filters.{name}"))
                    ));
                }
                conditions.push(Condition {
                    column,
                    operator: Operator::InList,
                    values,
                });
            }
        }
        Some(_) => return Err(format!("{}: must be an object", field("filters"))),
    }
    Ok(CostSpread {
        campaign_ids,
        from,
        to,
        total,
        only_uniques,
        conditions,
    })
}

pub(super) fn zone(request: &Value) -> Result<Tz, String> {
    match request
        .get("timezone")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        None => Ok(chrono_tz::UTC),
        Some(name) => name
            .parse()
            .map_err(|_| format!("timezone: `{name}` is not a time zone")),
    }
}

fn flag(request: &Value, key: &str) -> bool {
    match request.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() != Some(0),
        Some(Value::String(s)) => matches!(s.as_str(), "1" | "true"),
        _ => false,
    }
}

fn currency(request: &Value) -> String {
    request
        .get("currency")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_ascii_uppercase()
}

/// `POST campaigns/{id}/update_costs`: `{start_date, end_date, timezone, cost, currency,
/// only_campaign_uniques, filters}`.
async fn campaign_costs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: Input,
) -> ApiResult {
    let Ok(id) = id.parse::<i64>() else {
        return Err(ApiError::BadRequest(format!(
            "id: `{id}` is not a campaign id"
        )));
    };
    let request = Value::Object(input.fields);
    if state.store.campaign(id).await?.is_none() {
        return Err(ApiError::NotFound(format!("id: no campaign {id}")));
    }
    let tz = zone(&request).map_err(ApiError::BadRequest)?;
    let spread = spread(
        &request,
        "",
        vec![id],
        tz,
        &currency(&request),
        flag(&request, "only_campaign_uniques"),
        &state,
    )
    .map_err(ApiError::BadRequest)?;
    let updated = state
        .store
        .spread_costs(std::slice::from_ref(&spread))
        .await?;
    Ok(Json(json!({"success": true, "updated_clicks": updated})).into_response())
}

/// Campaigns one bulk cost update may name (each becomes a bound value).
const MAX_CAMPAIGN_IDS: usize = 1_000;

/// `POST clicks/update_costs`: `{campaign_ids, costs: [{start_date, end_date, cost,
/// filters}], timezone, currency, only_campaign_uniques}`. Every item is checked before any
/// is applied.
async fn bulk_costs(State(state): State<AppState>, input: Input) -> ApiResult {
    let bad = ApiError::BadRequest;
    let request = Value::Object(input.fields);
    let ids: Vec<i64> = match request.get("campaign_ids") {
        Some(Value::Array(items)) if items.len() > MAX_CAMPAIGN_IDS => {
            return Err(bad(format!(
                "campaign_ids: at most {MAX_CAMPAIGN_IDS} campaigns per request"
            )));
        }
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut ids = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let id = item
                    .as_i64()
                    .or_else(|| item.as_str().and_then(|s| s.trim().parse().ok()))
                    .ok_or_else(|| bad(format!("campaign_ids[{i}]: must be a campaign id")))?;
                ids.push(id);
            }
            ids
        }
        _ => {
            return Err(bad(
                "campaign_ids: a non-empty array of campaign ids is required".into(),
            ));
        }
    };
    let tz = zone(&request).map_err(bad)?;
    let Some(Value::Array(costs)) = request.get("costs") else {
        return Err(bad(
            "costs: an array of {start_date, end_date, cost, filters} is required".into(),
        ));
    };
    let mut spreads = Vec::new();
    for (i, item) in costs.iter().enumerate() {
        let spread = spread(
            item,
            &format!("costs[{i}]."),
            ids.clone(),
            tz,
            &currency(&request),
            flag(&request, "only_campaign_uniques"),
            &state,
        )
        .map_err(bad)?;
        spreads.push(spread);
    }
    // Every item or none: one transaction.
    let updated = state.store.spread_costs(&spreads).await?;
    Ok(Json(json!({"success": true, "updated_clicks": updated})).into_response())
}
