//! Every built-in filter, built through the registry from the payload shapes real clients send
//! and evaluated against a click with known geography, device and parameters.
//!
//! Stream-level semantics (accept/reject modes, `filter_or`) are tested through the pipeline
//! in `traffic::pipeline_tests`.

use std::sync::LazyLock;

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::model::{Campaign, Click, EXTRA_PARAM_COUNT, SUB_ID_COUNT};
use crate::registry::{Filter, Registry};
use crate::traffic::fixtures::{self, DESKTOP_UA, IPHONE_UA, WEDNESDAY_NOON};
use crate::traffic::{ClickContext, TrafficEnv, Visit};

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::builtin);

fn build(name: &str, payload: &Value) -> Result<Box<dyn Filter>, String> {
    REGISTRY
        .filter(name)
        .unwrap_or_else(|| panic!("filter `{name}` is not registered"))
        .build(payload)
}

/// Asserts that `build` refuses the payload with a message, and returns the message.
#[track_caller]
fn refused(name: &str, payload: Value) -> String {
    match build(name, &payload) {
        Ok(_) => panic!("`{name}` accepted the bad payload {payload}"),
        Err(message) => {
            assert!(!message.trim().is_empty(), "`{name}`: empty error message");
            message
        }
    }
}

/// A click to evaluate filters against.
struct Probe {
    env: TrafficEnv,
    visit: Visit,
    campaign: Campaign,
    click: Click,
    now: i64,
    stream: Option<i64>,
}

impl Probe {
    /// A desktop visitor from `address` (see `fixtures::enrichment` for what it knows).
    fn new(address: &str) -> Probe {
        let visit = fixtures::visit(address);
        let mut click = Click::blank();
        click.ip = address.to_string();
        click.user_agent = visit.user_agent.clone();
        click.created_at = WEDNESDAY_NOON;
        Probe {
            env: fixtures::env(),
            visit,
            campaign: fixtures::campaign(1),
            click,
            now: WEDNESDAY_NOON,
            stream: Some(10),
        }
    }

    fn ua(mut self, user_agent: &str) -> Probe {
        self.visit.user_agent = user_agent.to_string();
        self.click.user_agent = user_agent.to_string();
        self
    }

    fn header(mut self, name: &str, value: &str) -> Probe {
        self.visit.headers.push((name.into(), value.into()));
        self
    }

    fn param(mut self, name: &str, value: &str) -> Probe {
        self.visit.query.push((name.into(), value.into()));
        self
    }

    fn with(mut self, edit: impl FnOnce(&mut Click)) -> Probe {
        edit(&mut self.click);
        self
    }

    fn context(&self) -> ClickContext<'_> {
        let mut ctx = ClickContext::new(
            &self.env,
            &self.visit,
            &self.campaign,
            self.click.clone(),
            false,
        );
        ctx.now = self.now;
        ctx.checking_stream = self.stream;
        ctx
    }

    /// Whether the filter `name` built from `payload` matches this click.
    #[track_caller]
    fn matches(&self, name: &str, payload: Value) -> bool {
        let filter =
            build(name, &payload).unwrap_or_else(|e| panic!("`{name}` refused {payload}: {e}"));
        filter
            .matches(&mut self.context())
            .unwrap_or_else(|e| panic!("`{name}` failed on {payload}: {e}"))
    }
}

const MUNICH: &str = "1.2.3.4";
const NEW_YORK: &str = "5.6.7.8";
const UNKNOWN: &str = "9.9.9.9";

#[test]
fn the_whole_catalogue_is_registered_and_its_examples_build() {
    let mut names: Vec<String> = [
        "country",
        "region",
        "city",
        "isp",
        "operator",
        "connection_type",
        "ip",
        "ipv_6",
        "bot",
        "proxy",
        "device_type",
        "device_model",
        "os",
        "os_version",
        "browser",
        "browser_version",
        "user_agent",
        "language",
        "referrer",
        "empty_referrer",
        "keyword",
        "source",
        "search_engine",
        "ad_campaign_id",
        "creative_id",
        "x_requested_with",
        "parameter",
        "uniqueness",
        "limit",
        "interval",
        "schedule",
    ]
    .map(String::from)
    .to_vec();
    names.extend((1..=SUB_ID_COUNT).map(|n| format!("sub_id_{n}")));
    names.extend((1..=EXTRA_PARAM_COUNT).map(|n| format!("extra_param_{n}")));
    for name in &names {
        assert!(REGISTRY.filter(name).is_some(), "`{name}` is missing");
    }
    let mut registered: Vec<String> = REGISTRY.filters().map(|k| k.name.clone()).collect();
    registered.sort();
    names.sort();
    assert_eq!(registered, names, "the catalogue has unexpected kinds");
    for info in REGISTRY.filters() {
        assert!(
            build(&info.name, &info.payload.example).is_ok(),
            "the documented example of `{}` does not build: {}",
            info.name,
            info.payload.example
        );
    }
}

