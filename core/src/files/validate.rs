//! Checks of a parsed directory: required fields, references between keys, aliases (unique,
//! not reserved), URLs (http/https), money, and every filter and action against the registry
//! (the name must be known and the payload must build). Every problem is reported.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::parse::{ParsedDir, check_key};
use super::{FileProblem, ObjectKind};
use crate::model::{Money, ObjectState, StreamSchema};
use crate::registry::Registry;

/// A landing's `type` values.
const LANDING_TYPES: &[&str] = &["external", "local", "preloaded", "action"];

struct Checker<'a> {
    locations: &'a super::Locations,
    /// Every declared key, broken objects included.
    keys: HashSet<(ObjectKind, String)>,
    problems: &'a mut Vec<FileProblem>,
}

impl Checker<'_> {
    fn fail(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(self.locations.problem(path, message));
    }

    fn required(&mut self, path: &str, value: &str) {
        if value.trim().is_empty() {
            self.fail(path, "is required");
        }
    }

    fn declared(&self, kind: ObjectKind, key: &str) -> bool {
        self.keys.contains(&(kind, key.to_string()))
    }

    fn reference(&mut self, path: &str, kind: ObjectKind, key: &str, optional: bool) {
        if key.is_empty() {
            if !optional {
                self.fail(path, "is required");
            }
            return;
        }
        if !self.declared(kind, key) {
            self.fail(
                path,
                format!(
                    "no {} has the key `{key}`",
                    kind.table().trim_end_matches('s')
                ),
            );
        }
    }

    fn url(&mut self, path: &str, text: &str, required: bool) {
        if text.trim().is_empty() {
            if required {
                self.fail(path, "is required");
            }
            return;
        }
        match url::Url::parse(text.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
            Ok(_) => self.fail(path, format!("`{text}` is not an http or https URL")),
            Err(error) => self.fail(path, format!("`{text}` is not a URL: {error}")),
        }
    }

    fn money(&mut self, path: &str, text: &mut String) {
        match text.parse::<Money>() {
            Ok(money) => *text = money.to_string(),
            Err(error) => self.fail(path, error.to_string()),
        }
    }

    fn state(&mut self, path: &str, state: ObjectState) {
        if state == ObjectState::Deleted {
            self.fail(
                path,
                "`deleted` cannot be declared: remove the object from the files instead",
            );
        }
    }

    fn table(&mut self, path: &str, value: &Value) {
        if !value.is_object() {
            self.fail(path, "must be a table");
        }
    }

    fn non_negative(&mut self, path: &str, value: i64) {
        if value < 0 {
            self.fail(path, format!("must be 0 or more, not {value}"));
        }
    }

    fn action(&mut self, path: &str, registry: &Registry, name: &str, payload: &Value) {
        match registry.action(name) {
            None => self.fail(path, format!("action `{name}` is not known")),
            Some(factory) => {
                if let Err(message) = factory.build(payload, &Value::Object(Default::default())) {
                    self.fail(path, format!("action `{name}`: {message}"));
                }
            }
        }
    }
}

