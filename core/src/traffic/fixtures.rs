//! Test fixtures for the click path: stored objects with Keitaro's defaults, fake enrichment
//! (geography, devices and bot signals chosen by the test) and a way to build a
//! [`ClickContext`] or a [`RoutingSnapshot`] the way the tracker does.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::enrich::{BotSignals, DeviceInfo, DeviceLookup, Enrichment, GeoInfo, GeoLookup};
use crate::model::{
    Campaign, CampaignType, Landing, Money, ObjectState, Offer, Stream, StreamFilter, StreamSchema,
    StreamTarget, StreamType,
};
use crate::registry::Registry;

use super::{RoutingData, RoutingSnapshot, TrafficEnv, Visit};

/// The signing key every fixture environment uses.
pub const SIGNING_KEY: &str = "fixture-signing-key-0123456789";

/// 2026-03-04 12:30:00 UTC, a Wednesday.
pub const WEDNESDAY_NOON: i64 = 1_772_627_400;

/// Geography by address; unknown addresses are empty.
#[derive(Default)]
pub struct FakeGeo(pub HashMap<IpAddr, GeoInfo>);

impl GeoLookup for FakeGeo {
    fn lookup(&self, ip: IpAddr) -> GeoInfo {
        self.0.get(&ip).cloned().unwrap_or_default()
    }
}

/// Devices by exact User-Agent; unknown UAs are empty.
#[derive(Default)]
pub struct FakeDevices(pub HashMap<String, Arc<DeviceInfo>>);

impl DeviceLookup for FakeDevices {
    fn detect(&self, user_agent: &str) -> Arc<DeviceInfo> {
        self.0.get(user_agent).cloned().unwrap_or_default()
    }
}

/// Bots: UAs containing "bot" (and the empty UA), and the listed addresses.
#[derive(Default)]
pub struct FakeBots(pub Vec<IpAddr>);

impl BotSignals for FakeBots {
    fn is_bot_user_agent(&self, user_agent: &str) -> bool {
        user_agent.trim().is_empty() || user_agent.to_ascii_lowercase().contains("bot")
    }

    fn is_bot_ip(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }
}

pub fn ip(text: &str) -> IpAddr {
    text.parse().expect("a valid IP in a fixture")
}

/// Geography a test gives an address.
pub fn geo(country: &str, region: &str, region_code: &str, city: &str) -> GeoInfo {
    GeoInfo {
        country_code: country.into(),
        country_name: format!("Country {country}"),
        region: region.into(),
        region_code: region_code.into(),
        city: city.into(),
        isp: "Deutsche Telekom AG".into(),
        operator: "T-Mobile".into(),
        connection_type: "cellular".into(),
        ..GeoInfo::default()
    }
}

/// The enrichment most tests use: 1.2.3.4 is Munich (DE-BY), 5.6.7.8 is New York (US-NY),
/// 66.249.66.1 is a listed bot address; `IPHONE_UA` and `DESKTOP_UA` are known devices.
pub fn enrichment() -> Enrichment {
    let geo_map = HashMap::from([
        (ip("1.2.3.4"), geo("DE", "Bavaria", "BY", "Munich")),
        (ip("5.6.7.8"), geo("US", "New York", "NY", "New York")),
    ]);
    let devices = HashMap::from([
        (
            IPHONE_UA.to_string(),
            Arc::new(DeviceInfo {
                device_type: "mobile".into(),
                device_brand: "Apple".into(),
                device_model: "iPhone".into(),
                os: "iOS".into(),
                os_version: "17.4.1".into(),
                browser: "Mobile Safari".into(),
                browser_version: "17.4".into(),
            }),
        ),
        (
            DESKTOP_UA.to_string(),
            Arc::new(DeviceInfo {
                device_type: "desktop".into(),
                device_brand: String::new(),
                device_model: String::new(),
                os: "Windows".into(),
                os_version: "10".into(),
                browser: "Chrome".into(),
                browser_version: "124.0.6367.91".into(),
            }),
        ),
    ]);
    Enrichment {
        geo: Arc::new(FakeGeo(geo_map)),
        devices: Arc::new(FakeDevices(devices)),
        bots: Arc::new(FakeBots(vec![ip("66.249.66.1")])),
    }
}

pub const IPHONE_UA: &str =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 Mobile";
pub const DESKTOP_UA: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0.6367.91";

