//! The foundation: configuration, storage on both backends, the first real click, shutdown.

use std::time::Duration;

use switchyard::model::{Click, NewCampaign, NewStream};
use switchyard_tests::{Backend, TestDb, TestProcess, TestServer, client, subid_of};

use crate::binary;

const CLICK_COLUMNS: &[&str] = &[
    "sub_id",
    "campaign_id",
    "stream_id",
    "ip",
    "user_agent",
    "referrer",
    "language",
    "keyword",
    "source",
    "sub_id_1",
    "sub_id_30",
    "extra_param_2",
    "destination",
    "created_at",
    "params",
    "is_bot",
    "cost_micros",
];

async fn demo_click_is_routed_and_recorded(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = TestServer::start(&db, "").await.unwrap();
    let http = client();

    let response = http
        .get(server.url(
            "/demo?keyword=blue%20shoes&source=fb&sub_id_1=s1&sub_id_30=last&extra_param_2=e2",
        ))
        .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Test/1.0")
        .header("referer", "https://ref.example/page")
        .header("accept-language", "de-DE,de;q=0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("https://example.com/?subid="),
        "{location}"
    );
    let sub_id = subid_of(&location).unwrap();

    let missing = http
        .get(server.url("/no-such-campaign"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let health = server.health().await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"]["status"], "ok");
    assert_eq!(health["routing"]["generation"], 1);
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));

    server.stop().await;

    let campaigns = db
        .rows("SELECT id, alias FROM campaigns", &["id", "alias"])
        .await
        .unwrap();
    assert_eq!(campaigns.len(), 1);
    assert_eq!(campaigns[0]["alias"], "demo");
    let rows = db
        .rows(
            &format!("SELECT {} FROM clicks", CLICK_COLUMNS.join(", ")),
            CLICK_COLUMNS,
        )
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        1,
        "exactly the one routed click is stored (404s are not clicks)"
    );
    let click = &rows[0];
    assert_eq!(click["sub_id"], sub_id);
    assert_eq!(click["campaign_id"], campaigns[0]["id"]);
    assert_ne!(click["stream_id"], "NULL");
    assert_eq!(click["ip"], "127.0.0.1");
    assert_eq!(
        click["user_agent"],
        "Mozilla/5.0 (X11; Linux x86_64) Test/1.0"
    );
    assert_eq!(click["referrer"], "https://ref.example/page");
    assert_eq!(click["language"], "de");
    assert_eq!(click["keyword"], "blue shoes");
    assert_eq!(click["source"], "fb");
    assert_eq!(click["sub_id_1"], "s1");
    assert_eq!(click["sub_id_30"], "last");
    assert_eq!(click["extra_param_2"], "e2");
    assert_eq!(click["destination"], location);
    assert_eq!(click["is_bot"], "0");
    assert_eq!(click["cost_micros"], "0");
    let created: i64 = click["created_at"].parse().unwrap();
    assert!((switchyard::model::unix_now() - created).abs() < 120);
    let params: serde_json::Value = serde_json::from_str(&click["params"]).unwrap();
    assert_eq!(params["keyword"], "blue shoes");
}

