//! Config-as-files over HTTP: the example deployments loaded from a campaigns directory and
//! routed, hot reload of an edited file, an invalid edit that changes nothing, file-managed
//! objects naming their file, and the `validate` / `export` / `diff` commands.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard::files::ObjectKind;
use switchyard::model::NewCampaign;
use switchyard_tests::{Backend, TestDb, TestServer, client, test_data};

const FIREFOX: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const ADMIN_KEY: &str = "test-admin-key-0123456789";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/deployments")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of both example deployments (`cloaking/`, `split-test/`) in one campaigns directory.
fn campaigns_dir(db: &TestDb) -> PathBuf {
    let dir = db.dir.path().join("campaigns");
    copy_dir(&examples(), &dir);
    dir
}

/// Writes beside and renames, as editors and `git checkout` do.
fn replace_file(path: &Path, text: &str) {
    let temp = path.with_extension("toml.tmp~");
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

async fn start(db: &TestDb, dir: &Path) -> TestServer {
    let text = format!(
        "[admin]\napi_key = \"{ADMIN_KEY}\"\n\n[geoip]\ncity_db = \"{}\"\n\n[campaigns]\ndir = \"{}\"\n\n[reload]\ndebounce_ms = 50\n",
        test_data("geoip/GeoIP2-City-Test.mmdb").display(),
        dir.display()
    );
    let config = db.config_behind_proxy(&text).unwrap();
    TestServer::from_config(config).await.unwrap()
}

async fn visit(server: &TestServer, path: &str, ip: &str, ua: &str) -> (u16, String, String) {
    let response = client()
        .get(server.url(path))
        .header("x-forwarded-for", ip)
        .header("user-agent", ua)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, location, response.text().await.unwrap_or_default())
}

async fn examples_route_clicks(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let dir = campaigns_dir(&db);
    let server = start(&db, &dir).await;
    let status = server.health().await;
    assert_eq!(status["status"], "ok", "{status}");
    assert_eq!(status["campaign_files"]["generation"], 1);
    assert!(
        status["campaign_files"]["objects"].as_u64().unwrap() >= 20,
        "{status}"
    );

    // Cloaking: bots see the safe page, people go to their country's offer.
    let (code, _, body) = visit(&server, "/summer", "81.2.69.160", GOOGLEBOT).await;
    assert_eq!(code, 200);
    assert!(
        body.contains("Ten tips for a safer summer online"),
        "{body}"
    );
    let (code, _, body) = visit(&server, "/summer", "66.249.66.1", FIREFOX).await;
    assert_eq!(code, 200, "a reviewer network sees the safe page");
    assert!(body.contains("safer summer"));
    let (code, location, _) = visit(&server, "/summer", "81.2.69.160", FIREFOX).await;
    assert_eq!(code, 302);
    assert!(
        location.starts_with("https://offers.example/vpn/gb?sub="),
        "{location}"
    );
    let (_, location, _) = visit(&server, "/summer", "89.160.20.112", FIREFOX).await;
    assert!(
        location.starts_with("https://offers.example/vpn/se?sub="),
        "{location}"
    );
    let (_, location, _) = visit(&server, "/summer", "216.160.83.56", FIREFOX).await;
    assert!(
        location.starts_with("https://offers.example/vpn/world?sub="),
        "{location}"
    );

    // Split test: 70/30 between the two pre-landers; phones go to the app offer. 200 visitors
    // put the story funnel's count 4.6 standard deviations inside each end of the 15–45 % band
    // (a failure by chance about once in 200 000 runs); 60 visitors and "quiz > story" failed
    // once in CI, at 30/30.
    let mut quiz = 0;
    let mut story = 0;
    for i in 0..200 {
        let ip = format!("216.160.{}.{}", 80 + i / 100, 100 + i % 100);
        let (code, location, _) = visit(&server, "/dating", &ip, FIREFOX).await;
        assert_eq!(code, 302);
        if location.starts_with("https://lp.example/quiz") {
            quiz += 1;
        } else if location.starts_with("https://lp.example/story") {
            story += 1;
        } else {
            panic!("unexpected {location}");
        }
    }
    assert!((30..=90).contains(&story), "quiz {quiz} story {story}");
    let (_, location, _) = visit(&server, "/dating", "216.160.83.56", IPHONE).await;
    assert!(
        location.starts_with("https://apps.example/match?click="),
        "{location}"
    );

    // Every object a file declared is file-managed and names its file.
    let rows = db
        .rows(
            "SELECT id, file_key, file_source FROM campaigns ORDER BY id",
            &["id", "file_key", "file_source"],
        )
        .await
        .unwrap();
    let summer = rows.iter().find(|r| r["file_key"] == "summer").unwrap();
    assert_eq!(summer["file_source"], "cloaking/campaigns/summer.toml");
    let id: i64 = summer["id"].parse().unwrap();
    assert_eq!(
        server
            .store()
            .file_source(ObjectKind::Campaign, id)
            .await
            .unwrap()
            .as_deref(),
        Some("cloaking/campaigns/summer.toml")
    );
    // The Admin API refuses to change file-managed objects, naming the file.
    for (path, table, file) in [
        ("campaigns", "campaigns", "cloaking/campaigns/summer.toml"),
        ("streams", "streams", "cloaking/campaigns/summer.toml"),
        ("offers", "offers", "cloaking/offers.toml"),
        ("landing_pages", "landings", "split-test/catalogue.toml"),
        (
            "affiliate_networks",
            "affiliate_networks",
            "cloaking/sources.toml",
        ),
        (
            "traffic_sources",
            "traffic_sources",
            "cloaking/sources.toml",
        ),
    ] {
        let rows = db
            .rows(
                &format!("SELECT MIN(id) AS id FROM {table} WHERE file_source = '{file}'"),
                &["id"],
            )
            .await
            .unwrap();
        let url = server.url(&format!("/admin_api/v1/{path}/{}", rows[0]["id"]));
        let put = client()
            .put(&url)
            .json(&serde_json::json!({"name": "Renamed by hand"}))
            .header("Api-Key", ADMIN_KEY)
            .send()
            .await
            .unwrap();
        let mut archive = client()
            .delete(&url)
            .header("Api-Key", ADMIN_KEY)
            .send()
            .await
            .unwrap();
        if archive.status() == 405 {
            // Offers, landings, networks and sources archive at `{id}/archive`.
            archive = client()
                .delete(format!("{url}/archive"))
                .header("Api-Key", ADMIN_KEY)
                .send()
                .await
                .unwrap();
        }
        for response in [put, archive] {
            assert_eq!(response.status(), 409, "{path}");
            let body: Value = response.json().await.unwrap();
            assert!(
                body["error"].as_str().unwrap().contains(file),
                "{path}: {body}"
            );
        }
    }
    let changed = db
        .count("SELECT COUNT(*) AS n FROM campaigns WHERE name = 'Renamed by hand' OR state = 'deleted'")
        .await
        .unwrap();
    assert_eq!(changed, 0, "nothing was changed");

    for table in [
        "streams",
        "offers",
        "landings",
        "affiliate_networks",
        "traffic_sources",
    ] {
        let unmanaged = db
            .count(&format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE file_source IS NULL OR file_key IS NULL"
            ))
            .await
            .unwrap();
        assert_eq!(unmanaged, 0, "{table}");
    }
    server.stop().await;
}