/// Checks `parsed` (normalising money amounts) and appends every problem to `problems`.
pub fn validate(parsed: &mut ParsedDir, registry: &Registry, problems: &mut Vec<FileProblem>) {
    // Money is normalised in place; the rest is read-only.
    let mut set = std::mem::take(&mut parsed.set);
    let mut keys: HashSet<(ObjectKind, String)> = parsed.broken.clone();
    let mut add = |kind: ObjectKind, names: Vec<&String>| {
        keys.extend(names.into_iter().map(|k| (kind, k.clone())));
    };
    add(
        ObjectKind::AffiliateNetwork,
        set.affiliate_networks.keys().collect(),
    );
    add(
        ObjectKind::TrafficSource,
        set.traffic_sources.keys().collect(),
    );
    add(ObjectKind::Offer, set.offers.keys().collect());
    add(ObjectKind::Landing, set.landings.keys().collect());
    add(ObjectKind::Campaign, set.campaigns.keys().collect());
    let mut check = Checker {
        locations: &parsed.locations,
        keys,
        problems,
    };
    for (key, network) in &set.affiliate_networks {
        let path = format!("affiliate_networks.{key}");
        check.required(&format!("{path}.name"), &network.name);
        check.url(
            &format!("{path}.postback_url"),
            &network.postback_url,
            false,
        );
        check.state(&format!("{path}.state"), network.state);
    }
    for (key, source) in &set.traffic_sources {
        let path = format!("traffic_sources.{key}");
        check.required(&format!("{path}.name"), &source.name);
        check.url(&format!("{path}.postback_url"), &source.postback_url, false);
        check.table(&format!("{path}.parameters"), &source.parameters);
        check.state(&format!("{path}.state"), source.state);
    }
    for (key, offer) in &mut set.offers {
        let path = format!("offers.{key}");
        check.required(&format!("{path}.name"), &offer.name);
        let redirects = matches!(offer.action.as_str(), "http" | "location" | "redirect");
        check.url(
            &format!("{path}.url"),
            &offer.url,
            redirects && offer.payload.is_none(),
        );
        check.reference(
            &format!("{path}.affiliate_network"),
            ObjectKind::AffiliateNetwork,
            &offer.affiliate_network,
            true,
        );
        check.money(&format!("{path}.payout"), &mut offer.payout);
        check.non_negative(&format!("{path}.daily_cap"), offer.daily_cap);
        if offer.conversion_timezone.parse::<chrono_tz::Tz>().is_err() {
            check.fail(
                &format!("{path}.conversion_timezone"),
                format!("`{}` is not a time zone", offer.conversion_timezone),
            );
        }
        let payload = offer
            .payload
            .clone()
            .unwrap_or_else(|| Value::String(offer.url.clone()));
        check.action(&format!("{path}.action"), registry, &offer.action, &payload);
        check.state(&format!("{path}.state"), offer.state);
    }
    for (key, landing) in &set.landings {
        let path = format!("landings.{key}");
        check.required(&format!("{path}.name"), &landing.name);
        if !LANDING_TYPES.contains(&landing.landing_type.as_str()) {
            check.fail(
                &format!("{path}.landing_type"),
                format!(
                    "`{}` is not one of {}",
                    landing.landing_type,
                    LANDING_TYPES.join(", ")
                ),
            );
        }
        let redirects = matches!(
            landing.action.as_str(),
            "" | "http" | "location" | "redirect"
        );
        check.url(
            &format!("{path}.url"),
            &landing.url,
            redirects && landing.payload.is_none() && landing.landing_type == "external",
        );
        if !landing.action.is_empty() {
            let payload = landing
                .payload
                .clone()
                .unwrap_or_else(|| Value::String(landing.url.clone()));
            check.action(
                &format!("{path}.action"),
                registry,
                &landing.action,
                &payload,
            );
        }
        check.non_negative(&format!("{path}.offer_count"), landing.offer_count);
        check.state(&format!("{path}.state"), landing.state);
    }
    let mut aliases: HashMap<String, String> = HashMap::new();
    let mut tokens: HashMap<String, String> = HashMap::new();
    // The REST clicks base path is configuration, not known here; the Admin API adds it.
    let reserved = crate::config::reserved_aliases(None);
    for (key, campaign) in &mut set.campaigns {
        let path = format!("campaigns.{key}");
        check.required(&format!("{path}.name"), &campaign.name);
        let alias = campaign.alias.trim();
        if alias.is_empty() {
            check.fail(&format!("{path}.alias"), "is required");
        } else if !alias
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            || alias.starts_with('.')
            || alias.starts_with('_')
        {
            check.fail(
                &format!("{path}.alias"),
                format!(
                    "`{alias}` may only hold letters, digits, `-`, `_` and `.`, and not start with `.` or `_`"
                ),
            );
        } else if reserved.contains(&alias.to_ascii_lowercase()) {
            check.fail(
                &format!("{path}.alias"),
                format!("`{alias}` is reserved for the tracker's own routes"),
            );
        } else if let Some(other) = aliases.insert(alias.to_ascii_lowercase(), key.clone()) {
            check.fail(
                &format!("{path}.alias"),
                format!("`{alias}` is also the alias of campaign `{other}`"),
            );
        }
        if !campaign.token.is_empty() {
            if campaign.token.len() < 8
                || campaign.token.len() > 64
                || !campaign.token.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                check.fail(
                    &format!("{path}.token"),
                    "a token has 8 to 64 letters and digits (or leave it out to have one generated)",
                );
            } else if let Some(other) = tokens.insert(campaign.token.clone(), key.clone()) {
                check.fail(
                    &format!("{path}.token"),
                    format!("is also the token of campaign `{other}`"),
                );
            }
        }
        if !["", "s", "sl", "slo"].contains(&campaign.bind_visitors.as_str()) {
            check.fail(
                &format!("{path}.bind_visitors"),
                format!(
                    "`{}` is not one of \"\", s, sl, slo",
                    campaign.bind_visitors
                ),
            );
        }
        if !["ip", "ip_ua"].contains(&campaign.uniqueness_method.as_str()) {
            check.fail(
                &format!("{path}.uniqueness_method"),
                format!("`{}` is not ip or ip_ua", campaign.uniqueness_method),
            );
        }
        check.non_negative(&format!("{path}.cookies_ttl"), campaign.cookies_ttl);
        check.reference(
            &format!("{path}.traffic_source"),
            ObjectKind::TrafficSource,
            &campaign.traffic_source,
            true,
        );
        check.table(&format!("{path}.parameters"), &campaign.parameters);
        check.money(&format!("{path}.cost_value"), &mut campaign.cost_value);
        check.state(&format!("{path}.state"), campaign.state);
        for (stream_key, stream) in &campaign.streams {
            if let Err(message) = check_key(stream_key) {
                check.fail(&format!("{path}.streams.{stream_key}"), message);
            }
            check_stream(
                &mut check,
                registry,
                &format!("{path}.streams.{stream_key}"),
                stream,
            );
        }
    }
    parsed.set = set;
}