#[test]
fn country_accepts_every_payload_shape() {
    let de = Probe::new(MUNICH);
    for payload in [
        json!(["US", "DE"]),
        json!(["de"]),
        json!("US,DE"),
        json!("US\nDE"),
        json!("US, DE\r\nFR"),
        json!({"value": ["FR", "DE"]}),
        json!({"values": "DE"}),
        json!(["D*"]),
        json!(["?E"]),
        json!(["/^(de|at)$/i"]),
    ] {
        assert!(de.matches("country", payload.clone()), "{payload}");
    }
    for payload in [
        json!(["US"]),
        json!([]),
        json!(null),
        json!("FR,US"),
        json!(["/^d$/"]),
        json!(["DEU"]),
    ] {
        assert!(!de.matches("country", payload.clone()), "{payload}");
    }
    // An address GeoIP does not know has no country: only `@empty` or `*` match it.
    let unknown = Probe::new(UNKNOWN);
    assert!(!unknown.matches("country", json!(["US", "DE"])));
    assert!(unknown.matches("country", json!(["@empty"])));
    assert!(unknown.matches("country", json!(["*"])));
}

#[test]
fn region_matches_name_code_and_country_code() {
    let munich = Probe::new(MUNICH);
    for payload in [
        json!(["Bavaria"]),
        json!(["bavaria"]),
        json!(["BY"]),
        json!(["DE-BY"]),
        json!("de-by"),
        json!(["Bav*"]),
        json!(["/^bay|bav/i"]),
    ] {
        assert!(munich.matches("region", payload.clone()), "{payload}");
    }
    for payload in [json!(["US-BY"]), json!(["Berlin", "DE-BE"]), json!([])] {
        assert!(!munich.matches("region", payload.clone()), "{payload}");
    }
    assert!(!Probe::new(UNKNOWN).matches("region", json!(["-"])));
}

#[test]
fn city_isp_operator_and_connection_type() {
    let munich = Probe::new(MUNICH);
    let new_york = Probe::new(NEW_YORK);
    assert!(munich.matches("city", json!(["Munich", "Berlin"])));
    assert!(munich.matches("city", json!("berlin\nmunich")));
    assert!(new_york.matches("city", json!(["/^new york$/i"])));
    assert!(new_york.matches("city", json!(["New*"])));
    assert!(!munich.matches("city", json!(["New York"])));

    assert!(munich.matches("isp", json!(["Deutsche Telekom*"])));
    assert!(munich.matches("isp", json!(["deutsche telekom ag"])));
    assert!(!munich.matches("isp", json!(["Comcast*"])));
    assert!(!Probe::new(UNKNOWN).matches("isp", json!(["Deutsche Telekom*"])));

    assert!(munich.matches("operator", json!(["T-Mobile*"])));
    assert!(munich.matches("operator", json!({"value": "t-mobile"})));
    assert!(!munich.matches("operator", json!(["Vodafone"])));

    assert!(munich.matches("connection_type", json!(["cellular"])));
    assert!(munich.matches("connection_type", json!("cable,cellular")));
    assert!(!munich.matches("connection_type", json!(["cable", "dialup"])));
}

