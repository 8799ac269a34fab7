//! Faults driven against the real `switchyard` process: SIGTERM and SIGKILL in the middle of
//! a burst of clicks, SIGTERM while the database is locked. Every click that got its answer
//! is in the store afterwards, exactly once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_tests::{Backend, TestDb, TestProcess, client, subid_of};

use crate::binary;

/// Clients sending campaign-link clicks to a running process, collecting the sub ids of the
/// clicks that were answered.
struct Burst {
    answered: Arc<std::sync::Mutex<HashSet<String>>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Burst {
    /// `workers` clients, each sending up to `per_worker` clicks to `{base}/demo`.
    fn start(base: &str, workers: usize, per_worker: usize) -> Burst {
        let answered = Arc::new(std::sync::Mutex::new(HashSet::new()));
        let workers = (0..workers)
            .map(|_| {
                let answered = answered.clone();
                let url = format!("{base}/demo");
                tokio::spawn(async move {
                    let http = client();
                    for _ in 0..per_worker {
                        match http.get(&url).send().await {
                            Ok(response) if response.status() == 302 => {
                                let location =
                                    response.headers()["location"].to_str().unwrap().to_string();
                                answered
                                    .lock()
                                    .unwrap()
                                    .insert(subid_of(&location).unwrap());
                            }
                            Ok(response) => panic!("unexpected status {}", response.status()),
                            // The server is gone: this request was not answered.
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        Burst { answered, workers }
    }

    fn answered(&self) -> usize {
        self.answered.lock().unwrap().len()
    }

    /// Waits until `count` clicks were answered (the burst is then in full flow).
    async fn wait_for(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.answered() < count {
            assert!(
                Instant::now() < deadline,
                "the burst did not get {count} answers in 90 s"
            );
            assert!(
                !self.workers.iter().all(|w| w.is_finished()),
                "every worker stopped early"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for the clients to finish (or find the server gone); returns what was answered.
    async fn finish(self) -> HashSet<String> {
        for worker in self.workers {
            worker.await.unwrap();
        }
        self.answered.lock().unwrap().clone()
    }
}

/// Every answered click is stored once, and at most `unanswered` other clicks (requests in
/// flight when the process died: journalled, then killed before the answer went out).
async fn assert_stored(db: &TestDb, answered: &HashSet<String>, unanswered: usize) {
    let stored = db
        .rows("SELECT sub_id FROM clicks", &["sub_id"])
        .await
        .unwrap();
    let distinct: HashSet<String> = stored.iter().map(|row| row["sub_id"].clone()).collect();
    assert_eq!(distinct.len(), stored.len(), "a click was stored twice");
    let missing: Vec<_> = answered.difference(&distinct).collect();
    assert!(
        missing.is_empty(),
        "{} answered clicks are missing, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert!(
        distinct.len() <= answered.len() + unanswered,
        "{} clicks stored, {} answered",
        distinct.len(),
        answered.len()
    );
}

/// Every answered click is stored, and nothing else.
async fn assert_stored_exactly(db: &TestDb, answered: &HashSet<String>) {
    assert_stored(db, answered, 0).await;
}

async fn wait_exit(
    mut process: TestProcess,
    limit: Duration,
) -> (std::process::ExitStatus, String) {
    tokio::task::spawn_blocking(move || {
        let status = process.wait(limit).unwrap();
        (status, process.stderr())
    })
    .await
    .unwrap()
}

/// SIGTERM: the process exits successfully within `bound`; its log.
async fn terminate_within(process: TestProcess, bound: Duration) -> String {
    let stopping = Instant::now();
    process.terminate().unwrap();
    let (status, log) = wait_exit(process, Duration::from_secs(30)).await;
    let took = stopping.elapsed();
    assert!(status.success(), "{log}");
    assert!(took < bound, "shutdown took {took:?}:\n{log}");
    log
}

/// Starts the process and waits until the recorder has nothing pending (earlier runs'
/// journalled clicks included); then stops it with SIGTERM.
async fn settle(config: &std::path::Path) -> String {
    let process = TestProcess::serve(binary(), config, &[]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health: serde_json::Value = client()
            .get(process.url("/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if health["recorder"]["backlog"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the backlog never drained: {health}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    process.terminate().unwrap();
    let (status, log) = wait_exit(process, Duration::from_secs(30)).await;
    assert!(status.success(), "{log}");
    log
}

async fn sigterm_during_a_burst_keeps_every_answered_click(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let config = db.write_config("[recorder]\nbatch_size = 50\n").unwrap();
    let process = TestProcess::serve(binary(), &config, &[]).unwrap();
    let burst = Burst::start(&process.base, 8, 2_000);
    burst.wait_for(400).await;
    process.terminate().unwrap();
    let answered = burst.finish().await;
    let (status, log) = wait_exit(process, Duration::from_secs(30)).await;
    assert!(status.success(), "{log}");
    assert!(
        answered.len() < 16_000,
        "the burst must have been interrupted by SIGTERM ({} answered)",
        answered.len()
    );
    assert_stored_exactly(&db, &answered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sigterm_during_a_burst_keeps_every_answered_click() {
    sigterm_during_a_burst_keeps_every_answered_click(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sigterm_during_a_burst_keeps_every_answered_click() {
    sigterm_during_a_burst_keeps_every_answered_click(Backend::Postgres).await;
}

/// SIGKILL in the middle of a burst of 5 000 clicks, five times in a row on the same data:
/// after a restart, every click that got an answer is in the store, none twice (besides
/// them, only clicks whose answer the kill cut off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_bursts_loses_no_answered_click() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let config = db.write_config("").unwrap();
    let mut answered = HashSet::new();
    let mut replayed_somewhere = false;
    for round in 0..5 {
        let mut process = TestProcess::serve(binary(), &config, &[]).unwrap();
        let burst = Burst::start(&process.base, 8, 625);
        // Killed at a point that moves from round to round, mid-burst.
        burst.wait_for(1_000 + round * 600).await;
        process.child.kill().unwrap();
        process.child.wait().unwrap();
        replayed_somewhere |= process.stderr().contains(REPLAYED);
        let round_answered = burst.finish().await;
        assert!(
            round_answered.len() < 5_000,
            "round {round}: the burst must have been interrupted ({} answered)",
            round_answered.len()
        );
        answered.extend(round_answered);
    }
    let log = settle(&config).await;
    // At most one request per client was in flight at each kill.
    assert_stored(&db, &answered, 5 * 8).await;
    // The journal's replays were reported (the store had not confirmed everything answered
    // before at least one of the kills).
    assert!(
        replayed_somewhere || log.contains(REPLAYED),
        "no replay was reported:\n{log}"
    );
}

/// What the log says once a start has written the journal's records of an earlier run.
const REPLAYED: &str = "from the previous run were written";

/// SIGTERM while the database is locked by another writer: the process exits within its
/// drain timeout (plus the request grace) instead of retrying for ever, and the clicks it
/// could not write stay journalled: the next start writes every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_the_store_locked_exits_in_time_and_keeps_every_click() {
    use sqlx::Connection;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let config = db
        .write_config("[recorder]\ndrain_timeout_ms = 2000\n")
        .unwrap();
    let process = TestProcess::serve(binary(), &config, &[]).unwrap();
    // Hold the write lock: every write transaction of the tracker waits, then fails busy.
    let mut lock = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .unwrap();
    let burst = Burst::start(&process.base, 4, 200);
    let answered_start = Instant::now();
    let answered = burst.finish().await;
    assert_eq!(
        answered.len(),
        800,
        "every click answered while the store is locked"
    );
    assert!(
        answered_start.elapsed() < Duration::from_secs(30),
        "answers do not wait for the store"
    );
    // 2 s of drain, up to 5 s for a write the busy timeout holds, and the process's exit.
    let log = terminate_within(process, Duration::from_secs(10)).await;
    assert!(
        log.contains("Shutdown left unwritten clicks in the journal"),
        "{log}"
    );
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    lock.close().await.unwrap();
    settle(&config).await;
    assert_stored_exactly(&db, &answered).await;
}

/// A PostgreSQL cluster of the test's own (on a free loopback port, in a temporary
/// directory), so that stopping it leaves the shared one alone. Needs root (CI and the
/// development machines run as root): the server runs as the `postgres` user.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
}

impl PrivatePostgres {
    fn start() -> PrivatePostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's binaries in /usr/lib/postgresql")
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .max()
            .map(|version| std::path::PathBuf::from(format!("/usr/lib/postgresql/{version}/bin")))
            .expect("a PostgreSQL version");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = PrivatePostgres { dir, bin, port };
        cluster.run("chown", &["-R", "postgres:", &cluster.path("")], false);
        cluster.run(
            &cluster.tool("initdb"),
            &[
                "-D",
                &cluster.path("data"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
            true,
        );
        cluster.up();
        cluster
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn tool(&self, name: &str) -> String {
        self.bin.join(name).display().to_string()
    }

    fn run(&self, program: &str, args: &[&str], as_postgres: bool) {
        let mut command = if as_postgres {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--", program]);
            command
        } else {
            std::process::Command::new(program)
        };
        let output = command.args(args).output().expect("run a PostgreSQL tool");
        assert!(
            output.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.path("")
        );
        self.run(
            &self.tool("pg_ctl"),
            &[
                "-D",
                &self.path("data"),
                "-o",
                &options,
                "-l",
                &self.path("log"),
                "-w",
                "start",
            ],
            true,
        );
    }

    fn down(&self) {
        self.run(
            &self.tool("pg_ctl"),
            &["-D", &self.path("data"), "-m", "fast", "-w", "stop"],
            true,
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", &self.tool("pg_ctl")])
            .args(["-D", &self.path("data"), "-m", "immediate", "stop"])
            .output();
    }
}

/// How long the database is down in the outage test.
const OUTAGE: Duration = Duration::from_secs(60);

/// `/health`, which must answer within a second whatever is down.
async fn health(base: &str) -> serde_json::Value {
    let asked = Instant::now();
    let health: serde_json::Value = client()
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "/health took {:?}",
        asked.elapsed()
    );
    health
}

/// Polls `/health` (each answer within a second) until `ready` holds, for at most `limit`.
async fn health_until(
    base: &str,
    limit: Duration,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let health = health(base).await;
        if ready(&health) {
            return health;
        }
        assert!(
            Instant::now() < deadline,
            "/health never got there: {health}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// PostgreSQL stopped for a minute under steady traffic: every click is answered with its
/// redirect (no 5xx), `/health` answers within a second with `degraded` and the reason, and
/// once the database is back the journal's backlog drains by itself: every answered click is
/// stored, once, and `/health` says `ok` again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_under_traffic_loses_nothing() {
    let cluster = PrivatePostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\nshutdown_grace_ms = 5000\n\n[database]\nurl = \"{}\"\nmax_connections = 4\n",
            cluster.url()
        ),
    )
    .unwrap();
    let process = TestProcess::serve(binary(), &config, &[]).unwrap();

    // Steady traffic, about 50 clicks a second, until told to stop.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let stop = stop.clone();
        let url = process.url("/demo");
        tokio::spawn(async move {
            let http = client();
            let mut answered = HashSet::new();
            let mut failures = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match http.get(&url).send().await {
                    Ok(response) if response.status() == 302 => {
                        let location = response.headers()["location"].to_str().unwrap().to_string();
                        answered.insert(subid_of(&location).unwrap());
                    }
                    Ok(response) => failures.push(response.status().as_u16()),
                    Err(error) => panic!("a click got no answer: {error}"),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (answered, failures)
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.down();
    let outage = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let health = health(&process.base).await;
        if health["status"] == "degraded" {
            assert!(
                health["reasons"]
                    .to_string()
                    .contains("the database is unreachable"),
                "{health}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never degraded: {health}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while outage.elapsed() < OUTAGE {
        health(&process.base).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    cluster.up();
    // The backlog drains by itself and health recovers.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = health(&process.base).await;
        if health["status"] == "ok" && health["recorder"]["failing_ms"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered: {health}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (answered, failures) = traffic.await.unwrap();
    assert!(failures.is_empty(), "answers other than 302: {failures:?}");
    assert!(
        answered.len() > 1_000,
        "only {} clicks answered",
        answered.len()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = health(&process.base).await;
        if health["recorder"]["backlog"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the backlog never drained: {health}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&cluster.url())
        .await
        .unwrap();
    let stored: Vec<String> = sqlx::query_scalar("SELECT sub_id FROM clicks")
        .fetch_all(&mut db)
        .await
        .unwrap();
    let distinct: HashSet<String> = stored.iter().cloned().collect();
    assert_eq!(distinct.len(), stored.len(), "a click was stored twice");
    let missing = answered.difference(&distinct).count();
    assert_eq!(missing, 0, "{missing} answered clicks are missing");
    process.terminate().unwrap();
    let (status, log) = wait_exit(process, Duration::from_secs(30)).await;
    assert!(status.success(), "{log}");
}

/// SIGTERM with PostgreSQL down, with postbacks in flight: postbacks that meet the outage are
/// held (answered 200 `pending`, `/health` degraded with the count within a second), the
/// process exits within its drain bound, and the next start, the database back, stores every
/// answered click and counts each conversion exactly once, whichever came first (a postback
/// for a click stored before the outage, one for a click answered during it, and one sent
/// 0 ms after its click).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_postgres_down_keeps_clicks_and_postbacks() {
    const KEY: &str = "fault-postback-key-0123456789";
    const ADMIN: &str = "fault-admin-key-0123456789abcdef";
    let cluster = PrivatePostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\nshutdown_grace_ms = 2000\n\n\
             [database]\nurl = \"{}\"\nmax_connections = 4\n\n[recorder]\ndrain_timeout_ms = 2000\n\n\
             [admin]\napi_key = \"{ADMIN}\"\n\n[postback]\nkey = \"{KEY}\"\n",
            cluster.url()
        ),
    )
    .unwrap();
    let http = client();
    let click = |base: String| {
        let http = http.clone();
        async move {
            let response = http.get(format!("{base}/demo")).send().await.unwrap();
            assert_eq!(response.status(), 302);
            subid_of(response.headers()["location"].to_str().unwrap()).unwrap()
        }
    };
    let postback = |base: String, sub: String, status: &'static str| {
        let http = http.clone();
        async move {
            let response = http
                .get(format!(
                    "{base}/{KEY}/postback?subid={sub}&status={status}&payout=5"
                ))
                .send()
                .await
                .unwrap();
            let code = response.status().as_u16();
            (code, response.json::<serde_json::Value>().await.unwrap())
        }
    };

    let process = TestProcess::serve(binary(), &config, &[]).unwrap();
    let mut answered = HashSet::new();
    let before = click(process.base.clone()).await;
    answered.insert(before.clone());
    health_until(&process.base, Duration::from_secs(10), |h| {
        h["recorder"]["backlog"] == 0
    })
    .await;
    cluster.down();
    health_until(&process.base, Duration::from_secs(10), |h| {
        h["status"] == "degraded"
            && h["reasons"]
                .to_string()
                .contains("the database is unreachable")
    })
    .await;
    // During the outage: clicks, a postback for the click stored before it, and one sent
    // 0 ms after its click.
    for _ in 0..20 {
        answered.insert(click(process.base.clone()).await);
    }
    let (code, body) = postback(process.base.clone(), before.clone(), "lead").await;
    assert_eq!((code, &body["status"]), (200, &json!("pending")), "{body}");
    let during = click(process.base.clone()).await;
    answered.insert(during.clone());
    let (code, body) = postback(process.base.clone(), during.clone(), "sale").await;
    assert_eq!((code, &body["status"]), (200, &json!("pending")), "{body}");
    // A later postback for the first click goes behind its held lead: lead, then sale.
    let (code, body) = postback(process.base.clone(), before.clone(), "sale").await;
    assert_eq!((code, &body["status"]), (200, &json!("pending")), "{body}");
    let degraded = health(&process.base).await;
    assert_eq!(degraded["postbacks"]["held"], 3, "{degraded}");
    assert!(
        degraded["reasons"]
            .to_string()
            .contains("3 postbacks are held"),
        "{degraded}"
    );

    // 2 s of request grace at most, 2 s of drain, a write the pool's timeout holds, the exit.
    terminate_within(process, Duration::from_secs(15)).await;

    cluster.up();
    let process = TestProcess::serve(binary(), &config, &[]).unwrap();
    health_until(&process.base, Duration::from_secs(30), |h| {
        h["status"] == "ok" && h["recorder"]["backlog"] == 0 && h["postbacks"]["held"] == 0
    })
    .await;
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&cluster.url())
        .await
        .unwrap();
    let stored: Vec<String> = sqlx::query_scalar("SELECT sub_id FROM clicks")
        .fetch_all(&mut db)
        .await
        .unwrap();
    let distinct: HashSet<String> = stored.iter().cloned().collect();
    assert_eq!(distinct.len(), stored.len(), "a click was stored twice");
    assert_eq!(distinct, answered, "every answered click, and only those");
    // The first click's lead, then its sale: in the order they came.
    let mut expected = vec![
        (before.clone(), "sale".to_string(), "lead".to_string()),
        (during.clone(), "sale".to_string(), String::new()),
    ];
    expected.sort();
    // A held postback whose click was still on its way from the journal was parked behind
    // it: applied within the parked postbacks' poll.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let conversions: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT sub_id, status, COALESCE(previous_status, '') FROM conversions ORDER BY sub_id",
        )
        .fetch_all(&mut db)
        .await
        .unwrap();
        if conversions == expected {
            break;
        }
        assert!(Instant::now() < deadline, "conversions: {conversions:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report: serde_json::Value = http
        .post(process.url("/admin_api/v1/report/build"))
        .header("Api-Key", ADMIN)
        .json(
            &json!({"range": {"interval": "today"}, "metrics": ["clicks", "conversions", "sales"]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["rows"][0]["clicks"], answered.len(), "{report}");
    assert_eq!(report["rows"][0]["conversions"], 2, "{report}");
    assert_eq!(report["rows"][0]["sales"], 2, "{report}");
    process.terminate().unwrap();
    let (status, log) = wait_exit(process, Duration::from_secs(30)).await;
    assert!(status.success(), "{log}");
}
