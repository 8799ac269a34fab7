//! One visit through a campaign: build the click, select a stream by its filters, pick a
//! landing or offer, run the action, update visitor memory. Synchronous and IO-free: replies
//! that need IO (`Fetch`, `LocalFile`) are returned for the caller to carry out.

use serde_json::{Value, json};

use crate::model::{Click, Money, unix_now};
use crate::registry::{ActionEnv, FileOwner, Reply};

use super::selector::{pick_share, select_stream};
use super::snapshot::{CampaignRoute, RoutingSnapshot, StreamRoute, TargetRoute};
use super::{Template, new_sub_id, random_token};
use crate::visit::Binding;
use crate::visit::{ClickContext, ClickMacros, TrafficEnv, UniqueFlags, Visit};

/// How many campaigns a click may pass through with the `campaign` action.
const MAX_CAMPAIGN_HOPS: u32 = 5;

/// How to route.
#[derive(Debug, Clone, Default)]
pub struct RouteOptions {
    /// Keep a processing log (Click API `log=1`, the `route` command).
    pub trace: bool,
    /// Skip the landing and go straight to an offer (Click API `force_redirect_offer`).
    pub force_offer: bool,
    /// Prefer this landing (Click API `landing_id`).
    pub landing_id: Option<i64>,
    /// Do not update visitor memory or counters (the `route` dry run).
    pub dry_run: bool,
    /// Send the click to this offer: only streams that carry it are considered, and the
    /// chosen stream uses it instead of picking by share (the click dialects' `offer_id`).
    pub offer_id: Option<i64>,
}

/// The outcome of routing one visit.
pub struct RouteResult {
    /// The answer; `Fetch` and `LocalFile` still need the caller's IO.
    pub reply: Reply,
    /// The action kind that answered (`http`, `show_html`, …; `location` for redirects).
    pub info_type: String,
    /// The click (always filled, for the Click API's info); recorded only when `record`.
    pub click: Click,
    pub record: bool,
    pub uniqueness: UniqueFlags,
    /// The signed visitor cookie to send back.
    pub cookie: String,
    /// The campaign's cookies_ttl (hours) for the cookie's lifetime.
    pub cookie_ttl_hours: i64,
    pub log: Vec<String>,
    /// Some stream was passed over because its `limit` filter was exhausted.
    pub capped: bool,
}

/// The action environment of a click being routed.
struct ClickActionEnv<'c, 'a> {
    ctx: &'c ClickContext<'a>,
    owner: Option<FileOwner>,
    offer_link: Option<String>,
}

impl ActionEnv for ClickActionEnv<'_, '_> {
    fn expand(&self, template: &Template) -> String {
        template.expand(&ClickMacros {
            ctx: self.ctx,
            offer_link: self.offer_link.as_deref(),
        })
    }

    fn base_url(&self) -> String {
        self.ctx.visit.base_url()
    }

    fn hop_url(&self, url: &str) -> String {
        let token = self
            .ctx
            .env
            .signer
            .sign(&json!({ "k": "hop", "u": url, "exp": self.ctx.now + 300 }));
        self.ctx.visit.url(format_args!("/?_hop={token}"))
    }

    fn owner(&self) -> Option<FileOwner> {
        self.owner
    }

    fn click(&self) -> &Click {
        &self.ctx.click
    }
}

/// What a campaign handing a click over passes to the next one.
struct Parent {
    campaign_id: i64,
    log: Vec<String>,
    cookie: crate::visit::VisitorCookie,
}

/// Routes `visit` through `route`.
pub fn route_click(
    env: &TrafficEnv,
    snapshot: &RoutingSnapshot,
    route: &CampaignRoute,
    visit: &Visit,
    options: &RouteOptions,
) -> RouteResult {
    route_hop(env, snapshot, route, visit, options, None, 0)
}

