//! The click pipeline end to end (without HTTP): Keitaro-like traces, filter modes and
//! `filter_or`, visitor uniqueness, limits, landings -> offers, campaign hops, recording,
//! cost models and the campaign's parameter mapping.

use serde_json::{Value, json};

use crate::model::{
    Campaign, CampaignType, Landing, Money, Offer, Stream, StreamSchema, StreamType, unix_now,
};
use crate::registry::Reply;

use super::fixtures::{
    self, DESKTOP_UA, IPHONE_UA, campaign, filter, landing, offer, stream, target,
};
use super::{
    LandingToken, RouteOptions, RouteResult, RoutingData, RoutingSnapshot, TrafficEnv, Visit,
    route_click, route_landing_click,
};

/// A tracker: one environment (visitor memory, hit counters, signing key) and a snapshot.
struct Tracker {
    env: TrafficEnv,
    snapshot: RoutingSnapshot,
}

impl Tracker {
    fn new(
        campaigns: Vec<Campaign>,
        streams: Vec<Stream>,
        landings: Vec<Landing>,
        offers: Vec<Offer>,
    ) -> Tracker {
        let snapshot = fixtures::snapshot(RoutingData {
            campaigns,
            streams,
            landings,
            offers,
            traffic_sources: Vec::new(),
        });
        assert!(
            snapshot.warnings.is_empty(),
            "fixture snapshot: {:?}",
            snapshot.warnings
        );
        Tracker {
            env: fixtures::env(),
            snapshot,
        }
    }

    /// A tracker with one campaign (id 1) and these streams.
    fn one_campaign(campaign: Campaign, streams: Vec<Stream>) -> Tracker {
        Tracker::new(vec![campaign], streams, Vec::new(), Vec::new())
    }

    fn route_with(&self, campaign_id: i64, visit: &Visit, options: &RouteOptions) -> RouteResult {
        let route = self
            .snapshot
            .campaign_by_id(campaign_id)
            .expect("the campaign is in the snapshot");
        route_click(&self.env, &self.snapshot, route, visit, options)
    }

    /// Routes with a trace.
    fn route(&self, campaign_id: i64, visit: &Visit) -> RouteResult {
        self.route_with(
            campaign_id,
            visit,
            &RouteOptions {
                trace: true,
                ..RouteOptions::default()
            },
        )
    }
}

fn location(result: &RouteResult) -> &str {
    match &result.reply {
        Reply::Redirect { url, status } => {
            assert_eq!(*status, 302);
            url
        }
        other => panic!("not a redirect: {other:?}; log: {:#?}", result.log),
    }
}

fn body(result: &RouteResult) -> String {
    match &result.reply {
        Reply::Content { body, .. } => String::from_utf8(body.clone()).unwrap(),
        other => panic!("not content: {other:?}"),
    }
}

fn is_empty_answer(result: &RouteResult) -> bool {
    matches!(&result.reply, Reply::Content { status: 200, body, .. } if body.is_empty())
}

/// Asserts that `lines` appear in `log` in this order (other lines may come between).
#[track_caller]
fn assert_in_order(log: &[String], lines: &[&str]) {
    let mut rest = log.iter();
    for line in lines {
        assert!(
            rest.any(|l| l == line),
            "`{line}` is missing or out of order in {log:#?}"
        );
    }
}

/// A regular stream with filters.
fn filtered(id: i64, filters: Vec<crate::model::StreamFilter>) -> Stream {
    let mut s = stream(id, 1, StreamType::Regular);
    s.filters = filters;
    s
}

fn default_stream(id: i64) -> Stream {
    stream(id, 1, StreamType::Default)
}

fn with_cookie(mut visit: Visit, cookie: &str) -> Visit {
    visit.cookie = Some(cookie.to_string());
    visit
}

#[test]
fn the_trace_reads_like_keitaros() {
    let mut forced = stream(1, 1, StreamType::Forced);
    forced.filters = vec![filter("ip", "accept", json!(["10.0.0.0/8"]))];
    let regular = filtered(
        2,
        vec![
            filter("ip", "accept", json!("1.2.3.0/24")),
            filter("country", "accept", json!(["DE"])),
            filter("bot", "reject", Value::Null),
        ],
    );
    let tracker = Tracker::one_campaign(campaign(1), vec![forced, regular, default_stream(3)]);
    let mut visit = fixtures::visit("1.2.3.4");
    visit.referrer = "https://news.test/a".into();
    visit.language = "de".into();
    visit.query = vec![("keyword".into(), "shoes".into())];
    let result = tracker.route(1, &visit);
    let url = location(&result).to_string();
    assert_eq!(
        url,
        format!("https://s2.test/?subid={}", result.click.sub_id)
    );
    assert_in_order(
        &result.log,
        &[
            "Processing campaign 1",
            "Referrer: https://news.test/a",
            "Keyword: shoes",
            &format!("UserAgent: {DESKTOP_UA}"),
            "Language: de",
            "Is unique in campaign: yes",
            "Checking stream #1",
            "Filter \"ip\": rejected",
            "Not accepted by filters",
            "Checking stream #2",
            "Filter \"ip\": allow",
            "Filter \"country\": allow",
            "Filter \"bot\": allow",
            "Accepted by filters",
            "Stream #2",
            &format!("Send headers: Location: {url}"),
        ],
    );
    assert!(
        !result.log.iter().any(|l| l == "Checking stream #3"),
        "the default stream is not checked once a regular one accepted"
    );
    assert_eq!(result.info_type, "location");
    assert_eq!(result.click.stream_id, Some(2));
    assert_eq!(result.click.destination, url);

    // Without `trace` no log is kept.
    let quiet = tracker.route_with(1, &visit, &RouteOptions::default());
    assert!(quiet.log.is_empty());
}

