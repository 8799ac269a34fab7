//! The shipped example scripts and hostile scripts, through the registry as routing uses them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rhai::{Dynamic, Map};
use serde_json::{Value, json};

use crate::config::PluginsConfig;
use crate::model::{Campaign, Click, NewCampaign};
use crate::registry::{ActionEnv, FileOwner, Registry, Reply};
use crate::reload::load_plugins;
use crate::template::Template;
use crate::traffic::{ClickContext, TrafficEnv, Visit};

fn shipped_scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts")
}

fn plugins_config(scripts_dir: PathBuf) -> PluginsConfig {
    PluginsConfig {
        scripts_dir,
        native_dir: PathBuf::from("/nonexistent"),
        cache_dir: std::env::temp_dir(),
        watch: false,
        // Back-to-back calls would exhaust the per-kind time budget (tested in `guard`).
        guard: crate::guard::GuardPolicy {
            cpu_share: 1.0,
            cpu_burst: Duration::from_secs(60),
            ..crate::guard::GuardPolicy::default()
        },
        ..crate::config::defaults().plugins
    }
}

fn registry(dir: PathBuf) -> Registry {
    load_plugins(&plugins_config(dir))
        .map(|l| l.registry)
        .expect("scripts load")
}

fn visit(ua: &str, query: &[(&str, &str)], headers: &[(&str, &str)]) -> Visit {
    let mut visit = Visit::new("203.0.113.9".parse().unwrap(), ua);
    visit.query = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    visit.headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    visit
}

fn filter_matches(
    registry: &Registry,
    name: &str,
    payload: Value,
    visit: &Visit,
) -> Result<bool, String> {
    let env = TrafficEnv::in_memory("script-test-key");
    let campaign = Campaign::from_new(1, &NewCampaign::new("c", "C", "t"));
    let mut click = Click::blank();
    click.ip = visit.ip.to_string();
    click.user_agent = visit.user_agent.clone();
    let mut ctx = ClickContext::new(&env, visit, &campaign, click, false);
    let filter = registry
        .filter(name)
        .ok_or("unknown filter")?
        .build(&payload)?;
    filter.matches(&mut ctx).map_err(|e| e.0)
}

struct TestEnv(Click);

impl ActionEnv for TestEnv {
    fn expand(&self, template: &Template) -> String {
        template.expand(&crate::template::NoMacroValues)
    }
    fn base_url(&self) -> String {
        "http://tracker.test".into()
    }
    fn hop_url(&self, url: &str) -> String {
        url.into()
    }
    fn owner(&self) -> Option<FileOwner> {
        None
    }
    fn click(&self) -> &Click {
        &self.0
    }
}

fn run_action(
    registry: &Registry,
    name: &str,
    payload: Value,
    click: Click,
) -> Result<Reply, String> {
    let action = registry
        .action(name)
        .ok_or("unknown action")?
        .build(&payload, &Value::Null)?;
    action.run(&TestEnv(click)).map_err(|e| e.0)
}

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

#[test]
fn shipped_scripts_all_load() {
    let loaded =
        load_plugins(&plugins_config(shipped_scripts())).expect("every shipped script compiles");
    let names: Vec<String> = loaded.scripts.iter().map(|s| s.info.name.clone()).collect();
    assert_eq!(names.len(), 9, "three per kind: {names:?}");
    for script in &loaded.scripts {
        assert!(
            !script.info.description.is_empty(),
            "{} needs a header comment",
            script.info.name
        );
        assert!(
            !script.info.payload.example.is_null(),
            "{} needs a payload example",
            script.info.name
        );
    }
}

#[test]
fn split_bucket_is_deterministic_and_splits() {
    let registry = registry(shipped_scripts());
    let mut buckets = [0; 2];
    for i in 0..200 {
        let ua = format!("{CHROME} {i}");
        let v = visit(&ua, &[], &[]);
        let first = filter_matches(
            &registry,
            "script:split_bucket",
            json!({"buckets": 2, "take": [0]}),
            &v,
        )
        .unwrap();
        let again = filter_matches(
            &registry,
            "script:split_bucket",
            json!({"buckets": 2, "take": [0]}),
            &v,
        )
        .unwrap();
        assert_eq!(first, again, "the same visitor always gets the same bucket");
        buckets[usize::from(first)] += 1;
    }
    assert!(
        buckets[0] > 60 && buckets[1] > 60,
        "roughly even: {buckets:?}"
    );
}

