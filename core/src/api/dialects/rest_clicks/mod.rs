//! Seed 004's clicks resource under a configurable `[base]`: list (`limit`/`offset`,
//! `sort_by`/`sort_order`, `filter[…]`, `query[…]` expansions), get, create, update (attach a
//! client profile with contacts; PATCH as PUT), delete; `Authorization: Bearer <token>`.
//!
//! Mapping (README "Other click APIs"): `clickId` is the click's sub id, `time` its time,
//! `uri` the link it requested, `linkId` its campaign, `bannerId` its `creative_id`, `utm*`
//! its UTM tags; `latitude`, `longitude`, `countryCode`, `countryName` come from GeoIP.
//! A created click is recorded by the campaign whose alias is the first segment of the
//! `uri`'s path, else by `dialects.rest_clicks_campaign`.

use std::collections::{BTreeSet, HashMap};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::{
    DialectError, api_visit, bearer_protected, format_rfc3339, json_object, locale_language,
    parse_ip, parse_time, text_field, text_or_null, url_query,
};
use crate::api::AppState;
use crate::config::Dialect;
use crate::model::unix_now;
use crate::store::{
    ClickProfile, ClickRecord, DialectClick, LinkMetrics, LogField, LogQuery, ProfileContact,
    SortOrder,
};
use crate::traffic::RouteOptions;

use profile::{MAX_PROFILE_TEXT, parse_profile};
use query::{Expansions, expansions, filters, query_pairs, sort_field};

mod profile;
mod query;

/// Clicks per page without `limit`, and the most one page holds.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1_000;

pub(super) fn router(state: AppState, base: &str) -> Router<AppState> {
    let routes = Router::new()
        .route(&format!("{base}/clicks"), get(list).post(create))
        .route(
            &format!("{base}/clicks/{{click_id}}"),
            get(one).put(update).patch(update).delete(delete),
        );
    bearer_protected(routes, state, Dialect::RestClicks)
}

/// `GET [base]/clicks`: a JSON array of click objects; `X-Total-Count` holds the number of
/// matching clicks.
async fn list(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query.as_deref());
    let mut errors = Vec::new();
    let expand = expansions(&pairs, &mut errors);
    let conditions = filters(&pairs, &mut errors);
    let get = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    };
    let limit = match get("limit") {
        None | Some("") => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .unwrap_or_else(|| {
                errors.push((
                    "limit".into(),
                    format!("The limit must be between 1 and {MAX_LIMIT}."),
                ));
                DEFAULT_LIMIT
            }),
    };
    let offset = match get("offset") {
        None | Some("") => 0,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|o| *o >= 0)
            .unwrap_or_else(|| {
                errors.push(("offset".into(), "The offset must be 0 or more.".into()));
                0
            }),
    };
    let order = match get("sort_order").map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("asc") => SortOrder::Asc,
        Some("desc") => SortOrder::Desc,
        Some(_) => {
            errors.push((
                "sort_order".into(),
                "The sort_order must be asc or desc.".into(),
            ));
            SortOrder::Asc
        }
    };
    let sort = match get("sort_by") {
        // Newest records first (creation order, which the primary key serves), unless a
        // sort_order asks otherwise.
        None | Some("") => vec![(
            LogField::Id,
            if get("sort_order").is_some_and(|o| !o.is_empty()) {
                order
            } else {
                SortOrder::Desc
            },
        )],
        Some(name) => match sort_field(name) {
            Some(field) => vec![(field, order)],
            None => {
                errors.push((
                    "sort_by".into(),
                    format!("The clicks cannot be sorted by `{name}`."),
                ));
                Vec::new()
            }
        },
    };
    if !errors.is_empty() {
        return DialectError::fields(errors).into_response();
    }
    let query = LogQuery {
        conditions,
        sort,
        limit,
        offset,
    };
    let result = async {
        let total = state.store.count_click_log(&query).await?;
        let records = state.store.click_log(&query).await?;
        let objects = render(&state, &records, expand).await?;
        Ok::<_, DialectError>((total, objects))
    }
    .await;
    match result {
        Ok((total, objects)) => {
            let mut response = axum::Json(Value::Array(objects)).into_response();
            if let Ok(value) = HeaderValue::from_str(&total.to_string()) {
                response.headers_mut().insert("x-total-count", value);
            }
            response
        }
        Err(error) => error.into_response(),
    }
}