/// Runs one click through a campaign whose regular stream #1 has `filters` (and `filter_or`),
/// with default stream #9 behind it; the chosen stream and the log.
fn choose(
    filters: Vec<crate::model::StreamFilter>,
    any: bool,
    visit: &Visit,
) -> (i64, Vec<String>) {
    let mut s = filtered(1, filters);
    s.filter_or = any;
    let tracker = Tracker::one_campaign(campaign(1), vec![s, default_stream(9)]);
    let result = tracker.route(1, visit);
    (result.click.stream_id.unwrap(), result.log)
}

#[test]
fn accept_and_reject_modes() {
    let munich = fixtures::visit("1.2.3.4");
    let cases = [
        ("accept", json!(["DE"]), 1),
        ("accept", json!(["US"]), 9),
        ("reject", json!(["DE"]), 9),
        ("reject", json!(["US"]), 1),
        ("accept", json!([]), 9),
        ("reject", json!([]), 1),
    ];
    for (mode, payload, stream) in cases {
        let (chosen, _) = choose(
            vec![filter("country", mode, payload.clone())],
            false,
            &munich,
        );
        assert_eq!(chosen, stream, "{mode} {payload}");
    }
    // `bot`: accept = only bots, reject = only people.
    let mut crawler = fixtures::visit("1.2.3.4");
    crawler.user_agent = "Googlebot/2.1".into();
    let bots_only = vec![filter("bot", "accept", Value::Null)];
    let people_only = vec![filter("bot", "reject", Value::Null)];
    assert_eq!(choose(bots_only.clone(), false, &crawler).0, 1);
    assert_eq!(choose(bots_only, false, &munich).0, 9);
    assert_eq!(choose(people_only.clone(), false, &crawler).0, 9);
    assert_eq!(choose(people_only, false, &munich).0, 1);
}

#[test]
fn filters_are_anded_or_ored_with_filter_or() {
    let munich = fixtures::visit("1.2.3.4");
    let de = || filter("country", "accept", json!(["DE"]));
    let us = || filter("country", "accept", json!(["US"]));
    let mobile = || filter("device_type", "accept", json!(["mobile"]));
    let not_desktop = || filter("device_type", "reject", json!(["desktop"]));

    assert_eq!(choose(vec![de(), us()], false, &munich).0, 9, "AND");
    assert_eq!(choose(vec![us(), de()], true, &munich).0, 1, "OR");
    assert_eq!(choose(vec![us(), mobile()], true, &munich).0, 9, "OR, none");
    assert_eq!(choose(vec![us(), not_desktop()], true, &munich).0, 9);
    assert_eq!(choose(vec![de()], true, &munich).0, 1);
    assert_eq!(choose(vec![], true, &munich).0, 1, "no filters pass");
    assert_eq!(choose(vec![], false, &munich).0, 1, "no filters pass");

    // AND stops at the first rejection, OR at the first allow.
    let (_, log) = choose(vec![us(), de()], false, &munich);
    assert_in_order(
        &log,
        &["Filter \"country\": rejected", "Not accepted by filters"],
    );
    assert_eq!(log.iter().filter(|l| l.starts_with("Filter ")).count(), 1);
    let (_, log) = choose(vec![de(), us(), mobile()], true, &munich);
    assert_in_order(&log, &["Filter \"country\": allow", "Accepted by filters"]);
    assert_eq!(log.iter().filter(|l| l.starts_with("Filter ")).count(), 1);
}

#[test]
fn a_stream_with_an_unknown_filter_never_matches() {
    let broken = filtered(1, vec![filter("no_such_filter", "reject", Value::Null)]);
    let mut bad_payload = filtered(2, vec![filter("ip", "accept", json!(["not an ip"]))]);
    bad_payload.position = 2;
    let snapshot = fixtures::snapshot(RoutingData {
        campaigns: vec![campaign(1)],
        streams: vec![broken, bad_payload, default_stream(3)],
        ..RoutingData::default()
    });
    assert_eq!(snapshot.warnings.len(), 2, "{:?}", snapshot.warnings);
    assert!(snapshot.warnings[0].contains("no_such_filter"));
    assert!(snapshot.warnings[1].contains("not an ip"));
    let env = fixtures::env();
    let route = snapshot.campaign_by_id(1).unwrap();
    let result = route_click(
        &env,
        &snapshot,
        route,
        &fixtures::visit("1.2.3.4"),
        &RouteOptions::default(),
    );
    assert_eq!(result.click.stream_id, Some(3));
}

#[test]
fn no_stream_answers_empty_and_still_records() {
    let tracker = Tracker::one_campaign(
        campaign(1),
        vec![filtered(
            1,
            vec![filter("country", "accept", json!(["US"]))],
        )],
    );
    let result = tracker.route(1, &fixtures::visit("1.2.3.4"));
    assert!(is_empty_answer(&result));
    assert_eq!(result.info_type, "do_nothing");
    assert_eq!(result.click.stream_id, None);
    assert!(result.record);
    assert!(
        result
            .log
            .iter()
            .any(|l| l == "No stream accepted the click")
    );
}

