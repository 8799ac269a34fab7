//! User code cannot slow or stop the tracker, over HTTP against the running server: hostile
//! Rhai scripts and misbehaving native plugins on one campaign, every click answered, the
//! guard's verdicts in the plugin listing, `/health`, `/metrics` and the routing trace, and an
//! unrelated campaign unaffected.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard::model::{NewCampaign, NewStream, StreamType};
use switchyard_tests::{Backend, TestDb, TestServer, client};

use crate::native::{PluginDir, Variant};

const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// A server with `scripts` and the test plugins, and a short hang limit.
async fn start(db: &TestDb, scripts: &std::path::Path, plugins: &PluginDir) -> TestServer {
    let extra = format!(
        "[demo]\nseed = false\n\n[admin]\napi_key = \"{ADMIN_KEY}\"\n\n[scripts]\ndir = \"{}\"\n\n[plugins]\ndir = \"{}\"\n\n[user_code]\nnative_deadline_ms = 50\nhang_after_ms = 400\n",
        scripts.display(),
        plugins.plugins().display()
    );
    TestServer::start(db, &extra).await.unwrap()
}

/// A campaign whose forced stream is gated by `filter` and whose default stream redirects to
/// `https://default.test/`.
async fn gated(server: &TestServer, alias: &str, filter: &str, payload: Value) {
    let store = server.store();
    let campaign = store
        .create_campaign(&NewCampaign::new(alias, alias, &format!("tok-{alias}")))
        .await
        .unwrap();
    let mut gate = NewStream::redirect(campaign.id, "gate", "https://gate.test/")
        .filter(filter, "accept", payload);
    gate.stream_type = StreamType::Forced;
    store.create_stream(&gate).await.unwrap();
    let mut fallback = NewStream::redirect(campaign.id, "default", "https://default.test/");
    fallback.stream_type = StreamType::Default;
    store.create_stream(&fallback).await.unwrap();
}