/// Click objects for `records`, with the asked-for expansions (one query per kind).
async fn render(
    state: &AppState,
    records: &[ClickRecord],
    expand: Expansions,
) -> Result<Vec<Value>, DialectError> {
    let profile_ids: Vec<i64> = records
        .iter()
        .filter_map(|r| r.profile_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let profiles: HashMap<i64, ClickProfile> = if expand.profile || expand.contacts {
        state
            .store
            .click_profiles(&profile_ids)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect()
    } else {
        HashMap::new()
    };
    let metrics: HashMap<i64, LinkMetrics> = if expand.metrics {
        let campaigns: Vec<i64> = records
            .iter()
            .map(|r| r.click.campaign_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        state
            .store
            .link_metrics(&campaigns)
            .await?
            .into_iter()
            .collect()
    } else {
        HashMap::new()
    };
    Ok(records
        .iter()
        .map(|record| {
            let mut object = click_object(record);
            let profile = record.profile_id.and_then(|id| profiles.get(&id));
            if expand.link {
                object.insert(
                    "link".into(),
                    json!({
                        "linkId": record.click.campaign_id.to_string(),
                        "name": record.campaign_name,
                        "alias": record.campaign_alias,
                        "state": record.campaign_state,
                    }),
                );
            }
            if expand.metrics {
                let m = metrics
                    .get(&record.click.campaign_id)
                    .copied()
                    .unwrap_or_default();
                object.insert(
                    "metrics".into(),
                    json!({
                        "clicks": m.clicks,
                        "uniqueClicks": m.unique_clicks,
                        "registrations": m.registrations,
                        "conversions": m.conversions,
                    }),
                );
            }
            if expand.profile {
                object.insert(
                    "profile".into(),
                    profile.map_or(Value::Null, profile_object),
                );
            }
            if expand.contacts {
                object.insert(
                    "contacts".into(),
                    Value::Array(
                        profile
                            .map(|p| p.contacts.iter().map(contact_object).collect())
                            .unwrap_or_default(),
                    ),
                );
            }
            Value::Object(object)
        })
        .collect())
}

/// The seed's Click object.
fn click_object(record: &ClickRecord) -> Map<String, Value> {
    let click = &record.click;
    let degrees = |value: Option<f64>| value.map_or(Value::Null, |v| Value::String(v.to_string()));
    let mut out = Map::new();
    let mut put = |key: &str, value: Value| {
        out.insert(key.to_string(), value);
    };
    put("clickId", json!(click.sub_id));
    put("time", json!(format_rfc3339(click.created_at)));
    put("referrer", text_or_null(&click.referrer));
    put("ip", json!(click.ip));
    put("uri", text_or_null(&click.request_url));
    put("userAgent", text_or_null(&click.user_agent));
    put("utmCampaign", text_or_null(&click.utm_campaign));
    put("utmContent", text_or_null(&click.utm_content));
    put("utmMedium", text_or_null(&click.utm_medium));
    put("utmSource", text_or_null(&click.utm_source));
    put("utmTerm", text_or_null(&click.utm_term));
    put(
        "profileId",
        record
            .profile_id
            .map_or(Value::Null, |id| Value::String(id.to_string())),
    );
    put("linkId", json!(click.campaign_id.to_string()));
    put("bannerId", text_or_null(&click.creative_id));
    put("bannerName", Value::Null);
    put("bannerCdnFileUrl", Value::Null);
    put("latitude", degrees(click.latitude));
    put("longitude", degrees(click.longitude));
    put("countryCode", text_or_null(&click.country_code));
    put("countryName", text_or_null(&click.country_name));
    put("createTime", json!(format_rfc3339(record.created_at)));
    put("updateTime", json!(format_rfc3339(record.updated_at)));
    put("uuid", json!(record.uuid));
    out
}

fn profile_object(profile: &ClickProfile) -> Value {
    json!({
        "profileId": profile.id.to_string(),
        "firstName": profile.first_name,
        "lastName": profile.last_name,
        "middleName": profile.middle_name,
        "enabled": profile.enabled,
        "uuid": profile.uuid,
        "countryName": text_or_null(&profile.country_name),
        "tag": text_or_null(&profile.tag),
        "contacts": profile.contacts.iter().map(contact_object).collect::<Vec<_>>(),
        "createTime": format_rfc3339(profile.created_at),
        "updateTime": format_rfc3339(profile.updated_at),
    })
}

fn contact_object(contact: &ProfileContact) -> Value {
    json!({ "key": contact.key, "value": contact.value, "uuid": contact.uuid })
}

/// One click with the asked-for expansions, or 404.
async fn single(
    state: &AppState,
    click_id: &str,
    query: Option<&str>,
    status: StatusCode,
) -> Response {
    let mut errors = Vec::new();
    let expand = expansions(&query_pairs(query), &mut errors);
    if !errors.is_empty() {
        return DialectError::fields(errors).into_response();
    }
    let result = async {
        let records = state
            .store
            .click_log(&LogQuery::by_sub_id(click_id))
            .await?;
        if records.is_empty() {
            return Err(DialectError::not_found("Click not found."));
        }
        render(state, &records, expand).await
    }
    .await;
    match result {
        Ok(mut objects) => {
            (status, axum::Json(objects.pop().unwrap_or(Value::Null))).into_response()
        }
        Err(error) => error.into_response(),
    }
}

/// `GET [base]/clicks/{clickId}`.
async fn one(
    State(state): State<AppState>,
    Path(click_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    single(&state, &click_id, query.as_deref(), StatusCode::OK).await
}

/// `DELETE [base]/clicks/{clickId}`: 204 without a body, or 404.
async fn delete(State(state): State<AppState>, Path(click_id): Path<String>) -> Response {
    match state.store.delete_click(&click_id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => DialectError::not_found("Click not found.").into_response(),
        Err(error) => DialectError::from(error).into_response(),
    }
}

/// `POST [base]/clicks`: `ip` and `uri` required; `locale`, `referrer`, `time`, `userAgent`,
/// `uuid` optional. The click is routed through its campaign (GeoIP gives the coordinates and
/// country), its UTM tags come from the `uri`. Answers 201 with the Click object.
async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    match create_click(&state, &headers, &body).await {
        Ok(sub_id) => single(&state, &sub_id, query.as_deref(), StatusCode::CREATED).await,
        Err(error) => error.into_response(),
    }
}

async fn create_click(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, DialectError> {
    let fields = json_object(body)?;
    let mut errors = Vec::new();
    let required = |name: &str, value: Option<String>, errors: &mut Vec<(String, String)>| {
        if value.is_none() && !errors.iter().any(|(f, _)| f == name) {
            errors.push((name.into(), format!("The {name} field is required.")));
        }
        value
    };
    let ip_text = text_field(&fields, "ip", 64, &mut errors);
    let ip = required("ip", ip_text, &mut errors).and_then(|text| {
        let ip = parse_ip(&text);
        if ip.is_none() {
            errors.push(("ip".into(), "The ip must be a valid IP address.".into()));
        }
        ip
    });
    let uri_text = text_field(&fields, "uri", 4_096, &mut errors);
    let uri = required("uri", uri_text, &mut errors).and_then(|text| {
        let text = text.trim().to_string();
        match url::Url::parse(&text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Some((url, text))
            }
            _ => {
                errors.push((
                    "uri".into(),
                    "The uri must be an absolute http(s) URL.".into(),
                ));
                None
            }
        }
    });
    let locale = text_field(&fields, "locale", 64, &mut errors).unwrap_or_default();
    let referrer = text_field(&fields, "referrer", 4_096, &mut errors).unwrap_or_default();
    let user_agent = text_field(&fields, "userAgent", 2_048, &mut errors).unwrap_or_default();
    let uuid = text_field(&fields, "uuid", MAX_PROFILE_TEXT, &mut errors);
    let now = unix_now();
    let time = match text_field(&fields, "time", 64, &mut errors) {
        None => None,
        Some(text) => match parse_time(&text, false) {
            Some(at) if at <= now + 86_400 && at > 0 => Some(at),
            _ => {
                errors.push((
                    "time".into(),
                    "The time must be a date and time (2021-01-01T00:00:00+00:00), not in the future."
                        .into(),
                ));
                None
            }
        },
    };
    let (Some(ip), Some((uri, uri_text))) = (ip, uri) else {
        return Err(DialectError::fields(errors));
    };
    if !errors.is_empty() {
        return Err(DialectError::fields(errors));
    }

    let snapshot = state.snapshot.load();
    let alias = uri
        .path_segments()
        .and_then(|mut segments| segments.next())
        .unwrap_or("");
    let route = snapshot
        .campaign_by_alias(alias)
        .or_else(|| {
            state
                .config
                .dialects
                .rest_clicks_campaign
                .as_deref()
                .and_then(|alias| snapshot.campaign_by_alias(alias))
        })
        .ok_or_else(|| {
            DialectError::field(
                "uri",
                "The uri names no active campaign: its path must start with a campaign alias (or set dialects.rest_clicks_campaign).",
            )
        })?;
    let visit = std::sync::Arc::new(api_visit(
        headers,
        ip,
        &user_agent,
        &referrer,
        &locale_language(&locale),
        url_query(&uri_text),
    ));
    let result = state
        .router(&snapshot)
        .click(route, &visit, &RouteOptions::default())
        .await;
    let mut click = result.click;
    click.request_url = uri_text;
    if let Some(time) = time {
        click.created_at = time;
    }
    let new = DialectClick {
        click,
        dialect: Dialect::RestClicks.name().to_string(),
        uuid,
        created_at: now,
    };
    Ok(state.store.create_dialect_click(&new, None).await?.sub_id)
}

/// `PUT`/`PATCH [base]/clicks/{clickId}` with `{"profile": {…}}`: attaches the client's
/// profile (every documented field required, strings at most 255 characters, contacts
/// `email`/`phone`). Answers 200 with the Click object.
async fn update(
    State(state): State<AppState>,
    Path(click_id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let profile = match json_object(&body).and_then(|fields| parse_profile(&fields)) {
        Ok(profile) => profile,
        Err(error) => return error.into_response(),
    };
    match state.store.set_click_profile(&click_id, &profile).await {
        Ok(Some(_)) => single(&state, &click_id, query.as_deref(), StatusCode::OK).await,
        Ok(None) => DialectError::not_found("Click not found.").into_response(),
        Err(error) => DialectError::from(error).into_response(),
    }
}

#[cfg(test)]
mod tests;