#[test]
fn uniqueness_by_cookie_then_by_ip() {
    let tracker = Tracker::one_campaign(campaign(1), vec![default_stream(1)]);
    let first = tracker.route(1, &fixtures::visit("1.2.3.4"));
    assert_eq!(
        (
            first.uniqueness.campaign,
            first.uniqueness.stream,
            first.uniqueness.global
        ),
        (true, true, true)
    );
    assert!(first.click.is_unique_campaign && first.click.is_unique_stream);
    assert!(first.click.is_unique_global);
    assert!(!first.cookie.is_empty());
    assert_eq!(first.cookie_ttl_hours, 24);

    // The returned cookie, from another address: the cookie says "seen".
    let second = tracker.route(1, &with_cookie(fixtures::visit("5.6.7.8"), &first.cookie));
    assert_eq!(
        (
            second.uniqueness.campaign,
            second.uniqueness.stream,
            second.uniqueness.global
        ),
        (false, false, false)
    );
    assert!(second.log.iter().any(|l| l == "Is unique in campaign: no"));
    assert_eq!(second.click.visitor_code, first.click.visitor_code);

    // A tampered cookie from a third address is a new visitor.
    let (head, rest) = first.cookie.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let mut forged: Vec<char> = payload.chars().collect();
    let middle = forged.len() / 2;
    forged[middle] = if forged[middle] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    let tampered = format!("{head}.{forged}.{signature}");
    let third = tracker.route(1, &with_cookie(fixtures::visit("9.9.9.9"), &tampered));
    assert!(third.uniqueness.campaign && third.uniqueness.global);
    assert_ne!(third.click.visitor_code, first.click.visitor_code);
    let garbage = tracker.route(1, &with_cookie(fixtures::visit("9.9.9.10"), "garbage"));
    assert!(garbage.uniqueness.campaign);

    // No cookie, the first visitor's IP and UA: the IP record says "seen".
    let fourth = tracker.route(1, &fixtures::visit("1.2.3.4"));
    assert_eq!(
        (
            fourth.uniqueness.campaign,
            fourth.uniqueness.stream,
            fourth.uniqueness.global
        ),
        (false, false, false)
    );

    // ip_ua: the same IP with another UA is somebody else.
    let mut other_ua = fixtures::visit("1.2.3.4");
    other_ua.user_agent = IPHONE_UA.into();
    assert!(tracker.route(1, &other_ua).uniqueness.campaign);
}

#[test]
fn uniqueness_by_ip_alone_and_without_cookies() {
    let mut by_ip = campaign(1);
    by_ip.uniqueness_method = "ip".into();
    by_ip.uniqueness_use_cookies = false;
    let tracker = Tracker::one_campaign(by_ip, vec![default_stream(1)]);
    let first = tracker.route(1, &fixtures::visit("1.2.3.4"));
    assert!(first.uniqueness.campaign);
    let mut other_ua = fixtures::visit("1.2.3.4");
    other_ua.user_agent = IPHONE_UA.into();
    assert!(!tracker.route(1, &other_ua).uniqueness.campaign, "ip only");
    // Cookies are ignored: the first visitor's cookie from another IP is a new visitor.
    let elsewhere = with_cookie(fixtures::visit("5.6.7.8"), &first.cookie);
    assert!(tracker.route(1, &elsewhere).uniqueness.campaign);
}

/// Campaign 1: stream 1 for `keyword=a`, else its default stream 2; campaign 2: default
/// stream 3.
fn two_campaigns_three_streams(first: Campaign, second: Campaign) -> Tracker {
    Tracker::new(
        vec![first, second],
        vec![
            filtered(1, vec![filter("keyword", "accept", json!(["a"]))]),
            default_stream(2),
            stream(3, 2, StreamType::Default),
        ],
        Vec::new(),
        Vec::new(),
    )
}

#[test]
fn uniqueness_is_per_stream_per_campaign_and_global() {
    let tracker = two_campaigns_three_streams(campaign(1), campaign(2));
    let mut to_stream_1 = fixtures::visit("1.2.3.4");
    to_stream_1.query = vec![("keyword".into(), "a".into())];
    let first = tracker.route(1, &to_stream_1);
    assert_eq!(first.click.stream_id, Some(1));
    // Same campaign, another stream.
    let second = tracker.route(1, &with_cookie(fixtures::visit("1.2.3.4"), &first.cookie));
    assert_eq!(second.click.stream_id, Some(2));
    assert_eq!(
        (
            second.uniqueness.campaign,
            second.uniqueness.stream,
            second.uniqueness.global
        ),
        (false, true, false)
    );
    // Another campaign.
    let third = tracker.route(2, &with_cookie(fixtures::visit("1.2.3.4"), &second.cookie));
    assert_eq!(
        (
            third.uniqueness.campaign,
            third.uniqueness.stream,
            third.uniqueness.global
        ),
        (true, true, false)
    );
}

/// The same scopes through the server-side record alone (cookies off): one record per
/// visitor holds the campaigns, streams and global mark side by side.
#[test]
fn the_visitor_record_keeps_every_scope_without_cookies() {
    let no_cookies = |id| {
        let mut campaign = campaign(id);
        campaign.uniqueness_use_cookies = false;
        campaign
    };
    let tracker = two_campaigns_three_streams(no_cookies(1), no_cookies(2));
    let flags = |result: &RouteResult| {
        (
            result.uniqueness.campaign,
            result.uniqueness.stream,
            result.uniqueness.global,
        )
    };
    let mut to_stream_1 = fixtures::visit("1.2.3.4");
    to_stream_1.query = vec![("keyword".into(), "a".into())];
    let first = tracker.route(1, &to_stream_1);
    assert_eq!(
        (first.click.stream_id, flags(&first)),
        (Some(1), (true, true, true))
    );
    let second = tracker.route(1, &fixtures::visit("1.2.3.4"));
    assert_eq!(
        (second.click.stream_id, flags(&second)),
        (Some(2), (false, true, false))
    );
    let again = tracker.route(1, &to_stream_1);
    assert_eq!(
        (again.click.stream_id, flags(&again)),
        (Some(1), (false, false, false))
    );
    let other_campaign = tracker.route(2, &fixtures::visit("1.2.3.4"));
    assert_eq!(flags(&other_campaign), (true, true, false));
    let back = tracker.route(1, &fixtures::visit("1.2.3.4"));
    assert_eq!(
        flags(&back),
        (false, false, false),
        "stream 2 was remembered too"
    );
    // Another address is another record.
    assert_eq!(
        flags(&tracker.route(1, &fixtures::visit("1.2.3.5"))),
        (true, true, true)
    );
}

