//! Criterion benchmarks of the click path's stages, on the campaign the load test uses
//! (bench/campaign.json: 10 regular streams of 5 filters and a default stream) built
//! in-process, with the vendored MaxMind City test database, the bundled uap-core regexes and
//! the crawler list. Visitors rotate through bench/data (IPs, User-Agents) the way the load
//! test's requests do.
//!
//! `cargo bench -p switchyard --bench pipeline` (add `-- route_click` to run one bench).
//! Each iteration is one operation, so criterion's `time:` is the time per operation. The
//! time is the benchmark thread's CPU time (CLOCK_THREAD_CPUTIME_ID), not wall time: on a
//! shared machine, time spent descheduled would otherwise be counted. `BENCH_WALL_TIME=1`
//! measures wall time instead.

use std::hint::black_box;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;

use criterion::Criterion;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use serde_json::{Value, json};
use switchyard::config::GeoipConfig;
use switchyard::enrich::{BotDetector, DeviceDetector, Enrichment, GeoResolver};
use switchyard::model::{
    Campaign, CampaignType, Click, Money, ObjectState, Stream, StreamFilter, StreamSchema,
    StreamType,
};
use switchyard::registry::Registry;
use switchyard::traffic::{
    ClickContext, ClickMacros, RouteOptions, RoutingData, RoutingSnapshot, Template, TrafficEnv,
    Visit, route_click,
};

const CAMPAIGN: &str = include_str!("../../bench/campaign.json");
const IPS: &str = include_str!("../../bench/data/ips.txt");
const USER_AGENTS: &str = include_str!("../../bench/data/user_agents.txt");
/// The same rotations as bench/src/lib.rs and bench/load.lua.
/// (Accept-Language, its primary subtag as the server reads it).
const LANGUAGES: &[(&str, &str)] = &[
    ("en-US,en;q=0.9", "en"),
    ("en-GB,en;q=0.8", "en"),
    ("sv-SE,sv;q=0.9,en;q=0.8", "sv"),
    ("zh-CN,zh;q=0.9", "zh"),
    ("de-DE,de;q=0.9,en;q=0.7", "de"),
    ("fil-PH,en;q=0.8", "fil"),
    ("ru-RU,ru;q=0.9", "ru"),
];
const KEYWORDS: &[&str] = &["shoes", "bags", "watches", "test", "free gift", ""];
/// How many distinct visits the route_click bench cycles through.
const VISITS: u64 = 4_096;

fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

fn campaign(id: i64, alias: &str, cookies_ttl: i64) -> Campaign {
    Campaign {
        id,
        alias: alias.into(),
        name: format!("Benchmark ({alias})"),
        campaign_type: CampaignType::Position,
        state: ObjectState::Active,
        cookies_ttl,
        position: 0,
        cost_type: "CPC".into(),
        cost_value: Money::ZERO,
        cost_currency: "USD".into(),
        cost_auto: false,
        group_id: None,
        bind_visitors: None,
        traffic_source_id: None,
        token: format!("{alias}-token"),
        domain_id: None,
        parameters: json!({}),
        uniqueness_method: "ip_ua".into(),
        uniqueness_use_cookies: true,
        traffic_loss: 0.0,
        notes: String::new(),
        created_at: 0,
        updated_at: 0,
    }
}

fn stream(id: i64, campaign_id: i64, position: i64, kind: StreamType, url: &str) -> Stream {
    Stream {
        id,
        campaign_id,
        stream_type: kind,
        name: format!("stream {id}"),
        position,
        weight: 100,
        schema: StreamSchema::Redirect,
        action_type: "http".into(),
        action_payload: Value::String(url.into()),
        action_options: Value::Null,
        collect_clicks: true,
        filter_or: false,
        filters: Vec::new(),
        landings: Vec::new(),
        offers: Vec::new(),
        comments: String::new(),
        state: ObjectState::Active,
        created_at: 0,
        updated_at: 0,
    }
}

