//! Native plugins end to end: the example and test cdylibs are built with cargo from here,
//! copied into a plugin directory, loaded, registered and driven through the real click
//! pipeline (`route_click` over a routing snapshot).
//!
//! Builds go to `<target>/plugin-builds/<variant>`: one target directory per feature set,
//! because a cdylib's file name does not change with its features and parallel test processes
//! must not overwrite each other's libraries. Cargo releases its build lock before it runs the
//! tests, so building from a test does not deadlock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchyard::guard::{GuardPolicy, GuardStatus};
use switchyard::model::{
    Campaign, CampaignType, Money, ObjectState, Stream, StreamFilter, StreamSchema, StreamType,
};
use switchyard::native::{
    self, LoadedPlugin, PluginError, PluginState, load_library, register_into,
};
use switchyard::registry::{Origin, Registry, Reply};
use switchyard::traffic::{
    RouteOptions, RouteResult, RoutingData, RoutingSnapshot, TrafficEnv, Visit, route_click,
};

/// The feature sets the tests build the plugins with.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Variant {
    /// All four plugins, default features.
    Default,
    /// `switchyard-misbehaving` with `variant-b` (its `misbehaving_variant` filter matches).
    VariantB,
    /// `switchyard-misbehaving` claiming another ABI version.
    AbiMismatch,
}

impl Variant {
    fn dir_name(self) -> &'static str {
        match self {
            Variant::Default => "default",
            Variant::VariantB => "variant-b",
            Variant::AbiMismatch => "abi-mismatch",
        }
    }

    fn cargo_args(self) -> &'static [&'static str] {
        match self {
            Variant::Default => &[
                "-p",
                "switchyard-ip-reputation",
                "-p",
                "switchyard-signed-redirect",
                "-p",
                "switchyard-misbehaving",
                "-p",
                "switchyard-page-watch",
            ],
            Variant::VariantB => &["-p", "switchyard-misbehaving", "--features", "variant-b"],
            Variant::AbiMismatch => &[
                "-p",
                "switchyard-misbehaving",
                "--features",
                "abi-test-mismatch",
            ],
        }
    }
}

/// The target directory this test binary was built in (`<target>/<profile>/deps/it-…`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .expect("the test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// The profile the plugins are built with: the one this test binary was built with.
fn release() -> bool {
    !cfg!(debug_assertions)
}

/// Builds `variant` once per test process; returns its output directory.
fn built(variant: Variant) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<Variant, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(dir) = built.get(&variant) {
        return dir.clone();
    }
    let target = target_dir().join("plugin-builds").join(variant.dir_name());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let started = Instant::now();
    let output = Command::new(cargo)
        .current_dir(workspace)
        .arg("build")
        .args(variant.cargo_args())
        .args(release().then_some("--release"))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building the {variant:?} plugins failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "built the {variant:?} plugins in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let dir = target.join(if release() { "release" } else { "debug" });
    built.insert(variant, dir.clone());
    dir
}

fn library_file(crate_name: &str) -> String {
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        crate_name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}

/// A plugin directory and cache directory of one test.
pub(crate) struct PluginDir {
    root: tempfile::TempDir,
}

impl PluginDir {
    pub(crate) fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("plugins")).unwrap();
        PluginDir { root }
    }

    pub(crate) fn plugins(&self) -> PathBuf {
        self.root.path().join("plugins")
    }

    fn cache(&self) -> PathBuf {
        self.root.path().join("plugin-cache")
    }

    /// Copies `crate_name`'s library of `variant` into the plugin directory (overwriting a
    /// previous build there, as a deployment would); returns its path.
    pub(crate) fn install(&self, crate_name: &str, variant: Variant) -> PathBuf {
        let file = library_file(crate_name);
        let destination = self.plugins().join(&file);
        std::fs::copy(built(variant).join(&file), &destination).unwrap();
        destination
    }

    fn load(&self, path: &Path) -> Result<LoadedPlugin, PluginError> {
        load_library(path, &self.cache())
    }
}