impl Tracker {
    fn with_env(mut self, env: TrafficEnv) -> Tracker {
        self.env = env;
        self
    }
}

#[test]
fn the_uniqueness_filter_sends_returning_visitors_elsewhere() {
    let tracker = Tracker::one_campaign(
        campaign(1),
        vec![
            filtered(1, vec![filter("uniqueness", "accept", json!("stream"))]),
            default_stream(2),
        ],
    );
    let first = tracker.route(1, &fixtures::visit("1.2.3.4"));
    assert_eq!(first.click.stream_id, Some(1));
    assert!(
        first
            .log
            .iter()
            .any(|l| l == "Filter \"uniqueness\": allow")
    );
    let again = tracker.route(1, &with_cookie(fixtures::visit("5.6.7.8"), &first.cookie));
    assert_eq!(again.click.stream_id, Some(2));
    assert!(
        again
            .log
            .iter()
            .any(|l| l == "Filter \"uniqueness\": rejected")
    );
}

#[test]
fn dry_runs_leave_no_trace_in_visitor_memory_or_counters() {
    let tracker = Tracker::one_campaign(
        campaign(1),
        vec![
            filtered(1, vec![filter("limit", "accept", json!({"total": 1}))]),
            default_stream(2),
        ],
    );
    let dry = RouteOptions {
        dry_run: true,
        ..RouteOptions::default()
    };
    for _ in 0..3 {
        let result = tracker.route_with(1, &fixtures::visit("1.2.3.4"), &dry);
        assert!(result.uniqueness.campaign);
        assert_eq!(result.click.stream_id, Some(1));
    }
}

#[test]
fn limit_stops_a_stream_after_n_hits() {
    let tracker = Tracker::one_campaign(
        campaign(1),
        vec![
            filtered(1, vec![filter("limit", "accept", json!({"total": 2}))]),
            default_stream(2),
        ],
    );
    let chosen: Vec<Option<i64>> = ["1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4"]
        .iter()
        .map(|ip| tracker.route(1, &fixtures::visit(ip)).click.stream_id)
        .collect();
    assert_eq!(chosen, [Some(1), Some(1), Some(2), Some(2)]);
    let log = tracker.route(1, &fixtures::visit("1.1.1.5")).log;
    assert!(
        log.iter().any(|l| l == "Filter \"limit\": rejected"),
        "{log:#?}"
    );
}

/// `limit` has no modes: a stored `reject` mode must not turn it into "only over the limit".
#[test]
fn limit_ignores_the_reject_mode() {
    let tracker = Tracker::one_campaign(
        campaign(1),
        vec![
            filtered(1, vec![filter("limit", "reject", json!({"total": 1}))]),
            default_stream(2),
        ],
    );
    let first = tracker.route(1, &fixtures::visit("1.1.1.1"));
    assert_eq!(first.click.stream_id, Some(1), "{:#?}", first.log);
    let second = tracker.route(1, &fixtures::visit("1.1.1.2"));
    assert_eq!(second.click.stream_id, Some(2), "{:#?}", second.log);
}

/// Offers 5 and 6 and landing 1, whose URL carries `{offer}` and `{offer:6}`.
fn landing_tracker(bind: Option<&str>) -> Tracker {
    let mut c = campaign(1);
    c.bind_visitors = bind.map(str::to_string);
    let mut s = stream(1, 1, StreamType::Regular);
    s.schema = StreamSchema::Landings;
    s.action_type = String::new();
    s.action_payload = Value::Null;
    s.landings = vec![target(1, 100)];
    s.offers = vec![target(5, 100)];
    let lp = landing(
        1,
        "http",
        json!("https://lp.test/?next={offer}&six={offer:6}&u={utm_source}"),
    );
    let mut six = offer(6);
    six.url = "https://offer6.test/?subid={subid}&src={utm_source}&lp={landing_id}".into();
    Tracker::new(vec![c], vec![s], vec![lp], vec![offer(5), six])
}

/// The `next` and `six` links a landing redirect carries.
fn offer_links(result: &RouteResult) -> (String, String) {
    let url = url::Url::parse(location(result)).unwrap();
    assert_eq!(url.host_str(), Some("lp.test"));
    let get = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    (get("next"), get("six"))
}

fn token_of(link: &str) -> String {
    let url = url::Url::parse(link).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "_token")
        .map(|(_, v)| v.into_owned())
        .expect("a _token")
}

