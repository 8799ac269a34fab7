//! The immutable routing snapshot: everything the click path needs, compiled once from the
//! store through the plugin registry and swapped atomically (see `crate::reload`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{
    Campaign, Click, EXTRA_PARAM_COUNT, Landing, ObjectState, Offer, SUB_ID_COUNT, Stream,
    StreamSchema, StreamType,
};
use crate::registry::{Action, Filter, Origin, Registry};

/// What the store hands over to build a snapshot: the active objects routing can reach.
#[derive(Debug, Clone, Default)]
pub struct RoutingData {
    pub campaigns: Vec<Campaign>,
    pub streams: Vec<Stream>,
    pub landings: Vec<Landing>,
    pub offers: Vec<Offer>,
    /// (id, name) of active traffic sources, for `{traffic_source_name}`.
    pub traffic_sources: Vec<(i64, String)>,
}

/// One filter of a stream, built.
pub struct CompiledFilter {
    pub name: String,
    /// `reject` mode: the stream passes when the filter does NOT match.
    pub reject: bool,
    pub filter: Box<dyn Filter>,
}

/// A landing or offer with its built action.
pub struct TargetRoute {
    pub id: i64,
    pub name: String,
    pub action_type: String,
    pub action: Box<dyn Action>,
    /// An offer's daily conversion cap, when it has one.
    pub cap: Option<super::OfferCap>,
    /// Its action is user code (a script or native kind).
    pub user_code: bool,
}

/// A stream ready for selection.
pub struct StreamRoute {
    pub stream: Stream,
    pub filters: Vec<CompiledFilter>,
    /// The stream's own action (schemas `redirect` and `action`).
    pub action: Option<Box<dyn Action>>,
    /// (landing id, share) and (offer id, share) of active, resolvable targets.
    pub landings: Vec<(i64, i64)>,
    pub offers: Vec<(i64, i64)>,
    /// False when something of the stream could not be built: such a stream never matches
    /// (a filter or action that cannot run counts as "does not match").
    pub runnable: bool,
    /// A filter, its action or one of its landings or offers is user code.
    pub user_code: bool,
}

/// A click field that a query parameter feeds (see [`ParamNames`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamField {
    Keyword,
    Source,
    ExternalId,
    CreativeId,
    AdCampaignId,
    XRequestedWith,
    /// `sub_id_{n + 1}`.
    SubId(usize),
    /// `extra_param_{n + 1}`.
    ExtraParam(usize),
    UtmSource,
    UtmMedium,
    UtmCampaign,
    UtmTerm,
    UtmContent,
}

impl ParamField {
    /// The field's text in `click` (`None` for a sub id or extra param past the model's).
    pub fn slot(self, click: &mut Click) -> Option<&mut String> {
        Some(match self {
            ParamField::Keyword => &mut click.keyword,
            ParamField::Source => &mut click.source,
            ParamField::ExternalId => &mut click.external_id,
            ParamField::CreativeId => &mut click.creative_id,
            ParamField::AdCampaignId => &mut click.ad_campaign_id,
            ParamField::XRequestedWith => &mut click.x_requested_with,
            ParamField::SubId(n) => return click.sub_ids.get_mut(n),
            ParamField::ExtraParam(n) => return click.extra_params.get_mut(n),
            ParamField::UtmSource => &mut click.utm_source,
            ParamField::UtmMedium => &mut click.utm_medium,
            ParamField::UtmCampaign => &mut click.utm_campaign,
            ParamField::UtmTerm => &mut click.utm_term,
            ParamField::UtmContent => &mut click.utm_content,
        })
    }
}

/// Which query parameter feeds each click field: the campaign's `parameters` mapping, or the
/// field's own name (`utm_*` always by their own). Worked out once per snapshot, not per
/// click, as a map from parameter name to fields, so a click looks up each parameter it
/// carries once instead of every field's name in its query.
#[derive(Debug, Clone)]
pub struct ParamNames {
    /// The parameter that carries the click's cost.
    pub cost: String,
    /// Parameter name -> the click fields it feeds (a name may feed several).
    pub fields: HashMap<String, Vec<ParamField>>,
}

