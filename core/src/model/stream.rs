use serde::{Deserialize, Serialize};

use super::{ObjectState, StreamTarget};

/// Where a stream sits in the selection order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamType {
    /// Checked first, by position; intercepts traffic before any regular stream.
    Forced,
    /// Rotated by the campaign's type (position or weight).
    Regular,
    /// Taken when no forced or regular stream accepted the click.
    Default,
}

impl StreamType {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamType::Forced => "forced",
            StreamType::Regular => "regular",
            StreamType::Default => "default",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "forced" => Some(StreamType::Forced),
            "regular" => Some(StreamType::Regular),
            "default" => Some(StreamType::Default),
            _ => None,
        }
    }
}

/// What a stream does with a click it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamSchema {
    /// Send to one of the stream's landings (then offers) by share.
    Landings,
    /// Redirect to the action payload URL (or to an offer).
    Redirect,
    /// Run the action (show HTML, 404, another campaign, …).
    Action,
}

impl StreamSchema {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamSchema::Landings => "landings",
            StreamSchema::Redirect => "redirect",
            StreamSchema::Action => "action",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "landings" => Some(StreamSchema::Landings),
            "redirect" => Some(StreamSchema::Redirect),
            "action" => Some(StreamSchema::Action),
            _ => None,
        }
    }
}

/// One filter of a stream, as stored: the filter kind's name, its mode and its raw payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamFilter {
    pub id: i64,
    pub stream_id: i64,
    pub name: String,
    /// `accept` or `reject`.
    pub mode: String,
    pub payload: serde_json::Value,
}

/// A stream (Keitaro's "flow") as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stream {
    pub id: i64,
    pub campaign_id: i64,
    pub stream_type: StreamType,
    pub name: String,
    pub position: i64,
    pub weight: i64,
    pub schema: StreamSchema,
    pub action_type: String,
    pub action_payload: serde_json::Value,
    pub action_options: serde_json::Value,
    pub collect_clicks: bool,
    pub filter_or: bool,
    pub filters: Vec<StreamFilter>,
    pub landings: Vec<StreamTarget>,
    pub offers: Vec<StreamTarget>,
    pub comments: String,
    pub state: ObjectState,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The fields a caller chooses when creating a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct NewStream {
    pub campaign_id: i64,
    pub stream_type: StreamType,
    pub name: String,
    pub position: i64,
    pub weight: i64,
    pub schema: StreamSchema,
    pub action_type: String,
    pub action_payload: serde_json::Value,
    pub collect_clicks: bool,
    pub filter_or: bool,
    /// (name, mode, payload) of each filter, in order.
    pub filters: Vec<(String, String, serde_json::Value)>,
    /// (landing id, share) of each landing.
    pub landings: Vec<(i64, i64)>,
    /// (offer id, share) of each offer.
    pub offers: Vec<(i64, i64)>,
}

impl NewStream {
    /// A stream of the given type and schema with no action payload.
    pub fn new(
        campaign_id: i64,
        stream_type: StreamType,
        schema: StreamSchema,
        action_type: &str,
    ) -> Self {
        NewStream {
            stream_type,
            schema,
            action_type: action_type.to_string(),
            action_payload: serde_json::Value::Null,
            ..NewStream::redirect(campaign_id, "", "")
        }
    }

    /// Adds a filter.
    pub fn filter(mut self, name: &str, mode: &str, payload: serde_json::Value) -> Self {
        self.filters
            .push((name.to_string(), mode.to_string(), payload));
        self
    }

    /// An active regular stream that redirects (HTTP 302) to `url`.
    pub fn redirect(campaign_id: i64, name: &str, url: &str) -> Self {
        NewStream {
            campaign_id,
            stream_type: StreamType::Regular,
            name: name.to_string(),
            position: 1,
            weight: 100,
            schema: StreamSchema::Redirect,
            action_type: "http".to_string(),
            action_payload: serde_json::Value::String(url.to_string()),
            collect_clicks: true,
            filter_or: false,
            filters: Vec::new(),
            landings: Vec::new(),
            offers: Vec::new(),
        }
    }
}