fn registry_with(plugins: &[&LoadedPlugin]) -> Registry {
    registry_under(&unthrottled(), plugins)
}

/// The default policy without the per-kind time budget, which back-to-back calls in a test
/// would exhaust (the budget has its own tests in `guard`).
fn unthrottled() -> GuardPolicy {
    GuardPolicy {
        cpu_share: 1.0,
        cpu_burst: Duration::from_secs(60),
        ..GuardPolicy::default()
    }
}

/// A registry whose user-code kinds run under `policy`.
fn registry_under(policy: &GuardPolicy, plugins: &[&LoadedPlugin]) -> Registry {
    let mut registry = Registry::builtin_after(None, policy);
    for plugin in plugins {
        register_into(plugin, &mut registry).unwrap();
    }
    registry
}

fn campaign() -> Campaign {
    Campaign {
        id: 1,
        alias: "native".into(),
        name: "Native plugins".into(),
        campaign_type: CampaignType::Position,
        state: ObjectState::Active,
        cookies_ttl: 24,
        position: 0,
        cost_type: "CPC".into(),
        cost_value: Money::default(),
        cost_currency: "USD".into(),
        cost_auto: false,
        group_id: None,
        bind_visitors: None,
        traffic_source_id: None,
        token: "native-token".into(),
        domain_id: None,
        parameters: json!({}),
        uniqueness_method: "ip".into(),
        uniqueness_use_cookies: false,
        traffic_loss: 0.0,
        notes: String::new(),
        created_at: 0,
        updated_at: 0,
    }
}

/// A stream of campaign 1 that runs `action` with `payload`, behind `filters`.
fn stream(
    id: i64,
    stream_type: StreamType,
    filters: &[(&str, Value)],
    action: &str,
    payload: Value,
) -> Stream {
    Stream {
        id,
        campaign_id: 1,
        stream_type,
        name: format!("stream {id}"),
        position: id,
        weight: 100,
        schema: StreamSchema::Action,
        action_type: action.into(),
        action_payload: payload,
        action_options: Value::Null,
        collect_clicks: true,
        filter_or: false,
        filters: filters
            .iter()
            .enumerate()
            .map(|(i, (name, payload))| StreamFilter {
                id: id * 100 + i as i64,
                stream_id: id,
                name: name.to_string(),
                mode: "accept".into(),
                payload: payload.clone(),
            })
            .collect(),
        landings: Vec::new(),
        offers: Vec::new(),
        comments: String::new(),
        state: ObjectState::Active,
        created_at: 0,
        updated_at: 0,
    }
}

/// A campaign whose first stream has `filter`; the default stream redirects to
/// `https://fallback.test/`.
fn snapshot_with_filter(registry: &Registry, filter: &str, payload: Value) -> RoutingSnapshot {
    let data = RoutingData {
        campaigns: vec![campaign()],
        streams: vec![
            stream(
                1,
                StreamType::Regular,
                &[(filter, payload)],
                "http",
                json!("https://matched.test/"),
            ),
            stream(
                2,
                StreamType::Default,
                &[],
                "http",
                json!("https://fallback.test/"),
            ),
        ],
        ..RoutingData::default()
    };
    RoutingSnapshot::build(1, data, registry)
}

fn snapshot_with_action(registry: &Registry, action: &str, payload: Value) -> RoutingSnapshot {
    let data = RoutingData {
        campaigns: vec![campaign()],
        streams: vec![stream(1, StreamType::Regular, &[], action, payload)],
        ..RoutingData::default()
    };
    RoutingSnapshot::build(1, data, registry)
}

fn click(snapshot: &RoutingSnapshot, ip: &str, query: &[(&str, &str)]) -> RouteResult {
    let env = TrafficEnv::in_memory("a test signing key of some length");
    let route = snapshot
        .campaign_by_id(1)
        .expect("the campaign is in the snapshot");
    let mut visit = Visit::new(ip.parse::<IpAddr>().unwrap(), "Mozilla/5.0 test");
    visit.query = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    route_click(&env, snapshot, route, &visit, &RouteOptions::default())
}

