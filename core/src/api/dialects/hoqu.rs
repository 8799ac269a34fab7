//! Seed 003's Click API (HOQU): `GET /api/click/create?secure_key=…&offer_id=…&campaign_id=…
//! &promo_id=…&user_ip=…&user_useragent=…` answers a click id to put into the advertiser's
//! direct link, or a trafficback reason.
//!
//! Mapping (README "Other click APIs"): `campaign_id` is a Switchyard campaign, `offer_id` a
//! Switchyard offer that one of the campaign's streams sends traffic to, `promo_id` the click's
//! `creative_id`; `subid1`..`subid6` feed `sub_id_1`..`sub_id_6`, `utm_source` the source,
//! `user_referrer` the referrer. `click_id` is the click's sub id; `session_id` a UUID derived
//! from its visitor code. The same IP + user agent + campaign + offer within 300 s is the same
//! click (`exists: true`), also across restarts and processes (the key is claimed in the
//! database, in the transaction that writes the click).

use std::net::IpAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::{api_visit, parse_id, parse_ip, prune_keys_sometimes, uuid_from};
use crate::api::AppState;
use crate::config::Dialect;
use crate::model::{ObjectState, Offer, unix_now};
use crate::store::{ClickKey, DialectClick, LogQuery, StoreError};
use crate::traffic::RouteOptions;

const PATH: &str = "/api/click/create";
/// Identical requests within this many seconds return the same click.
const SAME_CLICK_WINDOW: i64 = 300;
/// The most request parameters kept on a click.
const MAX_CLICK_PARAMS: usize = 64;
/// `subid1` … `subid6`.
const SUBIDS: usize = 6;
/// Parameters that steer the API; they are not kept on the click (the key least of all).
const CONTROL: &[&str] = &[
    "secure_key",
    "offer_id",
    "campaign_id",
    "promo_id",
    "user_ip",
    "user_useragent",
    "user_referrer",
];

pub(super) fn router() -> Router<AppState> {
    Router::new().route(PATH, get(create).post(create))
}

/// The seed's answers, each with its HTTP status.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Success {
        click_id: String,
        exists: bool,
        session_id: String,
    },
    Trafficback(&'static str),
    /// 400: the named field (`offer_id`, …) is invalid.
    Invalid(String),
    AccessDenied,
    ClickApiDisabled,
    ServerError,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let error = |code: StatusCode, message: &str| {
            (
                code,
                axum::Json(json!({ "message": message, "status": "error", "code": code.as_u16() })),
            )
                .into_response()
        };
        match self {
            Answer::Success {
                click_id,
                exists,
                session_id,
            } => axum::Json(json!({
                "data": {
                    "click_id": click_id,
                    "params": { "click_id": click_id },
                    "exists": exists,
                    "session_id": session_id,
                },
                "status": "success",
                "code": 200,
            }))
            .into_response(),
            Answer::Trafficback(reason) => (
                StatusCode::ACCEPTED,
                axum::Json(json!({ "reason": reason, "status": "trafficback", "code": 202 })),
            )
                .into_response(),
            Answer::Invalid(field) => error(
                StatusCode::BAD_REQUEST,
                &format!("Field request.{field} is not valid"),
            ),
            Answer::AccessDenied => error(StatusCode::FORBIDDEN, "Access denied"),
            Answer::ClickApiDisabled => {
                error(StatusCode::FORBIDDEN, "Click api disabled for this offer")
            }
            Answer::ServerError => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something bad happened on the server side, administration notified",
            ),
        }
    }
}

impl From<StoreError> for Answer {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "A HOQU click request failed.");
        Answer::ServerError
    }
}

/// `GET /api/click/create` (a POST form is read the same way).
async fn create(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut params: Vec<(String, String)> = query
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    params.extend(url::form_urlencoded::parse(&body).into_owned());
    match answer(&state, &headers, &params).await {
        Ok(answer) | Err(answer) => answer.into_response(),
    }
}

