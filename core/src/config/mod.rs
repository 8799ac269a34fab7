//! Configuration: `config.toml`, overridden by `SWITCHYARD_<SECTION>_<KEY>` environment
//! variables, checked key by key so that every problem is reported at once, then validated
//! into [`Config`], the only type the rest of the program sees.

mod check;
mod raw;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use toml::{Table, Value};

pub use raw::*;

use check::{Checker, Locator, section};

use crate::net::IpNet;

/// Environment variables that start with this prefix override config keys.
pub const ENV_PREFIX: &str = "SWITCHYARD_";
/// Not a config key: names the config file itself (same as `--config`).
pub const ENV_CONFIG_PATH: &str = "SWITCHYARD_CONFIG";

/// One thing wrong with the configuration, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `config.toml:12 server.listen` or `env SWITCHYARD_SERVER_LISTEN (server.listen)`.
    pub location: String,
    pub message: String,
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        writeln!(
            f,
            "the configuration has {count} problem{}:",
            if count == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            writeln!(f, "  - {}: {}", problem.location, problem.message)?;
        }
        Ok(())
    }
}

/// Which database engine a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub trusted_proxies: Vec<IpNet>,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// The URL with a relative SQLite path resolved against the config file's directory.
    pub url: String,
    pub backend: Backend,
    pub max_connections: u32,
}

#[derive(Debug, Clone)]
pub struct RecorderConfig {
    pub queue_capacity: usize,
    pub batch_size: usize,
    /// How long a click waits for room in a full queue before it is dropped.
    pub full_wait: Duration,
    pub durability: Durability,
    /// The journal's size cap in bytes.
    pub journal_max_bytes: u64,
    /// How long shutdown drains the journal into the store.
    pub drain_timeout: Duration,
}

/// What an answered click survives (`recorder.durability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// No journal: clicks wait in memory; a crash loses the queue.
    Memory,
    /// Journalled to the OS before the answer: survives a crash of the tracker.
    Process,
    /// Journalled and synced to the disk before the answer: survives power loss.
    Fsync,
}

#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub seed: bool,
    pub url: String,
}

/// GeoIP database files; `None` where not configured. Existence is checked when opened.
#[derive(Debug, Clone, Default)]
pub struct GeoipConfig {
    pub city_db: Option<PathBuf>,
    pub isp_db: Option<PathBuf>,
    pub asn_db: Option<PathBuf>,
    pub connection_type_db: Option<PathBuf>,
}

/// Limits of outbound fetches (`curl`/`remote` actions, triggers).
#[derive(Debug, Clone)]
pub struct FetchConfig {
    pub allow_networks: Vec<IpNet>,
    pub timeout: Duration,
    pub max_bytes: usize,
}

/// The trigger scheduler.
#[derive(Debug, Clone)]
pub struct TriggersConfig {
    pub enabled: bool,
    pub tick: Duration,
}

/// Plugin sources and their hot reload.
#[derive(Debug, Clone)]
pub struct PluginsConfig {
    pub scripts_dir: PathBuf,
    pub native_dir: PathBuf,
    /// Where native libraries are copied (content-addressed) before loading.
    pub cache_dir: PathBuf,
    pub watch: bool,
    pub debounce: Duration,
    /// The limits every script and native kind runs under (`[user_code]`).
    pub guard: crate::guard::GuardPolicy,
    /// Threads and queue of the user-code pool (`[user_code]`).
    pub pool_threads: usize,
    pub pool_queue: usize,
}

/// The campaigns directory (config-as-files); `None` when not configured.
#[derive(Debug, Clone, Default)]
pub struct CampaignsConfig {
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub level: String,
    pub json: bool,
}

/// One of the other vendors' click APIs Switchyard speaks (see README "Other click APIs").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// Seed 001: `/backend/open-api/v1/users/clicks`.
    OpenApi,
    /// Seed 003: `/api/click/create` (HOQU).
    Hoqu,
    /// Seed 004: `[base]/clicks`.
    RestClicks,
}

impl Dialect {
    pub const ALL: [Dialect; 3] = [Dialect::OpenApi, Dialect::Hoqu, Dialect::RestClicks];