#[test]
fn ip_lists_masks_ranges_and_cidr() {
    let probe = |address: &str, payload: Value| Probe::new(address).matches("ip", payload);
    let list = json!([
        "1.2.3.4",
        "10.0.0.0/8",
        "22.33.0-20.*",
        "5.5.5.1-5.5.5.9",
        "2001:db8::/32",
        "2001:db9::1-2001:db9::ff",
        "192.168.*.*",
    ]);
    for hit in [
        "1.2.3.4",
        "10.200.1.1",
        "22.33.0.1",
        "22.33.20.255",
        "5.5.5.1",
        "5.5.5.9",
        "2001:db8:ffff::1",
        "2001:db9::80",
        "192.168.77.3",
        "::ffff:10.1.1.1",
    ] {
        assert!(probe(hit, list.clone()), "{hit}");
    }
    for miss in [
        "1.2.3.5",
        "11.0.0.1",
        "22.33.21.0",
        "22.34.0.1",
        "5.5.5.10",
        "5.5.5.0",
        "2001:dba::1",
        "2001:db9::100",
        "192.169.0.1",
        "::1",
    ] {
        assert!(!probe(miss, list.clone()), "{miss}");
    }
    // Plain strings, one entry per line or comma; objects; reversed ranges.
    assert!(probe("10.0.0.1", json!("1.1.1.1\n10.0.0.0/8")));
    assert!(probe("10.0.0.1", json!("1.1.1.1, 10.0.0.0/8")));
    assert!(probe("10.0.0.1", json!({"value": ["10.0.0.0/8"]})));
    assert!(probe("5.5.5.5", json!(["5.5.5.9 - 5.5.5.1"])));
    assert!(probe("8.8.8.8", json!(["0.0.0.0/0"])));
    assert!(probe("2001:db8::1", json!(["::/0"])));
    assert!(!probe("2001:db8::1", json!(["0.0.0.0/0"])));
    assert!(!probe("1.2.3.4", json!(null)));

    for bad in [
        json!(["1.2.3"]),
        json!(["300.1.1.1"]),
        json!(["10.0.0.0/33"]),
        json!(["::/129"]),
        json!(["1.2.3.4/"]),
        json!(["1.2.3.4-::1"]),
        json!(["a.b.c.d"]),
        json!(["1.2.3.*.5"]),
        json!(["1.2.300-400.*"]),
        json!("1.2.3.4\nnot-an-ip"),
    ] {
        let message = refused("ip", bad.clone());
        assert!(
            message.contains('`'),
            "the message names the entry: {message}"
        );
    }
}

#[test]
fn ipv_6_bot_proxy_and_empty_referrer_take_no_payload() {
    for name in ["ipv_6", "bot", "proxy", "empty_referrer"] {
        for ok in [
            json!(null),
            json!(""),
            json!([]),
            json!({}),
            json!(true),
            json!("1"),
        ] {
            assert!(build(name, &ok).is_ok(), "{name} {ok}");
        }
        for bad in [json!("x"), json!(["a"]), json!(5), json!({"value": 1})] {
            refused(name, bad);
        }
    }
}

#[test]
fn ipv_6_matches_native_ipv6_only() {
    assert!(Probe::new("2001:db8::1").matches("ipv_6", Value::Null));
    assert!(!Probe::new(MUNICH).matches("ipv_6", Value::Null));
    assert!(!Probe::new("::ffff:1.2.3.4").matches("ipv_6", Value::Null));
}

#[test]
fn bot_signals() {
    assert!(!Probe::new(MUNICH).matches("bot", Value::Null));
    assert!(
        Probe::new(MUNICH)
            .ua("Googlebot/2.1")
            .matches("bot", Value::Null)
    );
    assert!(Probe::new(MUNICH).ua("").matches("bot", Value::Null));
    assert!(Probe::new("66.249.66.1").matches("bot", Value::Null));
    assert!(
        Probe::new(MUNICH)
            .header("sec-purpose", "prefetch")
            .matches("bot", Value::Null)
    );
}

#[test]
fn proxy_headers() {
    assert!(!Probe::new(MUNICH).matches("proxy", Value::Null));
    for header in ["via", "forwarded", "x-forwarded-for", "x-proxy-id"] {
        assert!(
            Probe::new(MUNICH)
                .header(header, "1.1 proxy")
                .matches("proxy", Value::Null),
            "{header}"
        );
    }
}

#[test]
fn device_type_and_model() {
    let phone = Probe::new(MUNICH).ua(IPHONE_UA);
    let desktop = Probe::new(MUNICH);
    assert!(phone.matches("device_type", json!(["mobile", "tablet"])));
    assert!(phone.matches("device_type", json!("MOBILE")));
    assert!(!desktop.matches("device_type", json!(["mobile", "tablet"])));
    assert!(desktop.matches("device_type", json!({"value": ["desktop"]})));

    for payload in [
        json!(["iPhone"]),
        json!(["Apple"]),
        json!(["Apple iPhone"]),
        json!(["apple*"]),
        json!(["/iphone|ipad/i"]),
    ] {
        assert!(phone.matches("device_model", payload.clone()), "{payload}");
    }
    assert!(!phone.matches("device_model", json!(["Samsung*", "Pixel 8"])));
    assert!(!desktop.matches("device_model", json!(["iPhone"])));
    // An unknown model is the empty string: `@empty` matches it.
    assert!(desktop.matches("device_model", json!(["@empty"])));
}

