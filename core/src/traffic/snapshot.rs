//! The immutable routing snapshot: everything the click path needs, compiled once from the
//! store and swapped atomically (see `crate::reload`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{Campaign, ObjectState, Stream, StreamSchema, StreamType};

use super::Template;

/// What the store hands over to build a snapshot: active campaigns and their active streams.
#[derive(Debug, Clone, Default)]
pub struct RoutingData {
    pub campaigns: Vec<Campaign>,
    pub streams: Vec<Stream>,
}

/// What a stream does with an accepted click, compiled from its schema and action.
#[derive(Debug, Clone)]
pub enum StreamAction {
    /// HTTP 302 to the expanded template.
    Redirect(Template),
    /// HTTP 404 with an empty body.
    NotFound,
    /// An empty 200.
    DoNothing,
    /// The action cannot run (unknown or not yet supported kind); the click gets the
    /// campaign's "no stream" answer. The reason was logged when the snapshot was built.
    Unavailable(String),
}

/// A stream ready for selection.
#[derive(Debug, Clone)]
pub struct StreamRoute {
    pub stream: Stream,
    pub action: StreamAction,
    /// False when a filter of the stream names a kind this build cannot evaluate: such a
    /// stream never matches (a filter that cannot run counts as "does not match").
    pub filters_runnable: bool,
}

/// A campaign with its streams split by type and sorted by position.
#[derive(Debug, Clone)]
pub struct CampaignRoute {
    pub campaign: Campaign,
    pub forced: Vec<StreamRoute>,
    pub regular: Vec<StreamRoute>,
    pub default: Vec<StreamRoute>,
}

/// Everything routing needs, indexed for the click path.
#[derive(Debug, Default)]
pub struct RoutingSnapshot {
    pub generation: u64,
    by_alias: HashMap<String, Arc<CampaignRoute>>,
    by_token: HashMap<String, Arc<CampaignRoute>>,
    by_id: HashMap<i64, Arc<CampaignRoute>>,
    /// Problems met while building (streams that cannot run), for /health and the logs.
    pub warnings: Vec<String>,
}

impl RoutingSnapshot {
    /// Compiles `data` into a snapshot numbered `generation`.
    pub fn build(generation: u64, data: RoutingData) -> Self {
        let mut warnings = Vec::new();
        let mut streams_by_campaign: HashMap<i64, Vec<Stream>> = HashMap::new();
        for stream in data.streams {
            if stream.state == ObjectState::Active {
                streams_by_campaign
                    .entry(stream.campaign_id)
                    .or_default()
                    .push(stream);
            }
        }
        let mut snapshot = RoutingSnapshot {
            generation,
            ..RoutingSnapshot::default()
        };
        for campaign in data.campaigns {
            if campaign.state != ObjectState::Active {
                continue;
            }
            let mut streams = streams_by_campaign.remove(&campaign.id).unwrap_or_default();
            streams.sort_by_key(|s| (s.position, s.id));
            let mut route = CampaignRoute {
                campaign,
                forced: Vec::new(),
                regular: Vec::new(),
                default: Vec::new(),
            };
            for stream in streams {
                let compiled = compile_stream(stream, &mut warnings);
                match compiled.stream.stream_type {
                    StreamType::Forced => route.forced.push(compiled),
                    StreamType::Regular => route.regular.push(compiled),
                    StreamType::Default => route.default.push(compiled),
                }
            }
            let route = Arc::new(route);
            snapshot
                .by_alias
                .insert(route.campaign.alias.clone(), route.clone());
            snapshot
                .by_token
                .insert(route.campaign.token.clone(), route.clone());
            snapshot.by_id.insert(route.campaign.id, route);
        }
        snapshot.warnings = warnings;
        snapshot
    }

    pub fn campaign_by_alias(&self, alias: &str) -> Option<&Arc<CampaignRoute>> {
        self.by_alias.get(alias)
    }

    pub fn campaign_by_token(&self, token: &str) -> Option<&Arc<CampaignRoute>> {
        self.by_token.get(token)
    }

    pub fn campaign_by_id(&self, id: i64) -> Option<&Arc<CampaignRoute>> {
        self.by_id.get(&id)
    }

    pub fn campaign_count(&self) -> usize {
        self.by_id.len()
    }
}

fn compile_stream(stream: Stream, warnings: &mut Vec<String>) -> StreamRoute {
    let action = compile_action(&stream);
    if let StreamAction::Unavailable(reason) = &action {
        warnings.push(format!("stream #{}: {reason}", stream.id));
    }
    let unknown: Vec<&str> = stream.filters.iter().map(|f| f.name.as_str()).collect();
    let filters_runnable = unknown.is_empty();
    if !filters_runnable {
        warnings.push(format!(
            "stream #{}: filter kinds {} are not available in this build; the stream will not match",
            stream.id,
            unknown.join(", ")
        ));
    }
    StreamRoute {
        stream,
        action,
        filters_runnable,
    }
}

fn compile_action(stream: &Stream) -> StreamAction {
    let url_payload = || match &stream.action_payload {
        serde_json::Value::String(url) => Some(url.as_str()),
        _ => None,
    };
    match (stream.schema, stream.action_type.as_str()) {
        (StreamSchema::Redirect | StreamSchema::Action, "http" | "location") => {
            let Some(url) = url_payload() else {
                return StreamAction::Unavailable("the redirect has no URL payload".into());
            };
            match Template::parse(url).and_then(|t| t.check_target().map(|()| t)) {
                Ok(template) => StreamAction::Redirect(template),
                Err(message) => StreamAction::Unavailable(message),
            }
        }
        (_, "status404") => StreamAction::NotFound,
        (_, "do_nothing") => StreamAction::DoNothing,
        (schema, action) => StreamAction::Unavailable(format!(
            "action `{action}` with schema `{}` is not available in this build",
            schema.as_str()
        )),
    }
}
