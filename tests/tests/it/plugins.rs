//! Plugins over HTTP: scripts hot-reloaded from disk, the reload triplet, hostile scripts,
//! the registry-generated catalogue and the Admin API key.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard::model::{NewCampaign, NewStream, StreamType};
use switchyard_tests::{Backend, TestDb, TestServer, client};

const ADMIN_KEY: &str = "test-admin-key-0123456789";

fn write_script(dir: &Path, kind: &str, name: &str, text: &str) {
    let sub = dir.join(kind);
    std::fs::create_dir_all(&sub).unwrap();
    // Write beside and rename, as editors and deploy tools do.
    let temp = sub.join(format!(".{name}.tmp"));
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, sub.join(name)).unwrap();
}

async fn start(db: &TestDb, scripts: &Path) -> TestServer {
    let extra = format!(
        "[demo]\nseed = false\n\n[admin]\napi_key = \"{ADMIN_KEY}\"\n\n[scripts]\ndir = \"{}\"\n\n[reload]\ndebounce_ms = 50\n",
        scripts.display()
    );
    TestServer::start(db, &extra).await.unwrap()
}

/// A campaign whose forced stream is gated by `script:gate`, with a default stream behind it.
async fn gated_campaign(server: &TestServer) {
    let store = server.store();
    let campaign = store
        .create_campaign(&NewCampaign::new("gated", "Gated", "tok-gated"))
        .await
        .unwrap();
    let mut gate = NewStream::redirect(campaign.id, "gate", "https://gate.test/").filter(
        "script:gate",
        "accept",
        json!({"want": "1"}),
    );
    gate.stream_type = StreamType::Forced;
    store.create_stream(&gate).await.unwrap();
    let mut fallback = NewStream::redirect(campaign.id, "default", "https://default.test/");
    fallback.stream_type = StreamType::Default;
    store.create_stream(&fallback).await.unwrap();
    server.reload().await;
}