#[tokio::test]
async fn sqlite_demo_click_is_routed_and_recorded() {
    demo_click_is_routed_and_recorded(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_demo_click_is_routed_and_recorded() {
    demo_click_is_routed_and_recorded(Backend::Postgres).await;
}

async fn click_inserts_are_idempotent(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let config = db.config("[demo]\nseed = false\n").unwrap();
    let store = switchyard::store::open(&config.database).await.unwrap();
    store.migrate().await.unwrap();
    let again = store.migrate().await.unwrap();
    assert!(again.applied.is_empty(), "a second migrate applies nothing");

    let campaign = store
        .create_campaign(&NewCampaign::new("c1", "C1", "tok1"))
        .await
        .unwrap();
    let duplicate = store
        .create_campaign(&NewCampaign::new("c1", "Again", "tok2"))
        .await;
    assert!(
        matches!(
            duplicate,
            Err(switchyard::store::StoreError::Conflict { .. })
        ),
        "{duplicate:?}"
    );
    let clicks: Vec<Click> = (0..450)
        .map(|i| {
            let mut click = Click::blank();
            click.sub_id = format!("sub{i:04}");
            click.campaign_id = campaign.id;
            click.created_at = 1_700_000_000 + i;
            click.sub_ids[29] = format!("v{i}");
            click.cost = "0.000125".parse().unwrap();
            click
        })
        .collect();
    assert_eq!(store.insert_clicks(&clicks[..300]).await.unwrap(), 300);
    // An overlapping retry of a batch split differently: only the new rows count.
    assert_eq!(store.insert_clicks(&clicks[200..]).await.unwrap(), 150);
    assert_eq!(store.insert_clicks(&clicks).await.unwrap(), 0);
    store.close().await;

    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM clicks").await.unwrap(),
        450
    );
    let row = db
        .rows(
            "SELECT sub_id_30, cost_micros FROM clicks WHERE sub_id = 'sub0449'",
            &["sub_id_30", "cost_micros"],
        )
        .await
        .unwrap();
    assert_eq!(row[0]["sub_id_30"], "v449");
    assert_eq!(row[0]["cost_micros"], "125");
}

#[tokio::test]
async fn sqlite_click_inserts_are_idempotent() {
    click_inserts_are_idempotent(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_click_inserts_are_idempotent() {
    click_inserts_are_idempotent(Backend::Postgres).await;
}

async fn streams_route_in_order(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    // Build the routing data first, then start the server on it (no demo: campaigns exist).
    let config = db.config("").unwrap();
    let store = switchyard::store::open(&config.database).await.unwrap();
    store.migrate().await.unwrap();
    let campaign = store
        .create_campaign(&NewCampaign::new("shop", "Shop", "tok-shop"))
        .await
        .unwrap();
    let mut forced = NewStream::redirect(
        campaign.id,
        "forced",
        "https://forced.test/?k={keyword}&s={subid}",
    );
    forced.stream_type = switchyard::model::StreamType::Forced;
    forced.position = 5;
    store.create_stream(&forced).await.unwrap();
    let regular = NewStream::redirect(campaign.id, "regular", "https://regular.test/");
    store.create_stream(&regular).await.unwrap();
    let mut quiet = NewStream::redirect(campaign.id, "quiet", "https://quiet.test/");
    quiet.stream_type = switchyard::model::StreamType::Forced;
    quiet.position = 1;
    quiet.collect_clicks = false;
    quiet.action_type = "status404".into();
    quiet.schema = switchyard::model::StreamSchema::Action;
    let quiet_campaign = store
        .create_campaign(&NewCampaign::new("quiet", "Quiet", "tok-q"))
        .await
        .unwrap();
    quiet.campaign_id = quiet_campaign.id;
    store.create_stream(&quiet).await.unwrap();
    store.close().await;

    let server = TestServer::start(&db, "").await.unwrap();
    let http = client();
    let response = http
        .get(server.url("/shop?keyword=x%26y"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("https://forced.test/?k=x%26y&s="),
        "forced beats regular: {location}"
    );
    let demo = http.get(server.url("/demo")).send().await.unwrap();
    assert_eq!(
        demo.status(),
        404,
        "no demo on a database that already had campaigns"
    );
    let hidden = http.get(server.url("/quiet")).send().await.unwrap();
    assert_eq!(hidden.status(), 404, "the status404 action answers 404");
    server.stop().await;
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) AS n FROM clicks WHERE campaign_id = {}",
            quiet_campaign.id
        ))
        .await
        .unwrap(),
        0,
        "collect_clicks = false records nothing"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM clicks").await.unwrap(),
        1
    );
}