#[test]
fn os_and_browser_families() {
    let phone = Probe::new(MUNICH).ua(IPHONE_UA);
    let desktop = Probe::new(MUNICH);
    assert!(phone.matches("os", json!(["iOS", "Android"])));
    assert!(phone.matches("os", json!("ios")));
    assert!(!desktop.matches("os", json!(["iOS", "Android"])));
    assert!(desktop.matches("os", json!(["Win*"])));

    assert!(desktop.matches("browser", json!(["Chrome*", "Firefox"])));
    assert!(phone.matches("browser", json!(["mobile safari"])));
    assert!(!phone.matches("browser", json!(["Safari"])));
    assert!(phone.matches("browser", json!(["*Safari"])));
}

#[test]
fn os_and_browser_versions() {
    let phone = Probe::new(MUNICH).ua(IPHONE_UA); // iOS 17.4.1, Mobile Safari 17.4
    let desktop = Probe::new(MUNICH); // Windows 10, Chrome 124.0.6367.91
    for payload in [
        json!(["17"]),
        json!(["17.4"]),
        json!(["17.4.1"]),
        json!([">=17"]),
        json!([">=17.4"]),
        json!([">16"]),
        json!(["<18"]),
        json!(["<=17.4"]),
        json!("16\n17"),
        json!(["17.*"]),
        json!(["/^17\\./"]),
    ] {
        assert!(phone.matches("os_version", payload.clone()), "{payload}");
    }
    for payload in [
        json!(["16"]),
        json!(["1"]),
        json!(["17.5"]),
        json!([">=18"]),
        json!(["<17"]),
        json!([]),
    ] {
        assert!(!phone.matches("os_version", payload.clone()), "{payload}");
    }
    assert!(desktop.matches("browser_version", json!(["124"])));
    assert!(desktop.matches("browser_version", json!([">=100"])));
    assert!(!desktop.matches("browser_version", json!(["<=123", "12"])));
    assert!(phone.matches("browser_version", json!(["17.4"])));
    assert!(!phone.matches("browser_version", json!(["17.40"])));
    // An unknown version never satisfies a comparison.
    let unknown = Probe::new(MUNICH).ua("curl/8.0");
    assert!(!unknown.matches("os_version", json!([">=0", "<100"])));

    for bad in [json!([">=abc"]), json!(["<"]), json!(["/(/"])] {
        refused("os_version", bad.clone());
        refused("browser_version", bad);
    }
}

/// A version with fewer components than the compared one is that version with zeros:
/// Windows "10" is 10.0, below 10.3.
#[test]
fn short_versions_compare_as_if_padded_with_zeros() {
    let desktop = Probe::new(MUNICH); // Windows 10
    assert!(!desktop.matches("os_version", json!([">=10.3"])));
    assert!(desktop.matches("os_version", json!(["<10.3"])));
    assert!(desktop.matches("os_version", json!([">=10.0", "<=10.0"])));
    assert!(desktop.matches("os_version", json!([">9.9"])));
}

#[test]
fn user_agent_masks_and_regexes() {
    let phone = Probe::new(MUNICH).ua(IPHONE_UA);
    assert!(phone.matches("user_agent", json!(["*iPhone*"])));
    assert!(phone.matches("user_agent", json!(["*IPHONE*"])));
    assert!(phone.matches("user_agent", json!(["/iphone|ipad/i"])));
    assert!(!phone.matches("user_agent", json!(["/iphone/"])));
    assert!(phone.matches("user_agent", json!([IPHONE_UA])));
    assert!(!phone.matches("user_agent", json!(["iPhone"])));
    assert!(!phone.matches("user_agent", json!(["*Android*"])));
    let desktop = Probe::new(MUNICH);
    assert!(desktop.matches("user_agent", json!(["/windows nt 1\\d\\.0/i"])));
    assert!(
        !Probe::new(MUNICH)
            .ua("")
            .matches("user_agent", json!(["*a*"]))
    );
    assert!(
        Probe::new(MUNICH)
            .ua("")
            .matches("user_agent", json!(["@empty"]))
    );
    let message = refused("user_agent", json!(["/(unclosed/"]));
    assert!(message.contains("regular expression"), "{message}");
}

#[test]
fn language() {
    let english = Probe::new(MUNICH).with(|c| c.language = "en".into());
    assert!(english.matches("language", json!(["en", "de"])));
    assert!(english.matches("language", json!("EN")));
    assert!(!english.matches("language", json!(["de", "fr"])));
    assert!(!Probe::new(MUNICH).matches("language", json!(["en"])));
}

