//! Configuration: `config.toml`, overridden by `SWITCHYARD_<SECTION>_<KEY>` environment
//! variables, checked key by key so that every problem is reported at once, then validated
//! into [`Config`], the only type the rest of the program sees.

mod raw;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use toml::{Table, Value};

pub use raw::*;

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

/// Finds where a key came from, for messages: a line of the file or an env variable.
struct Locator<'a> {
    source: &'a str,
    text: &'a str,
    env_keys: BTreeMap<String, String>,
}

impl Locator<'_> {
    fn at(&self, section: &str, key: Option<&str>) -> String {
        let path = match key {
            Some(key) => format!("{section}.{key}"),
            None => section.to_string(),
        };
        if let Some(var) = self.env_keys.get(&path) {
            return format!("env {var} ({path})");
        }
        match self.line_of(section, key) {
            Some(line) => format!("{}:{line} {path}", self.source),
            None => format!("{} {path}", self.source),
        }
    }

    /// The 1-based line of `[section]` or of `key = …` inside it.
    fn line_of(&self, section: &str, key: Option<&str>) -> Option<usize> {
        let mut current = String::new();
        for (index, line) in self.text.lines().enumerate() {
            let line = line.trim();
            if let Some(header) = line.strip_prefix('[') {
                current = header.trim_end_matches(']').trim().to_string();
                if key.is_none() && current == section {
                    return Some(index + 1);
                }
                continue;
            }
            if let Some(key) = key
                && current == section
                && let Some((name, _)) = line.split_once('=')
                && name.trim().trim_matches('"') == key
            {
                return Some(index + 1);
            }
        }
        None
    }
}

/// Deserialises one section: first each key alone (so each bad key is its own problem),
/// then the whole section once all its keys are fine.
fn section<S: DeserializeOwned + Default>(
    table: &Table,
    name: &str,
    locator: &Locator,
    problems: &mut Vec<Problem>,
) -> S {
    let Some(Value::Table(section)) = table.get(name) else {
        return S::default();
    };
    let before = problems.len();
    for (key, value) in section {
        let mut single = Table::new();
        single.insert(key.clone(), value.clone());
        if let Err(error) = S::deserialize(Value::Table(single)) {
            problems.push(Problem {
                location: locator.at(name, Some(key)),
                message: error.message().trim().to_string(),
            });
        }
    }
    if problems.len() > before {
        return S::default();
    }
    S::deserialize(Value::Table(section.clone())).unwrap_or_else(|error| {
        problems.push(Problem {
            location: locator.at(name, None),
            message: error.message().trim().to_string(),
        });
        S::default()
    })
}

/// Semantic checks of values that deserialised fine.
struct Checker<'a, 'b> {
    locator: &'a Locator<'b>,
    problems: &'a mut Vec<Problem>,
}

impl Checker<'_, '_> {
    fn fail(&mut self, section: &str, key: &str, message: String) {
        self.problems.push(Problem {
            location: self.locator.at(section, Some(key)),
            message,
        });
    }