impl ParamNames {
    pub fn for_campaign(campaign: &Campaign) -> ParamNames {
        let name = |field: &str| {
            campaign
                .parameters
                .get(field)
                .and_then(|p| p.get("name").or(Some(p)))
                .and_then(serde_json::Value::as_str)
                .filter(|n| !n.is_empty())
                .unwrap_or(field)
                .to_string()
        };
        let mut fields: HashMap<String, Vec<ParamField>> = HashMap::new();
        let mut feed =
            |name: String, field: ParamField| fields.entry(name).or_default().push(field);
        for (key, field) in [
            ("keyword", ParamField::Keyword),
            ("source", ParamField::Source),
            ("external_id", ParamField::ExternalId),
            ("creative_id", ParamField::CreativeId),
            ("ad_campaign_id", ParamField::AdCampaignId),
            ("x_requested_with", ParamField::XRequestedWith),
        ] {
            feed(name(key), field);
        }
        for n in 0..SUB_ID_COUNT {
            feed(name(&format!("sub_id_{}", n + 1)), ParamField::SubId(n));
        }
        for n in 0..EXTRA_PARAM_COUNT {
            feed(
                name(&format!("extra_param_{}", n + 1)),
                ParamField::ExtraParam(n),
            );
        }
        for (key, field) in [
            ("utm_source", ParamField::UtmSource),
            ("utm_medium", ParamField::UtmMedium),
            ("utm_campaign", ParamField::UtmCampaign),
            ("utm_term", ParamField::UtmTerm),
            ("utm_content", ParamField::UtmContent),
        ] {
            feed(key.to_string(), field);
        }
        ParamNames {
            cost: name("cost"),
            fields,
        }
    }
}

/// A campaign with its streams split by type and sorted by position.
pub struct CampaignRoute {
    pub campaign: Campaign,
    /// The query parameter of each click field.
    pub params: ParamNames,
    pub forced: Vec<StreamRoute>,
    pub regular: Vec<StreamRoute>,
    pub default: Vec<StreamRoute>,
    /// A click of this campaign may run user code (a stream, landing or offer of script or
    /// native origin, or a `campaign` action while any campaign uses user code), so it is
    /// routed on the user-code pool (see `crate::guard`).
    pub user_code: bool,
}

impl CampaignRoute {
    /// Every stream of the campaign, in selection order.
    pub fn streams(&self) -> impl Iterator<Item = &StreamRoute> {
        self.forced.iter().chain(&self.regular).chain(&self.default)
    }
}

/// Everything routing needs, indexed for the click path.
#[derive(Default)]
pub struct RoutingSnapshot {
    pub generation: u64,
    by_alias: HashMap<String, Arc<CampaignRoute>>,
    by_token: HashMap<String, Arc<CampaignRoute>>,
    by_id: HashMap<i64, Arc<CampaignRoute>>,
    landings: HashMap<i64, TargetRoute>,
    offers: HashMap<i64, TargetRoute>,
    traffic_sources: HashMap<i64, String>,
    /// Problems met while building (streams that cannot run), for /health and the logs.
    pub warnings: Vec<String>,
}