    /// The name used in config keys and in stored data (`open_api`, `hoqu`, `rest_clicks`).
    pub fn name(self) -> &'static str {
        match self {
            Dialect::OpenApi => "open_api",
            Dialect::Hoqu => "hoqu",
            Dialect::RestClicks => "rest_clicks",
        }
    }

    /// The `[dialects]` key that holds the dialect's secret.
    pub fn key_name(self) -> &'static str {
        match self {
            Dialect::OpenApi => "open_api_token",
            Dialect::Hoqu => "hoqu_secure_key",
            Dialect::RestClicks => "rest_clicks_token",
        }
    }
}

/// Which dialects are served, and how.
#[derive(Debug, Clone)]
pub struct DialectsConfig {
    pub open_api: bool,
    pub hoqu: bool,
    pub rest_clicks: bool,
    /// `[base]` of the rest-clicks dialect: "" (the root) or `/seg[/seg…]`, no trailing slash.
    pub rest_clicks_base_path: String,
    /// Alias of the campaign for rest-clicks creates whose `uri` names no campaign.
    pub rest_clicks_campaign: Option<String>,
}

impl DialectsConfig {
    pub fn enabled(&self, dialect: Dialect) -> bool {
        match dialect {
            Dialect::OpenApi => self.open_api,
            Dialect::Hoqu => self.hoqu,
            Dialect::RestClicks => self.rest_clicks,
        }
    }
}

/// Secrets as configured; the ones left unset are generated by `crate::secrets`.
#[derive(Clone, Default)]
pub struct ConfiguredSecrets {
    pub admin_api_key: Option<String>,
    pub postback_key: Option<String>,
    pub signing_key: Option<String>,
    /// The key of each enabled dialect, when configured (disabled dialects are not listed).
    pub dialect_keys: Vec<(Dialect, Option<String>)>,
}

impl fmt::Debug for ConfiguredSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |s: &Option<String>| if s.is_some() { "<set>" } else { "<unset>" };
        let dialects: Vec<(&str, &str)> = self
            .dialect_keys
            .iter()
            .map(|(dialect, key)| (dialect.name(), shown(key)))
            .collect();
        f.debug_struct("ConfiguredSecrets")
            .field("admin_api_key", &shown(&self.admin_api_key))
            .field("postback_key", &shown(&self.postback_key))
            .field("signing_key", &shown(&self.signing_key))
            .field("dialect_keys", &dialects)
            .finish()
    }
}

/// A valid configuration. Built only by [`load`] / [`from_sources`].
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (or `<defaults>`).
    pub source: String,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub secrets: ConfiguredSecrets,
    pub recorder: RecorderConfig,
    pub demo: DemoConfig,
    pub geoip: GeoipConfig,
    pub fetch: FetchConfig,
    pub plugins: PluginsConfig,
    pub triggers: TriggersConfig,
    pub dialects: DialectsConfig,
    pub campaigns: CampaignsConfig,
    pub log: LogConfig,
    pub postback: PostbackConfig,
}

/// The postback endpoint and money conversion (the key itself is a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostbackConfig {
    /// `/postback` without the key is served too.
    pub keyless: bool,
    /// The tracker's currency (upper-case ISO code).
    pub currency: String,
    /// Units of the tracker's currency per unit of each other currency (upper-case codes).
    pub rates: Vec<(String, crate::model::Money)>,
    /// First wait before an outgoing postback is retried; it doubles after each try.
    pub retry_base: Duration,
    /// Tries per outgoing postback (1–10).
    pub max_attempts: u32,
    /// How long a postback whose click is not stored yet is kept waiting for it.
    pub pending_retention: Duration,
}

/// Reads the file at `path` and the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
        problems: vec![Problem {
            location: path.display().to_string(),
            message: format!("cannot read the configuration file: {error}"),
        }],
    })?;
    let env: Vec<(String, String)> = std::env::vars().collect();
    from_sources(&path.display().to_string(), &text, &env, path.parent())
}

