//! The file format: what one TOML file of the campaigns directory may declare. These types are
//! both what a file is read into and what `switchyard export` writes, so export then load gives
//! back the same objects. Every field has a default; required ones are checked by `validate`.
//!
//! Objects are tables named by their stable key (`[offers.acme_main]`); references name keys
//! (`affiliate_network = "acme"`), so renaming an object (`name = …`) never breaks them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{CampaignType, ObjectState, StreamSchema, StreamType};

/// Everything declared by the campaigns directory (or read back from the store), by key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeclaredSet {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub affiliate_networks: BTreeMap<String, NetworkDecl>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub traffic_sources: BTreeMap<String, SourceDecl>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub offers: BTreeMap<String, OfferDecl>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub landings: BTreeMap<String, LandingDecl>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub campaigns: BTreeMap<String, CampaignDecl>,
}

impl DeclaredSet {
    /// How many objects (streams included) the set declares.
    pub fn object_count(&self) -> usize {
        self.affiliate_networks.len()
            + self.traffic_sources.len()
            + self.offers.len()
            + self.landings.len()
            + self.campaigns.len()
            + self
                .campaigns
                .values()
                .map(|c| c.streams.len())
                .sum::<usize>()
    }
}

fn active() -> ObjectState {
    ObjectState::Active
}

fn is_active(state: &ObjectState) -> bool {
    *state == ObjectState::Active
}

fn is_empty_object(value: &Value) -> bool {
    value.as_object().is_some_and(|o| o.is_empty())
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// An affiliate network (where offers come from).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkDecl {
    pub name: String,
    pub postback_url: String,
    pub offer_param: String,
    #[serde(skip_serializing_if = "is_active")]
    pub state: ObjectState,
    pub notes: String,
}

impl Default for NetworkDecl {
    fn default() -> Self {
        NetworkDecl {
            name: String::new(),
            postback_url: String::new(),
            offer_param: String::new(),
            state: active(),
            notes: String::new(),
        }
    }
}

/// A traffic source (where clicks come from).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceDecl {
    pub name: String,
    pub postback_url: String,
    /// Which incoming parameter carries what (a table, as in Keitaro's templates).
    #[serde(skip_serializing_if = "is_empty_object")]
    pub parameters: Value,
    #[serde(skip_serializing_if = "is_active")]
    pub state: ObjectState,
    pub notes: String,
}

impl Default for SourceDecl {
    fn default() -> Self {
        SourceDecl {
            name: String::new(),
            postback_url: String::new(),
            parameters: empty_object(),
            state: active(),
            notes: String::new(),
        }
    }
}

/// An offer: the advertiser's page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OfferDecl {
    pub name: String,
    /// http(s) URL the default `http` action redirects to (macros allowed).
    pub url: String,
    /// Key of an affiliate network ("" = none).
    pub affiliate_network: String,
    /// Exact decimal text (`"1.25"`).
    pub payout: String,
    pub payout_currency: String,
    pub payout_type: String,
    pub country: Vec<String>,
    pub daily_cap: i64,
    pub conversion_timezone: String,
    /// The action that shows the offer (default `http`: a redirect to `url`).
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    #[serde(skip_serializing_if = "is_active")]
    pub state: ObjectState,
    pub notes: String,
}

impl Default for OfferDecl {
    fn default() -> Self {
        OfferDecl {
            name: String::new(),
            url: String::new(),
            affiliate_network: String::new(),
            payout: "0".into(),
            payout_currency: String::new(),
            payout_type: "CPA".into(),
            country: Vec::new(),
            daily_cap: 0,
            conversion_timezone: "UTC".into(),
            action: "http".into(),
            payload: None,
            state: active(),
            notes: String::new(),
        }
    }
}

/// A landing page shown before the offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LandingDecl {
    pub name: String,
    pub url: String,
    /// `external` (default), `local`, `preloaded` or `action`.
    pub landing_type: String,
    /// The action that shows the landing ("" = a redirect to `url`).
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    pub offer_count: i64,
    #[serde(skip_serializing_if = "is_active")]
    pub state: ObjectState,
    pub notes: String,
}

impl Default for LandingDecl {
    fn default() -> Self {
        LandingDecl {
            name: String::new(),
            url: String::new(),
            landing_type: "external".into(),
            action: String::new(),
            payload: None,
            offer_count: 1,
            state: active(),
            notes: String::new(),
        }
    }
}