#[tokio::test]
async fn sqlite_streams_route_in_order() {
    streams_route_in_order(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_streams_route_in_order() {
    streams_route_in_order(Backend::Postgres).await;
}

#[tokio::test]
async fn demo_seeding_can_be_switched_off_and_happens_once() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = TestServer::start(&db, "[demo]\nseed = false\n")
        .await
        .unwrap();
    assert_eq!(
        client()
            .get(server.url("/demo"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    server.stop().await;
    // The first start decided; turning seeding on later does not add a demo.
    let server = TestServer::start(&db, "").await.unwrap();
    assert_eq!(
        client()
            .get(server.url("/demo"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    server.stop().await;
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM campaigns")
            .await
            .unwrap(),
        0
    );
}

#[test]
fn broken_config_exits_non_zero_naming_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"nowhere\"\nmax_body_bytes = 0\n\n[database]\nurl = \"mysql://db\"\n\n[recorder]\nbatch_size = \"many\"\ncolour = \"blue\"\n\n[telemetry]\n",
    )
    .unwrap();
    for command in ["validate", "serve", "migrate"] {
        let output = std::process::Command::new(binary())
            .args([command, "--config"])
            .arg(&path)
            .env("SWITCHYARD_DEMO_SEED", "perhaps")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{command} must fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        for expected in [
            "7 problems",
            "broken.toml:2 server.listen",
            "broken.toml:3 server.max_body_bytes",
            "broken.toml:6 database.url",
            "broken.toml:9 recorder.batch_size",
            "broken.toml:10 recorder.colour",
            "broken.toml:12 telemetry",
            "env SWITCHYARD_DEMO_SEED (demo.seed)",
        ] {
            assert!(
                stderr.contains(expected),
                "{command}: {expected:?} missing from:\n{stderr}"
            );
        }
    }
    // A valid file passes `validate`.
    std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let output = std::process::Command::new(binary())
        .args(["validate", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn migrate_command_creates_the_schema_once() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let config = db.write_config("").unwrap();
    for expected in [
        "Schema version 7 (7 migration(s) applied).",
        "Schema version 7 (0 migration(s) applied).",
    ] {
        let output = std::process::Command::new(binary())
            .args(["migrate", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), expected);
    }
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM campaigns")
            .await
            .unwrap(),
        0,
        "migrate seeds nothing"
    );
}

#[tokio::test]
async fn rebuild_rollups_command_counts_clicks_written_behind_the_stores_back() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let config = db.write_config("").unwrap();
    let run = |command: &str| {
        let output = std::process::Command::new(binary())
            .args([command, "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    run("migrate");
    db.execute(
        "INSERT INTO clicks (sub_id, campaign_id, created_at, country_code, country_name) VALUES \
         ('raw1', 7, 1790000000, 'DE', 'Germany'), ('raw2', 7, 1790000100, 'DE', 'Germany')",
    )
    .await
    .unwrap();
    let clicks = "SELECT COALESCE(SUM(clicks), 0) AS n FROM rollup_geo WHERE campaign_id = 7";
    assert_eq!(db.count(clicks).await.unwrap(), 0);
    assert!(run("rebuild-rollups").starts_with("Report rollups rebuilt in "));
    assert_eq!(db.count(clicks).await.unwrap(), 2);
    assert_eq!(
        db.count("SELECT COALESCE(SUM(clicks), 0) AS n FROM rollup_routes")
            .await
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn generated_secrets_are_shown_once_and_env_overrides_apply() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let config = db.write_config("").unwrap();
    // The file's listen address is unusable; the environment's wins.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("127.0.0.1:0", "not-an-address");
    std::fs::write(&config, text).unwrap();
    let env = [("SWITCHYARD_SERVER_LISTEN", "127.0.0.1:0")];
    let mut first = TestProcess::serve(binary(), &config, &env).unwrap();
    first.terminate().unwrap();
    assert!(first.wait(Duration::from_secs(20)).unwrap().success());
    let log = first.stderr();
    let key_line = log
        .lines()
        .find(|l| l.starts_with("Generated admin API key: "))
        .expect(&log);
    let key = key_line
        .trim_start_matches("Generated admin API key: ")
        .split_whitespace()
        .next()
        .unwrap();
    assert_eq!(key.len(), 32);
    let secrets = std::fs::read_to_string(db.dir.path().join("data/secrets.toml")).unwrap();
    assert!(!secrets.contains(key), "the admin key is stored hashed");
    assert!(secrets.contains(&switchyard::secrets::sha256_hex(key)));

    let mut second = TestProcess::serve(binary(), &config, &env).unwrap();
    second.terminate().unwrap();
    assert!(second.wait(Duration::from_secs(20)).unwrap().success());
    assert!(
        !second.stderr().contains("Generated"),
        "shown once only:\n{}",
        second.stderr()
    );
}

/// NUL characters, which PostgreSQL cannot store in text, never cost a click or answer 500:
/// a click whose parameters carry them is recorded without them (and the clicks after it are
/// recorded too), so is a postback's conversion; an Admin API value with one is refused with
/// 406 naming the field.
async fn nul_characters_are_handled(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = TestServer::start(
        &db,
        "[admin]\napi_key = \"test-admin-key-0123456789\"\n\n[postback]\nkey = \"pb-key-0123456789\"\n",
    )
    .await
    .unwrap();
    let http = client();
    let mut sub_ids = Vec::new();
    for path in [
        "/demo?keyword=a%00b&sub_id_1=%00&extra_param_1=x%00&utm_source=%00s",
        "/demo?keyword=after",
    ] {
        let response = http
            .get(server.url(path))
            .header("user-agent", "Mozilla/5.0 Test")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302, "{path}");
        let location = response.headers()["location"].to_str().unwrap();
        sub_ids.push(subid_of(location).unwrap());
    }
    // The clicks reach the store before the postback looks for them.
    for _ in 0..100 {
        if db.count("SELECT COUNT(*) AS n FROM clicks").await.unwrap() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let postback = http
        .get(server.url(&format!(
            "/pb-key-0123456789/postback?subid={}&tid=t%00id&status=lead&payout=1&no%00te=%00",
            sub_ids[0]
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(postback.status(), 200);
    let said = postback.text().await.unwrap();
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM received_postbacks WHERE params LIKE '%\"tid\":\"tid\"%' AND conversion_id IS NOT NULL")
            .await
            .unwrap(),
        1,
        "{said}: {:?}",
        db.rows("SELECT sub_id, tid, status FROM received_postbacks", &["sub_id", "tid", "status"]).await
    );
    let answer = http
        .put(server.url("/admin_api/v1/integrations/avscan?avscan_key=k%00ey"))
        .header("api-key", "test-admin-key-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 406);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert!(
        body["avscan_key"][0].as_str().unwrap().contains("NUL"),
        "{body}"
    );
    let created = http
        .post(server.url("/admin_api/v1/offers"))
        .header("api-key", "test-admin-key-0123456789")
        .json(&serde_json::json!({"name": "bad\u{0}name", "url": "https://o.test/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 406);
    server.stop().await;
    let rows = db
        .rows(
            "SELECT keyword, sub_id_1, extra_param_1, utm_source FROM clicks ORDER BY id",
            &["keyword", "sub_id_1", "extra_param_1", "utm_source"],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "both clicks recorded");
    let mut keywords: Vec<&str> = rows.iter().map(|r| r["keyword"].as_str()).collect();
    keywords.sort();
    assert_eq!(keywords, ["ab", "after"]);
    let first = rows.iter().find(|r| r["keyword"] == "ab").unwrap();
    assert_eq!(first["sub_id_1"], "");
    assert_eq!(first["extra_param_1"], "x");
    assert_eq!(first["utm_source"], "s");
}

#[tokio::test]
async fn sqlite_nul_characters_are_handled() {
    nul_characters_are_handled(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_nul_characters_are_handled() {
    nul_characters_are_handled(Backend::Postgres).await;
}