#[test]
fn utm_complete_and_headless_browser() {
    let registry = registry(shipped_scripts());
    let payload = json!({"required": ["utm_source", "utm_campaign"]});
    assert!(
        filter_matches(
            &registry,
            "script:utm_complete",
            payload.clone(),
            &visit(CHROME, &[("utm_source", "fb"), ("utm_campaign", "x")], &[])
        )
        .unwrap()
    );
    assert!(
        !filter_matches(
            &registry,
            "script:utm_complete",
            payload,
            &visit(CHROME, &[("utm_source", "fb")], &[])
        )
        .unwrap()
    );
    let headless = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36";
    let with_language = [("accept-language", "en-US")];
    assert!(
        filter_matches(
            &registry,
            "script:headless_browser",
            json!({}),
            &visit(headless, &[], &with_language)
        )
        .unwrap()
    );
    assert!(
        !filter_matches(
            &registry,
            "script:headless_browser",
            json!({}),
            &visit(CHROME, &[], &with_language)
        )
        .unwrap()
    );
    assert!(
        filter_matches(
            &registry,
            "script:headless_browser",
            json!({}),
            &visit(CHROME, &[], &[])
        )
        .unwrap(),
        "no Accept-Language"
    );
}

#[test]
fn shipped_actions_answer() {
    let registry = registry(shipped_scripts());
    let mut click = Click::blank();
    click.sub_id = "abc123".into();
    click.country_code = "DE".into();
    click.created_at = 3 * 3_600;
    let geo =
        json!({"urls": {"DE": "https://de.offer.test/?a=1"}, "default": "https://offer.test/"});
    assert_eq!(
        run_action(&registry, "script:geo_redirect", geo.clone(), click.clone()).unwrap(),
        Reply::Redirect {
            url: "https://de.offer.test/?a=1&subid=abc123".into(),
            status: 302
        }
    );
    let mut us = click.clone();
    us.country_code = "US".into();
    assert_eq!(
        run_action(&registry, "script:geo_redirect", geo, us).unwrap(),
        Reply::Redirect {
            url: "https://offer.test/?subid=abc123".into(),
            status: 302
        }
    );
    let Reply::Content {
        status,
        content_type,
        body,
        headers,
    } = run_action(&registry, "script:click_json", json!({}), click.clone()).unwrap()
    else {
        panic!("click_json answers content");
    };
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["sub_id"], "abc123");
    assert_eq!(doc["country"], "DE");
    assert_eq!(
        headers,
        vec![("Cache-Control".to_string(), "no-store".to_string())]
    );
    assert_eq!(
        run_action(
            &registry,
            "script:rotate_by_hour",
            json!({"urls": ["https://a.test/", "https://b.test/"]}),
            click
        )
        .unwrap(),
        Reply::Redirect {
            url: "https://b.test/".into(),
            status: 302
        },
        "hour 3 of 2 URLs is the second"
    );
}

fn response(status: i64, body: &str, elapsed_ms: i64) -> Map {
    let mut map = Map::new();
    map.insert("status".into(), Dynamic::from(status));
    map.insert("body".into(), Dynamic::from(body.to_string()));
    map.insert(
        "url".into(),
        Dynamic::from("https://page.test/".to_string()),
    );
    map.insert("elapsed_ms".into(), Dynamic::from(elapsed_ms));
    map.insert("error".into(), Dynamic::from(String::new()));
    map
}