/// A campaign with its streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignDecl {
    /// The tracking link's path segment (`/ALIAS`).
    pub alias: String,
    pub name: String,
    #[serde(rename = "type")]
    pub campaign_type: CampaignType,
    /// The Click API token; "" = generated on first load and kept afterwards.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token: String,
    pub cookies_ttl: i64,
    /// `s`, `sl`, `slo` or "" (no binding).
    pub bind_visitors: String,
    /// Key of a traffic source ("" = none).
    pub traffic_source: String,
    pub uniqueness_method: String,
    pub uniqueness_use_cookies: bool,
    /// Which incoming query parameter feeds which click field.
    #[serde(skip_serializing_if = "is_empty_object")]
    pub parameters: Value,
    pub cost_type: String,
    /// Exact decimal text (`"0.05"`).
    pub cost_value: String,
    pub cost_currency: String,
    #[serde(skip_serializing_if = "is_active")]
    pub state: ObjectState,
    pub notes: String,
    pub streams: BTreeMap<String, StreamDecl>,
}

impl Default for CampaignDecl {
    fn default() -> Self {
        CampaignDecl {
            alias: String::new(),
            name: String::new(),
            campaign_type: CampaignType::Position,
            token: String::new(),
            cookies_ttl: 24,
            bind_visitors: String::new(),
            traffic_source: String::new(),
            uniqueness_method: "ip_ua".into(),
            uniqueness_use_cookies: true,
            parameters: empty_object(),
            cost_type: "CPC".into(),
            cost_value: "0".into(),
            cost_currency: String::new(),
            state: active(),
            notes: String::new(),
            streams: BTreeMap::new(),
        }
    }
}

/// A stream of a campaign (`[campaigns.KEY.streams.KEY]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamDecl {
    pub name: String,
    #[serde(rename = "type")]
    pub stream_type: StreamType,
    /// Order within its type; 0 in a file = the stream's place among the campaign's streams.
    pub position: i64,
    pub weight: i64,
    pub schema: StreamSchema,
    /// The action of `redirect` and `action` streams (`http`, `show_html`, `script:NAME`, …).
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    pub collect_clicks: bool,
    pub filter_or: bool,
    #[serde(skip_serializing_if = "is_active")]
    pub state: ObjectState,
    pub comments: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<FilterDecl>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub landings: Vec<LandingShare>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub offers: Vec<OfferShare>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<TriggerDecl>,
}

impl Default for StreamDecl {
    fn default() -> Self {
        StreamDecl {
            name: String::new(),
            stream_type: StreamType::Regular,
            position: 0,
            weight: 100,
            schema: StreamSchema::Redirect,
            action: "http".into(),
            payload: None,
            collect_clicks: true,
            filter_or: false,
            state: active(),
            comments: String::new(),
            filters: Vec::new(),
            landings: Vec::new(),
            offers: Vec::new(),
            triggers: Vec::new(),
        }
    }
}

/// One filter of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterDecl {
    /// A filter kind: `country`, `bot`, `script:NAME`, `native:NAME`, …
    pub name: String,
    /// `accept` or `reject`.
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

impl Default for FilterDecl {
    fn default() -> Self {
        FilterDecl {
            name: String::new(),
            mode: "accept".into(),
            payload: None,
        }
    }
}

/// A landing of a stream, by key, with its share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LandingShare {
    pub landing: String,
    pub share: i64,
}

impl Default for LandingShare {
    fn default() -> Self {
        LandingShare {
            landing: String::new(),
            share: 100,
        }
    }
}

/// An offer of a stream, by key, with its share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OfferShare {
    pub offer: String,
    pub share: i64,
}

impl Default for OfferShare {
    fn default() -> Self {
        OfferShare {
            offer: String::new(),
            share: 100,
        }
    }
}

/// A stream trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TriggerDecl {
    /// `not_respond`, `not_contains`, `always`, `script:NAME`, `native:NAME`.
    pub condition: String,
    /// `disable`, `replace_url`, `grab_from_page`, `webhook`.
    pub action: String,
    /// The URL to check ("" = the stream's own redirect URL).
    pub target: String,
    pub interval_seconds: i64,
    #[serde(skip_serializing_if = "is_empty_object")]
    pub payload: Value,
    pub enabled: bool,
}

impl Default for TriggerDecl {
    fn default() -> Self {
        TriggerDecl {
            condition: String::new(),
            action: String::new(),
            target: String::new(),
            interval_seconds: 300,
            payload: empty_object(),
            enabled: true,
        }
    }
}