/// The guard's counters of the kind `name`.
fn guard_of(registry: &Registry, name: &str) -> GuardStatus {
    registry.guards()[name].status()
}

fn redirect_url(result: &RouteResult) -> &str {
    match &result.reply {
        Reply::Redirect { url, .. } => url,
        other => panic!("expected a redirect, got {other:?}"),
    }
}

#[test]
fn ip_reputation_matches_listed_ips_at_or_above_the_threshold() {
    let dir = PluginDir::new();
    let path = dir.install("switchyard-ip-reputation", Variant::Default);
    let plugin = dir.load(&path).unwrap();
    assert_eq!(plugin.name(), "ip-reputation");
    assert_eq!(
        plugin.filter_names().collect::<Vec<_>>(),
        ["native:ip_reputation"]
    );
    let registry = registry_with(&[&plugin]);
    let info = registry.filter("native:ip_reputation").unwrap().info();
    assert_eq!(
        info.origin,
        Origin::Native {
            library: path.display().to_string()
        }
    );
    assert_eq!(info.payload.example["min_score"], 50);
    assert!(registry.filter("country").is_some(), "built-ins stay");

    let list = dir.root.path().join("bad_ips.txt");
    std::fs::write(
        &list,
        "# ip score\n203.0.113.7 80\n198.51.100.2 10\n2001:db8::66 99\n",
    )
    .unwrap();
    let snapshot = snapshot_with_filter(
        &registry,
        "native:ip_reputation",
        json!({"list": list, "min_score": 50}),
    );
    assert!(snapshot.warnings.is_empty(), "{:?}", snapshot.warnings);
    assert_eq!(
        redirect_url(&click(&snapshot, "203.0.113.7", &[])),
        "https://matched.test/"
    );
    assert_eq!(
        redirect_url(&click(&snapshot, "2001:db8::66", &[])),
        "https://matched.test/"
    );
    for ip in ["198.51.100.2", "192.0.2.1"] {
        assert_eq!(
            redirect_url(&click(&snapshot, ip, &[])),
            "https://fallback.test/",
            "{ip}"
        );
    }
    let status = plugin.status(registry.guards());
    assert_eq!(status.state, PluginState::Active);
    let guard = status.kinds[0].guard.as_ref().unwrap();
    assert_eq!((guard.calls, guard.failures), (4, 0));

    // A bad payload is the stream's problem, reported when the snapshot is built.
    let broken = snapshot_with_filter(
        &registry,
        "native:ip_reputation",
        json!({"list": dir.root.path().join("missing.txt")}),
    );
    assert!(
        broken
            .warnings
            .iter()
            .any(|w| w.contains("cannot read the list")),
        "{:?}",
        broken.warnings
    );
}