/// The validated request.
struct Request {
    offer_id: i64,
    campaign_id: i64,
    promo_id: i64,
    ip: IpAddr,
    user_agent: String,
    referrer: String,
}

fn validate(params: &[(String, String)]) -> Result<Request, Answer> {
    let get = |name: &str| {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    };
    let invalid = |name: &str| Answer::Invalid(name.to_string());
    let id = |name: &str| get(name).and_then(parse_id).ok_or_else(|| invalid(name));
    let offer_id = id("offer_id")?;
    let campaign_id = id("campaign_id")?;
    let promo_id = id("promo_id")?;
    let ip = get("user_ip")
        .and_then(parse_ip)
        .ok_or_else(|| invalid("user_ip"))?;
    let user_agent = get("user_useragent")
        .filter(|ua| !ua.is_empty() && ua.len() <= 2_048)
        .ok_or_else(|| invalid("user_useragent"))?
        .to_string();
    let referrer = get("user_referrer").unwrap_or_default();
    if referrer.len() > 4_096 {
        return Err(invalid("user_referrer"));
    }
    for (name, value) in params {
        if !CONTROL.contains(&name.as_str()) && (value.len() > 1_024 || name.len() > 128) {
            let shown: String = name
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            return Err(invalid(&shown));
        }
    }
    Ok(Request {
        offer_id,
        campaign_id,
        promo_id,
        ip,
        user_agent,
        referrer: referrer.to_string(),
    })
}

async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<Answer, Answer> {
    let key = params
        .iter()
        .rev()
        .find(|(k, _)| k == "secure_key")
        .map_or("", |(_, v)| v.as_str());
    let allowed = state
        .secrets
        .dialect_key_hash(Dialect::Hoqu)
        .is_some_and(|hash| crate::secrets::key_matches(key, hash));
    if !allowed {
        return Err(Answer::AccessDenied);
    }
    let request = validate(params)?;

    let offer = state
        .store
        .offer(request.offer_id)
        .await?
        .ok_or_else(|| Answer::Invalid("offer_id".into()))?;
    let snapshot = state.snapshot.load();
    let route = snapshot.campaign_by_id(request.campaign_id);
    if route.is_none() && state.store.campaign(request.campaign_id).await?.is_none() {
        return Err(Answer::Invalid("campaign_id".into()));
    }
    if offer.state != ObjectState::Active {
        return Err(Answer::Trafficback("offer_inactive"));
    }
    let Some(route) = route else {
        return Err(Answer::Trafficback("campaign_inactive"));
    };
    let carried = route
        .streams()
        .any(|s| s.offers.iter().any(|(id, _)| *id == offer.id));
    if !carried {
        return Err(Answer::ClickApiDisabled);
    }

    let now = unix_now();
    let key = ClickKey {
        key: crate::secrets::sha256_hex(&format!(
            "{}\n{}\n{}\n{}",
            route.campaign.id, offer.id, request.ip, request.user_agent
        )),
        window_start: now - SAME_CLICK_WINDOW,
    };
    let dialect = Dialect::Hoqu.name();
    if let Some(sub_id) = state.store.click_by_key(dialect, &key).await? {
        return existing(state, sub_id).await;
    }
    if conversion_cap_reached(state, &offer, now).await? {
        return Err(Answer::Trafficback("overcap"));
    }

    // The click's parameters: everything but the control fields, with the seed's names also
    // under the click fields they feed.
    let mut query: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| !CONTROL.contains(&k.as_str()))
        .take(MAX_CLICK_PARAMS)
        .cloned()
        .collect();
    let has = |query: &[(String, String)], name: &str| query.iter().any(|(k, _)| k == name);
    for n in 1..=SUBIDS {
        let value = query
            .iter()
            .find(|(k, _)| *k == format!("subid{n}"))
            .map(|(_, v)| v.clone());
        if let Some(value) = value.filter(|v| !v.is_empty())
            && !has(&query, &format!("sub_id_{n}"))
        {
            query.push((format!("sub_id_{n}"), value));
        }
    }
    let utm_source = query
        .iter()
        .find(|(k, _)| k == "utm_source")
        .map(|(_, v)| v.clone());
    if let Some(source) = utm_source.filter(|v| !v.is_empty())
        && !has(&query, "source")
    {
        query.push(("source".into(), source));
    }
    query.retain(|(k, _)| k != "creative_id");
    query.push(("creative_id".into(), request.promo_id.to_string()));

    let visit = std::sync::Arc::new(api_visit(
        headers,
        request.ip,
        &request.user_agent,
        &request.referrer,
        "",
        query,
    ));
    let options = RouteOptions {
        force_offer: true,
        offer_id: Some(offer.id),
        ..RouteOptions::default()
    };
    let result = state.router(&snapshot).click(route, &visit, &options).await;
    if result.click.stream_id.is_none() || result.click.offer_id != Some(offer.id) {
        return Err(Answer::Trafficback(if result.capped {
            "overcap"
        } else {
            "targeting"
        }));
    }
    let click = result.click;
    let session_id = uuid_from(&format!("session:{}", click.visitor_code));
    let new = DialectClick {
        click,
        dialect: dialect.to_string(),
        uuid: None,
        created_at: now,
    };
    prune_keys_sometimes(state, key.window_start);
    let created = state.store.create_dialect_click(&new, Some(&key)).await?;
    if created.existed {
        // An identical request claimed the key between our look-up and our write.
        return existing(state, created.sub_id).await;
    }
    Ok(Answer::Success {
        click_id: created.sub_id,
        exists: false,
        session_id,
    })
}