#[test]
fn landing_then_offer() {
    let tracker = landing_tracker(None);
    let mut visit = fixtures::visit("1.2.3.4");
    visit.query = vec![("utm_source".into(), "fb".into())];
    let result = tracker.route(1, &visit);
    assert_eq!(result.click.landing_id, Some(1));
    assert_eq!(result.click.offer_id, None);
    assert!(result.log.iter().any(|l| l == "Landing #1"));
    let (next, six) = offer_links(&result);
    assert!(
        next.starts_with("https://tracker.test/?_lp=1&_token="),
        "{next}"
    );
    assert_eq!(six, format!("{next}&offer_id=6"));

    let now = unix_now();
    let token = LandingToken::verify(&tracker.env, &token_of(&next), now).expect("a valid token");
    assert_eq!(token.sub_id, result.click.sub_id);
    assert_eq!(token.campaign_id, 1);
    assert_eq!(token.stream_id, 1);
    assert_eq!(token.landing_id, Some(1));
    assert_eq!(token.visitor_code, result.click.visitor_code);
    assert_eq!(token.params, [("utm_source".to_string(), "fb".to_string())]);

    // The visitor clicks the offer link on the landing.
    let lp_visit = fixtures::visit("1.2.3.4");
    let to_offer = route_landing_click(&tracker.env, &tracker.snapshot, &token, &lp_visit, None)
        .expect("the offer");
    assert_eq!(
        location(&to_offer),
        format!("https://offer5.test/?subid={}", result.click.sub_id)
    );
    assert_eq!(to_offer.click.sub_id, result.click.sub_id);
    assert_eq!(to_offer.click.offer_id, Some(5));
    assert_eq!(to_offer.click.landing_id, Some(1));
    assert_eq!(to_offer.click.stream_id, Some(1));
    assert_eq!(to_offer.info_type, "location");
    assert!(to_offer.record);

    // `{offer:6}` names an offer outside the stream: refused, the stream's offer is used
    // (the offer_id of a landing link is not signed, so it may only pick the stream's offers).
    let to_six =
        route_landing_click(&tracker.env, &tracker.snapshot, &token, &lp_visit, Some(6)).unwrap();
    assert_eq!(
        location(&to_six),
        format!("https://offer5.test/?subid={}", result.click.sub_id)
    );
    // An offer that does not exist falls back to the stream's offers.
    let fallback = route_landing_click(
        &tracker.env,
        &tracker.snapshot,
        &token,
        &lp_visit,
        Some(404),
    )
    .unwrap();
    assert_eq!(fallback.click.offer_id, Some(5));
}

#[test]
fn landing_tokens_expire_and_cannot_be_forged() {
    let tracker = landing_tracker(None);
    let result = tracker.route(1, &fixtures::visit("1.2.3.4"));
    let (next, _) = offer_links(&result);
    let token = token_of(&next);
    let now = unix_now();
    assert!(LandingToken::verify(&tracker.env, &token, now + 86_000).is_some());
    assert!(
        LandingToken::verify(&tracker.env, &token, now + 86_400 + 120).is_none(),
        "expired"
    );
    let mut tampered: Vec<char> = token.chars().collect();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == 'x' { 'y' } else { 'x' };
    let tampered: String = tampered.into_iter().collect();
    assert!(LandingToken::verify(&tracker.env, &tampered, now).is_none());
    let other_tracker = TrafficEnv::in_memory("another-signing-key-456789");
    assert!(LandingToken::verify(&other_tracker, &token, now).is_none());
    // A visitor cookie is signed by the same key but is not a landing token.
    assert!(LandingToken::verify(&tracker.env, &result.cookie, now).is_none());
    assert!(LandingToken::verify(&tracker.env, "", now).is_none());
    // A token for a campaign that is gone leads nowhere.
    let empty = fixtures::snapshot(RoutingData::default());
    let valid = LandingToken::verify(&tracker.env, &token, now).unwrap();
    assert!(
        route_landing_click(
            &tracker.env,
            &empty,
            &valid,
            &fixtures::visit("1.2.3.4"),
            None
        )
        .is_none()
    );
}

#[test]
fn landing_pages_link_to_the_offer_and_options_skip_or_pick_landings() {
    let mut c = campaign(1);
    c.bind_visitors = None;
    let mut s = stream(1, 1, StreamType::Regular);
    s.schema = StreamSchema::Landings;
    s.landings = vec![target(1, 100), target(2, 0), target(3, 1)];
    s.offers = vec![target(5, 100)];
    let page = landing(
        1,
        "show_html",
        json!("<a href=\"{_offer}\">Go</a> <a href=\"{_offer:6}\">Six</a>"),
    );
    let other = landing(2, "http", json!("https://lp2.test/"));
    let third = landing(3, "http", json!("https://lp3.test/"));
    let tracker = Tracker::new(
        vec![c],
        vec![s],
        vec![page, other, third],
        vec![offer(5), offer(6)],
    );
    let visit = fixtures::visit("1.2.3.4");
    // Landing 2 has share 0, landing 3 share 1: almost always landing 1.
    let result = tracker.route_with(
        1,
        &visit,
        &RouteOptions {
            landing_id: Some(1),
            ..RouteOptions::default()
        },
    );
    let html = body(&result);
    assert!(
        html.contains("<a href=\"https://tracker.test/?_lp=1&_token="),
        "{html}"
    );
    assert!(html.contains("&offer_id=6\">Six</a>"), "{html}");
    assert_eq!(result.info_type, "show_html");

    // Click API landing_id picks the landing.
    let third = tracker.route_with(
        1,
        &visit,
        &RouteOptions {
            landing_id: Some(3),
            ..RouteOptions::default()
        },
    );
    assert_eq!(location(&third), "https://lp3.test/");
    // A share-0 landing is not in rotation, even when asked for.
    let zero = tracker.route_with(
        1,
        &visit,
        &RouteOptions {
            landing_id: Some(2),
            ..RouteOptions::default()
        },
    );
    assert_ne!(zero.click.landing_id, Some(2));
    // force_redirect_offer skips the landing.
    let direct = tracker.route_with(
        1,
        &visit,
        &RouteOptions {
            force_offer: true,
            ..RouteOptions::default()
        },
    );
    assert_eq!(direct.click.landing_id, None);
    assert_eq!(direct.click.offer_id, Some(5));
    assert_eq!(
        location(&direct),
        format!("https://offer5.test/?subid={}", direct.click.sub_id)
    );
}