fn route_hop(
    env: &TrafficEnv,
    snapshot: &RoutingSnapshot,
    route: &CampaignRoute,
    visit: &Visit,
    options: &RouteOptions,
    parent: Option<Parent>,
    hops: u32,
) -> RouteResult {
    let campaign = &route.campaign;
    let mut click = new_click(route, visit);
    click.parent_campaign_id = parent.as_ref().map(|p| p.campaign_id);
    let mut ctx = ClickContext::new(env, visit, campaign, click, options.trace);
    ctx.traffic_source_name = campaign
        .traffic_source_id
        .and_then(|id| snapshot.traffic_source_name(id))
        .unwrap_or_default()
        .to_string();
    if let Some(parent) = parent {
        // The visitor's memory as the parent campaign left it, not as it arrived.
        ctx.cookie = parent.cookie;
        for line in parent.log {
            ctx.log(|| line);
        }
    }
    ctx.click.visitor_code = if ctx.cookie.visitor.is_empty() {
        random_token(10)
    } else {
        ctx.cookie.visitor.clone()
    };
    ctx.cookie.visitor = ctx.click.visitor_code.clone();

    let unique_campaign = ctx.is_unique_campaign();
    let unique_global = ctx.is_unique_global();
    ctx.log(|| format!("Processing campaign {}", campaign.id));
    if ctx.is_logging() {
        let lines = [
            format!("Referrer: {}", ctx.click.referrer),
            format!("Source: {}", ctx.click.source),
            format!("Keyword: {}", ctx.click.keyword),
            format!("UserAgent: {}", ctx.click.user_agent),
            format!("Language: {}", ctx.click.language),
            format!(
                "Is unique in campaign: {}",
                if unique_campaign { "yes" } else { "no" }
            ),
        ];
        for line in lines {
            ctx.log(|| line);
        }
    }

    let binding = campaign
        .bind_visitors
        .as_deref()
        .filter(|b| !b.is_empty())
        .and_then(|_| ctx.cookie.bind.get(&campaign.id).copied())
        .unwrap_or_default();
    let mut rng = rand::rng();
    let stream = select_stream(
        route,
        binding.stream,
        &mut |s| carries_offer(&mut ctx, s, options.offer_id) && stream_passes(&mut ctx, s),
        &mut rng,
    );
    ctx.checking_stream = None;

    let unique_stream = stream.is_some_and(|s| ctx.is_unique_stream(s.stream.id));
    ctx.click.is_unique_campaign = unique_campaign;
    ctx.click.is_unique_global = unique_global;
    ctx.click.is_unique_stream = unique_stream;
    ctx.finish_enrichment();
    ctx.click.cost = click_cost(&ctx, unique_campaign, &route.params.cost);

    let mut stream = stream;
    let (reply, info_type) = match stream {
        None => {
            ctx.log(|| "No stream accepted the click".to_string());
            (empty_reply(), "do_nothing".to_string())
        }
        Some(chosen) => {
            ctx.click.stream_id = Some(chosen.stream.id);
            ctx.log(|| format!("Stream #{}", chosen.stream.id));
            match run_stream(&mut ctx, snapshot, chosen, &binding, options) {
                Some(answer) => answer,
                // The action failed or was skipped (user code over its budget, disabled or
                // stuck): the campaign's default stream answers instead, when there is one.
                None => match fallback_stream(route, chosen) {
                    Some(fallback) => {
                        ctx.log(|| {
                            format!("Falling back to default stream #{}", fallback.stream.id)
                        });
                        stream = Some(fallback);
                        ctx.click.stream_id = Some(fallback.stream.id);
                        ctx.click.landing_id = None;
                        ctx.click.offer_id = None;
                        run_stream(&mut ctx, snapshot, fallback, &binding, options)
                            .unwrap_or_else(|| (empty_reply(), "do_nothing".into()))
                    }
                    None => (empty_reply(), "do_nothing".into()),
                },
            }
        }
    };

    // Another campaign takes over: the click is routed (and recorded) there, with this one as
    // its parent. Loops end after MAX_CAMPAIGN_HOPS.
    if let Reply::ToCampaign { campaign_id } = reply {
        let next = snapshot
            .campaign_by_id(campaign_id)
            .filter(|_| hops < MAX_CAMPAIGN_HOPS);
        match next {
            Some(next) if campaign_id != campaign.id => {
                ctx.log(|| format!("Redirect to campaign {campaign_id}"));
                // The forwarding stream served this click: count it and remember the visitor
                // there, then hand the updated memory to the next campaign.
                if !options.dry_run {
                    ctx.mark_seen(ctx.click.stream_id);
                    if let Some(stream) = stream {
                        ctx.env.hits.add(stream.stream.id, ctx.now);
                    }
                }
                let parent = Parent {
                    campaign_id: campaign.id,
                    log: ctx.take_log(),
                    cookie: ctx.cookie,
                };
                return route_hop(env, snapshot, next, visit, options, Some(parent), hops + 1);
            }
            _ => {
                ctx.log(|| format!("Campaign {campaign_id} is unavailable or would loop"));
                return finish(ctx, stream, empty_reply(), "do_nothing".into(), options);
            }
        }
    }
    finish(ctx, stream, reply, info_type, options)
}

