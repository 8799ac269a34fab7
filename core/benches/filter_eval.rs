//! One stream filter evaluation by origin: built-in vs Rhai script (native plugins are added by
//! the native loader's benchmark). Each filter answers the same question — "is the visitor in
//! GB?" — against a click whose geography is already known, so the figure is the cost of the
//! call itself (the script through its guard, as routing calls it). `guard_admit_finish` is
//! the guard alone. `rhai_first_call` adds the once-per-click script view of the click.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use switchyard::config::PluginsConfig;
use switchyard::enrich::{Enrichment, GeoInfo, GeoLookup};
use switchyard::model::{Campaign, Click, NewCampaign};
use switchyard::reload::load_plugins;
use switchyard::traffic::{ClickContext, TrafficEnv, Visit};

struct FixedGeo;

impl GeoLookup for FixedGeo {
    fn lookup(&self, _: IpAddr) -> GeoInfo {
        GeoInfo {
            country_code: "GB".into(),
            city: "London".into(),
            ..GeoInfo::default()
        }
    }
}

fn bench(c: &mut Criterion) {
    let scripts = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(scripts.path().join("filters")).unwrap();
    std::fs::write(
        scripts.path().join("filters/in_gb.rhai"),
        "fn filter(click, params) { click.country == params.country }\n",
    )
    .unwrap();
    let config = PluginsConfig {
        scripts_dir: scripts.path().to_path_buf(),
        native_dir: "/nonexistent".into(),
        cache_dir: std::env::temp_dir(),
        watch: false,
        // Unthrottled: back-to-back calls would use up the per-kind time budget, and the
        // bench would measure skips.
        // A long call budget too: the bench measures a call's cost, and a wall-clock deadline
        // would stop a call the OS happens to preempt mid-measurement.
        guard: switchyard::guard::GuardPolicy {
            call_budget: std::time::Duration::from_secs(1),
            native_deadline: std::time::Duration::from_secs(1),
            cpu_share: 1.0,
            cpu_burst: std::time::Duration::from_secs(3_600),
            ..switchyard::guard::GuardPolicy::default()
        },
        ..switchyard::config::defaults().plugins
    };
    let registry = load_plugins(&config).unwrap().registry;
    let builtin = registry
        .filter("country")
        .unwrap()
        .build(&json!(["GB"]))
        .unwrap();
    let builtin_ip = registry
        .filter("ip")
        .unwrap()
        .build(&json!(["81.2.69.0/24", "10.0.0.0/8"]))
        .unwrap();
    let script = registry
        .filter("script:in_gb")
        .unwrap()
        .build(&json!({"country": "GB"}))
        .unwrap();

    let mut env = TrafficEnv::in_memory("bench-signing-key");
    env.enrichment = Enrichment {
        geo: std::sync::Arc::new(FixedGeo),
        ..Enrichment::default()
    };
    let campaign = Campaign::from_new(1, &NewCampaign::new("c", "C", "t"));
    let visit = Visit::new(
        "81.2.69.160".parse().unwrap(),
        "Mozilla/5.0 (Windows NT 10.0) Chrome/120.0",
    );
    let click = || {
        let mut click = Click::blank();
        click.ip = visit.ip.to_string();
        click
    };

    let mut group = c.benchmark_group("filter_eval");
    let mut ctx = ClickContext::new(&env, &visit, &campaign, click(), false);
    ctx.geo();
    group.bench_function("builtin_country", |b| {
        b.iter(|| black_box(builtin.matches(&mut ctx).unwrap()))
    });
    group.bench_function("builtin_ip_cidr", |b| {
        b.iter(|| black_box(builtin_ip.matches(&mut ctx).unwrap()))
    });
    assert!(script.matches(&mut ctx).unwrap());
    group.bench_function("rhai_script", |b| {
        b.iter(|| black_box(script.matches(&mut ctx).unwrap()))
    });
    group.bench_function("rhai_first_call", |b| {
        b.iter(|| {
            let mut fresh = ClickContext::new(&env, &visit, &campaign, click(), false);
            black_box(script.matches(&mut fresh).unwrap())
        })
    });
    // The guard every script and native call goes through (the registry's wrapper): admit,
    // measure on the coarse clock, count.
    let guard = switchyard::guard::KindGuard::new("bench:guard", "v1", &config.guard);
    group.bench_function("guard_admit_finish", |b| {
        b.iter(|| {
            let call = guard.admit().unwrap();
            guard.finish(black_box(call), None);
        })
    });
    group.bench_function("context_only", |b| {
        b.iter(|| black_box(ClickContext::new(&env, &visit, &campaign, click(), false).now))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
