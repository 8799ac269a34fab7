//! How far past the 5 ms budget a hostile Rhai call ends, in a release build: each hostile
//! script is called 50 times through the registry (its guard unthrottled, its ratio switch
//! off) and the worst and median wall times are printed. `cargo bench -p switchyard --bench
//! script_deadline`. The unit test `hostile_scripts_end_within_the_deadline_and_get_disabled`
//! asserts a looser margin, for unoptimised builds.

use std::time::{Duration, Instant};

use serde_json::json;
use switchyard::config::PluginsConfig;
use switchyard::guard::GuardPolicy;
use switchyard::model::{Campaign, Click, NewCampaign};
use switchyard::reload::load_plugins;
use switchyard::traffic::{ClickContext, TrafficEnv, Visit};

const HOSTILE: &[(&str, &str)] = &[
    ("spin", "fn filter(click, params) { loop { } }"),
    (
        "busy",
        "fn filter(click, params) { let x = 0; for i in 0..100000000 { x += i; } x > 0 }",
    ),
    (
        "map_all",
        "fn filter(click, params) { let a = []; a.pad(4000, 1); let b = a.map(|x| x + 1); let c = b.map(|x| x * 2); c.len() > 0 }",
    ),
    (
        "sort_all",
        "fn filter(click, params) { let a = []; for i in 0..4000 { a.push(4000 - i); } a.sort(|x, y| x - y); a.sort(|x, y| y - x); true }",
    ),
    (
        "big_map",
        "fn filter(click, params) { let m = #{}; for i in 0..1000 { m[`k${i}`] = i; } let v = m.values(); m.keys().len() + v.len() > 0 }",
    ),
    (
        "grow",
        "fn filter(click, params) { let s = \"xx\"; loop { s += s; } }",
    ),
];

fn main() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("filters")).unwrap();
    for (name, text) in HOSTILE {
        std::fs::write(dir.path().join(format!("filters/{name}.rhai")), text).unwrap();
    }
    let policy = GuardPolicy {
        min_calls: u32::MAX,
        cpu_share: 1.0,
        cpu_burst: Duration::from_secs(3_600),
        ..GuardPolicy::default()
    };
    let config = PluginsConfig {
        scripts_dir: dir.path().to_path_buf(),
        native_dir: "/nonexistent".into(),
        cache_dir: std::env::temp_dir(),
        watch: false,
        guard: policy.clone(),
        ..switchyard::config::defaults().plugins
    };
    let registry = load_plugins(&config).unwrap().registry;
    let env = TrafficEnv::in_memory("bench-signing-key");
    let campaign = Campaign::from_new(1, &NewCampaign::new("c", "C", "t"));
    let visit = Visit::new("81.2.69.160".parse().unwrap(), "Mozilla/5.0 Chrome/120.0");
    println!(
        "budget {} ms; 50 calls each (worst, median)",
        policy.call_budget.as_millis()
    );
    for (name, _) in HOSTILE {
        let filter = registry
            .filter(&format!("script:{name}"))
            .unwrap()
            .build(&json!({}))
            .unwrap();
        let mut times: Vec<Duration> = (0..50)
            .map(|_| {
                let mut click = Click::blank();
                click.ip = visit.ip.to_string();
                let mut ctx = ClickContext::new(&env, &visit, &campaign, click, false);
                let started = Instant::now();
                // Some end on their own limits (operations, sizes) before the budget, or finish
                // in time in a release build; what matters is that none ends late.
                let _ = filter.matches(&mut ctx);
                started.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "{name:10} worst {:6.2} ms  median {:6.2} ms  (past the budget by at most {:5.2} ms)",
            times[49].as_secs_f64() * 1e3,
            times[25].as_secs_f64() * 1e3,
            (times[49].as_secs_f64() - policy.call_budget.as_secs_f64()).max(0.0) * 1e3
        );
    }
}