fn finish(
    mut ctx: ClickContext<'_>,
    stream: Option<&StreamRoute>,
    reply: Reply,
    info_type: String,
    options: &RouteOptions,
) -> RouteResult {
    if let Reply::Redirect { url, .. } = &reply {
        ctx.click.destination = url.clone();
        ctx.log(|| format!("Send headers: Location: {url}"));
    }
    let campaign = ctx.campaign;
    if !options.dry_run {
        ctx.mark_seen(ctx.click.stream_id);
        if let Some(stream) = stream {
            ctx.env.hits.add(stream.stream.id, ctx.now);
        }
    }
    if campaign
        .bind_visitors
        .as_deref()
        .is_some_and(|b| !b.is_empty())
    {
        let scope = campaign.bind_visitors.as_deref().unwrap_or_default();
        let binding = Binding {
            stream: ctx.click.stream_id,
            landing: ctx.click.landing_id.filter(|_| scope.contains('l')),
            offer: ctx.click.offer_id.filter(|_| scope.contains('o')),
        };
        ctx.cookie.bind.insert(campaign.id, binding);
    }
    let cookie = ctx.cookie.encode(&ctx.env.signer);
    let uniqueness = UniqueFlags {
        campaign: ctx.click.is_unique_campaign,
        stream: ctx.click.is_unique_stream,
        global: ctx.click.is_unique_global,
    };
    let record = stream.is_none_or(|s| s.stream.collect_clicks);
    let log = ctx.take_log();
    RouteResult {
        reply,
        info_type,
        capped: ctx.capped,
        click: ctx.click,
        record,
        uniqueness,
        cookie,
        cookie_ttl_hours: campaign.cookies_ttl,
        log,
    }
}

/// With a required offer, a stream that does not carry it is not considered.
fn carries_offer(ctx: &mut ClickContext<'_>, stream: &StreamRoute, offer: Option<i64>) -> bool {
    let Some(offer) = offer else {
        return true;
    };
    let carries = stream.offers.iter().any(|(id, _)| *id == offer);
    if !carries {
        ctx.log(|| {
            format!(
                "Stream #{} does not send to offer #{offer}",
                stream.stream.id
            )
        });
    }
    carries
}

fn empty_reply() -> Reply {
    Reply::Content {
        status: 200,
        content_type: "text/html; charset=utf-8".into(),
        body: Vec::new(),
        headers: Vec::new(),
    }
}

/// Evaluates a stream's filters (AND, or OR with filter_or; `reject` inverts), logging each.
pub(super) fn stream_passes(ctx: &mut ClickContext<'_>, stream: &StreamRoute) -> bool {
    ctx.log(|| format!("Checking stream #{}", stream.stream.id));
    ctx.checking_stream = Some(stream.stream.id);
    if stream.filters.is_empty() {
        ctx.log(|| "Accepted by filters".into());
        return true;
    }
    let any = stream.stream.filter_or;
    let mut result = !any;
    for compiled in &stream.filters {
        // A filter that cannot run fails closed: the stream does not pass it, whatever the
        // filter's mode (so a broken reject filter never lets traffic through).
        let pass = match compiled.filter.matches(ctx) {
            Ok(matched) => matched != compiled.reject,
            Err(error) => {
                tracing::debug!(stream_id = stream.stream.id, filter = %compiled.name, %error, "A filter failed; the stream does not pass it.");
                ctx.log(|| format!("Filter \"{}\" failed: {error}", compiled.name));
                false
            }
        };
        if !pass && compiled.name == "limit" {
            ctx.capped = true;
        }
        ctx.log(|| {
            format!(
                "Filter \"{}\": {}",
                compiled.name,
                if pass { "allow" } else { "rejected" }
            )
        });
        if any && pass {
            result = true;
            break;
        }
        if !any && !pass {
            result = false;
            break;
        }
    }
    ctx.log(|| {
        if result {
            "Accepted by filters".into()
        } else {
            "Not accepted by filters".into()
        }
    });
    result
}

/// The stream that answers when `failed`'s action could not: the campaign's first runnable
/// default stream, unless `failed` is one.
fn fallback_stream<'r>(route: &'r CampaignRoute, failed: &StreamRoute) -> Option<&'r StreamRoute> {
    if failed.stream.stream_type == crate::model::StreamType::Default {
        return None;
    }
    route
        .default
        .iter()
        .find(|s| s.runnable && s.stream.id != failed.stream.id)
}