impl RoutingSnapshot {
    /// Compiles `data` into a snapshot numbered `generation`, building every filter and action
    /// through `registry`.
    pub fn build(generation: u64, data: RoutingData, registry: &Registry) -> Self {
        let mut warnings = Vec::new();
        let mut snapshot = RoutingSnapshot {
            generation,
            traffic_sources: data.traffic_sources.into_iter().collect(),
            ..RoutingSnapshot::default()
        };
        for landing in data.landings {
            if landing.state != ObjectState::Active {
                continue;
            }
            let (action_type, payload) = target_action(
                &landing.action_type,
                &landing.action_payload,
                &landing.url,
                &landing.landing_type,
            );
            let user_code = is_user_action(registry, &action_type);
            match build_action(registry, &action_type, &payload, &landing.action_options) {
                Ok(action) => {
                    snapshot.landings.insert(
                        landing.id,
                        TargetRoute {
                            id: landing.id,
                            name: landing.name,
                            action_type,
                            action,
                            cap: None,
                            user_code,
                        },
                    );
                }
                Err(message) => warnings.push(format!("landing #{}: {message}", landing.id)),
            }
        }
        for offer in data.offers {
            if offer.state != ObjectState::Active {
                continue;
            }
            let (action_type, payload) = target_action(
                &offer.action_type,
                &offer.action_payload,
                &offer.url,
                &offer.offer_type,
            );
            let cap = (offer.daily_cap > 0).then(|| super::OfferCap {
                daily: offer.daily_cap,
                timezone: offer.conversion_timezone.parse().unwrap_or(chrono_tz::UTC),
                alternative: offer.alternative_offer_id,
            });
            let user_code = is_user_action(registry, &action_type);
            match build_action(registry, &action_type, &payload, &offer.action_options) {
                Ok(action) => {
                    snapshot.offers.insert(
                        offer.id,
                        TargetRoute {
                            id: offer.id,
                            name: offer.name,
                            action_type,
                            action,
                            cap,
                            user_code,
                        },
                    );
                }
                Err(message) => warnings.push(format!("offer #{}: {message}", offer.id)),
            }
        }

        let mut streams_by_campaign: HashMap<i64, Vec<Stream>> = HashMap::new();
        for stream in data.streams {
            if stream.state == ObjectState::Active {
                streams_by_campaign
                    .entry(stream.campaign_id)
                    .or_default()
                    .push(stream);
            }
        }
        let mut routes = Vec::new();
        for campaign in data.campaigns {
            if campaign.state != ObjectState::Active {
                continue;
            }
            let mut streams = streams_by_campaign.remove(&campaign.id).unwrap_or_default();
            streams.sort_by_key(|s| (s.position, s.id));
            let mut route = CampaignRoute {
                params: ParamNames::for_campaign(&campaign),
                campaign,
                forced: Vec::new(),
                regular: Vec::new(),
                default: Vec::new(),
                user_code: false,
            };
            for stream in streams {
                let compiled = compile_stream(stream, registry, &snapshot, &mut warnings);
                match compiled.stream.stream_type {
                    StreamType::Forced => route.forced.push(compiled),
                    StreamType::Regular => route.regular.push(compiled),
                    StreamType::Default => route.default.push(compiled),
                }
            }
            let user_code = route.streams().any(|s| s.user_code);
            route.user_code = user_code;
            routes.push(route);
        }
        // A campaign that hands clicks to another campaign may reach user code there.
        let any_user_code = routes.iter().any(|route| route.user_code);
        for mut route in routes {
            let forwards = route
                .streams()
                .any(|s| s.action.is_some() && s.stream.action_type == "campaign");
            route.user_code |= any_user_code && forwards;
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

    /// The name of an active traffic source.
    pub fn traffic_source_name(&self, id: i64) -> Option<&str> {
        self.traffic_sources.get(&id).map(String::as_str)
    }

    pub fn landing(&self, id: i64) -> Option<&TargetRoute> {
        self.landings.get(&id)
    }

    pub fn offer(&self, id: i64) -> Option<&TargetRoute> {
        self.offers.get(&id)
    }

    /// Every active offer.
    pub fn offers(&self) -> impl Iterator<Item = &TargetRoute> {
        self.offers.values()
    }

    /// Every active campaign.
    pub fn campaigns(&self) -> impl Iterator<Item = &Arc<CampaignRoute>> {
        self.by_id.values()
    }

    pub fn campaign_count(&self) -> usize {
        self.by_id.len()
    }
}

/// The action of a landing or offer: its own type and payload, defaulting to a redirect to its
/// URL (`local` types serve their uploaded files).
fn target_action(
    action_type: &str,
    payload: &serde_json::Value,
    url: &str,
    kind: &str,
) -> (String, serde_json::Value) {
    let action_type = match action_type.trim() {
        "" if kind == "local" => "local_file".to_string(),
        "" => "http".to_string(),
        other => other.to_string(),
    };
    let empty = payload.is_null() || payload.as_str().is_some_and(|s| s.trim().is_empty());
    let payload = if empty && !url.is_empty() {
        serde_json::Value::String(url.to_string())
    } else {
        payload.clone()
    };
    (action_type, payload)
}

/// Whether the filter kind `name` is user code (not built in).
fn is_user_filter(registry: &Registry, name: &str) -> bool {
    registry
        .filter(name)
        .is_some_and(|f| f.info().origin != Origin::Builtin)
}

/// Whether the action kind `name` is user code (not built in).
fn is_user_action(registry: &Registry, name: &str) -> bool {
    registry
        .action(name)
        .is_some_and(|a| a.info().origin != Origin::Builtin)
}

fn build_action(
    registry: &Registry,
    name: &str,
    payload: &serde_json::Value,
    options: &serde_json::Value,
) -> Result<Box<dyn Action>, String> {
    let factory = registry
        .action(name)
        .ok_or_else(|| format!("action `{name}` is not in the registry"))?;
    factory
        .build(payload, options)
        .map_err(|e| format!("action `{name}`: {e}"))
}

fn compile_stream(
    stream: Stream,
    registry: &Registry,
    snapshot: &RoutingSnapshot,
    warnings: &mut Vec<String>,
) -> StreamRoute {
    let mut runnable = true;
    let mut problem = |message: String| {
        warnings.push(format!(
            "stream #{}: {message}; the stream will not match",
            stream.id
        ));
        runnable = false;
    };
    let mut filters = Vec::with_capacity(stream.filters.len());
    for filter in &stream.filters {
        match registry.filter(&filter.name) {
            None => problem(format!("filter `{}` is not in the registry", filter.name)),
            Some(factory) => match factory.build(&filter.payload) {
                Ok(built) => filters.push(CompiledFilter {
                    name: filter.name.clone(),
                    // A mode-less kind (Keitaro's `limit`) ignores the stored mode.
                    reject: filter.mode == "reject" && factory.info().modes,
                    filter: built,
                }),
                Err(message) => problem(format!("filter `{}`: {message}", filter.name)),
            },
        }
    }
    let active =
        |targets: &[crate::model::StreamTarget], exists: &dyn Fn(i64) -> bool| -> Vec<(i64, i64)> {
            targets
                .iter()
                .filter(|t| t.state == ObjectState::Active && t.share > 0 && exists(t.target_id))
                .map(|t| (t.target_id, t.share))
                .collect()
        };
    let landings = active(&stream.landings, &|id| snapshot.landings.contains_key(&id));
    let offers = active(&stream.offers, &|id| snapshot.offers.contains_key(&id));
    let action = match stream.schema {
        StreamSchema::Landings => {
            if landings.is_empty() && offers.is_empty() {
                problem("it has no active landing or offer".into());
            }
            None
        }
        StreamSchema::Redirect | StreamSchema::Action => {
            match build_action(
                registry,
                &stream.action_type,
                &stream.action_payload,
                &stream.action_options,
            ) {
                Ok(action) => Some(action),
                Err(message) => {
                    problem(message);
                    None
                }
            }
        }
    };
    let user_code = stream
        .filters
        .iter()
        .any(|f| is_user_filter(registry, &f.name))
        || (action.is_some() && is_user_action(registry, &stream.action_type))
        || landings
            .iter()
            .filter_map(|(id, _)| snapshot.landings.get(id))
            .chain(offers.iter().filter_map(|(id, _)| snapshot.offers.get(id)))
            .any(|target| target.user_code);
    StreamRoute {
        stream,
        filters,
        action,
        landings,
        offers,
        runnable,
        user_code,
    }
}
