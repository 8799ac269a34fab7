use serde::{Deserialize, Serialize};

use super::{Money, ObjectState};

/// How a campaign rotates its regular streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CampaignType {
    /// The first regular stream (by position) whose filters pass.
    Position,
    /// A weighted random pick among the regular streams, re-picked when the pick fails its filters.
    Weight,
}

impl CampaignType {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignType::Position => "position",
            CampaignType::Weight => "weight",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "position" => Some(CampaignType::Position),
            "weight" => Some(CampaignType::Weight),
            _ => None,
        }
    }
}

/// A campaign as stored: the unit a tracking link (`/ALIAS`) or a Click API token resolves to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Campaign {
    pub id: i64,
    pub alias: String,
    pub name: String,
    pub campaign_type: CampaignType,
    pub state: ObjectState,
    /// Hours a visitor stays "not unique" for this campaign.
    pub cookies_ttl: i64,
    pub position: i64,
    pub cost_type: String,
    pub cost_value: Money,
    pub cost_currency: String,
    pub cost_auto: bool,
    pub group_id: Option<i64>,
    /// Visitor binding: `None`, `s`, `sl` or `slo`.
    pub bind_visitors: Option<String>,
    pub traffic_source_id: Option<i64>,
    /// The Click API token.
    pub token: String,
    pub domain_id: Option<i64>,
    /// Which incoming query parameter feeds which click field (JSON object).
    pub parameters: serde_json::Value,
    pub uniqueness_method: String,
    pub uniqueness_use_cookies: bool,
    /// Percentage of clicks hidden from the traffic source's cost (0–100).
    pub traffic_loss: f64,
    pub notes: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The fields a caller chooses when creating a campaign; the store fills in the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCampaign {
    pub alias: String,
    pub name: String,
    pub campaign_type: CampaignType,
    pub state: ObjectState,
    pub cookies_ttl: i64,
    pub token: String,
    /// Visitor binding: `s`, `sl`, `slo` or none.
    pub bind_visitors: Option<String>,
}

impl Campaign {
    /// A campaign with id `id` and the defaults the store would give `new` (for dry runs and
    /// tests that route without a database).
    pub fn from_new(id: i64, new: &NewCampaign) -> Campaign {
        Campaign {
            id,
            alias: new.alias.clone(),
            name: new.name.clone(),
            campaign_type: new.campaign_type,
            state: new.state,
            cookies_ttl: new.cookies_ttl,
            position: 0,
            cost_type: "CPC".into(),
            cost_value: Money::ZERO,
            cost_currency: String::new(),
            cost_auto: false,
            group_id: None,
            bind_visitors: new.bind_visitors.clone(),
            traffic_source_id: None,
            token: new.token.clone(),
            domain_id: None,
            parameters: serde_json::json!({}),
            uniqueness_method: "ip_ua".into(),
            uniqueness_use_cookies: true,
            traffic_loss: 0.0,
            notes: String::new(),
            created_at: 0,
            updated_at: 0,
        }
    }
}

impl NewCampaign {
    /// An active position campaign with Keitaro's defaults (24 h cookies) and the given token.
    pub fn new(alias: &str, name: &str, token: &str) -> Self {
        NewCampaign {
            alias: alias.to_string(),
            name: name.to_string(),
            campaign_type: CampaignType::Position,
            state: ObjectState::Active,
            cookies_ttl: 24,
            token: token.to_string(),
            bind_visitors: None,
        }
    }
}