/// Runs the stream: its landing (then offer link), an offer, or its own action. `None` when
/// the action failed (logged and traced).
fn run_stream(
    ctx: &mut ClickContext<'_>,
    snapshot: &RoutingSnapshot,
    stream: &StreamRoute,
    binding: &Binding,
    options: &RouteOptions,
) -> Option<(Reply, String)> {
    let mut rng = rand::rng();
    let mut owner = None;
    let mut offer_link = None;
    let action = if stream.action.is_none() {
        let landing = (!options.force_offer && !stream.landings.is_empty())
            .then(|| {
                let preferred = options.landing_id.or(binding.landing);
                pick_share(&stream.landings, preferred, &mut rng)
            })
            .flatten()
            .and_then(|id| snapshot.landing(id));
        match landing {
            Some(landing) => {
                ctx.click.landing_id = Some(landing.id);
                ctx.log(|| format!("Landing #{}", landing.id));
                owner = Some(FileOwner::Landing(landing.id));
                offer_link = Some(landing_offer_link(ctx));
                Some((&landing.action, landing.action_type.as_str()))
            }
            None => {
                let required = options
                    .offer_id
                    .filter(|id| stream.offers.iter().any(|(offer, _)| offer == id));
                let offer = required
                    .or_else(|| pick_share(&stream.offers, binding.offer, &mut rng))
                    .and_then(|id| snapshot.offer(id))
                    .and_then(|offer| {
                        uncapped_offer(ctx, snapshot, stream, offer, required.is_some(), &mut rng)
                    });
                offer.map(|offer| {
                    ctx.click.offer_id = Some(offer.id);
                    ctx.log(|| format!("Offer #{}", offer.id));
                    owner = Some(FileOwner::Offer(offer.id));
                    (&offer.action, offer.action_type.as_str())
                })
            }
        }
    } else {
        stream
            .action
            .as_ref()
            .map(|a| (a, stream.stream.action_type.as_str()))
    };
    let Some((action, action_type)) = action else {
        return Some((empty_reply(), "do_nothing".into()));
    };
    let env = ClickActionEnv {
        ctx,
        owner,
        offer_link,
    };
    match action.run(&env) {
        Ok(reply) => {
            let info_type = match &reply {
                Reply::Redirect { .. } => "location".to_string(),
                _ => action_type.to_string(),
            };
            Some((reply, info_type))
        }
        Err(error) => {
            tracing::warn!(stream_id = stream.stream.id, action = action_type, %error, "An action failed; the campaign's default stream answers, if any.");
            ctx.log(|| format!("Action \"{action_type}\" failed: {error}"));
            None
        }
    }
}

/// The offer itself while under its daily cap; else its alternative offer (when that is
/// under its own cap), else another of the stream's offers under cap (by share); else none,
/// and the click is marked capped. An offer the request requires (`required`) is never
/// swapped: capped, it gives none. Reads only in-memory counts.
fn uncapped_offer<'s>(
    ctx: &mut ClickContext<'_>,
    snapshot: &'s RoutingSnapshot,
    stream: &StreamRoute,
    offer: &'s TargetRoute,
    required: bool,
    rng: &mut impl rand::Rng,
) -> Option<&'s TargetRoute> {
    let now = ctx.click.created_at;
    let caps = &ctx.env.caps;
    let open = |o: &TargetRoute| {
        o.cap
            .as_ref()
            .is_none_or(|cap| !caps.reached(o.id, cap, now))
    };
    if open(offer) {
        return Some(offer);
    }
    if required {
        ctx.capped = true;
        ctx.log(|| format!("Offer #{} reached its daily cap", offer.id));
        return None;
    }
    let alternative = offer
        .cap
        .and_then(|cap| cap.alternative)
        .and_then(|id| snapshot.offer(id))
        .filter(|o| open(o));
    if let Some(alternative) = alternative {
        ctx.log(|| {
            format!(
                "Offer #{} reached its daily cap; alternative offer #{}",
                offer.id, alternative.id
            )
        });
        return Some(alternative);
    }
    let others: Vec<(i64, i64)> = stream
        .offers
        .iter()
        .filter(|(id, _)| *id != offer.id && snapshot.offer(*id).is_some_and(&open))
        .copied()
        .collect();
    let other = pick_share(&others, None, rng).and_then(|id| snapshot.offer(id));
    if other.is_none() {
        ctx.capped = true;
        ctx.log(|| format!("Offer #{} reached its daily cap; no other offer", offer.id));
    }
    other
}