/// An in-memory environment with the fixture enrichment.
pub fn env() -> TrafficEnv {
    let mut env = TrafficEnv::in_memory(SIGNING_KEY);
    env.enrichment = enrichment();
    env
}

/// A visit from `address` with the desktop UA, reaching `tracker.test` over https.
pub fn visit(address: &str) -> Visit {
    let mut visit = Visit::new(ip(address), DESKTOP_UA);
    visit.host = "tracker.test".into();
    visit.scheme = "https".into();
    visit
}

/// An active position campaign with Keitaro's defaults (24 h cookies, IP+UA uniqueness with
/// cookies, CPC at zero cost).
pub fn campaign(id: i64) -> Campaign {
    Campaign {
        id,
        alias: format!("c{id}"),
        name: format!("Campaign {id}"),
        campaign_type: CampaignType::Position,
        state: ObjectState::Active,
        cookies_ttl: 24,
        position: id,
        cost_type: "CPC".into(),
        cost_value: Money::ZERO,
        cost_currency: "USD".into(),
        cost_auto: false,
        group_id: None,
        bind_visitors: None,
        traffic_source_id: Some(7),
        token: format!("token-{id}"),
        domain_id: None,
        parameters: json!({}),
        uniqueness_method: "ip_ua".into(),
        uniqueness_use_cookies: true,
        traffic_loss: 0.0,
        notes: String::new(),
        created_at: 0,
        updated_at: 0,
    }
}

/// An active stream that redirects (302) to `https://s{id}.test/?subid={subid}`.
pub fn stream(id: i64, campaign_id: i64, stream_type: StreamType) -> Stream {
    Stream {
        id,
        campaign_id,
        stream_type,
        name: format!("Stream {id}"),
        position: id,
        weight: 100,
        schema: StreamSchema::Redirect,
        action_type: "http".into(),
        action_payload: Value::String(format!("https://s{id}.test/?subid={{subid}}")),
        action_options: Value::Null,
        collect_clicks: true,
        filter_or: false,
        filters: Vec::new(),
        landings: Vec::new(),
        offers: Vec::new(),
        comments: String::new(),
        state: ObjectState::Active,
        created_at: 0,
        updated_at: 0,
    }
}

/// A filter as stored.
pub fn filter(name: &str, mode: &str, payload: Value) -> StreamFilter {
    StreamFilter {
        id: 0,
        stream_id: 0,
        name: name.into(),
        mode: mode.into(),
        payload,
    }
}

/// A landing or offer attached to a stream.
pub fn target(target_id: i64, share: i64) -> StreamTarget {
    StreamTarget {
        id: 0,
        stream_id: 0,
        target_id,
        share,
        state: ObjectState::Active,
    }
}

/// An external landing shown with `action_type` and `payload`.
pub fn landing(id: i64, action_type: &str, payload: Value) -> Landing {
    Landing {
        id,
        name: format!("Landing {id}"),
        landing_type: "external".into(),
        url: String::new(),
        action_type: action_type.into(),
        action_payload: payload,
        action_options: Value::Null,
        offer_count: 0,
        group_id: None,
        state: ObjectState::Active,
        notes: String::new(),
        created_at: 0,
        updated_at: 0,
    }
}

/// An external offer redirecting to `https://offer{id}.test/?subid={subid}`.
pub fn offer(id: i64) -> Offer {
    Offer {
        id,
        name: format!("Offer {id}"),
        offer_type: "external".into(),
        url: format!("https://offer{id}.test/?subid={{subid}}"),
        action_type: String::new(),
        action_payload: Value::Null,
        action_options: Value::Null,
        group_id: None,
        affiliate_network_id: None,
        payout_value: Money::ZERO,
        payout_currency: "USD".into(),
        payout_type: "CPA".into(),
        payout_auto: false,
        payout_upsell: false,
        country: Vec::new(),
        daily_cap: 0,
        conversion_timezone: "UTC".into(),
        alternative_offer_id: None,
        state: ObjectState::Active,
        notes: String::new(),
        created_at: 0,
        updated_at: 0,
    }
}

/// Compiles `data` through the built-in registry, as the reload task does.
pub fn snapshot(data: RoutingData) -> RoutingSnapshot {
    RoutingSnapshot::build(1, data, &Registry::builtin())
}