    fn listen(&mut self, text: &str) -> SocketAddr {
        text.parse().unwrap_or_else(|_| {
            self.fail(
                "server",
                "listen",
                format!("`{text}` is not an IP:PORT address (for example 127.0.0.1:8080)"),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        })
    }

    fn networks(&mut self, section: &str, key: &str, entries: &[String]) -> Vec<IpNet> {
        let mut nets = Vec::new();
        for entry in entries {
            match entry.parse::<IpNet>() {
                Ok(net) => nets.push(net),
                Err(message) => self.fail(section, key, message),
            }
        }
        nets
    }

    fn millis(&mut self, section: &str, key: &str, value: u64) -> Duration {
        if value == 0 {
            self.fail(section, key, "must be greater than 0".into());
        }
        Duration::from_millis(value)
    }

    fn positive(&mut self, section: &str, key: &str, value: u64) -> usize {
        if value == 0 {
            self.fail(section, key, "must be greater than 0".into());
        }
        usize::try_from(value).unwrap_or(usize::MAX)
    }

    fn bounded(&mut self, section: &str, key: &str, value: u64, min: u64, max: u64) -> usize {
        if !(min..=max).contains(&value) {
            self.fail(
                section,
                key,
                format!("must be between {min} and {max}, not {value}"),
            );
        }
        value.clamp(min, max) as usize
    }

    fn secret(&mut self, section: &str, key: &str, value: Option<String>) -> Option<String> {
        let value = value.filter(|v| !v.is_empty())?;
        if value.len() < 16 {
            self.fail(
                section,
                key,
                "is too short to be a secret: use at least 16 characters, or leave it unset to have one generated".into(),
            );
        } else if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
        {
            self.fail(
                section,
                key,
                "may only hold letters, digits and - _ . ~ (it appears in URLs and headers)".into(),
            );
        }
        Some(value)
    }

    /// A URL path prefix for API routes: "" or "/" (the root), else `/seg[/seg…]` of URL-safe
    /// characters, outside the paths Switchyard's own APIs use. Returned without a trailing `/`.
    fn base_path(&mut self, section: &str, key: &str, text: &str) -> String {
        let path = text.trim().trim_end_matches('/');
        if path.is_empty() {
            return String::new();
        }
        let segments_ok = path.starts_with('/')
            && path[1..].split('/').all(|segment| {
                !segment.is_empty()
                    && segment != "."
                    && segment != ".."
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
            });
        if !segments_ok {
            self.fail(
                section,
                key,
                format!(
                    "`{text}` is not a path like /rest/v1 (segments of letters, digits and - _ . ~)"
                ),
            );
            return path.to_string();
        }
        if let Some(reserved) = RESERVED_PATH_PREFIXES
            .iter()
            .find(|prefix| path == **prefix || path.starts_with(&format!("{prefix}/")))
        {
            self.fail(
                section,
                key,
                format!("`{text}` is inside `{reserved}`, which another API uses"),
            );
        }
        path.to_string()
    }

    fn postback(&mut self, raw: &RawPostback) -> PostbackConfig {
        let code = |text: &str| {
            let upper = text.trim().to_ascii_uppercase();
            (upper.len() == 3 && upper.bytes().all(|b| b.is_ascii_uppercase())).then_some(upper)
        };
        let currency = if raw.currency.trim().is_empty() {
            "USD".to_string()
        } else {
            code(&raw.currency).unwrap_or_else(|| {
                self.fail(
                    "postback",
                    "currency",
                    format!("`{}` is not a three-letter currency code", raw.currency),
                );
                "USD".to_string()
            })
        };
        let mut rates = Vec::new();
        for (name, rate) in &raw.rates {
            let Some(name) = code(name) else {
                self.fail(
                    "postback",
                    "rates",
                    format!("`{name}` is not a three-letter currency code"),
                );
                continue;
            };
            match rate.parse::<crate::model::Money>() {
                Ok(value) if value.micros() > 0 => rates.push((name, value)),
                _ => self.fail(
                    "postback",
                    "rates",
                    format!("the rate of {name}, `{rate}`, is not a positive decimal"),
                ),
            }
        }
        if raw.max_attempts > 10 {
            self.fail(
                "postback",
                "max_attempts",
                format!("{} is more than 10", raw.max_attempts),
            );
        }
        PostbackConfig {
            keyless: raw.keyless,
            currency,
            rates,
            retry_base: Duration::from_millis(if raw.retry_base_ms == 0 {
                1_000
            } else {
                raw.retry_base_ms
            }),
            max_attempts: if raw.max_attempts == 0 {
                4
            } else {
                raw.max_attempts.min(10)
            },
            pending_retention: Duration::from_secs(
                3_600
                    * if raw.pending_hours == 0 {
                        24
                    } else {
                        raw.pending_hours.min(24 * 365)
                    },
            ),
        }
    }

    fn database(&mut self, raw: &RawDatabase, base: &Path) -> DatabaseConfig {
        let url = raw.url.trim();
        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite://") {
            let (path, query) = path.split_once('?').unwrap_or((path, ""));
            if path.is_empty() {
                self.fail(
                    "database",
                    "url",
                    "the sqlite URL names no file (sqlite://data/switchyard.db)".into(),
                );
            }
            let resolved = base.join(path);
            let mut url = format!("sqlite://{}", resolved.display());
            if !query.is_empty() {
                url.push('?');
                url.push_str(query);
            }
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            self.fail(
                "database",
                "url",
                format!("`{url}` is neither sqlite://PATH nor postgres://… "),
            );
            (Backend::Sqlite, url.to_string())
        };
        if raw.max_connections == 0 {
            self.fail(
                "database",
                "max_connections",
                "must be greater than 0".into(),
            );
        }
        DatabaseConfig {
            url,
            backend,
            max_connections: raw.max_connections.max(1),
        }
    }

    fn redirect_url(&mut self, section: &str, key: &str, text: &str) -> String {
        if let Err(message) = crate::template::Template::parse(text).and_then(|t| t.check_target())
        {
            self.fail(section, key, message);
        }
        text.to_string()
    }