/// The answer for a click an identical request created within the window.
async fn existing(state: &AppState, sub_id: String) -> Result<Answer, Answer> {
    let record = state
        .store
        .click_log(&LogQuery::by_sub_id(&sub_id))
        .await?
        .pop();
    let visitor = record
        .map(|r| r.click.visitor_code)
        .unwrap_or_else(|| sub_id.clone());
    Ok(Answer::Success {
        session_id: uuid_from(&format!("session:{visitor}")),
        click_id: sub_id,
        exists: true,
    })
}

/// The offer's daily conversion cap (`daily_cap` > 0), counted from midnight in the offer's
/// conversion time zone (UTC when it is not a known zone).
async fn conversion_cap_reached(
    state: &AppState,
    offer: &Offer,
    now: i64,
) -> Result<bool, StoreError> {
    if offer.daily_cap <= 0 {
        return Ok(false);
    }
    let zone: chrono_tz::Tz = offer.conversion_timezone.parse().unwrap_or(chrono_tz::UTC);
    let count = state
        .store
        .offer_conversions_since(offer.id, crate::traffic::day_start(zone, now))
        .await?;
    Ok(count >= offer.daily_cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_required_field_is_checked_in_order() {
        let full = [
            ("offer_id", "123"),
            ("campaign_id", "456"),
            ("promo_id", "789"),
            ("user_ip", "0.0.0.0"),
            ("user_useragent", "Mazila Chrome/7.7.7"),
        ];
        let ok = validate(&params(&full)).expect("valid");
        assert_eq!((ok.offer_id, ok.campaign_id, ok.promo_id), (123, 456, 789));
        for (index, field) in [
            "offer_id",
            "campaign_id",
            "promo_id",
            "user_ip",
            "user_useragent",
        ]
        .iter()
        .enumerate()
        {
            let mut broken = full.to_vec();
            broken[index].1 = if index == 3 { "999.0.0.1" } else { "" };
            match validate(&params(&broken)) {
                Err(Answer::Invalid(name)) => assert_eq!(name, *field),
                _ => panic!("{field} should be invalid"),
            }
        }
        let mut negative = full.to_vec();
        negative[0].1 = "-5";
        assert!(matches!(
            validate(&params(&negative)),
            Err(Answer::Invalid(name)) if name == "offer_id"
        ));
    }
}