/// Parses `text` (named `source` in messages), applies `env` overrides and validates.
/// Relative paths resolve against `base_dir` (the config file's directory).
pub fn from_sources(
    source: &str,
    text: &str,
    env: &[(String, String)],
    base_dir: Option<&Path>,
) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let mut table: Table = match text.parse() {
        Ok(table) => table,
        Err(error) => {
            let line = error
                .span()
                .map(|span| text[..span.start].matches('\n').count() + 1);
            return Err(ConfigError {
                problems: vec![Problem {
                    location: match line {
                        Some(line) => format!("{source}:{line}"),
                        None => source.to_string(),
                    },
                    message: format!("not valid TOML: {}", error.message()),
                }],
            });
        }
    };
    let locator = Locator {
        source,
        text,
        env_keys: apply_env(&mut table, env, &mut problems),
    };

    for (name, value) in &table {
        if !SECTIONS.contains(&name.as_str()) {
            problems.push(Problem {
                location: locator.at(name, None),
                message: format!(
                    "unknown section `{name}` (known sections: {})",
                    SECTIONS.join(", ")
                ),
            });
        } else if !value.is_table() {
            problems.push(Problem {
                location: locator.at(name, None),
                message: format!("`{name}` must be a table ([{name}])"),
            });
        }
    }

    let server: RawServer = section(&table, "server", &locator, &mut problems);
    let database: RawDatabase = section(&table, "database", &locator, &mut problems);
    let admin: RawAdmin = section(&table, "admin", &locator, &mut problems);
    let postback: RawPostback = section(&table, "postback", &locator, &mut problems);
    let security: RawSecurity = section(&table, "security", &locator, &mut problems);
    let recorder: RawRecorder = section(&table, "recorder", &locator, &mut problems);
    let demo: RawDemo = section(&table, "demo", &locator, &mut problems);
    let log: RawLog = section(&table, "log", &locator, &mut problems);
    let geoip: RawGeoip = section(&table, "geoip", &locator, &mut problems);
    let fetch: RawFetch = section(&table, "fetch", &locator, &mut problems);
    let scripts: RawScripts = section(&table, "scripts", &locator, &mut problems);
    let plugins: RawPlugins = section(&table, "plugins", &locator, &mut problems);
    let reload: RawReload = section(&table, "reload", &locator, &mut problems);
    let triggers: RawTriggers = section(&table, "triggers", &locator, &mut problems);
    let dialects: RawDialects = section(&table, "dialects", &locator, &mut problems);
    let campaigns: RawCampaigns = section(&table, "campaigns", &locator, &mut problems);
    let user_code: RawUserCode = section(&table, "user_code", &locator, &mut problems);

    let mut check = Checker {
        locator: &locator,
        problems: &mut problems,
    };
    let base = base_dir.unwrap_or(Path::new("."));
    let config = Config {
        source: source.to_string(),
        server: ServerConfig {
            listen: check.listen(&server.listen),
            data_dir: base.join(&server.data_dir),
            trusted_proxies: check.networks("server", "trusted_proxies", &server.trusted_proxies),
            request_timeout: check.millis(
                "server",
                "request_timeout_ms",
                server.request_timeout_ms,
            ),
            max_body_bytes: check.positive("server", "max_body_bytes", server.max_body_bytes),
            shutdown_grace: Duration::from_millis(server.shutdown_grace_ms),
        },
        database: check.database(&database, base),
        secrets: ConfiguredSecrets {
            admin_api_key: check.secret("admin", "api_key", admin.api_key),
            postback_key: check.secret("postback", "key", postback.key.clone()),
            signing_key: check.secret("security", "signing_key", security.signing_key),
            dialect_keys: Dialect::ALL
                .into_iter()
                .filter(|dialect| match dialect {
                    Dialect::OpenApi => dialects.open_api_enabled,
                    Dialect::Hoqu => dialects.hoqu_enabled,
                    Dialect::RestClicks => dialects.rest_clicks_enabled,
                })
                .map(|dialect| {
                    let value = match dialect {
                        Dialect::OpenApi => dialects.open_api_token.clone(),
                        Dialect::Hoqu => dialects.hoqu_secure_key.clone(),
                        Dialect::RestClicks => dialects.rest_clicks_token.clone(),
                    };
                    (dialect, check.secret("dialects", dialect.key_name(), value))
                })
                .collect(),
        },
        recorder: RecorderConfig {
            queue_capacity: check.positive("recorder", "queue_capacity", recorder.queue_capacity),
            batch_size: check.bounded("recorder", "batch_size", recorder.batch_size, 1, 1000),
            full_wait: Duration::from_millis(check.bounded(
                "recorder",
                "full_wait_ms",
                recorder.full_wait_ms,
                0,
                60_000,
            ) as u64),
            durability: match recorder.durability.as_str() {
                "memory" => Durability::Memory,
                "process" => Durability::Process,
                "fsync" => Durability::Fsync,
                other => {
                    check.fail(
                        "recorder",
                        "durability",
                        format!("`{other}` is not one of process, fsync, memory"),
                    );
                    Durability::Process
                }
            },
            // At least four segments' worth: the active segment is never deleted, so a cap
            // below two segments could leave no room to start the next one.
            journal_max_bytes: check.bounded(
                "recorder",
                "journal_max_mb",
                recorder.journal_max_mb,
                32,
                1 << 20,
            ) as u64
                * 1024
                * 1024,
            drain_timeout: Duration::from_millis(check.bounded(
                "recorder",
                "drain_timeout_ms",
                recorder.drain_timeout_ms,
                0,
                600_000,
            ) as u64),
        },
        demo: DemoConfig {
            seed: demo.seed,
            url: check.redirect_url("demo", "url", &demo.url),
        },
        geoip: {
            let path = |p: &str| (!p.trim().is_empty()).then(|| base.join(p.trim()));
            GeoipConfig {
                city_db: path(&geoip.city_db),
                isp_db: path(&geoip.isp_db),
                asn_db: path(&geoip.asn_db),
                connection_type_db: path(&geoip.connection_type_db),
            }
        },
        fetch: FetchConfig {
            allow_networks: check.networks("fetch", "allow_networks", &fetch.allow_networks),
            timeout: check.millis("fetch", "timeout_ms", fetch.timeout_ms),
            max_bytes: check.positive("fetch", "max_bytes", fetch.max_bytes),
        },
        plugins: PluginsConfig {
            scripts_dir: base.join(&scripts.dir),
            native_dir: base.join(&plugins.dir),
            cache_dir: base.join(&server.data_dir).join("plugin-cache"),
            watch: reload.watch,
            debounce: Duration::from_millis(reload.debounce_ms.clamp(10, 60_000)),
            guard: check.user_code(&user_code),
            pool_threads: check.bounded("user_code", "threads", user_code.threads, 1, 64),
            pool_queue: check.bounded("user_code", "queue", user_code.queue, 1, 100_000),
        },
        triggers: TriggersConfig {
            enabled: triggers.enabled,
            tick: check.millis("triggers", "tick_ms", triggers.tick_ms),
        },
        dialects: DialectsConfig {
            open_api: dialects.open_api_enabled,
            hoqu: dialects.hoqu_enabled,
            rest_clicks: dialects.rest_clicks_enabled,
            rest_clicks_base_path: check.base_path(
                "dialects",
                "rest_clicks_base_path",
                &dialects.rest_clicks_base_path,
            ),
            rest_clicks_campaign: Some(dialects.rest_clicks_campaign.trim().to_string())
                .filter(|alias| !alias.is_empty()),
        },
        campaigns: CampaignsConfig {
            dir: Some(campaigns.dir.trim())
                .filter(|d| !d.is_empty())
                .map(|d| base.join(d)),
        },
        postback: check.postback(&postback),
        log: LogConfig {
            json: check.log_format(&log.format),
            level: check.log_level(&log.level),
        },
    };
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError { problems })
    }
}