async fn target(server: &TestServer, query: &str) -> String {
    let response = client()
        .get(server.url(&format!("/gated?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302, "every click is answered");
    response.headers()["location"].to_str().unwrap().to_string()
}

const GATE_V1: &str = "//! Gate on the x parameter.\n//! payload: {\"want\": \"1\"}\nfn filter(click, params) { click.param(\"x\") == params.want }\n";
const GATE_V2: &str = "//! Gate on the y parameter.\n//! payload: {\"want\": \"1\"}\nfn filter(click, params) { click.param(\"y\") == params.want }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_triplet_valid_different_garbage() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let scripts = tempfile::tempdir().unwrap();
    write_script(scripts.path(), "filters", "gate.rhai", GATE_V1);
    let server = start(&db, scripts.path()).await;
    gated_campaign(&server).await;
    assert_eq!(target(&server, "x=1").await, "https://gate.test/");
    assert_eq!(target(&server, "y=1").await, "https://default.test/");
    let before = server.health().await["plugins"]["generation"]
        .as_u64()
        .unwrap();

    // A different valid script: routing follows within a second.
    write_script(scripts.path(), "filters", "gate.rhai", GATE_V2);
    let deadline = Instant::now() + Duration::from_secs(3);
    while target(&server, "y=1").await != "https://gate.test/" {
        assert!(
            Instant::now() < deadline,
            "the edited script was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(target(&server, "x=1").await, "https://default.test/");
    let after = server.health().await["plugins"]["generation"]
        .as_u64()
        .unwrap();
    assert_eq!(after, before + 1);

    // Garbage: reported, generation unchanged, the previous script keeps serving.
    write_script(
        scripts.path(),
        "filters",
        "gate.rhai",
        "fn filter(click, params) { let = ; }",
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let report = server.health().await;
        if report["plugins"]["last_errors"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
        {
            assert_eq!(report["status"], "degraded");
            assert_eq!(
                report["plugins"]["generation"].as_u64().unwrap(),
                after,
                "a failed reload changes nothing"
            );
            let error = report["plugins"]["last_errors"][0].as_str().unwrap();
            assert!(
                error.contains("filters/gate.rhai:1:"),
                "the error names file and line: {error}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the broken script was not reported"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        target(&server, "y=1").await,
        "https://gate.test/",
        "the old behaviour is still served"
    );

    // Fixing the file recovers.
    write_script(scripts.path(), "filters", "gate.rhai", GATE_V1);
    let deadline = Instant::now() + Duration::from_secs(3);
    while target(&server, "x=1").await != "https://gate.test/" {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.health().await["status"], "ok");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_script_under_traffic_fails_no_request() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let scripts = tempfile::tempdir().unwrap();
    write_script(scripts.path(), "filters", "gate.rhai", GATE_V1);
    let server = Arc::new(start(&db, scripts.path()).await);
    gated_campaign(&server).await;
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (server, stop, served) = (server.clone(), stop.clone(), served.clone());
        workers.push(tokio::spawn(async move {
            let http = client();
            while !stop.load(Ordering::Relaxed) {
                let response = http
                    .get(server.url("/gated?y=1"))
                    .send()
                    .await
                    .expect("no connection error");
                assert_eq!(response.status(), 302, "no failed request during a reload");
                served.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let edited = Instant::now();
    write_script(scripts.path(), "filters", "gate.rhai", GATE_V2);
    let mut latency = None;
    while edited.elapsed() < Duration::from_secs(3) {
        if target(&server, "y=1").await == "https://gate.test/" {
            latency = Some(edited.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let latency = latency.expect("the edit went live");
    eprintln!(
        "script edit -> live: {latency:?} ({} requests served meanwhile)",
        served.load(Ordering::Relaxed)
    );
    assert!(
        latency < Duration::from_secs(1),
        "edit -> live took {latency:?}"
    );
    assert!(served.load(Ordering::Relaxed) > 20);
    Arc::try_unwrap(server)
        .ok()
        .expect("sole owner")
        .stop()
        .await;
}

#[tokio::test]
async fn hostile_scripts_never_cost_a_click() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let scripts = tempfile::tempdir().unwrap();
    write_script(
        scripts.path(),
        "filters",
        "gate.rhai",
        "fn filter(click, params) { loop { } }",
    );
    let server = start(&db, scripts.path()).await;
    gated_campaign(&server).await;
    for _ in 0..30 {
        let started = Instant::now();
        assert_eq!(
            target(&server, "x=1").await,
            "https://default.test/",
            "a failing filter does not match"
        );
        assert!(started.elapsed() < Duration::from_millis(500));
    }
    let plugins: Value = client()
        .get(server.url("/admin_api/v1/plugins"))
        .header("Api-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let gate = plugins["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "script:gate")
        .unwrap();
    assert_eq!(
        gate["state"], "disabled",
        "a script that keeps failing is disabled: {gate}"
    );
    let message = gate["messages"][0].as_str().unwrap_or_default();
    assert!(
        message.contains("gate.rhai")
            && (message.contains("time budget") || message.to_lowercase().contains("operations")),
        "the last error names the script and the limit: {gate}"
    );
    server.stop().await;
}

#[tokio::test]
async fn catalogue_comes_from_the_registry_and_needs_a_key() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let scripts = tempfile::tempdir().unwrap();
    write_script(scripts.path(), "filters", "gate.rhai", GATE_V1);
    write_script(
        scripts.path(),
        "actions",
        "hello.rhai",
        "//! Says hello.\nfn action(click, params) { #{ body: \"hello\" } }\n",
    );
    let server = start(&db, scripts.path()).await;
    let http = client();
    for path in [
        "stream_filters",
        "streams_actions",
        "stream_actions",
        "stream_types",
        "stream_schemas",
        "plugins",
    ] {
        let url = server.url(&format!("/admin_api/v1/{path}"));
        assert_eq!(
            http.get(&url).send().await.unwrap().status(),
            401,
            "{path} without a key"
        );
        assert_eq!(
            http.get(&url)
                .header("Api-Key", "wrong-key-0123456789")
                .send()
                .await
                .unwrap()
                .status(),
            401,
            "{path} with a wrong key"
        );
        assert_eq!(
            http.get(&url)
                .header("Api-Key", ADMIN_KEY)
                .send()
                .await
                .unwrap()
                .status(),
            200,
            "{path}"
        );
    }
    let filters: Vec<Value> = http
        .get(server.url("/admin_api/v1/stream_filters"))
        .header("Api-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = filters
        .iter()
        .map(|f| f["value"].as_str().unwrap())
        .collect();
    for expected in ["country", "ip", "schedule", "sub_id_30", "script:gate"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let modes = |name: &str| filters.iter().find(|f| f["value"] == name).unwrap()["modes"].clone();
    assert_eq!(
        modes("country"),
        json!({"accept": "Accept", "reject": "Reject"})
    );
    assert_eq!(modes("limit"), json!({}), "limit has no modes");
    let gate = filters
        .iter()
        .find(|f| f["value"] == "script:gate")
        .unwrap();
    assert_eq!(gate["origin"], "script");
    assert_eq!(gate["tooltip"], "Gate on the x parameter.");
    let actions: Vec<Value> = http
        .get(server.url("/admin_api/v1/streams_actions"))
        .header("Api-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let http_action = actions.iter().find(|a| a["key"] == "http").unwrap();
    assert!(
        http_action["aliases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "location")
    );
    assert!(
        actions
            .iter()
            .any(|a| a["key"] == "script:hello" && a["origin"] == "script")
    );
    let reload: Value = http
        .post(server.url("/admin_api/v1/plugins/reload"))
        .header("Api-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reload["success"], true);
    server.stop().await;
}

#[test]
fn plugins_command_lists_kinds_and_fails_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let scripts = dir.path().join("scripts");
    write_script(&scripts, "filters", "gate.rhai", GATE_V1);
    write_script(
        &scripts,
        "triggers",
        "always_ok.rhai",
        "//! Always fine.\nfn check(response, params) { #{ ok: true } }\n",
    );
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[scripts]\ndir = \"{}\"\n", scripts.display()),
    )
    .unwrap();
    let run = || {
        std::process::Command::new(crate::binary())
            .args(["plugins", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    };
    let output = run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    for expected in [
        "filter  country",
        "filter  script:gate",
        "action  http",
        "trigger script:always_ok",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
    write_script(
        &scripts,
        "filters",
        "gate.rhai",
        "fn filter(click, params) { let = ; }",
    );
    let broken = run();
    assert!(!broken.status.success());
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains("filters/gate.rhai:1:"),
        "{}",
        String::from_utf8_lossy(&broken.stderr)
    );
}

#[tokio::test]
async fn a_reload_prunes_plugin_copies_left_by_earlier_runs() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let cache = db.dir.path().join("data/plugin-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let stale = cache.join("0123456789abcdef.so");
    std::fs::write(&stale, b"a copy from an earlier run").unwrap();
    let keep = cache.join("notes.txt");
    std::fs::write(&keep, b"not a library").unwrap();
    let scripts = tempfile::tempdir().unwrap();
    let server = start(&db, scripts.path()).await;
    assert!(
        !stale.exists(),
        "the stale copy is removed by the start-up reload"
    );
    assert!(keep.exists(), "only library copies are pruned");
    server.stop().await;
}