/// Clicks `/alias`; the click must be answered with a redirect.
async fn click(server: &TestServer, alias: &str) -> (String, Duration) {
    let started = Instant::now();
    let response = client()
        .get(server.url(&format!("/{alias}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302, "every click is answered ({alias})");
    let location = response.headers()["location"].to_str().unwrap().to_string();
    (location, started.elapsed())
}

async fn get_json(server: &TestServer, path: &str) -> Value {
    client()
        .get(server.url(path))
        .header("Api-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The plugin listing's entry for `name`.
async fn kind(server: &TestServer, name: &str) -> Value {
    get_json(server, "/admin_api/v1/plugins").await["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

/// Clicks `alias` until the plugin listing says `name` is disabled (or fails after `limit`);
/// every click is answered quickly meanwhile, and once disabled the gate never matches.
async fn click_until_disabled(server: &TestServer, alias: &str, name: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        let (_, took) = click(server, alias).await;
        assert!(took < Duration::from_millis(500), "{alias} took {took:?}");
        if kind(server, name).await["state"] == "disabled" {
            break;
        }
        assert!(started.elapsed() < limit, "{name} was never disabled");
    }
    let (location, _) = click(server, alias).await;
    assert_eq!(location, "https://default.test/", "{name} is disabled");
}

fn write(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir.join("filters")).unwrap();
    std::fs::write(dir.join("filters").join(name), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_user_code_is_contained_and_reported() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let scripts = tempfile::tempdir().unwrap();
    // Four calls in five fail: a consecutive-failure count would never disable it.
    write(
        scripts.path(),
        "flaky.rhai",
        "fn filter(click, params) { if hash(click.sub_id) % 5 != 0 { throw \"flaky\"; } false }\n",
    );
    write(
        scripts.path(),
        "heavy.rhai",
        "fn filter(click, params) { let a = []; a.pad(4000, 1); let b = a.map(|x| x + 1); b.map(|x| x * 2).len() > 0 }\n",
    );
    let plugins = PluginDir::new();
    plugins.install("switchyard-misbehaving", Variant::Default);
    let server = start(&db, scripts.path(), &plugins).await;
    gated(&server, "flaky", "script:flaky", json!({})).await;
    gated(&server, "heavy", "script:heavy", json!({})).await;
    gated(
        &server,
        "native-flaky",
        "native:misbehaving_flaky",
        json!({"fail_every": 2}),
    )
    .await;
    gated(&server, "hang", "native:misbehaving_hang", Value::Null).await;
    let store = server.store();
    let plain = store
        .create_campaign(&NewCampaign::new("plain", "Plain", "tok-plain"))
        .await
        .unwrap();
    store
        .create_stream(&NewStream::redirect(
            plain.id,
            "main",
            "https://plain.test/",
        ))
        .await
        .unwrap();
    server.reload().await;

    // The intermittent failures are disabled by their ratio.
    click_until_disabled(&server, "flaky", "script:flaky", Duration::from_secs(20)).await;
    let flaky = kind(&server, "script:flaky").await;
    assert!(
        flaky["reason"].as_str().unwrap().contains("calls failed"),
        "{flaky}"
    );
    click_until_disabled(
        &server,
        "native-flaky",
        "native:misbehaving_flaky",
        Duration::from_secs(20),
    )
    .await;

    // A heavy single operation is stopped at the deadline, then disabled.
    click_until_disabled(&server, "heavy", "script:heavy", Duration::from_secs(20)).await;
    let heavy = kind(&server, "script:heavy").await;
    assert!(heavy["guard"]["overruns"].as_u64().unwrap() > 0, "{heavy}");

    // A native call that never returns: the click goes on without it at the deadline, and
    // the kind is disabled after hang_after without holding any click.
    let (location, took) = click(&server, "hang").await;
    assert_eq!(location, "https://default.test/");
    assert!(
        took < Duration::from_millis(450),
        "the hung call held the click {took:?}"
    );
    let started = Instant::now();
    loop {
        let (location, took) = click(&server, "hang").await;
        assert_eq!(location, "https://default.test/");
        assert!(
            took < Duration::from_millis(200),
            "a later click waited {took:?}"
        );
        let (plain_location, _) = click(&server, "plain").await;
        assert_eq!(plain_location, "https://plain.test/");
        if kind(&server, "native:misbehaving_hang").await["state"] == "disabled" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the hang was never disabled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hang = kind(&server, "native:misbehaving_hang").await;
    assert!(
        hang["reason"]
            .as_str()
            .unwrap()
            .contains("did not return within 400 ms"),
        "{hang}"
    );
    assert_eq!(hang["guard"]["timeouts"], 1, "{hang}");

    // /health names every disabled kind and why; /metrics counts them.
    let health: Value = client()
        .get(server.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "degraded");
    let disabled: Vec<&str> = health["plugins"]["disabled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    for name in [
        "script:flaky",
        "script:heavy",
        "native:misbehaving_flaky",
        "native:misbehaving_hang",
    ] {
        assert!(disabled.contains(&name), "{name}: {health}");
    }
    assert!(
        health["user_code"]["routed"].as_u64().unwrap() > 0,
        "{health}"
    );
    assert_eq!(health["user_code"]["set_aside_threads"], 1, "{health}");
    let metrics = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("switchyard_user_code_disabled{kind=\"native:misbehaving_hang\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchyard_user_code_pool_rerouted_total 1"),
        "{metrics}"
    );

    // The Click API's trace says why the filter did not run.
    let traced = client()
        .get(server.url("/click_api/v3?token=tok-hang&log=1&ip=192.0.2.7"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let log = format!("{} {}", traced["info"]["log"], traced["log"]);
    assert!(
        log.contains(
            "Filter \\\"native:misbehaving_hang\\\" failed: disabled (a call did not return"
        ),
        "{traced}"
    );
    server.stop().await;
}