#[test]
fn referrer_masks_regexes_and_empty() {
    let from_fb = Probe::new(MUNICH).with(|c| c.referrer = "https://m.facebook.com/story".into());
    let direct = Probe::new(MUNICH);
    assert!(from_fb.matches("referrer", json!(["*facebook.com*", "@empty"])));
    assert!(from_fb.matches(
        "referrer",
        json!(["/^https:\\/\\/(m|www)\\.facebook\\.com/"])
    ));
    assert!(!from_fb.matches("referrer", json!(["@empty"])));
    assert!(!from_fb.matches("referrer", json!(["facebook.com"])));
    assert!(direct.matches("referrer", json!(["*facebook.com*", "@empty"])));
    assert!(!direct.matches("referrer", json!(["*facebook.com*"])));

    assert!(direct.matches("empty_referrer", Value::Null));
    assert!(!from_fb.matches("empty_referrer", Value::Null));
    let blank = Probe::new(MUNICH).with(|c| c.referrer = "  ".into());
    assert!(blank.matches("empty_referrer", Value::Null));
}

/// A regex in a multi-line string keeps its commas (`{1,3}`), like a one-line one does.
#[test]
fn regexes_keep_their_commas_in_multi_line_payloads() {
    let probe = Probe::new(MUNICH).with(|c| c.keyword = "aaa".into());
    assert!(probe.matches("keyword", json!("/^a{1,3}$/")));
    assert!(probe.matches("keyword", json!("nothing\n/^a{1,3}$/")));
    assert!(probe.matches("keyword", json!(["nothing", "/^a{1,3}$/"])));
    assert!(probe.matches("keyword", json!("x, y\n/^a{2,}$/i\nz")));
}

#[test]
fn traffic_text_fields() {
    type Setter = fn(&mut Click, &str);
    let fields: [(&str, Setter); 6] = [
        ("keyword", |c, v| c.keyword = v.into()),
        ("source", |c, v| c.source = v.into()),
        ("search_engine", |c, v| c.search_engine = v.into()),
        ("ad_campaign_id", |c, v| c.ad_campaign_id = v.into()),
        ("creative_id", |c, v| c.creative_id = v.into()),
        ("x_requested_with", |c, v| c.x_requested_with = v.into()),
    ];
    for (name, set) in fields {
        let probe = Probe::new(MUNICH).with(|c| set(c, "Blue Shoes 42"));
        assert!(probe.matches(name, json!(["blue shoes 42"])), "{name}");
        assert!(probe.matches(name, json!("x\nBlue*")), "{name}");
        assert!(probe.matches(name, json!({"value": ["*42"]})), "{name}");
        assert!(probe.matches(name, json!(["/shoes \\d+$/i"])), "{name}");
        assert!(probe.matches(name, json!(["Blue?Shoes?42"])), "{name}");
        assert!(!probe.matches(name, json!(["blue"])), "{name}");
        assert!(!probe.matches(name, json!(["@empty"])), "{name}");
        assert!(!probe.matches(name, json!(null)), "{name}");
        let empty = Probe::new(MUNICH);
        assert!(empty.matches(name, json!(["@empty"])), "{name}");
        assert!(!empty.matches(name, json!(["blue*"])), "{name}");
        refused(name, json!(["/[/"]));
    }
    // Numbers in arrays compare as their text.
    let numeric = Probe::new(MUNICH).with(|c| c.ad_campaign_id = "123".into());
    assert!(numeric.matches("ad_campaign_id", json!([123, 456])));
}

#[test]
fn sub_ids_and_extra_params_are_each_their_own_field() {
    let mut probe = Probe::new(MUNICH);
    for n in 1..=SUB_ID_COUNT {
        probe.click.sub_ids[n - 1] = format!("sub{n}");
    }
    for n in 1..=EXTRA_PARAM_COUNT {
        probe.click.extra_params[n - 1] = format!("extra{n}");
    }
    for n in 1..=SUB_ID_COUNT {
        let name = format!("sub_id_{n}");
        assert!(probe.matches(&name, json!([format!("sub{n}")])), "{name}");
        assert!(
            probe.matches(&name, json!([format!("/^SUB{n}$/i")])),
            "{name}"
        );
        let other = if n == 1 { 2 } else { 1 };
        assert!(
            !probe.matches(&name, json!([format!("sub{other}")])),
            "{name}"
        );
    }
    for n in 1..=EXTRA_PARAM_COUNT {
        let name = format!("extra_param_{n}");
        assert!(probe.matches(&name, json!(format!("x,extra{n}"))), "{name}");
        assert!(!probe.matches(&name, json!(["sub1"])), "{name}");
    }
    assert!(
        REGISTRY
            .filter(&format!("sub_id_{}", SUB_ID_COUNT + 1))
            .is_none()
    );
    assert!(REGISTRY.filter("sub_id_0").is_none());
}

