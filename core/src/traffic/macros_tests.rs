//! Every macro of the catalogue expands to the click's value, and no query parameter value can
//! change a redirect's scheme or host or smuggle line breaks into it.

use proptest::prelude::*;
use serde_json::json;

use crate::model::{Campaign, Click, Money, StreamSchema, StreamType};
use crate::registry::Reply;

use super::fixtures::{self, IPHONE_UA, WEDNESDAY_NOON};
use super::{
    ClickContext, ClickMacros, RouteOptions, RoutingData, Template, TrafficEnv, Visit, route_click,
};

/// A click on campaign 1 from Munich on an iPhone, with every field filled.
struct Scene {
    env: TrafficEnv,
    visit: Visit,
    campaign: Campaign,
    click: Click,
}

const LINK: &str = "https://tracker.test/?_lp=1&_token=T.K.N";

impl Scene {
    fn new() -> Scene {
        let mut visit = fixtures::visit("1.2.3.4");
        visit.user_agent = IPHONE_UA.into();
        visit.headers = vec![("via".into(), "1.1 proxy".into())];
        visit.query = [
            ("utm_source", "Insta gram"),
            ("clickId", "CID-9"),
            ("subid", "from-the-query"),
            ("empty", ""),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec();
        let mut click = Click::blank();
        click.sub_id = "abc123xyz".into();
        click.visitor_code = "vis0001".into();
        click.campaign_id = 1;
        click.parent_campaign_id = Some(9);
        click.stream_id = Some(10);
        click.landing_id = Some(11);
        click.offer_id = Some(12);
        click.ts_id = Some(7);
        click.created_at = WEDNESDAY_NOON;
        click.ip = "1.2.3.4".into();
        click.user_agent = IPHONE_UA.into();
        click.referrer = "https://ref.test/?a=b".into();
        click.language = "de".into();
        click.source = "fb".into();
        click.keyword = "blue shoes".into();
        click.search_engine = "google".into();
        click.x_requested_with = "com.app".into();
        click.ad_campaign_id = "ad 1".into();
        click.external_id = "ext".into();
        click.creative_id = "cr-1".into();
        click.destination = "https://dest.test/x?y=1".into();
        click.sub_ids[0] = "s1".into();
        click.sub_ids[29] = "s30".into();
        click.extra_params[0] = "e1".into();
        click.extra_params[9] = "e10".into();
        click.cost = "0.25".parse::<Money>().unwrap();
        Scene {
            env: fixtures::env(),
            visit,
            campaign: fixtures::campaign(1),
            click,
        }
    }

    fn expand(&self, template: &str, offer_link: Option<&str>) -> String {
        let mut ctx = ClickContext::new(
            &self.env,
            &self.visit,
            &self.campaign,
            self.click.clone(),
            false,
        );
        ctx.traffic_source_name = "Facebook Ads".into();
        ctx.finish_enrichment();
        let template = Template::parse(template).expect("a valid template");
        template.expand(&ClickMacros {
            ctx: &ctx,
            offer_link,
        })
    }
}

#[test]
fn every_macro_expands_to_the_clicks_value() {
    let scene = Scene::new();
    let cases: &[(&str, &str)] = &[
        ("{subid}", "abc123xyz"),
        ("{sub_id}", "abc123xyz"),
        ("{SubId}", "abc123xyz"),
        ("{visitor_code}", "vis0001"),
        ("{campaign_id}", "1"),
        ("{campaign_name}", "Campaign%201"),
        ("{_campaign_name}", "Campaign 1"),
        ("{parent_campaign_id}", "9"),
        ("{stream_id}", "10"),
        ("{landing_id}", "11"),
        ("{offer_id}", "12"),
        ("{ts_id}", "7"),
        ("{_traffic_source_name}", "Facebook Ads"),
        ("{token}", "token-1"),
        ("{destination}", "https%3A%2F%2Fdest.test%2Fx%3Fy%3D1"),
        ("{_destination}", "https://dest.test/x?y=1"),
        ("{current_domain}", "tracker.test"),
        ("{source}", "fb"),
        ("{keyword}", "blue%20shoes"),
        ("{_keyword}", "blue shoes"),
        ("{external_id}", "ext"),
        ("{creative_id}", "cr-1"),
        ("{_ad_campaign_id}", "ad 1"),
        ("{search_engine}", "google"),
        ("{se}", "google"),
        ("{_referrer}", "https://ref.test/?a=b"),
        ("{_referer}", "https://ref.test/?a=b"),
        ("{x_requested_with}", "com.app"),
        ("{ip}", "1.2.3.4"),
        ("{country}", "DE"),
        ("{country_code}", "DE"),
        ("{_country_name}", "Country DE"),
        ("{region}", "Bavaria"),
        ("{city}", "Munich"),
        ("{_isp}", "Deutsche Telekom AG"),
        ("{operator}", "T-Mobile"),
        ("{carrier}", "T-Mobile"),
        ("{connection_type}", "cellular"),
        ("{device_type}", "mobile"),
        ("{device_model}", "iPhone"),
        ("{device_brand}", "Apple"),
        ("{os}", "iOS"),
        ("{os_version}", "17.4.1"),
        ("{_browser}", "Mobile Safari"),
        ("{browser_version}", "17.4"),
        ("{language}", "de"),
        ("{_user_agent}", IPHONE_UA),
        ("{_ua}", IPHONE_UA),
        ("{_useragent}", IPHONE_UA),
        ("{is_bot}", "0"),
        ("{is_using_proxy}", "1"),
        ("{cost}", "0.25"),
        ("{revenue}", "0"),
        ("{profit}", "0"),
        ("{date}", "2026-03-04"),
        ("{_date:Y-m-d H:i:s}", "2026-03-04 12:30:00"),
        ("{date:Y-m-d H:i:s}", "2026-03-04%2012%3A30%3A00"),
        ("{_date:d.m.Y H:i,Europe/Berlin}", "04.03.2026 13:30"),
        ("{_date:n/j/y G}", "3/4/26 12"),
        ("{date:U}", "1772627400"),
        ("{sub_id_1}", "s1"),
        ("{sub_id_2}", ""),
        ("{sub_id_30}", "s30"),
        ("{extra_param_1}", "e1"),
        ("{extra_param_10}", "e10"),
        ("{utm_source}", "Insta%20gram"),
        ("{_utm_source}", "Insta gram"),
        ("{empty}", ""),
        ("{no_such_macro}", ""),
        ("{offer}", ""),
    ];
    for (template, expected) in cases {
        assert_eq!(
            scene.expand(&format!("https://o.test/?v={template}"), None),
            format!("https://o.test/?v={expected}"),
            "{template}"
        );
    }
}

#[test]
fn built_in_macros_win_over_query_parameters_of_the_same_name() {
    let scene = Scene::new();
    assert_eq!(scene.expand("{subid}", None), "abc123xyz");
}

/// Query parameters are macros under their own name, whatever its case (`{clickId}`).
#[test]
fn query_parameters_with_capitals_are_macros_too() {
    let scene = Scene::new();
    assert_eq!(
        scene.expand("https://o.test/?c={clickId}", None),
        "https://o.test/?c=CID-9"
    );
    assert_eq!(
        scene.expand("https://o.test/?c={clickid}", None),
        "https://o.test/?c=CID-9"
    );
}

#[test]
fn the_offer_macro_is_the_landing_link() {
    let scene = Scene::new();
    assert_eq!(scene.expand("{_offer}", Some(LINK)), LINK);
    assert_eq!(
        scene.expand("{_offer:12}", Some(LINK)),
        format!("{LINK}&offer_id=12")
    );
    assert_eq!(
        scene.expand("https://lp.test/?o={offer}", Some(LINK)),
        "https://lp.test/?o=https%3A%2F%2Ftracker.test%2F%3F_lp%3D1%26_token%3DT.K.N"
    );
    assert_eq!(scene.expand("{offer:12}", None), "");
}

#[test]
fn random_sample_and_debug() {
    let scene = Scene::new();
    for _ in 0..100 {
        let n: i64 = scene.expand("{random:5,7}", None).parse().unwrap();
        assert!((5..=7).contains(&n));
        let n: i64 = scene.expand("{random:9,3}", None).parse().unwrap();
        assert!((3..=9).contains(&n), "bounds in either order");
        let n: i64 = scene.expand("{random}", None).parse().unwrap();
        assert!((0..=100).contains(&n));
        let pick = scene.expand("{sample:red, green,blue}", None);
        assert!(["red", "green", "blue"].contains(&pick.as_str()), "{pick}");
    }
    assert_eq!(scene.expand("{sample:}", None), "");
    let debug = scene.expand("{_debug}", None);
    for part in [
        "sub_id=abc123xyz",
        "campaign=1",
        "stream=10",
        "ip=1.2.3.4",
        "country=DE",
        "device=mobile",
        "bot=false",
    ] {
        assert!(debug.contains(part), "{debug}");
    }
}

#[test]
fn unset_ids_expand_to_nothing() {
    let mut scene = Scene::new();
    scene.click.parent_campaign_id = None;
    scene.click.stream_id = None;
    scene.click.offer_id = None;
    assert_eq!(
        scene.expand(
            "https://o.test/?p={parent_campaign_id}&s={stream_id}&o={offer_id}",
            None
        ),
        "https://o.test/?p=&s=&o="
    );
}

/// A campaign whose default stream redirects to `template`.
fn redirect_snapshot(template: &str) -> super::RoutingSnapshot {
    let mut s = fixtures::stream(1, 1, StreamType::Default);
    s.schema = StreamSchema::Redirect;
    s.action_type = "http".into();
    s.action_payload = json!(template);
    let snapshot = fixtures::snapshot(RoutingData {
        campaigns: vec![fixtures::campaign(1)],
        streams: vec![s],
        ..RoutingData::default()
    });
    assert!(snapshot.warnings.is_empty(), "{:?}", snapshot.warnings);
    snapshot
}

fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(
            prop_oneof![
                Just("\r\n"),
                Just("\0"),
                Just("\u{85}"),
                Just("Location: https://evil.test/"),
                Just("@evil.test"),
                Just("//evil.test/"),
                Just("#"),
                Just("?"),
                Just("&x="),
                Just("%0d%0a"),
                Just("\\"),
                Just(" "),
                Just("\u{202e}"),
                Just("javascript:"),
            ],
            0..8,
        )
        .prop_map(|parts| parts.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever a visitor sends as a query parameter, the redirect keeps the template's scheme
    /// and host, holds no CR, LF or NUL, and the encoded value decodes back to what was sent.
    #[test]
    fn query_values_cannot_escape_the_redirect(value in hostile_text()) {
        let snapshot = redirect_snapshot("https://offer.test/p?x={param}&y={_param}");
        let env = fixtures::env();
        let mut visit = fixtures::visit("1.2.3.4");
        visit.query = vec![("param".into(), value.clone())];
        let route = snapshot.campaign_by_id(1).unwrap();
        let result = route_click(&env, &snapshot, route, &visit, &RouteOptions::default());
        let Reply::Redirect { url, .. } = &result.reply else {
            panic!("not a redirect for {value:?}: {:?}", result.reply);
        };
        prop_assert!(!url.contains(['\r', '\n', '\0']), "{:?}", url);
        let parsed = url::Url::parse(url).unwrap();
        prop_assert_eq!(parsed.scheme(), "https");
        prop_assert_eq!(parsed.host_str(), Some("offer.test"));
        prop_assert_eq!(parsed.path(), "/p");
        let x = parsed.query_pairs().find(|(k, _)| k == "x").map(|(_, v)| v.into_owned());
        prop_assert_eq!(x.as_deref(), Some(value.as_str()));
    }
}
