//! Test harness: real databases (a temporary SQLite file, a fresh PostgreSQL database per
//! test) and the real server, either in-process on port 0 or as the `switchyard` binary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sqlx::Row;
use switchyard::config::{self, Config};
use switchyard::server::RunningServer;

/// Where the tests reach PostgreSQL's maintenance database (to create and drop test databases).
pub fn postgres_admin_url() -> String {
    std::env::var("SWITCHYARD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// Which backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test and is removed afterwards.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    /// Working directory of the test: config file, data dir, SQLite file.
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Result<TestDb> {
        let dir = tempfile::tempdir()?;
        match backend {
            Backend::Sqlite => Ok(TestDb {
                backend,
                url: format!("sqlite://{}", dir.path().join("switchyard.db").display()),
                dir,
                pg_name: None,
            }),
            Backend::Postgres => {
                let name = format!("sy_test_{}", switchyard::traffic::random_token(12));
                let admin = postgres_admin_url();
                let mut conn: sqlx::PgConnection = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .with_context(|| format!("PostgreSQL is required for this test at {admin} (set SWITCHYARD_TEST_POSTGRES_URL)"))?;
                sqlx::Executor::execute(
                    &mut conn,
                    sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
                )
                .await?;
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                Ok(TestDb {
                    backend,
                    url: format!("{base}/{name}"),
                    dir,
                    pg_name: Some(name),
                })
            }
        }
    }

    /// A config for this database: port 0, data dir inside the test dir, plus `extra` TOML.
    pub fn config_text(&self, extra: &str) -> String {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\nshutdown_grace_ms = 5000\n\n[database]\nurl = \"{}\"\nmax_connections = 4\n\n{extra}\n",
            self.url
        )
    }

    /// Writes `config.toml` into the test dir and returns its path.
    pub fn write_config(&self, extra: &str) -> Result<PathBuf> {
        let path = self.dir.path().join("config.toml");
        std::fs::write(&path, self.config_text(extra))?;
        Ok(path)
    }

    pub fn config(&self, extra: &str) -> Result<Config> {
        config::from_sources(
            "test.toml",
            &self.config_text(extra),
            &[],
            Some(self.dir.path()),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// [`TestDb::config`] for a server behind a proxy on loopback (X-Forwarded-For names the
    /// visitor, as the tests' clients send it), without the demo data.
    pub fn config_behind_proxy(&self, extra: &str) -> Result<Config> {
        let mut config = self.config(extra)?;
        config.server.trusted_proxies = vec!["127.0.0.1/32".parse().map_err(anyhow::Error::msg)?];
        config.demo.seed = false;
        Ok(config)
    }

    /// Runs `sql` (a SELECT) and returns every row with each column as text
    /// (booleans as "true"/"false", NULL as "NULL"), whatever the backend.
    pub async fn rows(&self, sql: &str, columns: &[&str]) -> Result<Vec<HashMap<String, String>>> {
        // One body for both backends: each decodes a column as text, integer or boolean.
        macro_rules! read_rows {
            ($pool:ty) => {{
                let pool = <$pool>::connect(&self.url).await?;
                let mut out = Vec::new();
                for row in sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                    .fetch_all(&pool)
                    .await?
                {
                    let mut map = HashMap::new();
                    for column in columns {
                        let value = row
                            .try_get::<Option<String>, _>(*column)
                            .or_else(|_| {
                                row.try_get::<Option<i64>, _>(*column)
                                    .map(|v| v.map(|v| v.to_string()))
                            })
                            .or_else(|_| {
                                row.try_get::<Option<bool>, _>(*column)
                                    .map(|v| v.map(|v| (v as i64).to_string()))
                            })
                            .with_context(|| format!("column {column}"))?;
                        map.insert(column.to_string(), value.unwrap_or_else(|| "NULL".into()));
                    }
                    out.push(map);
                }
                pool.close().await;
                out
            }};
        }
        let out = match self.backend {
            Backend::Sqlite => read_rows!(sqlx::SqlitePool),
            Backend::Postgres => read_rows!(sqlx::PgPool),
        };
        Ok(out)
    }

    /// Runs one statement that returns no rows (an UPDATE, INSERT or DROP), whatever the backend.
    pub async fn execute(&self, sql: &str) -> Result<u64> {
        macro_rules! run {
            ($pool:ty) => {{
                let pool = <$pool>::connect(&self.url).await?;
                let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                    .execute(&pool)
                    .await?
                    .rows_affected();
                pool.close().await;
                done
            }};
        }
        Ok(match self.backend {
            Backend::Sqlite => run!(sqlx::SqlitePool),
            Backend::Postgres => run!(sqlx::PgPool),
        })
    }

    pub async fn count(&self, sql: &str) -> Result<i64> {
        let rows = self.rows(sql, &["n"]).await?;
        Ok(rows[0]["n"].parse()?)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = postgres_admin_url();
        // Drop runs outside any runtime guarantee: use a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn: sqlx::PgConnection =
                    <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await?;
                sqlx::Executor::execute(
                    &mut conn,
                    sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")),
                )
                .await?;
                anyhow::Ok(())
            })
        })
        .join();
    }
}

/// An HTTP client that never follows redirects.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// The server running inside the test process.
pub struct TestServer {
    pub server: RunningServer,
    pub base: String,
}