fn check_stream(
    check: &mut Checker<'_>,
    registry: &Registry,
    path: &str,
    stream: &super::format::StreamDecl,
) {
    check.non_negative(&format!("{path}.position"), stream.position);
    check.non_negative(&format!("{path}.weight"), stream.weight);
    check.state(&format!("{path}.state"), stream.state);
    for (index, filter) in stream.filters.iter().enumerate() {
        let filter_path = format!("{path}.filters[{index}]");
        if !["accept", "reject"].contains(&filter.mode.as_str()) {
            check.fail(
                &format!("{filter_path}.mode"),
                format!("`{}` is not accept or reject", filter.mode),
            );
        }
        match registry.filter(&filter.name) {
            None if filter.name.is_empty() => {
                check.fail(&format!("{filter_path}.name"), "is required")
            }
            None => check.fail(
                &format!("{filter_path}.name"),
                format!("filter `{}` is not known", filter.name),
            ),
            Some(factory) => {
                if let Err(message) = factory.build(filter.payload.as_ref().unwrap_or(&Value::Null))
                {
                    check.fail(
                        &format!("{filter_path}.payload"),
                        format!("filter `{}`: {message}", filter.name),
                    );
                }
            }
        }
    }
    for (index, target) in stream.landings.iter().enumerate() {
        let target_path = format!("{path}.landings[{index}]");
        check.reference(
            &format!("{target_path}.landing"),
            ObjectKind::Landing,
            &target.landing,
            false,
        );
        check.non_negative(&format!("{target_path}.share"), target.share);
    }
    for (index, target) in stream.offers.iter().enumerate() {
        let target_path = format!("{path}.offers[{index}]");
        check.reference(
            &format!("{target_path}.offer"),
            ObjectKind::Offer,
            &target.offer,
            false,
        );
        check.non_negative(&format!("{target_path}.share"), target.share);
    }
    match stream.schema {
        StreamSchema::Landings => {
            if stream.landings.is_empty() && stream.offers.is_empty() {
                check.fail(
                    &format!("{path}.schema"),
                    "a `landings` stream needs at least one landing or offer",
                );
            }
        }
        StreamSchema::Redirect | StreamSchema::Action => {
            let payload = stream.payload.clone().unwrap_or(Value::Null);
            check.action(
                &format!("{path}.action"),
                registry,
                &stream.action,
                &payload,
            );
        }
    }
    for (index, trigger) in stream.triggers.iter().enumerate() {
        let trigger_path = format!("{path}.triggers[{index}]");
        let condition = trigger.condition.as_str();
        if !crate::model::is_known_condition(condition) {
            check.fail(
                &format!("{trigger_path}.condition"),
                format!(
                    "`{condition}` is not one of {}, script:NAME, native:NAME",
                    crate::model::CONDITIONS.join(", ")
                ),
            );
        }
        if !crate::model::ACTIONS.contains(&trigger.action.as_str()) {
            check.fail(
                &format!("{trigger_path}.action"),
                format!(
                    "`{}` is not one of {}",
                    trigger.action,
                    crate::model::ACTIONS.join(", ")
                ),
            );
        }
        check.url(&format!("{trigger_path}.target"), &trigger.target, false);
        if let Err(message) = crate::model::check_interval(trigger.interval_seconds) {
            check.fail(&format!("{trigger_path}.interval_seconds"), message);
        }
        check.table(&format!("{trigger_path}.payload"), &trigger.payload);
    }
}