/// bench/campaign.json as routing data: campaign 1, streams 1..=10 regular, 11 default.
fn routing_data() -> RoutingData {
    let spec: Value = serde_json::from_str(CAMPAIGN).expect("bench/campaign.json is JSON");
    let ttl = spec["cookies_ttl_hours"].as_i64().unwrap_or(24);
    let mut streams = Vec::new();
    let mut filter_id = 0;
    for (i, s) in spec["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .enumerate()
    {
        let id = i as i64 + 1;
        let url = s["url"].as_str().expect("url");
        let mut stream = stream(id, 1, id, StreamType::Regular, url);
        for f in s["filters"].as_array().expect("filters") {
            filter_id += 1;
            stream.filters.push(StreamFilter {
                id: filter_id,
                stream_id: id,
                name: f[0].as_str().expect("filter name").into(),
                mode: f[1].as_str().expect("filter mode").into(),
                payload: f[2].clone(),
            });
        }
        streams.push(stream);
    }
    let default_url = spec["default_url"].as_str().expect("default_url");
    let next = streams.len() as i64 + 1;
    streams.push(stream(next, 1, next, StreamType::Default, default_url));
    RoutingData {
        campaigns: vec![campaign(1, "bench", ttl)],
        streams,
        landings: Vec::new(),
        offers: Vec::new(),
        traffic_sources: Vec::new(),
    }
}

fn geo_resolver() -> GeoResolver {
    let city =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/geoip/GeoIP2-City-Test.mmdb");
    GeoResolver::open(&GeoipConfig {
        city_db: Some(city),
        ..GeoipConfig::default()
    })
    .expect("the vendored City test database opens")
}

struct Fixture {
    env: TrafficEnv,
    snapshot: RoutingSnapshot,
    geo: Arc<GeoResolver>,
    devices: Arc<DeviceDetector>,
    bots: Arc<BotDetector>,
    ips: Vec<IpAddr>,
    user_agents: Vec<&'static str>,
    visits: Vec<Visit>,
}

/// A visitor never seen before (every fourth request): an address in 2001:218::/32, Japan in
/// the City test database.
fn fresh_ip(n: u64) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0x218,
        ((n >> 16) & 0xffff) as u16,
        (n & 0xffff) as u16,
        0,
        0,
        0,
        1,
    ))
}

/// The `n`-th visitor, rotated as the load test rotates them.
fn visit(n: u64, ips: &[IpAddr], user_agents: &[&str]) -> Visit {
    let at = |len: usize, i: u64| (i % len as u64) as usize;
    let ip_count = ips.len() as u64;
    let ip = if n % 4 == 3 {
        fresh_ip(n)
    } else {
        ips[at(ips.len(), n)]
    };
    let mut visit = Visit::new(ip, user_agents[at(user_agents.len(), n + n / ip_count)]);
    let (accept_language, language) = LANGUAGES[at(LANGUAGES.len(), n)];
    visit.language = language.into();
    visit.query = vec![
        ("keyword".into(), KEYWORDS[at(KEYWORDS.len(), n)].into()),
        ("source".into(), "fb".into()),
        ("sub_id_1".into(), n.to_string()),
    ];
    visit.headers = vec![
        ("host".into(), "127.0.0.1:8080".into()),
        ("user-agent".into(), visit.user_agent.clone()),
        ("accept-language".into(), accept_language.into()),
        ("accept".into(), "*/*".into()),
    ];
    visit.host = "127.0.0.1:8080".into();
    visit
}

fn fixture() -> Fixture {
    let geo = Arc::new(geo_resolver());
    let devices = Arc::new(DeviceDetector::new(100_000).expect("uap-core regexes load"));
    let bots = Arc::new(BotDetector::new(&[]).expect("crawler patterns load"));
    let mut env = TrafficEnv::in_memory("benchmark-signing-key-0123456789");
    env.enrichment = Enrichment {
        geo: geo.clone(),
        devices: devices.clone(),
        bots: bots.clone(),
    };
    let snapshot = RoutingSnapshot::build(1, routing_data(), &Registry::builtin());
    assert!(
        snapshot.warnings.is_empty(),
        "the benchmark campaign compiles: {:?}",
        snapshot.warnings
    );
    let ips: Vec<IpAddr> = lines(IPS)
        .iter()
        .map(|ip| ip.parse().expect("bench/data/ips.txt holds IPs"))
        .collect();
    let user_agents = lines(USER_AGENTS);
    let visits = (0..VISITS).map(|n| visit(n, &ips, &user_agents)).collect();
    Fixture {
        env,
        snapshot,
        geo,
        devices,
        bots,
        ips,
        user_agents,
        visits,
    }
}

