use serde::Serialize;

use super::{Money, ObjectState};

/// A landing page: where a `landings` stream sends the visitor before the offer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Landing {
    pub id: i64,
    pub name: String,
    /// `external`, `local`, `preloaded` or `action`.
    pub landing_type: String,
    pub url: String,
    /// How the landing is shown: `http` (redirect to `url`), `local_file`, `show_html`, …
    pub action_type: String,
    pub action_payload: serde_json::Value,
    pub action_options: serde_json::Value,
    pub offer_count: i64,
    pub group_id: Option<i64>,
    pub state: ObjectState,
    pub notes: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An offer: the advertiser's page a click is finally sent to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Offer {
    pub id: i64,
    pub name: String,
    pub offer_type: String,
    pub url: String,
    pub action_type: String,
    pub action_payload: serde_json::Value,
    pub action_options: serde_json::Value,
    pub group_id: Option<i64>,
    pub affiliate_network_id: Option<i64>,
    pub payout_value: Money,
    pub payout_currency: String,
    pub payout_type: String,
    pub payout_auto: bool,
    pub payout_upsell: bool,
    pub country: Vec<String>,
    pub daily_cap: i64,
    pub conversion_timezone: String,
    pub alternative_offer_id: Option<i64>,
    pub state: ObjectState,
    pub notes: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A landing or offer attached to a stream with its share (weight).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamTarget {
    pub id: i64,
    pub stream_id: i64,
    /// The landing's or offer's id.
    pub target_id: i64,
    pub share: i64,
    pub state: ObjectState,
}

/// The fields a caller sets when creating a landing or an offer (`url` is the target of the
/// default `http` action).
#[derive(Debug, Clone, PartialEq)]
pub struct NewTarget {
    pub name: String,
    pub url: String,
    pub action_type: String,
    pub action_payload: serde_json::Value,
    pub payout_value: Money,
    pub country: Vec<String>,
}

impl NewTarget {
    /// An external page reached by an HTTP redirect.
    pub fn external(name: &str, url: &str) -> Self {
        NewTarget {
            name: name.to_string(),
            url: url.to_string(),
            action_type: "http".into(),
            action_payload: serde_json::Value::String(url.to_string()),
            payout_value: Money::ZERO,
            country: Vec::new(),
        }
    }
}