#[test]
fn parameter_reads_any_query_parameter() {
    let probe = Probe::new(MUNICH).param("utm_source", "instagram");
    assert!(probe.matches(
        "parameter",
        json!({"name": "utm_source", "value": ["fb", "ig*", "insta*"]})
    ));
    assert!(probe.matches(
        "parameter",
        json!({"name": "utm_source", "value": "fb,instagram"})
    ));
    assert!(probe.matches(
        "parameter",
        json!({"name": "utm_source", "value": ["/^INSTA/i"]})
    ));
    assert!(!probe.matches("parameter", json!({"name": "utm_source", "value": ["fb"]})));
    assert!(!probe.matches(
        "parameter",
        json!({"name": "utm_medium", "value": ["instagram"]})
    ));
    // An absent parameter is the empty string.
    assert!(probe.matches(
        "parameter",
        json!({"name": "utm_medium", "value": ["@empty"]})
    ));
    assert!(!probe.matches(
        "parameter",
        json!({"name": "utm_source", "value": ["@empty"]})
    ));
    assert!(!probe.matches("parameter", json!({"name": "utm_source"})));

    for bad in [
        json!(null),
        json!("utm_source"),
        json!(["utm_source"]),
        json!({"value": ["fb"]}),
        json!({"name": "", "value": ["fb"]}),
        json!({"name": 5, "value": ["fb"]}),
        json!({"name": "utm_source", "value": ["/(/"]}),
    ] {
        refused("parameter", bad);
    }
}

#[test]
fn uniqueness_scopes() {
    let probe = Probe::new(MUNICH);
    for payload in [
        json!(null),
        json!("stream"),
        json!(["campaign"]),
        json!({"value": "global"}),
    ] {
        assert!(
            probe.matches("uniqueness", payload.clone()),
            "new visitor: {payload}"
        );
    }
    // The visitor is seen in campaign 1, stream 10 (server-side record, no cookie).
    let mut ctx = probe.context();
    ctx.mark_seen(Some(10));
    drop(ctx);
    assert!(!probe.matches("uniqueness", json!("stream")));
    assert!(!probe.matches("uniqueness", json!("campaign")));
    assert!(!probe.matches("uniqueness", json!("global")));

    // In another stream of the same campaign the visitor is new to the stream only.
    let mut other_stream = Probe::new(MUNICH);
    other_stream.env = probe.env.clone();
    other_stream.stream = Some(11);
    assert!(other_stream.matches("uniqueness", json!("stream")));
    assert!(!other_stream.matches("uniqueness", json!("campaign")));

    // In another campaign the visitor is new to the campaign but known globally.
    let mut other_campaign = Probe::new(MUNICH);
    other_campaign.env = probe.env.clone();
    other_campaign.campaign = fixtures::campaign(2);
    other_campaign.stream = Some(20);
    assert!(other_campaign.matches("uniqueness", json!("stream")));
    assert!(other_campaign.matches("uniqueness", json!("campaign")));
    assert!(!other_campaign.matches("uniqueness", json!("global")));

    // After cookies_ttl the visitor is new again.
    let mut later = Probe::new(MUNICH);
    later.env = probe.env.clone();
    later.now += 24 * 3_600;
    assert!(later.matches("uniqueness", json!("campaign")));

    for bad in [json!("forever"), json!(["visitor"]), json!(7)] {
        let message = refused("uniqueness", bad);
        assert!(message.contains("stream, campaign or global"), "{message}");
    }
}