/// The built-in defaults, as a config (what an empty file gives).
pub fn defaults() -> Config {
    from_sources("<defaults>", "", &[], None).expect("the built-in defaults are valid")
}

const SECTIONS: &[&str] = &[
    "server",
    "database",
    "admin",
    "postback",
    "security",
    "recorder",
    "demo",
    "geoip",
    "fetch",
    "scripts",
    "plugins",
    "reload",
    "triggers",
    "dialects",
    "campaigns",
    "user_code",
    "log",
];

/// Path prefixes of Switchyard's own routes, which a configurable API base path may not enter.
pub const RESERVED_PATH_PREFIXES: &[&str] = &[
    "/admin_api",
    "/click_api",
    "/api.php",
    "/health",
    "/backend/open-api",
    "/api/click",
];

/// Lower-cased first path segments a campaign alias may not take: the tracker's own routes,
/// and `also` (the REST clicks dialect's base path, where known). The Admin API and the
/// campaigns directory check aliases against this one list.
pub fn reserved_aliases(also: Option<&str>) -> Vec<String> {
    let first_segment = |path: &str| {
        path.trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let mut reserved: Vec<String> = RESERVED_PATH_PREFIXES
        .iter()
        .chain(&[
            "/api",
            "/postback",
            "/clicks",
            "/favicon.ico",
            "/robots.txt",
            "/metrics",
        ])
        .map(|p| first_segment(p))
        .collect();
    reserved.extend(also.map(first_segment));
    reserved
}

/// The defaults of each section as TOML tables: tells the env overlay each key's type.
fn default_tables() -> BTreeMap<&'static str, Table> {
    fn table<T: Serialize>(value: T) -> Table {
        match Value::try_from(value) {
            Ok(Value::Table(table)) => table,
            _ => Table::new(),
        }
    }
    BTreeMap::from([
        ("server", table(RawServer::default())),
        ("database", table(RawDatabase::default())),
        ("admin", table(RawAdmin::default())),
        ("postback", table(RawPostback::default())),
        ("security", table(RawSecurity::default())),
        ("recorder", table(RawRecorder::default())),
        ("demo", table(RawDemo::default())),
        ("geoip", table(RawGeoip::default())),
        ("fetch", table(RawFetch::default())),
        ("scripts", table(RawScripts::default())),
        ("plugins", table(RawPlugins::default())),
        ("reload", table(RawReload::default())),
        ("triggers", table(RawTriggers::default())),
        ("dialects", table(RawDialects::default())),
        ("campaigns", table(RawCampaigns::default())),
        ("user_code", table(RawUserCode::default())),
        ("log", table(RawLog::default())),
    ])
}