/// Prints what the visitor mix does on this campaign: how often GeoIP knows the country and
/// which stream takes the clicks (routing a copy of the environment, so the benches start from
/// empty visitor memory).
fn describe(f: &Fixture) {
    let known = f
        .ips
        .iter()
        .filter(|ip| !f.geo.lookup(**ip).country_code.is_empty())
        .count();
    let mut env = f.env.clone();
    env.uniqueness = Arc::new(switchyard::traffic::MemoryUniqueness::new(1 << 20));
    env.hits = Arc::new(switchyard::traffic::HitCounters::default());
    let route = f
        .snapshot
        .campaign_by_alias("bench")
        .expect("bench campaign");
    let mut by_stream = std::collections::BTreeMap::new();
    let mut unique = 0;
    // Twice round the cycle: the second pass meets returning visitors, as a long run does.
    for visit in f.visits.iter().chain(&f.visits) {
        let result = route_click(&env, &f.snapshot, route, visit, &RouteOptions::default());
        *by_stream
            .entry(result.click.stream_id.unwrap_or(0))
            .or_insert(0u32) += 1;
        unique += u32::from(result.click.is_unique_campaign);
    }
    eprintln!(
        "visitors: {} IPs ({} with a GeoIP country; fresh ones: {:?}), {} User-Agents; {} visits, {} unique in the campaign, by stream id: {:?}",
        f.ips.len(),
        known,
        f.geo.lookup(fresh_ip(3)).country_code,
        f.user_agents.len(),
        2 * f.visits.len(),
        unique,
        by_stream
    );
}

fn stages<M: Measurement + 'static>(c: &mut Criterion<M>) {
    let f = fixture();
    describe(&f);

    let mut n = 0usize;
    c.bench_function("geo_lookup", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            black_box(f.geo.lookup(f.ips[n % f.ips.len()]))
        })
    });

    for ua in &f.user_agents {
        f.devices.detect(ua);
    }
    c.bench_function("ua_detect_cached", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            black_box(f.devices.detect(f.user_agents[n % f.user_agents.len()]))
        })
    });

    let uncached = DeviceDetector::new(0).expect("uap-core regexes load");
    c.bench_function("ua_parse_uncached", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            black_box(uncached.detect(f.user_agents[n % f.user_agents.len()]))
        })
    });

    c.bench_function("bot_user_agent", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            black_box(
                f.bots
                    .is_bot_user_agent(f.user_agents[n % f.user_agents.len()]),
            )
        })
    });

    let route = f
        .snapshot
        .campaign_by_alias("bench")
        .expect("bench campaign");
    let options = RouteOptions::default();
    // Visits cycle, except that every fourth one gets a fresh address each time round (the
    // cycle's length is a multiple of 4, so these are always the same slots).
    let mut visits = f.visits.clone();
    let mut sequence = VISITS;
    c.bench_function("route_click", |b| {
        b.iter(|| {
            sequence += 1;
            let visit = &mut visits[(sequence % VISITS) as usize];
            if sequence % 4 == 3 {
                visit.ip = fresh_ip(sequence);
            }
            black_box(route_click(&f.env, &f.snapshot, route, visit, &options))
        })
    });

    // The redirect template of stream 1, expanded for an enriched click.
    let spec: Value = serde_json::from_str(CAMPAIGN).expect("bench/campaign.json is JSON");
    let template = Template::parse(spec["streams"][0]["url"].as_str().expect("url"))
        .expect("the template parses");
    let visit = &f.visits[0];
    let mut click = Click::blank();
    click.sub_id = "1a2b3c4d5e6f7".into();
    click.campaign_id = 1;
    click.stream_id = Some(1);
    click.ip = visit.ip.to_string();
    click.keyword = "shoes".into();
    click.source = "fb".into();
    let campaign = &route.campaign;
    let mut ctx = ClickContext::new(&f.env, visit, campaign, click, false);
    ctx.finish_enrichment();
    let macros = ClickMacros {
        ctx: &ctx,
        offer_link: None,
    };
    c.bench_function("template_expand", |b| {
        b.iter(|| black_box(template.expand(&macros)))
    });
}

/// The calling thread's CPU time, in nanoseconds (formatted like wall time).
struct ThreadCpuTime {
    wall: WallTime,
}

impl Measurement for ThreadCpuTime {
    type Intermediate = cpu_time::ThreadTime;
    type Value = std::time::Duration;

    fn start(&self) -> Self::Intermediate {
        cpu_time::ThreadTime::now()
    }

    fn end(&self, start: Self::Intermediate) -> Self::Value {
        start.elapsed()
    }

    fn add(&self, a: &Self::Value, b: &Self::Value) -> Self::Value {
        *a + *b
    }

    fn zero(&self) -> Self::Value {
        std::time::Duration::ZERO
    }

    fn to_f64(&self, value: &Self::Value) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args()
}

fn main() {
    if std::env::var_os("BENCH_WALL_TIME").is_some() {
        let mut c = config();
        stages(&mut c);
        c.final_summary();
    } else {
        let mut c = config().with_measurement(ThreadCpuTime { wall: WallTime });
        stages(&mut c);
        c.final_summary();
    }
}