#[test]
fn a_capped_offer_goes_to_another_unless_the_request_requires_it() {
    let mut c = campaign(1);
    c.bind_visitors = None;
    let mut s = stream(1, 1, StreamType::Regular);
    s.schema = StreamSchema::Landings;
    s.offers = vec![target(5, 50), target(6, 50)];
    let mut capped = offer(5);
    capped.daily_cap = 1;
    let tracker = Tracker::new(vec![c], vec![s], Vec::new(), vec![capped, offer(6)]);
    let visit = fixtures::visit("1.2.3.4");
    tracker
        .env
        .caps
        .add(5, chrono_tz::UTC, crate::model::unix_now(), 1);
    let free = tracker.route_with(1, &visit, &RouteOptions::default());
    assert_eq!(free.click.offer_id, Some(6));
    assert!(!free.capped);
    let required = tracker.route_with(
        1,
        &visit,
        &RouteOptions {
            offer_id: Some(5),
            ..RouteOptions::default()
        },
    );
    assert_eq!(required.click.offer_id, None);
    assert!(required.capped);
}

#[test]
fn the_campaign_action_hops_with_a_parent() {
    let mut hop = stream(1, 1, StreamType::Regular);
    hop.schema = StreamSchema::Action;
    hop.action_type = "campaign".into();
    hop.action_payload = json!(2);
    let target_stream = stream(2, 2, StreamType::Default);
    let mut second = campaign(2);
    second.traffic_source_id = Some(8);
    let tracker = Tracker::new(
        vec![campaign(1), second],
        vec![hop, target_stream],
        Vec::new(),
        Vec::new(),
    );
    let result = tracker.route(1, &fixtures::visit("1.2.3.4"));
    assert_eq!(result.click.campaign_id, 2);
    assert_eq!(result.click.parent_campaign_id, Some(1));
    assert_eq!(result.click.stream_id, Some(2));
    assert_eq!(result.click.ts_id, Some(8));
    assert_eq!(
        location(&result),
        format!("https://s2.test/?subid={}", result.click.sub_id)
    );
    assert_in_order(
        &result.log,
        &[
            "Processing campaign 1",
            "Stream #1",
            "Redirect to campaign 2",
            "Processing campaign 2",
            "Stream #2",
        ],
    );
}

fn hop_stream(id: i64, from: i64, to: i64) -> Stream {
    let mut s = stream(id, from, StreamType::Default);
    s.schema = StreamSchema::Action;
    s.action_type = "campaign".into();
    s.action_payload = json!(to.to_string());
    s
}

#[test]
fn campaign_loops_end() {
    let tracker = Tracker::new(
        vec![campaign(1), campaign(2), campaign(3)],
        vec![
            hop_stream(1, 1, 2),
            hop_stream(2, 2, 1),
            hop_stream(3, 3, 3),
        ],
        Vec::new(),
        Vec::new(),
    );
    let result = tracker.route(1, &fixtures::visit("1.2.3.4"));
    assert!(is_empty_answer(&result));
    assert_eq!(result.info_type, "do_nothing");
    let hops = result
        .log
        .iter()
        .filter(|l| l.starts_with("Processing campaign"))
        .count();
    assert!((2..=6).contains(&hops), "{hops} hops: {:#?}", result.log);
    assert!(
        result.log.iter().any(|l| l.contains("would loop")),
        "{:#?}",
        result.log
    );
    assert!(result.click.parent_campaign_id.is_some());

    // A campaign that sends to itself stops at once; an unknown campaign is "unavailable".
    let itself = tracker.route(3, &fixtures::visit("1.2.3.4"));
    assert!(is_empty_answer(&itself));
    assert_eq!(itself.click.campaign_id, 3);
    assert_eq!(itself.click.parent_campaign_id, None);
    let lost = Tracker::one_campaign(campaign(1), vec![hop_stream(1, 1, 77)]);
    let result = lost.route(1, &fixtures::visit("1.2.3.4"));
    assert!(is_empty_answer(&result));
    assert!(
        result
            .log
            .iter()
            .any(|l| l.contains("Campaign 77 is unavailable"))
    );
}

/// Campaign 1: stream #1 forwards to campaign 2 with `limit {total: 1}`, default #3.
/// Campaign 3: stream #4 forwards to campaign 2 for visitors unique in campaign 3, default #5.
fn forwarding_tracker() -> Tracker {
    let mut limited = hop_stream(1, 1, 2);
    limited.stream_type = StreamType::Regular;
    limited.filters = vec![filter("limit", "accept", json!({"total": 1}))];
    let mut once = hop_stream(4, 3, 2);
    once.stream_type = StreamType::Regular;
    once.filters = vec![filter("uniqueness", "accept", json!("campaign"))];
    Tracker::new(
        vec![campaign(1), campaign(2), campaign(3)],
        vec![
            limited,
            default_stream(3),
            stream(2, 2, StreamType::Default),
            once,
            stream(5, 3, StreamType::Default),
        ],
        Vec::new(),
        Vec::new(),
    )
}

/// A stream that forwards clicks to another campaign still took them: its `limit` counts them.
#[test]
fn a_forwarding_stream_counts_its_hits() {
    let tracker = forwarding_tracker();
    let first = tracker.route(1, &fixtures::visit("1.1.1.1"));
    assert_eq!(first.click.campaign_id, 2);
    let second = tracker.route(1, &fixtures::visit("1.1.1.2"));
    assert_eq!(
        (second.click.campaign_id, second.click.stream_id),
        (1, Some(3)),
        "the limit of stream #1 is reached: {:#?}",
        second.log
    );
}

/// The campaign that forwarded a visitor remembers them (cookie and IP record).
#[test]
fn a_forwarding_campaign_remembers_its_visitors() {
    let tracker = forwarding_tracker();
    let first = tracker.route(3, &fixtures::visit("2.2.2.2"));
    assert_eq!(first.click.campaign_id, 2);
    let by_cookie = tracker.route(3, &with_cookie(fixtures::visit("2.2.2.3"), &first.cookie));
    assert_eq!(
        (by_cookie.click.campaign_id, by_cookie.click.stream_id),
        (3, Some(5)),
        "the cookie says the visitor was in campaign 3: {:#?}",
        by_cookie.log
    );
    let by_ip = tracker.route(3, &fixtures::visit("2.2.2.2"));
    assert_eq!(
        (by_ip.click.campaign_id, by_ip.click.stream_id),
        (3, Some(5)),
        "the IP record says the visitor was in campaign 3: {:#?}",
        by_ip.log
    );
}