/// The `{offer}` link of a landing: a signed token that brings the click back to pick an offer.
fn landing_offer_link(ctx: &ClickContext<'_>) -> String {
    let token = LandingToken::issue(
        &ctx.env.signer,
        &ctx.click,
        &ctx.visit.query,
        ctx.now,
        ctx.ttl_seconds(),
    )
    .unwrap_or_default();
    ctx.visit.url(format_args!("/?_lp=1&_token={token}"))
}

/// What a landing -> offer token restores.
#[derive(Debug, Clone, PartialEq)]
pub struct LandingToken {
    pub sub_id: String,
    pub campaign_id: i64,
    pub stream_id: i64,
    pub landing_id: Option<i64>,
    pub visitor_code: String,
    pub clicked_at: i64,
    pub params: Vec<(String, String)>,
}

impl LandingToken {
    /// Signs the landing -> offer token of a routed click (the `{offer}` link, the Click API's
    /// `info.token`). It carries the click's ids and up to 64 query parameters of at most 512
    /// characters each, and lives for the campaign's `cookies_ttl` (at least a day). `None`
    /// when the click has no stream.
    pub fn issue(
        signer: &super::Signer,
        click: &Click,
        query: &[(String, String)],
        now: i64,
        ttl_seconds: i64,
    ) -> Option<String> {
        let stream = click.stream_id?;
        let params: serde_json::Map<String, Value> = query
            .iter()
            .take(64)
            .map(|(k, v)| (k.clone(), Value::String(v.chars().take(512).collect())))
            .collect();
        Some(signer.sign(&json!({
            "k": "lp",
            "sid": click.sub_id,
            "c": click.campaign_id,
            "s": stream,
            "l": click.landing_id,
            "v": click.visitor_code,
            "t": now,
            "exp": now + ttl_seconds.max(86_400),
            "p": params,
        })))
    }