#[test]
fn shipped_trigger_checks() {
    let loaded = load_plugins(&plugins_config(shipped_scripts())).unwrap();
    let script = |name: &str| {
        loaded
            .scripts
            .iter()
            .find(|s| s.info.name == name)
            .unwrap()
            .clone()
    };
    let flag = |map: &Map, key: &str| map.get(key).and_then(|v| v.as_bool().ok()).unwrap_or(false);
    let status = script("script:status_ok");
    assert!(flag(
        &status.run_check(response(200, "", 10), &json!({})).unwrap(),
        "ok"
    ));
    let down = status.run_check(response(503, "", 10), &json!({})).unwrap();
    assert!(!flag(&down, "ok") && flag(&down, "disable"));
    let body = script("script:body_contains");
    assert!(flag(
        &body
            .run_check(
                response(200, "<b>Buy now</b>", 10),
                &json!({"text": "Buy now"})
            )
            .unwrap(),
        "ok"
    ));
    assert!(flag(
        &body
            .run_check(response(200, "sold out", 10), &json!({"text": "Buy now"}))
            .unwrap(),
        "replace_url"
    ));
    let fast = script("script:fast_enough");
    assert!(flag(
        &fast
            .run_check(response(200, "", 300), &json!({"max_ms": 500}))
            .unwrap(),
        "ok"
    ));
    assert!(flag(
        &fast
            .run_check(response(200, "", 900), &json!({"max_ms": 500}))
            .unwrap(),
        "disable"
    ));
}

/// How far past its 5 ms budget a hostile call may end in these (unoptimised) test builds. A
/// release build stops every case below within about 1 ms of the budget (the deadline is
/// checked on every operation); debug builds run Rhai's own operations several times slower.
const DEADLINE_MARGIN: Duration = Duration::from_millis(20);

#[test]
fn hostile_scripts_end_within_the_deadline_and_get_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let filters = dir.path().join("filters");
    std::fs::create_dir_all(&filters).unwrap();
    for (name, body) in [
        ("spin", "fn filter(click, params) { loop { } }"),
        (
            "recurse",
            "fn deeper(n) { deeper(n + 1) }\nfn filter(click, params) { deeper(0) }",
        ),
        (
            "grow",
            "fn filter(click, params) { let s = \"xx\"; loop { s += s; } }",
        ),
        (
            "busy",
            "fn filter(click, params) { let x = 0; for i in 0..100000000 { x += i; } x > 0 }",
        ),
        // Single heavy operations: a closure over the largest array, a sort with a
        // comparator, building a big map (each step re-checks the data sizes).
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
        ("wrong_type", "fn filter(click, params) { \"yes\" }"),
        ("no_eval", "fn filter(click, params) { eval(\"true\") }"),
    ] {
        std::fs::write(filters.join(format!("{name}.rhai")), body).unwrap();
    }
    let loaded = load_plugins(&plugins_config(dir.path().to_path_buf()));
    let registry = match loaded {
        Ok(l) => l.registry,
        Err(errors) => {
            // `eval` is refused when compiling: everything else loads.
            assert!(errors.iter().all(|e| e.contains("no_eval")), "{errors:?}");
            std::fs::remove_file(filters.join("no_eval.rhai")).unwrap();
            load_plugins(&plugins_config(dir.path().to_path_buf()))
                .unwrap()
                .registry
        }
    };
    let v = visit(CHROME, &[], &[]);
    let budget = crate::guard::GuardPolicy::default().call_budget;
    for name in [
        "spin",
        "recurse",
        "grow",
        "busy",
        "map_all",
        "sort_all",
        "big_map",
        "wrong_type",
    ] {
        let started = Instant::now();
        let result = filter_matches(&registry, &format!("script:{name}"), json!({}), &v);
        let took = started.elapsed();
        assert!(result.is_err(), "{name} must fail, got {result:?}");
        assert!(
            took < budget + DEADLINE_MARGIN,
            "{name} took {took:?} (budget {budget:?} + margin {DEADLINE_MARGIN:?})"
        );
    }
    // A script that keeps failing is disabled by its guard (after `min_calls` calls in the
    // window; its time budget skips calls meanwhile): later calls fail at once.
    let started = Instant::now();
    let error = loop {
        let error = filter_matches(&registry, "script:spin", json!({}), &v).unwrap_err();
        if error.contains("disabled") {
            break error;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never disabled: {error}"
        );
    };
    assert!(error.contains("calls failed"), "{error}");
    let started = Instant::now();
    let error = filter_matches(&registry, "script:spin", json!({}), &v).unwrap_err();
    assert!(error.contains("disabled"), "{error}");
    assert!(started.elapsed() < Duration::from_millis(5));
}