#[test]
fn collect_clicks_decides_whether_the_click_is_recorded() {
    let mut silent = filtered(1, vec![filter("keyword", "accept", json!(["quiet"]))]);
    silent.collect_clicks = false;
    let tracker = Tracker::one_campaign(campaign(1), vec![silent, default_stream(2)]);
    let mut quiet = fixtures::visit("1.2.3.4");
    quiet.query = vec![("keyword".into(), "quiet".into())];
    let result = tracker.route(1, &quiet);
    assert_eq!(result.click.stream_id, Some(1));
    assert!(
        location(&result).starts_with("https://s1.test/"),
        "still routed"
    );
    assert!(!result.record);
    let loud = tracker.route(1, &fixtures::visit("1.2.3.4"));
    assert_eq!(loud.click.stream_id, Some(2));
    assert!(loud.record);
}

fn cost_of(campaign: Campaign, visits: &[Visit]) -> Vec<String> {
    let tracker = Tracker::one_campaign(campaign, vec![default_stream(1)]);
    visits
        .iter()
        .map(|v| tracker.route(1, v).click.cost.to_string())
        .collect()
}

fn priced(cost_type: &str, value: &str) -> Campaign {
    let mut c = campaign(1);
    c.cost_type = cost_type.into();
    c.cost_value = value.parse::<Money>().unwrap();
    c
}

#[test]
fn cost_models() {
    let same_visitor_twice = [fixtures::visit("1.2.3.4"), fixtures::visit("1.2.3.4")];
    assert_eq!(
        cost_of(priced("CPC", "0.5"), &same_visitor_twice),
        ["0.5", "0.5"]
    );
    assert_eq!(
        cost_of(priced("cpc", "0.5"), &same_visitor_twice),
        ["0.5", "0.5"]
    );
    assert_eq!(
        cost_of(priced("CPUC", "0.5"), &same_visitor_twice),
        ["0.5", "0"]
    );
    assert_eq!(
        cost_of(priced("CPM", "2"), &same_visitor_twice),
        ["0.002", "0.002"]
    );
    assert_eq!(cost_of(priced("CPA", "3"), &same_visitor_twice), ["0", "0"]);

    let with_cost = |name: &str, value: &str| {
        let mut v = fixtures::visit("1.2.3.4");
        v.query = vec![(name.into(), value.into())];
        v
    };
    let mut auto = priced("CPC", "0.5");
    auto.cost_auto = true;
    assert_eq!(
        cost_of(
            auto.clone(),
            &[
                with_cost("cost", "0.75"),
                with_cost("cost", "abc"),
                with_cost("cost", "-1"),
                with_cost("cost", "1e3"),
                with_cost("cost", "1000000"),
                with_cost("cost", "1000000.000001"),
                with_cost("cost", "9223372036854"),
                fixtures::visit("1.2.3.4"),
            ]
        ),
        ["0.75", "0.5", "0.5", "0.5", "1000000", "0.5", "0.5", "0.5"]
    );
    auto.parameters = json!({"cost": {"name": "bid", "placeholder": "{bid}"}});
    assert_eq!(
        cost_of(
            auto.clone(),
            &[with_cost("bid", "0.031"), with_cost("cost", "9")]
        ),
        ["0.031", "0.5"]
    );
    let mut not_auto = priced("CPC", "0.5");
    not_auto.cost_auto = false;
    assert_eq!(cost_of(not_auto, &[with_cost("cost", "0.75")]), ["0.5"]);
}