/// Applies `SWITCHYARD_<SECTION>_<KEY>` variables onto the parsed file. A value is read as the
/// type of the key's default (number, bool, array as TOML); strings are taken verbatim.
/// Returns which env variable set each `section.key`, for error messages.
fn apply_env(
    table: &mut Table,
    env: &[(String, String)],
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, String> {
    let defaults = default_tables();
    let mut origins = BTreeMap::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if name == ENV_CONFIG_PATH || name.starts_with("SWITCHYARD_TEST_") {
            continue;
        }
        let lower = rest.to_ascii_lowercase();
        let Some((section, key)) = SECTIONS.iter().find_map(|section| {
            lower
                .strip_prefix(section)
                .and_then(|k| k.strip_prefix('_'))
                .map(|key| (*section, key.to_string()))
        }) else {
            problems.push(Problem {
                location: format!("env {name}"),
                message: format!(
                    "no config section matches (expected {ENV_PREFIX}<SECTION>_<KEY> with SECTION one of {})",
                    SECTIONS.join(", ")
                ),
            });
            continue;
        };
        let typed = match defaults[section].get(&key) {
            Some(Value::String(_)) | None => Value::String(value.clone()),
            Some(_) => match format!("v = {value}").parse::<Table>() {
                Ok(mut parsed) => parsed.remove("v").unwrap_or(Value::String(value.clone())),
                Err(_) => Value::String(value.clone()),
            },
        };
        let entry = table
            .entry(section.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        if let Value::Table(section_table) = entry {
            section_table.insert(key.clone(), typed);
        }
        origins.insert(format!("{section}.{key}"), name.clone());
    }
    origins
}

#[cfg(test)]
mod tests;
