//! The rows of the tracker's objects as the backends decode them (`#[derive(sqlx::FromRow)]`),
//! their column lists, and their conversion into the model (JSON texts parsed, enums checked:
//! a stored value the program does not know is `StoreError::Corrupt`, naming the column).

use crate::model::{
    Campaign, CampaignType, Landing, Money, ObjectState, Offer, Stream, StreamEvent, StreamFilter,
    StreamSchema, StreamTarget, StreamTrigger, StreamType,
};

use super::StoreError;

pub(crate) const CAMPAIGN_COLUMNS: &str = "id, alias, name, type, state, cookies_ttl, position, \
    cost_type, cost_value_micros, cost_currency, cost_auto, group_id, bind_visitors, \
    traffic_source_id, token, domain_id, parameters, uniqueness_method, uniqueness_use_cookies, \
    traffic_loss, notes, created_at, updated_at";

pub(crate) const LANDING_COLUMNS: &str = "id, name, landing_type, url, action_type, \
    action_payload, action_options, offer_count, group_id, state, notes, created_at, updated_at";

pub(crate) const OFFER_COLUMNS: &str = "id, name, offer_type, url, action_type, action_payload, \
    action_options, group_id, affiliate_network_id, payout_value_micros, payout_currency, \
    payout_type, payout_auto, payout_upsell, country, daily_cap, conversion_timezone, \
    alternative_offer_id, state, notes, created_at, updated_at";

pub(crate) const STREAM_COLUMNS: &str = "id, campaign_id, type, name, position, weight, schema, \
    action_type, action_payload, action_options, collect_clicks, filter_or, comments, state, \
    created_at, updated_at";

pub(crate) fn json(text: &str, what: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn parse_enum<T>(
    text: &str,
    parse: fn(&str) -> Option<T>,
    what: &str,
) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| StoreError::Corrupt(format!("{what} `{text}` is not known")))
}