#[test]
fn campaign_parameters_map_query_parameters_to_click_fields() {
    let mut c = campaign(1);
    c.parameters = json!({
        "keyword": {"name": "kw", "placeholder": "{kw}", "alias": "Keyword"},
        "source": "src",
        "sub_id_1": {"name": "s1"},
        "external_id": {"name": ""},
        "creative_id": {"name": "cr"},
        "ad_campaign_id": {"name": "cmp"},
        "sub_id_30": {"name": "src"},
        "x_requested_with": "xrw",
    });
    let tracker = Tracker::one_campaign(
        c,
        vec![
            filtered(1, vec![filter("keyword", "accept", json!(["shoes"]))]),
            default_stream(2),
        ],
    );
    let mut visit = fixtures::visit("1.2.3.4");
    visit.query = [
        ("kw", "shoes"),
        ("keyword", "ignored"),
        ("src", "facebook"),
        ("s1", "first"),
        ("sub_id_2", "second"),
        ("external_id", "ext-1"),
        ("cr", "banner"),
        ("cmp", "42"),
        ("extra_param_3", "x3"),
        ("utm_source", "news"),
        ("s1", "repeated"),
        ("src", "repeated"),
        ("xrw", "from-query"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .to_vec();
    let result = tracker.route(1, &visit);
    assert_eq!(
        result.click.stream_id,
        Some(1),
        "the keyword filter sees `kw`"
    );
    let click = &result.click;
    assert_eq!(click.keyword, "shoes");
    assert_eq!(click.source, "facebook");
    assert_eq!(click.sub_ids[0], "first");
    assert_eq!(
        click.sub_ids[1], "second",
        "unmapped fields use their own name"
    );
    assert_eq!(
        click.external_id, "ext-1",
        "an empty name means the default"
    );
    assert_eq!(click.creative_id, "banner");
    assert_eq!(click.ad_campaign_id, "42");
    assert_eq!(click.extra_params[2], "x3");
    assert_eq!(click.utm_source, "news");
    assert_eq!(
        (click.sub_ids[29].as_str(), click.source.as_str()),
        ("facebook", "facebook"),
        "one parameter feeds every field mapped to it, with its first value"
    );
    assert_eq!(click.x_requested_with, "from-query");
    visit.headers = vec![("x-requested-with".into(), "com.example.app".into())];
    assert_eq!(
        tracker.route(1, &visit).click.x_requested_with,
        "com.example.app",
        "the header wins over the parameter"
    );
    let params: Value = serde_json::from_str(&click.params).unwrap();
    assert_eq!(params["kw"], "shoes");
    assert_eq!(params["keyword"], "ignored");
}

#[test]
fn click_fields_from_the_visit() {
    let tracker = Tracker::one_campaign(campaign(1), vec![default_stream(1)]);
    let mut visit = fixtures::visit("1.2.3.4");
    visit.user_agent = IPHONE_UA.into();
    visit.referrer = "https://www.google.de/search?q=blue+shoes&hl=de".into();
    visit.language = "de".into();
    visit.headers = vec![
        ("x-requested-with".into(), "com.example.app".into()),
        ("via".into(), "1.1 proxy".into()),
    ];
    let click = tracker.route(1, &visit).click;
    assert_eq!(click.search_engine, "google");
    assert_eq!(click.keyword, "blue shoes");
    assert_eq!(click.x_requested_with, "com.example.app");
    assert_eq!(click.language, "de");
    assert_eq!(click.ip, "1.2.3.4");
    assert_eq!(click.ts_id, Some(7));
    assert_eq!(
        (
            click.country_code.as_str(),
            click.region.as_str(),
            click.city.as_str()
        ),
        ("DE", "Bavaria", "Munich")
    );
    assert_eq!(
        (
            click.device_type.as_str(),
            click.os.as_str(),
            click.browser.as_str()
        ),
        ("mobile", "iOS", "Mobile Safari")
    );
    assert!(click.is_using_proxy);
    assert!(!click.is_bot);
    assert_eq!(click.sub_id.len(), 17);
    assert_eq!(click.visitor_code.len(), 10);
}

#[test]
fn visitors_stay_bound_to_their_stream_even_at_weight_zero() {
    let build = |weights: [i64; 2], env: Option<TrafficEnv>| {
        let mut c = campaign(1);
        c.campaign_type = CampaignType::Weight;
        c.bind_visitors = Some("s".into());
        let streams = [1, 2]
            .into_iter()
            .zip(weights)
            .map(|(id, weight)| {
                let mut s = stream(id, 1, StreamType::Regular);
                s.weight = weight;
                s
            })
            .collect();
        let tracker = Tracker::one_campaign(c, streams);
        match env {
            Some(env) => tracker.with_env(env),
            None => tracker,
        }
    };
    let before = build([50, 50], None);
    let first = before.route(1, &fixtures::visit("1.2.3.4"));
    let bound = first.click.stream_id.unwrap();
    let mut weights = [100, 100];
    weights[bound as usize - 1] = 0;
    let after = build(weights, Some(before.env.clone()));
    let mut cookie = first.cookie.clone();
    for _ in 0..20 {
        let again = after.route(1, &with_cookie(fixtures::visit("5.6.7.8"), &cookie));
        assert_eq!(again.click.stream_id, Some(bound));
        cookie = again.cookie;
    }
    // Somebody new never gets the weight-0 stream.
    for i in 0..20 {
        let new = after.route(1, &fixtures::visit(&format!("9.9.9.{i}")));
        assert_ne!(new.click.stream_id, Some(bound));
    }
}

#[test]
fn visitors_stay_bound_to_their_landing_and_offer() {
    let build = |bind: Option<&str>| {
        let mut c = campaign(1);
        c.bind_visitors = bind.map(str::to_string);
        let mut s = stream(1, 1, StreamType::Regular);
        s.schema = StreamSchema::Landings;
        s.landings = vec![target(1, 50), target(2, 50)];
        let mut direct = stream(2, 1, StreamType::Forced);
        direct.schema = StreamSchema::Landings;
        direct.filters = vec![filter("keyword", "accept", json!(["direct"]))];
        direct.offers = vec![target(5, 50), target(6, 50)];
        Tracker::new(
            vec![c],
            vec![s, direct],
            vec![
                landing(1, "http", json!("https://lp1.test/")),
                landing(2, "http", json!("https://lp2.test/")),
            ],
            vec![offer(5), offer(6)],
        )
    };
    let bound = build(Some("slo"));
    let first = bound.route(1, &fixtures::visit("1.2.3.4"));
    let landing = first.click.landing_id.unwrap();
    let mut cookie = first.cookie.clone();
    for _ in 0..20 {
        let again = bound.route(1, &with_cookie(fixtures::visit("1.2.3.4"), &cookie));
        assert_eq!(again.click.landing_id, Some(landing));
        cookie = again.cookie;
    }
    let mut direct = fixtures::visit("1.2.3.4");
    direct.query = vec![("keyword".into(), "direct".into())];
    let first = bound.route(1, &direct);
    let offer = first.click.offer_id.unwrap();
    let mut cookie = first.cookie.clone();
    for _ in 0..20 {
        let again = bound.route(1, &with_cookie(direct.clone(), &cookie));
        assert_eq!(again.click.offer_id, Some(offer));
        cookie = again.cookie;
    }

    // Without binding both landings come up.
    let free = build(None);
    let mut seen = std::collections::BTreeSet::new();
    let mut cookie = String::new();
    for _ in 0..60 {
        let r = free.route(1, &with_cookie(fixtures::visit("1.2.3.4"), &cookie));
        seen.insert(r.click.landing_id.unwrap());
        cookie = r.cookie;
    }
    assert_eq!(seen.len(), 2);
}