    fn log_format(&mut self, format: &str) -> bool {
        match format {
            "text" => false,
            "json" => true,
            other => {
                self.fail(
                    "log",
                    "format",
                    format!("must be `text` or `json`, not `{other}`"),
                );
                false
            }
        }
    }

    fn log_level(&mut self, level: &str) -> String {
        if tracing_subscriber::EnvFilter::try_new(level).is_err() {
            self.fail(
                "log",
                "level",
                format!("`{level}` is not a log filter (try `info` or `switchyard=debug,info`)"),
            );
        }
        level.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reserved_alias_list_for_files_and_the_admin_api() {
        let base = reserved_aliases(None);
        for alias in [
            "admin_api",
            "click_api",
            "api.php",
            "health",
            "backend",
            "api",
            "postback",
            "clicks",
            "favicon.ico",
            "robots.txt",
            "metrics",
        ] {
            assert!(base.contains(&alias.to_string()), "{alias}");
        }
        assert!(!base.contains(&"partner".to_string()));
        assert!(reserved_aliases(Some("/Partner/v2")).contains(&"partner".to_string()));
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn shipped_config_is_valid() {
        let text = include_str!("../../../config.toml");
        let config = from_sources("config.toml", text, &[], None).unwrap();
        assert_eq!(config.database.backend, Backend::Sqlite);
        assert!(config.demo.seed);
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = defaults();
        assert_eq!(config.server.listen.port(), 8080);
        assert_eq!(config.recorder.batch_size, 1000);
        assert!(config.secrets.admin_api_key.is_none());
    }

    #[test]
    fn every_problem_is_listed_with_its_place() {
        let text = "[server]\nlisten = \"nowhere\"\nfoo = 1\nrequest_timeout_ms = \"soon\"\n\n[database]\nurl = \"mysql://x\"\n\n[bogus]\n";
        let error = from_sources("c.toml", text, &[], None).unwrap_err();
        let shown = error.to_string();
        for expected in [
            "c.toml:3 server.foo",
            "unknown field `foo`",
            "c.toml:4 server.request_timeout_ms",
            "c.toml:7 database.url",
            "c.toml:9 bogus",
        ] {
            assert!(
                shown.contains(expected),
                "missing {expected:?} in:\n{shown}"
            );
        }
        // `listen` is only checked semantically once the section deserialises, so a section
        // with type errors reports those; fix them and the listen problem shows.
        let error =
            from_sources("c.toml", "[server]\nlisten = \"nowhere\"\n", &[], None).unwrap_err();
        assert!(error.to_string().contains("c.toml:2 server.listen"));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let error = from_sources("c.toml", "[server]\nlisten = \n", &[], None).unwrap_err();
        assert!(
            error.problems[0].location.starts_with("c.toml:2"),
            "{error}"
        );
    }

    #[test]
    fn env_overrides_with_types() {
        let config = from_sources(
            "c.toml",
            "[server]\nlisten = \"127.0.0.1:1\"\n",
            &env(&[
                ("SWITCHYARD_SERVER_LISTEN", "127.0.0.1:9999"),
                ("SWITCHYARD_RECORDER_BATCH_SIZE", "50"),
                ("SWITCHYARD_DEMO_SEED", "false"),
                ("SWITCHYARD_ADMIN_API_KEY", "0123456789abcdef0123"),
                ("SWITCHYARD_DATABASE_URL", "postgres://u@127.0.0.1/db"),
                ("SWITCHYARD_CONFIG", "ignored.toml"),
                ("OTHER_VAR", "ignored"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(config.server.listen.port(), 9999);
        assert_eq!(config.recorder.batch_size, 50);
        assert!(!config.demo.seed);
        assert_eq!(
            config.secrets.admin_api_key.as_deref(),
            Some("0123456789abcdef0123")
        );
        assert_eq!(config.database.backend, Backend::Postgres);
    }

    #[test]
    fn durability_levels() {
        let defaults = from_sources("c.toml", "", &[], None).unwrap();
        assert_eq!(defaults.recorder.durability, Durability::Process);
        assert_eq!(defaults.recorder.journal_max_bytes, 1024 << 20);
        assert_eq!(defaults.recorder.drain_timeout, Duration::from_secs(8));
        for (text, level) in [("fsync", Durability::Fsync), ("memory", Durability::Memory)] {
            let config = from_sources(
                "c.toml",
                &format!("[recorder]\ndurability = \"{text}\"\n"),
                &[],
                None,
            )
            .unwrap();
            assert_eq!(config.recorder.durability, level);
        }
        let shown = from_sources(
            "c.toml",
            "[recorder]\ndurability = \"disk\"\njournal_max_mb = 0\n",
            &[],
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(shown.contains("c.toml:2 recorder.durability"), "{shown}");
        assert!(
            shown.contains("`disk` is not one of process, fsync, memory"),
            "{shown}"
        );
        assert!(shown.contains("recorder.journal_max_mb"), "{shown}");
    }

    #[test]
    fn env_problems_name_the_variable() {
        let error = from_sources(
            "c.toml",
            "",
            &env(&[
                ("SWITCHYARD_RECORDER_BATCH_SIZE", "lots"),
                ("SWITCHYARD_NOPE_X", "1"),
                ("SWITCHYARD_SERVER_LISTEN", "bad"),
            ]),
            None,
        )
        .unwrap_err();
        let shown = error.to_string();
        assert!(
            shown.contains("env SWITCHYARD_RECORDER_BATCH_SIZE (recorder.batch_size)"),
            "{shown}"
        );
        assert!(shown.contains("env SWITCHYARD_NOPE_X"), "{shown}");
        assert!(
            shown.contains("env SWITCHYARD_SERVER_LISTEN (server.listen)"),
            "{shown}"
        );
    }

    #[test]
    fn weak_secrets_and_bad_urls_are_refused() {
        let text = "[admin]\napi_key = \"short\"\n[demo]\nurl = \"javascript:alert(1)\"\n[recorder]\nbatch_size = 0\n";
        let shown = from_sources("c.toml", text, &[], None)
            .unwrap_err()
            .to_string();
        assert!(shown.contains("c.toml:2 admin.api_key"), "{shown}");
        assert!(shown.contains("c.toml:4 demo.url"), "{shown}");
        assert!(shown.contains("c.toml:6 recorder.batch_size"), "{shown}");
    }

    #[test]
    fn dialects_are_switchable_with_checked_keys_and_base_path() {
        let config = defaults();
        assert!(config.dialects.open_api && config.dialects.hoqu && config.dialects.rest_clicks);
        assert_eq!(config.dialects.rest_clicks_base_path, "/rest/v1");
        assert_eq!(
            config
                .secrets
                .dialect_keys
                .iter()
                .map(|(d, key)| (*d, key.is_some()))
                .collect::<Vec<_>>(),
            [
                (Dialect::OpenApi, false),
                (Dialect::Hoqu, false),
                (Dialect::RestClicks, false)
            ]
        );

        let text = "[dialects]\nhoqu_enabled = false\nrest_clicks_base_path = \"/partners/api/\"\nrest_clicks_campaign = \" partner \"\n";
        let config = from_sources(
            "c.toml",
            text,
            &env(&[(
                "SWITCHYARD_DIALECTS_OPEN_API_TOKEN",
                "open-api-token-0123456789",
            )]),
            None,
        )
        .unwrap();
        assert!(!config.dialects.hoqu);
        assert_eq!(config.dialects.rest_clicks_base_path, "/partners/api");
        assert_eq!(
            config.dialects.rest_clicks_campaign.as_deref(),
            Some("partner")
        );
        assert_eq!(
            config.secrets.dialect_keys[0],
            (Dialect::OpenApi, Some("open-api-token-0123456789".into()))
        );
        assert!(
            !config
                .secrets
                .dialect_keys
                .iter()
                .any(|(d, _)| *d == Dialect::Hoqu),
            "a disabled dialect has no key"
        );
        assert_eq!(
            from_sources(
                "c.toml",
                "[dialects]\nrest_clicks_base_path = \"/\"\n",
                &[],
                None
            )
            .unwrap()
            .dialects
            .rest_clicks_base_path,
            ""
        );

        let text =
            "[dialects]\nopen_api_token = \"short\"\nrest_clicks_base_path = \"/admin_api/v1\"\n";
        let shown = from_sources("c.toml", text, &[], None)
            .unwrap_err()
            .to_string();
        assert!(
            shown.contains("c.toml:2 dialects.open_api_token"),
            "{shown}"
        );
        assert!(
            shown.contains("c.toml:3 dialects.rest_clicks_base_path"),
            "{shown}"
        );
        for bad in [
            "rest",
            "/a//b",
            "/a/../b",
            "/{alias}",
            "/api/click",
            "/health/x",
        ] {
            let text = format!("[dialects]\nrest_clicks_base_path = \"{bad}\"\n");
            assert!(
                from_sources("c.toml", &text, &[], None).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn relative_sqlite_paths_follow_the_config_file() {
        let config = from_sources("c.toml", "", &[], Some(Path::new("/etc/sy"))).unwrap();
        assert_eq!(config.database.url, "sqlite:///etc/sy/data/switchyard.db");
        assert_eq!(config.server.data_dir, Path::new("/etc/sy/data"));
    }
}