#[test]
fn signed_redirects_carry_the_sub_id_and_a_verifiable_signature() {
    let dir = PluginDir::new();
    let path = dir.install("switchyard-signed-redirect", Variant::Default);
    let plugin = dir.load(&path).unwrap();
    let registry = registry_with(&[&plugin]);
    let key = "vendor-shared-secret-123";
    let snapshot = snapshot_with_action(
        &registry,
        "native:signed_redirect",
        json!({"url": "https://vendor.test/go?offer=7", "key": key, "status": 303}),
    );
    assert!(snapshot.warnings.is_empty(), "{:?}", snapshot.warnings);
    let result = click(&snapshot, "192.0.2.10", &[]);
    let Reply::Redirect { url, status } = &result.reply else {
        panic!("expected a redirect, got {:?}", result.reply);
    };
    assert_eq!(*status, 303);
    let (unsigned, signature) = url.split_once("&sy_sig=").unwrap();
    assert_eq!(
        unsigned,
        format!(
            "https://vendor.test/go?offer=7&sub_id={}",
            result.click.sub_id
        )
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(unsigned.as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(signature, expected);
    assert_eq!(result.click.destination, *url);

    let bad = snapshot_with_action(
        &registry,
        "native:signed_redirect",
        json!({"url": "javascript:alert(1)", "key": key}),
    );
    assert!(
        bad.warnings
            .iter()
            .any(|w| w.contains("absolute http(s) URL")),
        "{:?}",
        bad.warnings
    );
}

#[test]
fn a_panicking_filter_is_contained_counted_and_finally_disabled() {
    let dir = PluginDir::new();
    let path = dir.install("switchyard-misbehaving", Variant::Default);
    let plugin = dir.load(&path).unwrap();
    let registry = registry_with(&[&plugin]);

    // A panic while building makes the stream unrunnable, and says why.
    let snapshot = snapshot_with_filter(
        &registry,
        "native:misbehaving_panic",
        json!({"panic_in": "build"}),
    );
    assert!(
        snapshot
            .warnings
            .iter()
            .any(|w| w.contains("panicked") && w.contains("panic in build")),
        "{:?}",
        snapshot.warnings
    );

    let snapshot = snapshot_with_filter(
        &registry,
        "native:misbehaving_panic",
        json!({"panic_in": "matches"}),
    );
    assert!(snapshot.warnings.is_empty(), "{:?}", snapshot.warnings);
    let min_calls = GuardPolicy::default().min_calls;
    for _ in 0..min_calls {
        // The click is still answered: the filter counts as not matching.
        assert_eq!(
            redirect_url(&click(&snapshot, "192.0.2.1", &[])),
            "https://fallback.test/"
        );
    }
    let kind = guard_of(&registry, "native:misbehaving_panic");
    assert_eq!(kind.state, switchyard::guard::GuardState::Disabled);
    assert_eq!(
        (kind.calls, kind.failures),
        (u64::from(min_calls), u64::from(min_calls))
    );
    assert!(
        kind.messages
            .iter()
            .any(|m| m.contains("panic in matches for click")),
        "{:?}",
        kind.messages
    );
    let status = plugin.status(registry.guards());
    assert!(
        status
            .messages
            .iter()
            .any(|m| m
                .starts_with("native:misbehaving_panic: disabled: 20 of its last 20 calls failed")),
        "{:?}",
        status.messages
    );
    // Other kinds of the library are unaffected.
    assert_eq!(status.state, PluginState::Active);
    // Disabled: no call reaches the plugin any more, the click is still answered, and the
    // trace says why.
    let traced = {
        let env = TrafficEnv::in_memory("a test signing key of some length");
        let route = snapshot.campaign_by_id(1).unwrap();
        let visit = Visit::new("192.0.2.1".parse().unwrap(), "Mozilla/5.0 test");
        let options = RouteOptions {
            trace: true,
            ..RouteOptions::default()
        };
        route_click(&env, &snapshot, route, &visit, &options)
    };
    assert_eq!(redirect_url(&traced), "https://fallback.test/");
    assert!(
        traced.log.iter().any(|line| line.starts_with(
            "Filter \"native:misbehaving_panic\" failed: disabled (20 of its last 20"
        )),
        "{:?}",
        traced.log
    );
    let after = guard_of(&registry, "native:misbehaving_panic");
    assert_eq!(after.calls, kind.calls);
    assert_eq!(after.skipped, kind.skipped + 1);
}

#[test]
fn a_slow_filter_is_disabled_by_its_overrun_ratio() {
    let dir = PluginDir::new();
    let path = dir.install("switchyard-misbehaving", Variant::Default);
    let plugin = dir.load(&path).unwrap();
    let policy = GuardPolicy {
        min_calls: 3,
        max_overrun_ratio: 0.5,
        ..unthrottled()
    };
    let registry = registry_under(&policy, &[&plugin]);
    let snapshot = snapshot_with_filter(
        &registry,
        "native:misbehaving_sleep",
        json!({"sleep_ms": 15}),
    );
    // Outside the user-code pool nothing sets a slow call aside: it still answers (and
    // matches), but it is counted.
    for _ in 0..3 {
        assert_eq!(
            redirect_url(&click(&snapshot, "192.0.2.1", &[])),
            "https://matched.test/"
        );
    }
    let started = Instant::now();
    assert_eq!(
        redirect_url(&click(&snapshot, "192.0.2.1", &[])),
        "https://fallback.test/"
    );
    assert!(
        started.elapsed() < Duration::from_millis(15),
        "a disabled filter is not called"
    );
    let kind = guard_of(&registry, "native:misbehaving_sleep");
    assert_eq!(kind.state, switchyard::guard::GuardState::Disabled);
    assert_eq!((kind.calls, kind.overruns), (3, 3));
    assert!(
        kind.messages.iter().any(|m| m.contains("(budget 5 ms)")),
        "{:?}",
        kind.messages
    );
}

#[test]
fn a_plugin_built_for_another_abi_version_is_refused_naming_both() {
    // The mismatch build claims ABI 1: a plugin built before trigger checks existed.
    let dir = PluginDir::new();
    let path = dir.install("switchyard-misbehaving", Variant::AbiMismatch);
    let error = dir.load(&path).unwrap_err();
    assert!(
        matches!(
            error,
            PluginError::AbiMismatch {
                plugin_version: 1,
                host_version: native::ABI_VERSION,
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert_eq!(native::ABI_VERSION, 2, "the ABI with trigger checks");
    assert!(message.contains("plugin ABI version 1 "), "{message}");
    assert!(
        message.contains(&format!(
            "speaks plugin ABI version {}",
            native::ABI_VERSION
        )),
        "{message}"
    );
    let status = native::PluginStatus::failed(&error);
    assert_eq!(status.state, PluginState::Failed);

    // load_dir reports it beside the libraries that load.
    dir.install("switchyard-ip-reputation", Variant::Default);
    let (loaded, errors) = native::load_dir(&dir.plugins(), &dir.cache());
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].name(), "ip-reputation");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].file(), path);
}

#[test]
fn a_rebuilt_library_at_the_same_path_is_really_reloaded() {
    let dir = PluginDir::new();
    let path = dir.install("switchyard-misbehaving", Variant::Default);
    let first = dir.load(&path).unwrap();
    let old_registry = registry_with(&[&first]);
    let old = snapshot_with_filter(&old_registry, "native:misbehaving_variant", Value::Null);
    assert_eq!(
        redirect_url(&click(&old, "192.0.2.1", &[])),
        "https://fallback.test/"
    );

    // Deploy the new build over the old file, as `cp` would, and load again.
    assert_eq!(
        dir.install("switchyard-misbehaving", Variant::VariantB),
        path
    );
    let second = dir.load(&path).unwrap();
    assert_ne!(first.sha256(), second.sha256());
    assert_ne!(first.loaded_copy(), second.loaded_copy());
    let new_registry = registry_with(&[&second]);
    let new = snapshot_with_filter(&new_registry, "native:misbehaving_variant", Value::Null);
    assert_eq!(
        redirect_url(&click(&new, "192.0.2.1", &[])),
        "https://matched.test/"
    );
    // The old snapshot still runs the old code: nothing was unloaded under it.
    assert_eq!(
        redirect_url(&click(&old, "192.0.2.1", &[])),
        "https://fallback.test/"
    );
    // Loading unchanged content again maps to the same copy.
    let third = dir.load(&path).unwrap();
    assert_eq!(third.loaded_copy(), second.loaded_copy());
}

#[test]
fn action_replies_are_checked_and_see_the_click() {
    let dir = PluginDir::new();
    let path = dir.install("switchyard-misbehaving", Variant::Default);
    let plugin = dir.load(&path).unwrap();
    let registry = registry_with(&[&plugin]);
    let run = |reply: &str| {
        let snapshot = snapshot_with_action(
            &registry,
            "native:misbehaving_reply",
            json!({"reply": reply}),
        );
        assert!(snapshot.warnings.is_empty(), "{:?}", snapshot.warnings);
        click(
            &snapshot,
            "192.0.2.44",
            &[("utm", "spring"), ("sub_id_2", "s2")],
        )
    };
    let ok = run("ok");
    let Reply::Content { body, headers, .. } = &ok.reply else {
        panic!("expected content, got {:?}", ok.reply);
    };
    assert_eq!(
        String::from_utf8_lossy(body),
        "ip=192.0.2.44 utm=spring sub_id_2=s2 stream=Some(1)"
    );
    assert_eq!(
        headers,
        &[("x-plugin".to_string(), "misbehaving".to_string())]
    );
    // Refused replies and panics leave the click with the empty answer (the campaign has no
    // default stream to fall back to).
    for bad in ["javascript", "header_injection", "panic"] {
        let result = run(bad);
        assert_eq!(result.info_type, "do_nothing", "{bad}");
        assert!(
            matches!(&result.reply, Reply::Content { body, .. } if body.is_empty()),
            "{bad}: {:?}",
            result.reply
        );
    }
    let kind = guard_of(&registry, "native:misbehaving_reply");
    assert_eq!((kind.calls, kind.failures), (4, 3));
    assert!(
        kind.messages.iter().any(|m| m.contains("panic:")),
        "{:?}",
        kind.messages
    );
}

#[test]
fn a_failing_action_falls_back_to_the_default_stream() {
    let dir = PluginDir::new();
    let path = dir.install("switchyard-misbehaving", Variant::Default);
    let plugin = dir.load(&path).unwrap();
    let registry = registry_with(&[&plugin]);
    let data = RoutingData {
        campaigns: vec![campaign()],
        streams: vec![
            stream(
                1,
                StreamType::Regular,
                &[],
                "native:misbehaving_reply",
                json!({"reply": "panic"}),
            ),
            stream(
                2,
                StreamType::Default,
                &[],
                "http",
                json!("https://fallback.test/"),
            ),
        ],
        ..RoutingData::default()
    };
    let snapshot = RoutingSnapshot::build(1, data, &registry);
    assert!(snapshot.warnings.is_empty(), "{:?}", snapshot.warnings);
    let env = TrafficEnv::in_memory("a test signing key of some length");
    let visit = Visit::new("192.0.2.9".parse().unwrap(), "Mozilla/5.0 test");
    let options = RouteOptions {
        trace: true,
        ..RouteOptions::default()
    };
    let result = route_click(
        &env,
        &snapshot,
        snapshot.campaign_by_id(1).unwrap(),
        &visit,
        &options,
    );
    assert_eq!(redirect_url(&result), "https://fallback.test/");
    assert_eq!(result.click.stream_id, Some(2));
    assert!(
        result
            .log
            .iter()
            .any(|line| line == "Falling back to default stream #2"),
        "{:?}",
        result.log
    );
}

#[test]
fn a_library_whose_names_are_taken_registers_nothing() {
    let dir = PluginDir::new();
    let path = dir.install("switchyard-misbehaving", Variant::Default);
    let plugin = dir.load(&path).unwrap();
    let mut registry = registry_with(&[&plugin]);
    let before = registry.filters().count();
    let error = register_into(&plugin, &mut registry).unwrap_err();
    assert!(matches!(error, PluginError::Conflict { .. }), "{error:?}");
    assert!(
        error.to_string().contains("native:misbehaving_panic"),
        "{error}"
    );
    assert_eq!(registry.filters().count(), before);
}

/// Per-call cost of a native filter (through its guard, as routing calls it) against a
/// built-in one, through the same `Filter` trait on the same click context, and the guard's
/// own share. Run with
/// `cargo test --release -p switchyard-tests native_filter_call_cost -- --ignored --nocapture`.
#[test]
#[ignore = "timing; run explicitly (in release) to measure"]
fn native_filter_call_cost() {
    use switchyard::model::Click;
    use switchyard::traffic::ClickContext;

    let dir = PluginDir::new();
    let reputation = dir
        .load(&dir.install("switchyard-ip-reputation", Variant::Default))
        .unwrap();
    let misbehaving = dir
        .load(&dir.install("switchyard-misbehaving", Variant::Default))
        .unwrap();
    let registry = registry_with(&[&reputation, &misbehaving]);
    let list = dir.root.path().join("bad_ips.txt");
    std::fs::write(&list, "203.0.113.7 80\n").unwrap();

    let env = TrafficEnv::in_memory("a test signing key of some length");
    let visit = Visit::new("203.0.113.7".parse().unwrap(), "Mozilla/5.0 test");
    let campaign = campaign();
    let mut click = Click::blank();
    click.ip = "203.0.113.7".into();
    let mut ctx = ClickContext::new(&env, &visit, &campaign, click, false);

    let cases = [
        ("ip", json!(["203.0.113.0/24"])),
        ("native:ip_reputation", json!({"list": list})),
        ("native:misbehaving_constant", json!(true)),
    ];
    const CALLS: u32 = 200_000;
    for (name, payload) in cases {
        let filter = registry.filter(name).unwrap().build(&payload).unwrap();
        assert!(filter.matches(&mut ctx).unwrap(), "{name}");
        let mut best = f64::MAX;
        for _ in 0..5 {
            let started = Instant::now();
            for _ in 0..CALLS {
                std::hint::black_box(filter.matches(std::hint::black_box(&mut ctx)).unwrap());
            }
            best = best.min(started.elapsed().as_nanos() as f64 / f64::from(CALLS));
        }
        println!("{name:32} {best:8.1} ns per call");
    }
    // The guard alone (admit, the coarse clock, counting), which the two native kinds above
    // include: their call cost without it is the difference.
    let guard = switchyard::guard::KindGuard::new("native:bench", "v1", &unthrottled());
    let mut best = f64::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        for _ in 0..CALLS {
            let call = guard.admit().unwrap();
            guard.finish(std::hint::black_box(call), None);
        }
        best = best.min(started.elapsed().as_nanos() as f64 / f64::from(CALLS));
    }
    println!("{:32} {best:8.1} ns per call", "guard admit + finish");
}