impl TestServer {
    pub async fn start(db: &TestDb, extra: &str) -> Result<TestServer> {
        TestServer::from_config(db.config(extra)?).await
    }

    pub async fn from_config(config: Config) -> Result<TestServer> {
        // The server's log, when asked for with RUST_LOG (captured per test by the runner).
        if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let server = switchyard::server::start(config).await?;
        let base = format!("http://{}", server.local_addr);
        Ok(TestServer { server, base })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The server's store (to create objects a test routes through).
    pub fn store(&self) -> std::sync::Arc<dyn switchyard::store::Store> {
        self.server.store()
    }

    /// Rebuilds the routing snapshot from the store (after a test created objects).
    pub async fn reload(&self) {
        self.server
            .state
            .snapshot
            .rebuild(self.server.store().as_ref())
            .await
            .expect("rebuild");
    }

    /// A new active campaign `alias` with one stream redirecting to
    /// `https://offer.test/?subid={subid}`, routing at once; its id.
    pub async fn redirect_campaign(&self, alias: &str) -> i64 {
        let store = self.store();
        let campaign = store
            .create_campaign(&switchyard::model::NewCampaign::new(
                alias,
                alias,
                &format!("tok-{alias}"),
            ))
            .await
            .expect("create a campaign");
        store
            .create_stream(&switchyard::model::NewStream::redirect(
                campaign.id,
                "all",
                "https://offer.test/?subid={subid}",
            ))
            .await
            .expect("create a stream");
        self.reload().await;
        campaign.id
    }

    /// A new active offer redirecting to `url`; its id.
    pub async fn external_offer(&self, name: &str, url: &str) -> i64 {
        self.store()
            .create_offer(&switchyard::model::NewTarget::external(name, url))
            .await
            .expect("create an offer")
            .id
    }

    /// `GET /health` as JSON.
    pub async fn health(&self) -> serde_json::Value {
        client()
            .get(self.url("/health"))
            .send()
            .await
            .expect("GET /health")
            .json()
            .await
            .expect("/health answers JSON")
    }

    /// Where `GET /{alias}` redirects; the answer must be a 302.
    pub async fn location(&self, alias: &str) -> String {
        let response = client()
            .get(self.url(&format!("/{alias}")))
            .send()
            .await
            .expect("GET a campaign link");
        assert_eq!(response.status(), 302, "GET /{alias}");
        response.headers()["location"]
            .to_str()
            .expect("a text Location")
            .to_string()
    }

    pub async fn stop(self) {
        self.server.shutdown().await;
    }
}

/// The `switchyard` binary running as a child process.
pub struct TestProcess {
    pub child: Child,
    pub base: String,
    pub stderr_path: PathBuf,
}

impl TestProcess {
    /// Starts `BINARY serve --config PATH` and waits for its "listening" line.
    pub fn serve(binary: &str, config: &Path, env: &[(&str, &str)]) -> Result<TestProcess> {
        use std::io::{BufRead, BufReader};
        let stderr_path = config.with_extension("stderr.log");
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path)?);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(base) = line.strip_prefix("Switchyard listening on ") {
                    let _ = tx.send(base.to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(base) => Ok(TestProcess {
                child,
                base,
                stderr_path,
            }),
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                bail!("the server did not start:\n{log}")
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) -> Result<()> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill failed");
        Ok(())
    }

    /// Waits for exit (at most `limit`), returning the exit status.
    pub fn wait(&mut self, limit: Duration) -> Result<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("the server did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for TestProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of a vendored test file (`tests/data/...`).
pub fn test_data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(path)
}

/// A tiny HTTP server on 127.0.0.1 answering every request with `status`, `content_type` and
/// `body`, for actions and triggers that fetch. Returns its base URL.
pub async fn fixed_http_server(status: u16, content_type: &'static str, body: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
            });
        }
    });
    format!("http://{addr}")
}

/// The `subid` query parameter of a redirect Location.
pub fn subid_of(location: &str) -> Option<String> {
    let url = reqwest::Url::parse(location).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == "subid")
        .map(|(_, v)| v.into_owned())
}

/// A Python virtual environment with `packages` installed from PyPI, created once under the
/// user's cache directory (`$HOME/.cache/switchyard-py/NAME`) and reused by later runs; tests
/// that ask for it at the same time wait on a lock file. Returns the environment's `python`.
pub fn python_env(name: &str, packages: &[&str]) -> Result<PathBuf> {
    let home = std::env::var("HOME").context("HOME is not set")?;
    let root = PathBuf::from(home).join(".cache").join("switchyard-py");
    std::fs::create_dir_all(&root)?;
    let lock = std::fs::File::create(root.join(format!("{name}.lock")))?;
    lock.lock()?;
    let env = root.join(name);
    let python = env.join("bin").join("python");
    let marker = env.join("switchyard-packages.txt");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        let _ = std::fs::remove_dir_all(&env);
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&env)
            .status()
            .context("python3 -m venv")?;
        if !status.success() {
            bail!("python3 -m venv {} failed", env.display());
        }
        let output = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(packages)
            .output()
            .context("pip install")?;
        if !output.status.success() {
            bail!(
                "pip install {packages:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::fs::write(&marker, &wanted)?;
    }
    lock.unlock()?;
    Ok(python)
}