/// A campaign's row, decoded by the backend.
#[derive(sqlx::FromRow)]
pub(crate) struct CampaignRow {
    pub id: i64,
    pub alias: String,
    pub name: String,
    #[sqlx(rename = "type")]
    pub campaign_type: String,
    pub state: String,
    pub cookies_ttl: i64,
    pub position: i64,
    pub cost_type: String,
    pub cost_value_micros: i64,
    pub cost_currency: String,
    pub cost_auto: bool,
    pub group_id: Option<i64>,
    pub bind_visitors: Option<String>,
    pub traffic_source_id: Option<i64>,
    pub token: String,
    pub domain_id: Option<i64>,
    pub parameters: String,
    pub uniqueness_method: String,
    pub uniqueness_use_cookies: bool,
    pub traffic_loss: f64,
    pub notes: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl CampaignRow {
    pub fn into_campaign(self) -> Result<Campaign, StoreError> {
        Ok(Campaign {
            id: self.id,
            campaign_type: parse_enum(&self.campaign_type, CampaignType::parse, "campaign type")?,
            state: parse_enum(&self.state, ObjectState::parse, "campaign state")?,
            parameters: json(&self.parameters, "campaign parameters")?,
            alias: self.alias,
            name: self.name,
            cookies_ttl: self.cookies_ttl,
            position: self.position,
            cost_type: self.cost_type,
            cost_value: Money::from_micros(self.cost_value_micros),
            cost_currency: self.cost_currency,
            cost_auto: self.cost_auto,
            group_id: self.group_id,
            bind_visitors: self.bind_visitors,
            traffic_source_id: self.traffic_source_id,
            token: self.token,
            domain_id: self.domain_id,
            uniqueness_method: self.uniqueness_method,
            uniqueness_use_cookies: self.uniqueness_use_cookies,
            traffic_loss: self.traffic_loss,
            notes: self.notes,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A stream's row, decoded by the backend.
#[derive(sqlx::FromRow)]
pub(crate) struct StreamRow {
    pub id: i64,
    pub campaign_id: i64,
    #[sqlx(rename = "type")]
    pub stream_type: String,
    pub name: String,
    pub position: i64,
    pub weight: i64,
    pub schema: String,
    pub action_type: String,
    pub action_payload: String,
    pub action_options: String,
    pub collect_clicks: bool,
    pub filter_or: bool,
    pub comments: String,
    pub state: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl StreamRow {
    pub fn into_stream(
        self,
        filters: Vec<StreamFilter>,
        landings: Vec<StreamTarget>,
        offers: Vec<StreamTarget>,
    ) -> Result<Stream, StoreError> {
        Ok(Stream {
            id: self.id,
            campaign_id: self.campaign_id,
            stream_type: parse_enum(&self.stream_type, StreamType::parse, "stream type")?,
            name: self.name,
            position: self.position,
            weight: self.weight,
            schema: parse_enum(&self.schema, StreamSchema::parse, "stream schema")?,
            action_type: self.action_type,
            action_payload: json(&self.action_payload, "stream action_payload")?,
            action_options: json(&self.action_options, "stream action_options")?,
            collect_clicks: self.collect_clicks,
            filter_or: self.filter_or,
            filters,
            landings,
            offers,
            comments: self.comments,
            state: parse_enum(&self.state, ObjectState::parse, "stream state")?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A landing's row.
#[derive(sqlx::FromRow)]
pub(crate) struct LandingRow {
    id: i64,
    name: String,
    landing_type: String,
    url: String,
    action_type: String,
    action_payload: String,
    action_options: String,
    offer_count: i64,
    group_id: Option<i64>,
    state: String,
    notes: String,
    created_at: i64,
    updated_at: i64,
}

impl LandingRow {
    pub fn into_landing(self) -> Result<Landing, StoreError> {
        Ok(Landing {
            id: self.id,
            action_payload: json(&self.action_payload, "landing action_payload")?,
            action_options: json(&self.action_options, "landing action_options")?,
            state: parse_enum(&self.state, ObjectState::parse, "landing state")?,
            name: self.name,
            landing_type: self.landing_type,
            url: self.url,
            action_type: self.action_type,
            offer_count: self.offer_count,
            group_id: self.group_id,
            notes: self.notes,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// An offer's row.
#[derive(sqlx::FromRow)]
pub(crate) struct OfferRow {
    id: i64,
    name: String,
    offer_type: String,
    url: String,
    action_type: String,
    action_payload: String,
    action_options: String,
    group_id: Option<i64>,
    affiliate_network_id: Option<i64>,
    payout_value_micros: i64,
    payout_currency: String,
    payout_type: String,
    payout_auto: bool,
    payout_upsell: bool,
    country: String,
    daily_cap: i64,
    conversion_timezone: String,
    alternative_offer_id: Option<i64>,
    state: String,
    notes: String,
    created_at: i64,
    updated_at: i64,
}

impl OfferRow {
    pub fn into_offer(self) -> Result<Offer, StoreError> {
        Ok(Offer {
            id: self.id,
            action_payload: json(&self.action_payload, "offer action_payload")?,
            action_options: json(&self.action_options, "offer action_options")?,
            country: serde_json::from_str(&self.country)
                .map_err(|e| StoreError::Corrupt(format!("offer country: {e}")))?,
            state: parse_enum(&self.state, ObjectState::parse, "offer state")?,
            payout_value: Money::from_micros(self.payout_value_micros),
            name: self.name,
            offer_type: self.offer_type,
            url: self.url,
            action_type: self.action_type,
            group_id: self.group_id,
            affiliate_network_id: self.affiliate_network_id,
            payout_currency: self.payout_currency,
            payout_type: self.payout_type,
            payout_auto: self.payout_auto,
            payout_upsell: self.payout_upsell,
            daily_cap: self.daily_cap,
            conversion_timezone: self.conversion_timezone,
            alternative_offer_id: self.alternative_offer_id,
            notes: self.notes,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A stream's landing or offer, its id selected as `target_id`.
#[derive(sqlx::FromRow)]
pub(crate) struct TargetRow {
    id: i64,
    stream_id: i64,
    target_id: i64,
    share: i64,
    state: String,
}

impl TargetRow {
    pub fn into_target(self) -> Result<StreamTarget, StoreError> {
        Ok(StreamTarget {
            id: self.id,
            stream_id: self.stream_id,
            target_id: self.target_id,
            share: self.share,
            state: parse_enum(&self.state, ObjectState::parse, "stream target state")?,
        })
    }
}

/// A stream trigger's row.
#[derive(sqlx::FromRow)]
pub(crate) struct TriggerRow {
    id: i64,
    stream_id: i64,
    condition: String,
    action: String,
    target: String,
    interval_seconds: i64,
    payload: String,
    enabled: bool,
}

impl TriggerRow {
    pub fn into_trigger(self) -> Result<StreamTrigger, StoreError> {
        Ok(StreamTrigger {
            payload: json(&self.payload, "trigger payload")?,
            id: self.id,
            stream_id: self.stream_id,
            condition: self.condition,
            action: self.action,
            target: self.target,
            interval_seconds: self.interval_seconds,
            enabled: self.enabled,
        })
    }
}

/// A stream event's row.
#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    id: i64,
    stream_id: i64,
    event: String,
    data: String,
    created_at: i64,
}

impl EventRow {
    pub fn into_event(self) -> Result<StreamEvent, StoreError> {
        Ok(StreamEvent {
            data: json(&self.data, "stream event data")?,
            id: self.id,
            stream_id: self.stream_id,
            event: self.event,
            created_at: self.created_at,
        })
    }
}

/// A stream filter's row.
#[derive(sqlx::FromRow)]
pub(crate) struct FilterRow {
    id: i64,
    stream_id: i64,
    name: String,
    mode: String,
    payload: String,
}

impl FilterRow {
    pub fn into_filter(self) -> Result<StreamFilter, StoreError> {
        Ok(StreamFilter {
            payload: json(&self.payload, "filter payload")?,
            id: self.id,
            stream_id: self.stream_id,
            name: self.name,
            mode: self.mode,
        })
    }
}
