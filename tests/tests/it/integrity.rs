//! Data integrity under bad values and a failing store, on SQLite and PostgreSQL: a visitor's
//! absurd `cost` never reaches a report sum; a click the store refuses for its data is set
//! aside (kept in a file, reported at /health, replayable) while every other click is
//! written; SQLite on a filesystem that fills up keeps answering clicks and resumes writing
//! them, and the Admin API's writes, once space returns, without a restart.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard::model::{Click, Money};
use switchyard_tests::{Backend, TestDb, TestServer, client};

const ADMIN_KEY: &str = "test-admin-key-0123456789";

fn extra() -> String {
    format!("[demo]\nseed = false\n\n[admin]\napi_key = \"{ADMIN_KEY}\"\n")
}

async fn admin(server: &TestServer, method: &str, path: &str, body: Value) -> (u16, Value) {
    let request = match method {
        "PUT" => client().put(server.url(&format!("/admin_api/v1/{path}"))),
        _ => client().post(server.url(&format!("/admin_api/v1/{path}"))),
    };
    let response = request
        .header("Api-Key", ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text })),
    )
}

/// Waits until the recorder has settled `expected` clicks (written or set aside).
async fn wait_settled(server: &TestServer, expected: u64, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let health = server.health().await;
        let recorder = &health["recorder"];
        let settled =
            recorder["written"].as_u64().unwrap() + recorder["set_aside"].as_u64().unwrap();
        if settled >= expected {
            return health;
        }
        assert!(
            Instant::now() < deadline,
            "{expected} clicks were not settled within {limit:?}: {health}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two clicks whose `cost` parameter is near the largest amount there is, on a `cost_auto`
/// campaign, then ordinary traffic on another campaign: the absurd costs are ignored (the
/// campaign's CPC applies), every click is written at once, and the report is exact.
async fn absurd_costs_from_visitors_are_ignored(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = TestServer::start(&db, &extra()).await.unwrap();
    let auto = server.redirect_campaign("auto").await;
    let (status, body) = admin(
        &server,
        "PUT",
        &format!("campaigns/{auto}"),
        json!({"cost_auto": true, "cost_type": "CPC", "cost_value": "0.5"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let other = server.redirect_campaign("other").await;
    for cost in ["9223372036854", "9223372036854.775807"] {
        let response = client()
            .get(server.url(&format!("/auto?cost={cost}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
    }
    for _ in 0..50 {
        server.location("other").await;
    }
    let health = wait_settled(&server, 52, Duration::from_secs(1)).await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["recorder"]["set_aside"], 0, "{health}");
    let (status, report) = admin(
        &server,
        "POST",
        "report/build",
        json!({"grouping": ["campaign_id"], "metrics": ["clicks", "cost"], "sort": [{"name": "campaign_id", "order": "asc"}]}),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{report}");
    assert_eq!(rows[0]["campaign_id"], auto, "{report}");
    assert_eq!(rows[0]["clicks"], 2);
    assert_eq!(
        rows[0]["cost"], 1,
        "two clicks at the campaign's CPC: {report}"
    );
    assert_eq!(rows[1]["campaign_id"], other);
    assert_eq!(rows[1]["clicks"], 50);
    server.stop().await;
}

#[tokio::test]
async fn sqlite_absurd_costs_from_visitors_are_ignored() {
    absurd_costs_from_visitors_are_ignored(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_absurd_costs_from_visitors_are_ignored() {
    absurd_costs_from_visitors_are_ignored(Backend::Postgres).await;
}

/// A click for `campaign` at `at`.
fn click(campaign: i64, at: i64, n: usize, cost: Money) -> Click {
    let mut click = Click::blank();
    click.sub_id = format!("integrity{n:05}");
    click.campaign_id = campaign;
    click.created_at = at;
    click.cost = cost;
    click
}

/// Clicks whose costs add up past the largest sum there is, recorded in one batch with
/// ordinary clicks (as a bug or another path might produce them): the store refuses the
/// batch for its data; the recorder splits it, writes every click it can, sets aside the one
/// it cannot, and keeps writing later clicks at once. The rollups stay equal to the clicks;
/// `/health` reports the set-aside click; `replay-set-aside` writes it once its cause is gone.
async fn a_refused_click_is_set_aside_and_the_rest_written(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = TestServer::start(&db, &extra()).await.unwrap();
    let first = server.redirect_campaign("first").await;
    let second = server.redirect_campaign("second").await;
    let now = switchyard::model::unix_now();
    let half = Money::from_micros(i64::MAX / 2 + 1);
    let recorder = &server.server.state.recorder;
    for n in 0..100 {
        let cost = if n == 30 || n == 70 {
            half
        } else {
            Money::units(1)
        };
        recorder.record(click(first, now, n, cost)).await;
    }
    let health = wait_settled(&server, 100, Duration::from_secs(10)).await;
    assert_eq!(health["recorder"]["written"], 99, "{health}");
    assert_eq!(health["recorder"]["set_aside"], 1, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    let reasons = health["reasons"].to_string();
    assert!(reasons.contains("1 clicks were set aside"), "{health}");

    // Later clicks are written at once.
    for _ in 0..20 {
        server.location("second").await;
    }
    wait_settled(&server, 120, Duration::from_secs(1)).await;
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) AS n FROM clicks WHERE campaign_id = {second}"
        ))
        .await
        .unwrap(),
        20
    );

    // The set-aside file names the click and why.
    let file = db.dir.path().join("data/set-aside/clicks.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let aside = lines[0]["click"]["sub_id"].as_str().unwrap().to_string();
    assert!(
        aside == "integrity00030" || aside == "integrity00070",
        "{text}"
    );
    assert!(!lines[0]["reason"].as_str().unwrap().is_empty(), "{text}");

    // Reports: the rollups hold exactly what the clicks table holds.
    assert_rollups_equal_clicks(&db).await;

    // Replaying while the cause remains keeps the click in the file.
    let written = if aside.ends_with("30") {
        "integrity00070"
    } else {
        "integrity00030"
    };
    server.stop().await;
    let config = db.write_config(&extra()).unwrap();
    let replay = |config: &Path| {
        std::process::Command::new(crate::binary())
            .args(["replay-set-aside", "--config"])
            .arg(config)
            .output()
            .unwrap()
    };
    let output = replay(&config);
    assert!(!output.status.success(), "{output:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 1);
    // With the other huge click gone, the replay writes it and empties the file.
    let store = switchyard::store::open(&db.config(&extra()).unwrap().database)
        .await
        .unwrap();
    assert!(store.delete_click(written).await.unwrap());
    store.close().await;
    let output = replay(&config);
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("1 click(s) written"),
        "{output:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap_or_default(),
        "",
        "nothing is left set aside"
    );
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) AS n FROM clicks WHERE sub_id = '{aside}'"
        ))
        .await
        .unwrap(),
        1
    );
    assert_rollups_equal_clicks(&db).await;
}

async fn assert_rollups_equal_clicks(db: &TestDb) {
    for table in ["rollup_routes", "rollup_geo"] {
        let sql = format!(
            "SELECT CAST((SELECT COUNT(*) FROM clicks) AS TEXT) AS clicks, \
             CAST((SELECT COALESCE(SUM(cost_micros), 0) FROM clicks) AS TEXT) AS cost, \
             CAST((SELECT COALESCE(SUM(clicks), 0) FROM {table}) AS TEXT) AS rollup_clicks, \
             CAST((SELECT COALESCE(SUM(cost), 0) FROM {table}) AS TEXT) AS rollup_cost"
        );
        let rows = db
            .rows(&sql, &["clicks", "cost", "rollup_clicks", "rollup_cost"])
            .await
            .unwrap();
        assert_eq!(
            rows[0]["clicks"], rows[0]["rollup_clicks"],
            "{table}: {rows:?}"
        );
        assert_eq!(rows[0]["cost"], rows[0]["rollup_cost"], "{table}: {rows:?}");
    }
}

#[tokio::test]
async fn sqlite_a_refused_click_is_set_aside_and_the_rest_written() {
    a_refused_click_is_set_aside_and_the_rest_written(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_a_refused_click_is_set_aside_and_the_rest_written() {
    a_refused_click_is_set_aside_and_the_rest_written(Backend::Postgres).await;
}

/// Unmounts a test's filesystem when dropped.
struct Mounted(std::path::PathBuf);

impl Mounted {
    /// A tmpfs of `size` at `path`. Mounting needs root, as CI and the development machines
    /// run; the test fails rather than pass without trying.
    fn tmpfs(path: &Path, size: &str) -> Mounted {
        std::fs::create_dir_all(path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs at {} failed (needs root)",
            path.display()
        );
        Mounted(path.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Rows and distinct sub ids in the clicks table of `dir/switchyard.db`.
async fn stored_clicks(dir: &Path) -> (i64, i64) {
    let url = format!("sqlite://{}/switchyard.db", dir.display());
    let mut check = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT sub_id) FROM clicks")
        .fetch_one(&mut check)
        .await
        .unwrap()
}

/// Writes `path` until the filesystem has no space left; returns the bytes written.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(error) => {
                assert_eq!(error.raw_os_error(), Some(28), "ENOSPC expected: {error}");
                break;
            }
        }
    }
    // The last partial blocks, byte by byte at the end.
    while file.write(&[0]).is_ok_and(|n| n == 1) {
        written += 1;
    }
    let _ = file.sync_all();
    written
}

/// SQLite on a filesystem that fills up under traffic (clicks carrying a 4 KB parameter, so
/// the WAL must grow): every click is answered; writes fail and `/health` says so within a
/// second; once space returns, every answered click is written exactly once and the Admin
/// API writes again, without a restart.
#[tokio::test]
async fn sqlite_on_a_full_disk_keeps_answering_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("db");
    let _mounted = Mounted::tmpfs(&mount, "12m");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\nshutdown_grace_ms = 5000\n\n[database]\nurl = \"sqlite://{}/switchyard.db\"\nmax_connections = 4\n\n{}",
        mount.display(),
        extra()
    );
    let config =
        switchyard::config::from_sources("test.toml", &text, &[], Some(dir.path())).unwrap();
    let server = TestServer::from_config(config).await.unwrap();
    server.redirect_campaign("full").await;
    // Some traffic first, so that the WAL has been checkpointed and must grow again.
    let big = "x".repeat(4_000);
    let click = |n: usize| {
        let url = server.url(&format!("/full?sub_id_1={big}&n={n}"));
        async move {
            let response = client().get(url).send().await.unwrap();
            assert_eq!(response.status(), 302, "click {n}");
        }
    };
    for n in 0..50 {
        click(n).await;
    }
    wait_settled(&server, 50, Duration::from_secs(10)).await;

    let filler = mount.join("filler");
    assert!(fill(&filler) > 0);
    for n in 50..350 {
        click(n).await;
    }
    // Writes fail: /health answers within a second and says why.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let asked = Instant::now();
        let health = server.health().await;
        assert!(asked.elapsed() < Duration::from_secs(1), "{health}");
        if health["recorder"]["failing_ms"].as_u64().unwrap() > 0 {
            assert_eq!(health["status"], "degraded", "{health}");
            assert!(
                health["reasons"]
                    .to_string()
                    .contains("click writes have been failing"),
                "{health}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the full disk never failed a write: {health}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The Admin API's writes fail with an answer, not a hang.
    let asked = Instant::now();
    let (status, body) = admin(
        &server,
        "POST",
        "campaigns",
        json!({"name": "During", "alias": "during"}),
    )
    .await;
    assert!(
        status >= 500 && asked.elapsed() < Duration::from_secs(15),
        "{status} {body}"
    );

    // Space returns: everything is written, once, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let health = wait_settled(&server, 350, Duration::from_secs(30)).await;
    assert_eq!(health["recorder"]["written"], 350, "{health}");
    assert_eq!(health["recorder"]["set_aside"], 0, "{health}");
    assert_eq!(health["recorder"]["lost"], 0, "{health}");
    assert_eq!(stored_clicks(&mount).await, (350, 350));
    let (status, body) = admin(
        &server,
        "POST",
        "campaigns",
        json!({"name": "After", "alias": "after"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let health = server.health().await;
        if health["status"] == "ok" {
            break;
        }
        assert!(Instant::now() < deadline, "{health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

/// The journal's own disk fills up (the data directory on a small tmpfs, the database
/// elsewhere): clicks keep their answers, the ones the journal could not keep are counted as
/// lost, exactly (every answered click is either stored or counted), `/health` says so within
/// a second, and once space returns the journal takes clicks again without a restart. With
/// `fsync` the failures are counted by the journal's writer thread, not the request.
async fn a_full_journal_disk_counts_every_click_it_could_not_keep(durability: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _mounted = Mounted::tmpfs(&data, "4m");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\n[database]\nurl = \"sqlite://{}/switchyard.db\"\n\n[recorder]\ndurability = \"{durability}\"\n\n{}",
        dir.path().display(),
        extra()
    );
    let config =
        switchyard::config::from_sources("test.toml", &text, &[], Some(dir.path())).unwrap();
    let server = TestServer::from_config(config).await.unwrap();
    server.redirect_campaign("full").await;
    let big = "y".repeat(2_000);
    let click = |n: usize| {
        let url = server.url(&format!("/full?sub_id_1={big}&n={n}"));
        async move {
            let response = client().get(url).send().await.unwrap();
            assert_eq!(response.status(), 302, "click {n}");
        }
    };
    for n in 0..20 {
        click(n).await;
    }
    wait_settled(&server, 20, Duration::from_secs(10)).await;

    let filler = data.join("filler");
    assert!(fill(&filler) > 0);
    for n in 20..120 {
        click(n).await;
    }
    let health = server.health().await;
    let lost = health["recorder"]["lost"].as_u64().unwrap();
    assert!(lost > 90, "the full disk kept most clicks out: {health}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["reasons"]
            .to_string()
            .contains(&format!("{lost} clicks were lost")),
        "{health}"
    );

    // Space returns: the journal takes clicks again.
    std::fs::remove_file(&filler).unwrap();
    for n in 120..150 {
        click(n).await;
    }
    let health = wait_settled(&server, 150 - lost, Duration::from_secs(15)).await;
    assert_eq!(health["recorder"]["lost"], lost, "no more lost: {health}");
    assert_eq!(health["recorder"]["written"], 150 - lost, "{health}");
    assert_eq!(
        stored_clicks(dir.path()).await,
        (150 - lost as i64, 150 - lost as i64)
    );
    server.stop().await;
}

#[tokio::test]
async fn a_full_journal_disk_counts_every_click_it_could_not_keep_process() {
    a_full_journal_disk_counts_every_click_it_could_not_keep("process").await;
}

#[tokio::test]
async fn a_full_journal_disk_counts_every_click_it_could_not_keep_fsync() {
    a_full_journal_disk_counts_every_click_it_could_not_keep("fsync").await;
}
