//! Seed 001's clicks API: `GET /backend/open-api/v1/users/clicks` (filtered, paginated
//! `{data, total, per_page, page, pages}`), `GET …/clicks/{id}`, and `POST …/clicks` to create
//! a click; `Authorization: Bearer <token>`.
//!
//! Mapping (README "Other click APIs"): `id` is the click's row id, `hash` its sub id,
//! `group_hash` its visitor code, `affiliate_id` its traffic source, `aff_sub`..`aff_sub20`
//! its `sub_id_1`..`sub_id_20`, `adv_sub`..`adv_sub5` its `extra_param_1`..`extra_param_5`,
//! `offer_url_id` its landing, `advertiser_*` the offer's affiliate network.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::{
    DialectError, api_visit, bearer_protected, format_plain_time, id_field, json_object, parse_id,
    parse_ip, parse_time, text_field, text_or_null, url_query,
};
use crate::api::AppState;
use crate::config::Dialect;
use crate::model::{ObjectState, unix_now};
use crate::store::{
    ClickRecord, DialectClick, LogCondition, LogField, LogQuery, LogValue, SortOrder,
};
use crate::traffic::RouteOptions;

const PATH: &str = "/backend/open-api/v1/users/clicks";
/// Rows per page when `per_page` is not given, and the most a page may hold.
const DEFAULT_PER_PAGE: i64 = 200;
const MAX_PER_PAGE: i64 = 1_000;
/// The sub ids a row shows (`aff_sub`, `aff_sub2` … `aff_sub20`).
const AFF_SUBS: usize = 20;
/// The extra parameters a row shows as `adv_sub`, `adv_sub2` … `adv_sub5`.
const ADV_SUBS: usize = 5;

pub(super) fn router(state: AppState) -> Router<AppState> {
    let routes = Router::new()
        .route(PATH, get(list).post(create))
        .route(&format!("{PATH}/{{id}}"), get(one));
    bearer_protected(routes, state, Dialect::OpenApi)
}

/// `aff_sub`, `aff_sub2`, … — the seed's names of the n-th (1-based) sub id.
fn numbered(prefix: &str, n: usize) -> String {
    if n == 1 {
        prefix.to_string()
    } else {
        format!("{prefix}{n}")
    }
}