#[test]
fn limit_counts_the_checked_streams_hits() {
    let probe = Probe::new(MUNICH);
    let stream = probe.stream.unwrap();
    let hit = || probe.env.hits.add(stream, probe.now);
    assert!(probe.matches("limit", json!({"per_hour": 2})));
    hit();
    assert!(probe.matches("limit", json!({"per_hour": 2})));
    hit();
    assert!(!probe.matches("limit", json!({"per_hour": 2})));
    assert!(!probe.matches("limit", json!({"per_hour": "2"})));
    assert!(!probe.matches("limit", json!({"per_day": 2})));
    assert!(!probe.matches("limit", json!({"total": 2})));
    assert!(probe.matches("limit", json!({"per_hour": 3, "per_day": 3, "total": 3})));
    assert!(!probe.matches("limit", json!({"per_hour": 3, "per_day": 3, "total": 2})));
    // 0, empty and absent mean "no limit".
    for payload in [
        json!({}),
        json!(null),
        json!({"per_hour": 0, "per_day": null, "total": ""}),
    ] {
        assert!(probe.matches("limit", payload.clone()), "{payload}");
    }
    // The next hour resets per_hour, the next UTC day per_day; total never resets.
    let mut next_day = Probe::new(MUNICH);
    next_day.env = probe.env.clone();
    next_day.now = probe.now + 86_400;
    assert!(next_day.matches("limit", json!({"per_hour": 2, "per_day": 2})));
    assert!(!next_day.matches("limit", json!({"total": 2})));
    // Other streams have their own counts.
    let mut other = Probe::new(MUNICH);
    other.env = probe.env.clone();
    other.stream = Some(99);
    assert!(other.matches("limit", json!({"total": 1})));

    for bad in [
        json!({"per_hour": -1}),
        json!({"per_day": 1.5}),
        json!({"total": "ten"}),
        json!({"total": true}),
        json!({"per_hour": [1]}),
    ] {
        let message = refused("limit", bad);
        assert!(message.contains("limit `"), "{message}");
    }
}

/// A limit payload that is not an object (a bare number or text) is a mistake, not "no limit".
#[test]
fn limit_refuses_payloads_that_are_not_objects() {
    for bad in [json!(100), json!("100"), json!([100])] {
        refused("limit", bad);
    }
}

#[test]
fn interval_between_two_local_moments() {
    // WEDNESDAY_NOON is 13:30 in Berlin.
    let probe = Probe::new(MUNICH);
    let berlin = |from: &str, to: &str| {
        probe.matches(
            "interval",
            json!({"from": from, "to": to, "timezone": "Europe/Berlin"}),
        )
    };
    assert!(berlin("2026-03-04 13:00", "2026-03-04 14:00"));
    assert!(
        berlin("2026-03-04 13:30", "2026-03-04 14:00"),
        "from is inclusive"
    );
    assert!(
        !berlin("2026-03-04 13:00", "2026-03-04 13:30"),
        "to is exclusive"
    );
    assert!(!berlin("2026-03-04 14:00", "2026-03-05 00:00"));
    assert!(berlin("2026-03-04", "2026-03-05"));
    assert!(berlin("2026-03-04T13:00:00", "2026-03-04T13:30:01"));
    assert!(berlin("", "2026-03-05 00:00"), "an empty end is open");
    assert!(berlin("2026-03-01 00:00", ""));
    assert!(probe.matches(
        "interval",
        json!({"from": "2026-03-04 12:00", "to": "2026-03-04 13:00"})
    ));
    assert!(!probe.matches(
        "interval",
        json!({"from": "2026-03-04 13:00", "timezone": "UTC"})
    ));
    assert!(probe.matches(
        "interval",
        json!({"to": "2026-03-04 22:00", "timezone": "Asia/Tokyo"})
    ));
    assert!(!probe.matches(
        "interval",
        json!({"to": "2026-03-04 21:00", "timezone": "Asia/Tokyo"})
    ));

    for bad in [
        json!({"from": "2026-13-01 00:00"}),
        json!({"to": "tomorrow"}),
        json!({"from": "2026-03-04 25:00"}),
        json!({"from": "2026-03-04", "timezone": "Mars/Olympus_Mons"}),
    ] {
        refused("interval", bad);
    }
    // A local time that does not exist (the spring-forward gap) is refused with a reason.
    let message = refused(
        "interval",
        json!({"from": "2026-03-29 02:30", "timezone": "Europe/Berlin"}),
    );
    assert!(message.contains("does not exist"), "{message}");
}

/// An interval whose ends are not text (a timestamp, an object) is refused rather than
/// treated as open-ended.
#[test]
fn interval_refuses_ends_that_are_not_text() {
    for bad in [
        json!({"from": 1_772_627_400}),
        json!({"to": {"date": "2026-03-04"}}),
        json!("2026-03-04 00:00"),
    ] {
        refused("interval", bad);
    }
}

