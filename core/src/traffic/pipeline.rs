//! One visit through a campaign: build the click, select a stream, run its action.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::model::{Click, EXTRA_PARAM_COUNT, SUB_ID_COUNT, unix_now};

use super::{CampaignRoute, MacroSource, StreamAction, new_sub_id, select_stream};

/// What the tracker knows about an incoming visit before routing.
#[derive(Debug, Clone)]
pub struct Visit {
    pub ip: IpAddr,
    pub user_agent: String,
    pub referrer: String,
    /// The first language tag of Accept-Language (`en`, `de`), lower-case, or "".
    pub language: String,
    /// The query parameters, in order, percent-decoded.
    pub query: Vec<(String, String)>,
}

impl Visit {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The answer the visitor gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Redirect(String),
    NotFound,
    Empty,
}

/// The result of routing one visit.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub answer: Answer,
    /// The click to record (`None` when the stream has collect_clicks off).
    pub click: Option<Click>,
}

/// Routes `visit` through `route` and returns the answer and the click.
pub fn handle_campaign(route: &CampaignRoute, visit: &Visit) -> Outcome {
    let mut click = new_click(route, visit);
    let mut rng = rand::rng();
    let stream = select_stream(route, &mut |_| true, &mut rng);
    let answer = match stream {
        None => Answer::Empty,
        Some(stream) => {
            click.stream_id = Some(stream.stream.id);
            match &stream.action {
                StreamAction::Redirect(template) => {
                    let url = template.expand(&ClickMacros {
                        click: &click,
                        route,
                        visit,
                    });
                    click.destination = url.clone();
                    Answer::Redirect(url)
                }
                StreamAction::NotFound => Answer::NotFound,
                StreamAction::DoNothing | StreamAction::Unavailable(_) => Answer::Empty,
            }
        }
    };
    let collect = stream.is_none_or(|s| s.stream.collect_clicks);
    Outcome {
        answer,
        click: collect.then_some(click),
    }
}

fn new_click(route: &CampaignRoute, visit: &Visit) -> Click {
    let mut click = Click::blank();
    click.sub_id = new_sub_id();
    click.campaign_id = route.campaign.id;
    click.ts_id = route.campaign.traffic_source_id;
    click.created_at = unix_now();
    click.ip = visit.ip.to_string();
    click.user_agent = visit.user_agent.clone();
    click.referrer = visit.referrer.clone();
    click.language = visit.language.clone();
    let text = |name: &str| visit.param(name).unwrap_or_default().to_string();
    click.keyword = text("keyword");
    click.source = text("source");
    click.external_id = text("external_id");
    click.creative_id = text("creative_id");
    click.ad_campaign_id = text("ad_campaign_id");
    for i in 0..SUB_ID_COUNT {
        click.sub_ids[i] = text(&format!("sub_id_{}", i + 1));
    }
    for i in 0..EXTRA_PARAM_COUNT {
        click.extra_params[i] = text(&format!("extra_param_{}", i + 1));
    }
    let params: serde_json::Map<String, serde_json::Value> = visit
        .query
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    click.params = serde_json::Value::Object(params).to_string();
    click
}

/// Macro values of a click being routed: the built-in names, then any query parameter.
struct ClickMacros<'a> {
    click: &'a Click,
    route: &'a CampaignRoute,
    visit: &'a Visit,
}

impl<'a> MacroSource for ClickMacros<'a> {
    fn value(&self, name: &str, _args: &str) -> Option<Cow<'_, str>> {
        let click = self.click;
        let borrowed = |s: &'a str| Some(Cow::Borrowed(s));
        let id = |v: Option<i64>| Some(Cow::Owned(v.map(|v| v.to_string()).unwrap_or_default()));
        match name {
            "subid" | "sub_id" => borrowed(&click.sub_id),
            "campaign_id" => id(Some(click.campaign_id)),
            "campaign_name" => borrowed(&self.route.campaign.name),
            "stream_id" => id(click.stream_id),
            "ts_id" => id(click.ts_id),
            "ip" => borrowed(&click.ip),
            "user_agent" | "ua" | "useragent" => borrowed(&click.user_agent),
            "referrer" | "referer" => borrowed(&click.referrer),
            "language" => borrowed(&click.language),
            "keyword" => borrowed(&click.keyword),
            "source" => borrowed(&click.source),
            "external_id" => borrowed(&click.external_id),
            "creative_id" => borrowed(&click.creative_id),
            "ad_campaign_id" => borrowed(&click.ad_campaign_id),
            _ => {
                let indexed = |prefix: &str, values: &'a [String]| {
                    name.strip_prefix(prefix)
                        .and_then(|n| n.parse::<usize>().ok())
                        .and_then(|n| n.checked_sub(1))
                        .and_then(|i| values.get(i))
                        .map(|v| Cow::Borrowed(v.as_str()))
                };
                indexed("sub_id_", &click.sub_ids)
                    .or_else(|| indexed("extra_param_", &click.extra_params))
                    .or_else(|| self.visit.param(name).map(Cow::Borrowed))
            }
        }
    }
}