async fn list(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    match list_page(&state, query.as_deref()).await {
        Ok(body) => axum::Json(body).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn list_page(state: &AppState, query: Option<&str>) -> Result<Value, DialectError> {
    let pairs: Vec<(String, String)> = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let mut errors = Vec::new();
    let mut conditions = Vec::new();
    let mut page = 1;
    let mut per_page = DEFAULT_PER_PAGE;
    for (name, value) in &pairs {
        let value = value.trim();
        // An empty value means "not filtered", as HTML forms send unused fields.
        if value.is_empty() {
            continue;
        }
        match name.as_str() {
            "affiliate_id" | "offer_id" => match parse_id(value) {
                Some(id) => conditions.push(LogCondition::AnyOf(
                    if name == "offer_id" {
                        LogField::OfferId
                    } else {
                        LogField::TsId
                    },
                    vec![LogValue::Int(id)],
                )),
                None => errors.push((
                    name.clone(),
                    format!("The {name} must be a positive integer."),
                )),
            },
            "created_from" | "created_at_from" | "created_to" | "created_at_to" => {
                let to = name.ends_with("_to");
                match parse_time(value, to) {
                    Some(at) if to => conditions.push(LogCondition::AtMost(LogField::CreatedAt, at)),
                    Some(at) => conditions.push(LogCondition::AtLeast(LogField::CreatedAt, at)),
                    None => errors.push((
                        name.clone(),
                        format!(
                            "The {name} is not a date (use 2024-07-08 13:40:00, 2024-07-08 or RFC 3339)."
                        ),
                    )),
                }
            }
            "page" => match value.parse::<i64>().ok().filter(|p| *p >= 1) {
                Some(p) => page = p,
                None => errors.push((name.clone(), "The page must be at least 1.".into())),
            },
            "per_page" => match value
                .parse::<i64>()
                .ok()
                .filter(|p| (1..=MAX_PER_PAGE).contains(p))
            {
                Some(p) => per_page = p,
                None => errors.push((
                    name.clone(),
                    format!("The per_page must be between 1 and {MAX_PER_PAGE}."),
                )),
            },
            // Other parameters are not this API's and are ignored (cache busters and the like).
            _ => {}
        }
    }
    if !errors.is_empty() {
        return Err(DialectError::fields(errors));
    }
    let offset = (page - 1).saturating_mul(per_page);
    let query = LogQuery {
        conditions,
        sort: vec![(LogField::Id, SortOrder::Desc)],
        limit: per_page,
        offset,
    };
    let total = state.store.count_click_log(&query).await?;
    let rows = state.store.click_log(&query).await?;
    let pages = ((total + per_page - 1) / per_page).max(1);
    Ok(json!({
        "data": rows.iter().map(row).collect::<Vec<_>>(),
        "total": total,
        "per_page": per_page,
        "page": page,
        "pages": pages,
    }))
}

/// `GET …/clicks/{id}`: the same envelope holding the one click, or 404.
async fn one(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_id(&id) else {
        return DialectError::field("id", "The id must be a positive integer.").into_response();
    };
    match state.store.click_log(&LogQuery::by_id(id)).await {
        Ok(rows) if rows.is_empty() => DialectError::not_found("Click not found.").into_response(),
        Ok(rows) => axum::Json(json!({
            "data": rows.iter().map(row).collect::<Vec<_>>(),
            "total": 1,
            "per_page": DEFAULT_PER_PAGE,
            "page": 1,
            "pages": 1,
        }))
        .into_response(),
        Err(error) => DialectError::from(error).into_response(),
    }
}

/// One click as the seed's rows show it, every field present.
fn row(record: &ClickRecord) -> Value {
    let click = &record.click;
    let unknown = |text: &str| {
        if text.is_empty() {
            "UNK".to_string()
        } else {
            text.to_string()
        }
    };
    let sale_status = if record.is_sale {
        "Approved"
    } else if record.is_rejected {
        "Rejected"
    } else if record.is_lead {
        "Pending"
    } else {
        "New"
    };
    let mut out = Map::new();
    let mut put = |key: &str, value: Value| {
        out.insert(key.to_string(), value);
    };
    put("id", json!(record.id));
    put("hash", json!(click.sub_id));
    put("group_hash", json!(click.visitor_code));
    put("offer_id", json!(click.offer_id));
    put("offer_name", json!(record.offer_name));
    put("offer_url_id", json!(click.landing_id));
    put("advertiser_id", json!(record.advertiser_id));
    put("advertiser_name", json!(record.advertiser_name));
    put("aff_group_id", Value::Null);
    put("brand_id", Value::Null);
    put("affiliate_id", json!(click.ts_id));
    put("affiliate_name", json!(record.traffic_source_name));
    put("device_model", json!(click.device_model));
    put("device_brand", json!(click.device_brand));
    put("sale_status", json!(sale_status));
    put("advertiser_external_id", Value::Null);
    for n in 1..=ADV_SUBS {
        let value = click.extra_params.get(n - 1).map_or("", String::as_str);
        put(&numbered("adv_sub", n), text_or_null(value));
    }
    put("device_os", json!(unknown(&click.os)));
    for n in 1..=AFF_SUBS {
        let value = click.sub_ids.get(n - 1).cloned().unwrap_or_default();
        put(&numbered("aff_sub", n), json!(value));
    }
    put("affiliate_source", json!(click.source));
    put("user_agent", json!(click.user_agent));
    put("browser", json!(click.browser));
    put("ip", json!(click.ip));
    put("device_os_version", json!(unknown(&click.os_version)));
    put("platform", json!(click.device_type));
    put("mobile_carrier", json!(unknown(&click.operator)));
    put("country_code", json!(click.country_code));
    put("region_code", json!(click.region_code));
    put("external_id", text_or_null(&click.external_id));
    put("has_conversions", json!(record.has_conversions));
    put("requested_link", text_or_null(&click.request_url));
    put("redirected_link", text_or_null(&click.destination));
    put("is_unique", json!(click.is_unique_campaign));
    put("created_at", json!(format_plain_time(click.created_at)));
    Value::Object(out)
}

/// `POST …/clicks`: records a click of an affiliate (traffic source) on an offer. JSON or form
/// body: `offer_id` and `ip` required; `campaign_id`, `affiliate_id`, `user_agent`,
/// `referrer`, `requested_link`, `aff_sub`..`aff_sub20`, `adv_sub`..`adv_sub5`,
/// `affiliate_source`, `external_id` optional. Answers 201 `{"data": row}`.
async fn create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match create_click(&state, &headers, &body).await {
        Ok(record) => (
            StatusCode::CREATED,
            axum::Json(json!({ "data": row(&record) })),
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

/// The body as a JSON object; a form body is read as one too.
fn body_fields(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, DialectError> {
    let content_type = super::header_text(headers, "content-type").to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return Ok(url::form_urlencoded::parse(body)
            .into_owned()
            .map(|(k, v)| (k, Value::String(v)))
            .collect());
    }
    json_object(body)
}

async fn create_click(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ClickRecord, DialectError> {
    let fields = body_fields(headers, body)?;
    let mut errors = Vec::new();
    let offer_id = id_field(&fields, "offer_id", &mut errors);
    if offer_id.is_none() && !errors.iter().any(|(f, _)| f == "offer_id") {
        errors.push(("offer_id".into(), "The offer_id field is required.".into()));
    }
    let campaign_id = id_field(&fields, "campaign_id", &mut errors);
    let affiliate_id = id_field(&fields, "affiliate_id", &mut errors);
    let ip = match text_field(&fields, "ip", 64, &mut errors) {
        Some(text) => match parse_ip(&text) {
            Some(ip) => Some(ip),
            None => {
                errors.push(("ip".into(), "The ip must be a valid IP address.".into()));
                None
            }
        },
        None => {
            if !errors.iter().any(|(f, _)| f == "ip") {
                errors.push(("ip".into(), "The ip field is required.".into()));
            }
            None
        }
    };
    let user_agent = text_field(&fields, "user_agent", 2_048, &mut errors).unwrap_or_default();
    let referrer = text_field(&fields, "referrer", 4_096, &mut errors).unwrap_or_default();
    let requested_link = text_field(&fields, "requested_link", 4_096, &mut errors);
    if let Some(link) = &requested_link
        && crate::template::check_http_url(link).is_err()
    {
        errors.push((
            "requested_link".into(),
            "The requested_link must be an http(s) URL.".into(),
        ));
    }
    // The click's parameters: the requested link's query, then the seed's fields under the
    // click fields they feed.
    let mut query = requested_link.as_deref().map(url_query).unwrap_or_default();
    for n in 1..=AFF_SUBS {
        if let Some(value) = text_field(&fields, &numbered("aff_sub", n), 1_024, &mut errors) {
            query.push((format!("sub_id_{n}"), value));
        }
    }
    for n in 1..=ADV_SUBS {
        if let Some(value) = text_field(&fields, &numbered("adv_sub", n), 1_024, &mut errors) {
            query.push((format!("extra_param_{n}"), value));
        }
    }
    if let Some(source) = text_field(&fields, "affiliate_source", 1_024, &mut errors) {
        query.push(("source".into(), source));
    }
    if let Some(external) = text_field(&fields, "external_id", 1_024, &mut errors) {
        query.push(("external_id".into(), external));
    }
    let (Some(offer_id), Some(ip)) = (offer_id, ip) else {
        return Err(DialectError::fields(errors));
    };
    if !errors.is_empty() {
        return Err(DialectError::fields(errors));
    }

    let offer = state.store.offer(offer_id).await?;
    match offer {
        None => {
            return Err(DialectError::field(
                "offer_id",
                format!("There is no offer {offer_id}."),
            ));
        }
        Some(offer) if offer.state != ObjectState::Active => {
            return Err(DialectError::field(
                "offer_id",
                format!("The offer {offer_id} is not active."),
            ));
        }
        Some(_) => {}
    }
    let snapshot = state.snapshot.load();
    let route = match campaign_id {
        Some(id) => snapshot.campaign_by_id(id).ok_or_else(|| {
            DialectError::field(
                "campaign_id",
                format!("There is no active campaign {id}."),
            )
        })?,
        None => snapshot
            .campaigns()
            .filter(|route| {
                route
                    .streams()
                    .any(|s| s.offers.iter().any(|(id, _)| *id == offer_id))
            })
            .min_by_key(|route| route.campaign.id)
            .ok_or_else(|| {
                DialectError::field(
                    "offer_id",
                    format!(
                        "No active campaign sends traffic to offer {offer_id}; name one with campaign_id."
                    ),
                )
            })?,
    };
    let visit = std::sync::Arc::new(api_visit(headers, ip, &user_agent, &referrer, "", query));
    let options = RouteOptions {
        force_offer: true,
        offer_id: Some(offer_id),
        ..RouteOptions::default()
    };
    let result = state.router(&snapshot).click(route, &visit, &options).await;
    let mut click = result.click;
    // The click is the affiliate's click on this offer, whatever the streams decided.
    click.offer_id = Some(offer_id);
    if let Some(affiliate) = affiliate_id {
        click.ts_id = Some(affiliate);
    }
    click.request_url = requested_link.unwrap_or_default();
    let new = DialectClick {
        click,
        dialect: Dialect::OpenApi.name().to_string(),
        uuid: None,
        created_at: unix_now(),
    };
    let created = state.store.create_dialect_click(&new, None).await?;
    let mut rows = state
        .store
        .click_log(&LogQuery::by_sub_id(&created.sub_id))
        .await?;
    rows.pop()
        .ok_or_else(|| DialectError::internal("a created click could not be read back"))
}