#[test]
fn schedule_by_weekday_and_time() {
    // WEDNESDAY_NOON: Wednesday (2) 12:30 UTC, 21:30 in Tokyo, 07:30 in New York.
    let probe = Probe::new(MUNICH);
    let utc = |day: Value, time: Value| {
        probe.matches(
            "schedule",
            json!({"timezone": "UTC", "intervals": [{"day": day, "time": time}]}),
        )
    };
    assert!(utc(json!([0, 4]), json!(["09:00", "18:00"])));
    assert!(
        utc(json!([2, 2]), json!(["12:30", "12:31"])),
        "start is inclusive"
    );
    assert!(
        !utc(json!([2, 2]), json!(["12:00", "12:30"])),
        "end is exclusive"
    );
    assert!(!utc(json!([3, 6]), json!(["09:00", "18:00"])));
    assert!(!utc(json!([0, 4]), json!(["13:00", "18:00"])));
    assert!(
        utc(json!([6, 2]), json!(["00:00", "23:59"])),
        "days wrap past Sunday"
    );
    assert!(!utc(json!([3, 1]), json!(["00:00", "23:59"])));
    assert!(
        utc(json!([0, 6]), json!(["22:00", "13:00"])),
        "times wrap past midnight"
    );
    assert!(!utc(json!([0, 6]), json!(["22:00", "02:00"])));
    assert!(utc(json!(["0", "4"]), json!("09:00,18:00")));
    assert!(utc(json!(2), json!(["12:00"])), "one day, from a time on");
    assert!(utc(json!([2]), json!([])), "no time = the whole day");
    assert!(utc(json!([0, 6]), json!(["12:00:00", "12:30:01"])));

    let tokyo = json!({"timezone": "Asia/Tokyo", "intervals": [{"day": [2, 2], "time": ["21:00", "22:00"]}]});
    assert!(probe.matches("schedule", tokyo));
    let new_york = json!({"timezone": "America/New_York", "intervals": [
        {"day": [5, 6], "time": ["00:00", "23:59"]},
        {"day": [2, 2], "time": ["07:00", "08:00"]},
    ]});
    assert!(
        probe.matches("schedule", new_york),
        "any interval may match"
    );
    let no_timezone = json!({"intervals": [{"day": [2, 2], "time": ["12:00", "13:00"]}]});
    assert!(probe.matches("schedule", no_timezone), "UTC by default");

    for bad in [
        json!(null),
        json!({}),
        json!({"intervals": []}),
        json!({"intervals": [{"day": [7, 8], "time": ["09:00", "18:00"]}]}),
        json!({"intervals": [{"day": [], "time": ["09:00", "18:00"]}]}),
        json!({"intervals": [{"day": [0, 4], "time": ["25:00", "26:00"]}]}),
        json!({"intervals": [{"day": [0, 4], "time": ["9am", "6pm"]}]}),
        json!({"timezone": "Nowhere/City", "intervals": [{"day": [0, 4]}]}),
    ] {
        refused("schedule", bad);
    }
}

/// A day that is not a weekday number is refused, not silently dropped from the range
/// (`[-1, 3]` must not become "Thursday only").
#[test]
fn schedule_refuses_days_that_are_not_weekdays() {
    for bad in [
        json!({"intervals": [{"day": [-1, 3]}]}),
        json!({"intervals": [{"day": [1, "friday"]}]}),
        json!({"intervals": [{"day": "3"}]}),
    ] {
        refused("schedule", bad);
    }
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z0-9 ,.*?/:@\\-\\[\\](){}|^$\\\\\n]{0,24}".prop_map(Value::String),
        prop_oneof![
            Just("stream"),
            Just("2026-03-04 12:00"),
            Just("Europe/Berlin"),
            Just("10.0.0.0/8"),
            Just("1.2.3.4-1.2.3.9"),
            Just("22.33.0-20.*"),
            Just(">=10.3"),
            Just("/^a{1,3}$/i"),
            Just("09:00"),
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("value".to_string()),
                    Just("name".to_string()),
                    Just("from".to_string()),
                    Just("to".to_string()),
                    Just("timezone".to_string()),
                    Just("intervals".to_string()),
                    Just("day".to_string()),
                    Just("time".to_string()),
                    Just("per_hour".to_string()),
                    Just("total".to_string()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever a client stores as a payload, building never panics, and a filter that builds
    /// never panics on a click.
    #[test]
    fn arbitrary_payloads_never_panic(payload in any_json()) {
        let probe = Probe::new(MUNICH).ua(IPHONE_UA).param("name", "value");
        for info in REGISTRY.filters() {
            if let Ok(filter) = build(&info.name, &payload) {
                let result = filter.matches(&mut probe.context());
                prop_assert!(result.is_ok(), "{}: {:?}", info.name, result);
            }
        }
    }
}

#[test]
fn desktop_fixture_is_what_the_tests_assume() {
    let probe = Probe::new(MUNICH);
    let mut ctx = probe.context();
    assert_eq!(ctx.device().os_version, "10");
    assert_eq!(ctx.geo().country_code, "DE");
    assert_eq!(probe.visit.user_agent, DESKTOP_UA);
}