    /// Verifies a token; expired, foreign or tampered tokens give `None`.
    pub fn verify(env: &TrafficEnv, token: &str, now: i64) -> Option<LandingToken> {
        let payload = env.signer.verify(token)?;
        if payload.get("k")?.as_str()? != "lp" || payload.get("exp")?.as_i64()? < now {
            return None;
        }
        Some(LandingToken {
            sub_id: payload.get("sid")?.as_str()?.to_string(),
            campaign_id: payload.get("c")?.as_i64()?,
            stream_id: payload.get("s")?.as_i64()?,
            landing_id: payload.get("l").and_then(Value::as_i64),
            visitor_code: payload
                .get("v")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            clicked_at: payload.get("t").and_then(Value::as_i64).unwrap_or(now),
            params: payload
                .get("p")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// The visitor clicked the offer link on a landing: restore the click from the token, pick the
/// offer (`offer_id` when given and active, else by share among the stream's offers), run it.
pub fn route_landing_click(
    env: &TrafficEnv,
    snapshot: &RoutingSnapshot,
    token: &LandingToken,
    visit: &Visit,
    offer_id: Option<i64>,
) -> Option<RouteResult> {
    let route = snapshot.campaign_by_id(token.campaign_id)?;
    let stream = route.streams().find(|s| s.stream.id == token.stream_id)?;
    let mut restored = visit.clone();
    restored.query = token.params.clone();
    let mut click = new_click(route, &restored);
    click.sub_id = token.sub_id.clone();
    click.created_at = token.clicked_at;
    click.visitor_code = token.visitor_code.clone();
    click.stream_id = Some(stream.stream.id);
    click.landing_id = token.landing_id;
    let mut ctx = ClickContext::new(env, &restored, &route.campaign, click, false);
    ctx.now = unix_now();
    ctx.finish_enrichment();
    let mut rng = rand::rng();
    // `{offer:ID}` may pick any of the stream's offers, not an arbitrary one.
    let offer = offer_id
        .filter(|id| stream.offers.iter().any(|(offer, _)| offer == id))
        .and_then(|id| snapshot.offer(id))
        .or_else(|| pick_share(&stream.offers, None, &mut rng).and_then(|id| snapshot.offer(id)))?;
    ctx.click.offer_id = Some(offer.id);
    let action_env = ClickActionEnv {
        ctx: &ctx,
        owner: Some(FileOwner::Offer(offer.id)),
        offer_link: None,
    };
    let reply = offer.action.run(&action_env).ok()?;
    let info_type = if matches!(reply, Reply::Redirect { .. }) {
        "location".to_string()
    } else {
        offer.action_type.clone()
    };
    if let Reply::Redirect { url, .. } = &reply {
        ctx.click.destination = url.clone();
    }
    let cookie = ctx.cookie.encode(&env.signer);
    Some(RouteResult {
        reply,
        info_type,
        record: stream.stream.collect_clicks,
        uniqueness: UniqueFlags::default(),
        cookie,
        cookie_ttl_hours: route.campaign.cookies_ttl,
        log: Vec::new(),
        capped: false,
        click: ctx.click,
    })
}

/// Cost of a click from the campaign's cost model: CPC per click, CPUC per unique click, CPM
/// per thousand; with cost_auto the click's own `cost` parameter wins when it is an amount
/// from 0 to [`Money::MAX_CLICK_COST`] (a visitor controls it: anything else is ignored, so
/// that no click can carry a cost that breaks the sums of every report).
fn click_cost(ctx: &ClickContext<'_>, unique: bool, cost_param: &str) -> Money {
    let campaign = ctx.campaign;
    if campaign.cost_auto
        && let Some(cost) = ctx
            .visit
            .param(cost_param)
            .and_then(|c| c.parse::<Money>().ok())
        && (Money::ZERO..=Money::MAX_CLICK_COST).contains(&cost)
    {
        return cost;
    }
    let value = campaign.cost_value.micros();
    // Compared without case and without allocating: this runs for every click.
    let model = |names: &[&str]| {
        names
            .iter()
            .any(|n| campaign.cost_type.eq_ignore_ascii_case(n))
    };
    Money::from_micros(if model(&["CPC", "CPV"]) {
        value
    } else if model(&["CPUC", "CPUV"]) {
        if unique { value } else { 0 }
    } else if model(&["CPM"]) {
        value / 1_000
    } else {
        0
    })
}

/// The search engine a referrer belongs to, if any.
fn search_engine(referrer: &str) -> &'static str {
    let host = url::Url::parse(referrer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    const ENGINES: &[(&str, &str)] = &[
        ("google.", "google"),
        ("bing.", "bing"),
        ("yandex.", "yandex"),
        ("yahoo.", "yahoo"),
        ("baidu.", "baidu"),
        ("duckduckgo.", "duckduckgo"),
        ("ecosia.", "ecosia"),
        ("naver.", "naver"),
        ("seznam.", "seznam"),
        ("ask.", "ask"),
    ];
    ENGINES
        .iter()
        .find(|(needle, _)| host.contains(needle))
        .map(|(_, name)| *name)
        .unwrap_or("")
}

/// The search query in a search engine's referrer (`q`, `text`, `p`, `wd`).
fn referrer_keyword(referrer: &str) -> String {
    url::Url::parse(referrer)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| matches!(k.as_ref(), "q" | "text" | "p" | "wd"))
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default()
}

fn new_click(route: &CampaignRoute, visit: &Visit) -> Click {
    let campaign = &route.campaign;
    let mut click = Click::blank();
    click.sub_id = new_sub_id();
    click.campaign_id = campaign.id;
    click.ts_id = campaign.traffic_source_id;
    click.created_at = unix_now();
    click.ip = visit.ip.to_string();
    click.user_agent = visit.user_agent.clone();
    click.referrer = visit.referrer.clone();
    click.language = visit.language.clone();
    // Each parameter looked up once. Last to first, so that a repeated name leaves its first
    // value (as `Visit::param` gives) in the fields it feeds.
    for (name, value) in visit.query.iter().rev() {
        let Some(fields) = route.params.fields.get(name.as_str()) else {
            continue;
        };
        for field in fields {
            if let Some(slot) = field.slot(&mut click) {
                slot.clone_from(value);
            }
        }
    }
    if let Some(header) = visit.header("x-requested-with") {
        click.x_requested_with = header.to_string();
    }
    click.search_engine = search_engine(&click.referrer).to_string();
    if click.keyword.is_empty() && !click.search_engine.is_empty() {
        click.keyword = referrer_keyword(&click.referrer);
    }
    click.params =
        serde_json::to_string(&QueryObject(&visit.query)).unwrap_or_else(|_| "{}".into());
    click
}

/// Query parameters serialised as a JSON object (first value of a repeated name, at most
/// 100 names) without building a `serde_json::Value`.
struct QueryObject<'a>(&'a [(String, String)]);

impl serde::Serialize for QueryObject<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        for (i, (key, value)) in self.0.iter().take(100).enumerate() {
            if !self.0[..i].iter().any(|(k, _)| k == key) {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}