/// A trigger page for the host's adapter.
fn page(status: u16, body: &str) -> switchyard::triggers::TriggerPage {
    switchyard::triggers::TriggerPage {
        status,
        body: body.into(),
        url: "http://offer.test/".into(),
        elapsed_ms: 4,
        error: String::new(),
    }
}

#[test]
fn native_trigger_checks_load_and_judge_pages() {
    let dir = PluginDir::new();
    let path = dir.install("switchyard-page-watch", Variant::Default);
    let plugin = dir.load(&path).unwrap();
    assert_eq!(plugin.name(), "page-watch");
    assert_eq!(
        plugin.trigger_names().collect::<Vec<_>>(),
        ["native:page_watch"]
    );
    assert_eq!(plugin.filter_names().count(), 0);
    let kind = &plugin.triggers()[0];
    assert_eq!(kind.info().group, "page");
    assert!(
        matches!(&kind.info().origin, Origin::Native { library } if library.contains("page_watch"))
    );

    let params = json!({ "must_contain": "Buy now", "disable": true });
    let passed = kind.check(&params, &page(200, "<a>Buy now</a>")).unwrap();
    assert!(passed.ok, "{passed:?}");
    let fired = kind.check(&params, &page(200, "<p>sold out</p>")).unwrap();
    assert!(!fired.ok && fired.disable, "{fired:?}");
    assert!(fired.message.contains("lacks `Buy now`"), "{fired:?}");
    // Bad params are the plugin's error message, not a strike.
    let refused = kind
        .check(&json!({ "min_bytes": "x" }), &page(200, ""))
        .unwrap_err();
    assert!(refused.contains("min_bytes"), "{refused}");

    assert!(
        plugin
            .status(&Default::default())
            .kinds
            .iter()
            .any(|k| k.name == "native:page_watch" && k.role == "trigger")
    );

    // Another library declaring the same trigger name is refused.
    let conflict = native::check_trigger_names(&plugin, std::slice::from_ref(&plugin)).unwrap_err();
    assert!(
        matches!(conflict, PluginError::TriggerConflict { .. }),
        "{conflict:?}"
    );
    assert!(
        conflict.to_string().contains("native:page_watch"),
        "{conflict}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_trigger_condition_disables_its_stream_and_records_the_event() {
    use switchyard::model::{NewCampaign, NewStream, NewTrigger};
    use switchyard_tests::{Backend, TestDb, TestServer, client, fixed_http_server};

    const ADMIN_KEY: &str = "test-admin-key-0123456789";
    let plugins = PluginDir::new();
    plugins.install("switchyard-page-watch", Variant::Default);
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let extra = format!(
        "[demo]\nseed = false\n\n[admin]\napi_key = \"{ADMIN_KEY}\"\n\n[fetch]\nallow_networks = [\"127.0.0.0/8\"]\ntimeout_ms = 1000\n\n[triggers]\ntick_ms = 100\n\n[plugins]\ndir = \"{}\"\n",
        plugins.plugins().display()
    );
    let server = TestServer::start(&db, &extra).await.unwrap();
    let sold_out = fixed_http_server(200, "text/html", b"<p>sold out</p>".to_vec()).await;
    let selling = fixed_http_server(200, "text/html", b"<p>Buy now</p>".to_vec()).await;
    let store = server.store();
    let stream_for = |alias: &'static str| {
        let store = store.clone();
        async move {
            let campaign = store
                .create_campaign(&NewCampaign::new(alias, alias, &format!("tok-{alias}")))
                .await
                .unwrap();
            let mut stream = NewStream::redirect(campaign.id, "main", "https://offer.test/");
            stream.stream_type = StreamType::Forced;
            store.create_stream(&stream).await.unwrap().id
        }
    };
    // The trigger's own action is a webhook; the check's `disable: true` overrides it.
    let watched = stream_for("watched").await;
    let healthy = stream_for("healthy").await;
    for (stream_id, target) in [(watched, &sold_out), (healthy, &selling)] {
        store
            .create_trigger(&NewTrigger {
                stream_id,
                condition: "native:page_watch".into(),
                action: "webhook".into(),
                target: format!("{target}/landing"),
                interval_seconds: 60,
                payload: json!({ "params": { "must_contain": "Buy now", "disable": true } }),
            })
            .await
            .unwrap();
    }
    server.reload().await;

    let events = |stream: i64| {
        let url = server.url(&format!("/admin_api/v1/streams/{stream}/events"));
        async move {
            client()
                .get(url)
                .header("Api-Key", ADMIN_KEY)
                .send()
                .await
                .unwrap()
                .json::<Vec<Value>>()
                .await
                .unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let watched_events = loop {
        let found = events(watched).await;
        if found.iter().any(|e| e["event"] == "disabled") {
            break found;
        }
        assert!(Instant::now() < deadline, "no `disabled` event: {found:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let check = watched_events
        .iter()
        .find(|e| e["event"] == "check")
        .unwrap();
    assert_eq!(check["data"]["fired"], true, "{check}");
    assert_eq!(check["data"]["condition"], "native:page_watch");
    assert!(
        check["data"]["message"]
            .as_str()
            .unwrap()
            .contains("lacks `Buy now`"),
        "{check}"
    );
    let disabled = store.stream(watched).await.unwrap().unwrap();
    assert_eq!(disabled.state, ObjectState::Disabled);

    // The healthy page was checked and passed.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = events(healthy).await;
        if let Some(check) = found.iter().find(|e| e["event"] == "check") {
            assert_eq!(check["data"]["fired"], false, "{check}");
            assert!(found.iter().all(|e| e["event"] != "disabled"), "{found:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no `check` event: {found:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The plugin listing shows the trigger kind, active after its calls.
    let report: Value = client()
        .get(server.url("/admin_api/v1/plugins"))
        .header("Api-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kind = report["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "native:page_watch")
        .unwrap_or_else(|| panic!("no native:page_watch in {report}"));
    assert_eq!(kind["kind"], "trigger");
    assert_eq!(kind["state"], "active");
    server.stop().await;
}