#[tokio::test]
async fn examples_route_clicks_sqlite() {
    examples_route_clicks(Backend::Sqlite).await;
}

#[tokio::test]
async fn examples_route_clicks_postgres() {
    examples_route_clicks(Backend::Postgres).await;
}

async fn edits_reload_and_bad_edits_change_nothing(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let dir = campaigns_dir(&db);
    let server = start(&db, &dir).await;
    // A campaign made through the Admin API (here: the store) is never touched by a load.
    let api_made = server
        .store()
        .create_campaign(&NewCampaign::new(
            "handmade",
            "Made by hand",
            "tokhandmade1",
        ))
        .await
        .unwrap();
    assert_eq!(
        server
            .store()
            .file_source(ObjectKind::Campaign, api_made.id)
            .await
            .unwrap(),
        None
    );
    let offers = dir.join("cloaking/offers.toml");
    let original = std::fs::read_to_string(&offers).unwrap();

    // An edit reaches routing within a second.
    let edited = original.replace(
        "https://offers.example/vpn/gb?",
        "https://offers.example/vpn/uk?",
    );
    let started = Instant::now();
    replace_file(&offers, &edited);
    loop {
        let (_, location, _) = visit(&server, "/summer", "81.2.69.160", FIREFOX).await;
        if location.starts_with("https://offers.example/vpn/uk?") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the edit did not apply within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    println!("edit -> routed by the new file: {} ms", took.as_millis());
    let generation = server.health().await["campaign_files"]["generation"]
        .as_u64()
        .unwrap();

    // An invalid edit (a dangling reference and a bad URL) is reported and changes nothing.
    let offers_before = db
        .rows(
            "SELECT id, url, updated_at FROM offers ORDER BY id",
            &["id", "url", "updated_at"],
        )
        .await
        .unwrap();
    let summer = dir.join("cloaking/campaigns/summer.toml");
    let summer_text = std::fs::read_to_string(&summer).unwrap();
    replace_file(
        &summer,
        &summer_text.replace("offer = \"vpn_se\"", "offer = \"vpn_nowhere\""),
    );
    replace_file(
        &offers,
        &edited.replace(
            "https://offers.example/vpn/se?",
            "ftp://offers.example/vpn/se?",
        ),
    );
    let started = Instant::now();
    let errors = loop {
        let status = server.health().await;
        let errors = status["campaign_files"]["last_errors"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if errors.len() >= 2 {
            assert_eq!(status["status"], "degraded");
            break errors;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the bad edit was not reported: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let errors: Vec<String> = errors
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("cloaking/campaigns/summer.toml:")
                && e.contains("streams.se.offers[0].offer: no offer has the key `vpn_nowhere`")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("cloaking/offers.toml:") && e.contains("offers.vpn_se.url")),
        "{errors:#?}"
    );
    let (_, location, _) = visit(&server, "/summer", "89.160.20.112", FIREFOX).await;
    assert!(
        location.starts_with("https://offers.example/vpn/se?"),
        "the previous state keeps serving: {location}"
    );
    let offers_after = db
        .rows(
            "SELECT id, url, updated_at FROM offers ORDER BY id",
            &["id", "url", "updated_at"],
        )
        .await
        .unwrap();
    assert_eq!(offers_before, offers_after, "nothing was written");
    assert_eq!(
        server.health().await["campaign_files"]["generation"]
            .as_u64()
            .unwrap(),
        generation
    );

    // Fixing the files loads them again; removing a campaign's file archives it.
    replace_file(&summer, &summer_text);
    replace_file(&offers, &edited);
    std::fs::remove_file(dir.join("split-test/campaigns/dating.toml")).unwrap();
    let started = Instant::now();
    loop {
        let dating = db
            .rows(
                "SELECT state FROM campaigns WHERE file_key = 'dating'",
                &["state"],
            )
            .await
            .unwrap();
        // The store is written first, the snapshot rebuilt right after.
        let (code, _, _) = visit(&server, "/dating", "216.160.83.56", FIREFOX).await;
        if dating[0]["state"] == "deleted" && code != 302 {
            break;
        }
        assert!(
            // Generous: the watcher's debounce plus a load, on a CI machine running the
            // whole suite on two cores (3 s was once missed there).
            started.elapsed() < Duration::from_secs(10),
            "the removal did not apply"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, location, _) = visit(&server, "/summer", "89.160.20.112", FIREFOX).await;
    assert!(
        location.starts_with("https://offers.example/vpn/se?"),
        "{location}"
    );
    assert!(
        server.health().await["campaign_files"]["last_errors"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let handmade = db
        .rows(
            &format!(
                "SELECT state, alias FROM campaigns WHERE id = {}",
                api_made.id
            ),
            &["state", "alias"],
        )
        .await
        .unwrap();
    assert_eq!(handmade[0]["state"], "active");
    assert_eq!(handmade[0]["alias"], "handmade");
    server.stop().await;
}

#[tokio::test]
async fn edits_reload_and_bad_edits_change_nothing_sqlite() {
    edits_reload_and_bad_edits_change_nothing(Backend::Sqlite).await;
}

#[tokio::test]
async fn edits_reload_and_bad_edits_change_nothing_postgres() {
    edits_reload_and_bad_edits_change_nothing(Backend::Postgres).await;
}

fn run(args: &[&str], config: &Path) -> (i32, String, String) {
    let output = Command::new(crate::binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

async fn validate_export_and_diff(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let dir = campaigns_dir(&db);
    let config = db
        .write_config(&format!(
            "[demo]\nseed = false\n\n[campaigns]\ndir = \"{}\"\n",
            dir.display()
        ))
        .unwrap();

    let (code, stdout, stderr) = run(&["validate"], &config);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("the campaign files are valid"), "{stdout}");

    // Before any load everything is new.
    let (code, stdout, _) = run(&["diff"], &config);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("+ campaigns.summer  [cloaking/campaigns/summer.toml]"),
        "{stdout}"
    );

    // Load through the server, then nothing differs.
    let server = start(&db, &dir).await;
    server.stop().await;
    let (code, stdout, _) = run(&["diff"], &config);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("No changes."));

    // Export, then load the export into a fresh database: the same objects.
    let exported = db.dir.path().join("exported");
    let (code, stdout, stderr) = run(&["export", exported.to_str().unwrap()], &config);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(exported.join("campaigns/summer.toml").is_file(), "{stdout}");
    let registry = switchyard::registry::Registry::builtin();
    let original = switchyard::files::load_dir(&dir, &registry).unwrap().set;
    let again = switchyard::files::load_dir(&exported, &registry)
        .unwrap()
        .set;
    let mut original_without_tokens = original.clone();
    let mut again_without_tokens = again.clone();
    for set in [&mut original_without_tokens, &mut again_without_tokens] {
        for campaign in set.campaigns.values_mut() {
            campaign.token.clear();
        }
    }
    assert_eq!(original_without_tokens, again_without_tokens);
    assert!(
        again.campaigns.values().all(|c| c.token.len() == 32),
        "export writes the generated tokens"
    );

    // A broken directory: non-zero exit, every problem with its file.
    std::fs::write(
        dir.join("split-test/broken.toml"),
        "[offers.broken]\nname = \"Broken\"\nurl = \"javascript:alert(1)\"\n\n[campaigns.x]\nalias = \"health\"\nname = \"X\"\n",
    )
    .unwrap();
    let (code, _, stderr) = run(&["validate"], &config);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("split-test/broken.toml:3: offers.broken.url:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("split-test/broken.toml:6: campaigns.x.alias: `health` is reserved"),
        "{stderr}"
    );
    let (code, _, _) = run(&["diff"], &config);
    assert_eq!(code, 2);
}

#[tokio::test]
async fn validate_export_and_diff_sqlite() {
    validate_export_and_diff(Backend::Sqlite).await;
}

#[tokio::test]
async fn validate_export_and_diff_postgres() {
    validate_export_and_diff(Backend::Postgres).await;
}
