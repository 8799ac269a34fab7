//! The configuration as written: serde types that mirror `config.toml` one to one.
//!
//! Every section denies unknown keys and has a default for every key, so a section can be
//! checked one key at a time (see `super::load`) and every problem reported at once.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawServer {
    /// Address and port the HTTP listener binds (`IP:PORT`; port 0 picks a free port).
    pub listen: String,
    /// Directory for generated secrets and other local state; relative to the config file.
    pub data_dir: String,
    /// Peers (IPs or CIDR blocks) whose X-Forwarded-For / X-Real-IP headers are believed.
    pub trusted_proxies: Vec<String>,
    /// Upper bound for answering one request, in milliseconds.
    pub request_timeout_ms: u64,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: u64,
    /// How long shutdown waits for in-flight requests, in milliseconds.
    pub shutdown_grace_ms: u64,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: "127.0.0.1:8080".into(),
            data_dir: "data".into(),
            trusted_proxies: Vec::new(),
            request_timeout_ms: 10_000,
            max_body_bytes: 1 << 20,
            shutdown_grace_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawDatabase {
    /// `sqlite://PATH` (relative to the config file) or `postgres://…`.
    pub url: String,
    pub max_connections: u32,
}

impl Default for RawDatabase {
    fn default() -> Self {
        RawDatabase {
            url: "sqlite://data/switchyard.db".into(),
            max_connections: 8,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAdmin {
    /// Bootstrap Admin API key. Unset: one is generated on first start and shown once.
    pub api_key: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawPostback {
    /// Secret path segment of `/{key}/postback`. Unset: generated on first start.
    pub key: Option<String>,
    /// Also serve `/postback` without the key (only behind a trusted network).
    pub keyless: bool,
    /// The tracker's currency (ISO code); revenue is converted into it. Empty: USD.
    pub currency: String,
    /// Units of the tracker's currency per unit of another currency: `{ EUR = "1.08" }`.
    pub rates: std::collections::BTreeMap<String, String>,
    /// First wait before an outgoing postback is retried (doubling after each try). 0: 1000.
    pub retry_base_ms: u64,
    /// Tries per outgoing postback. 0: 4.
    pub max_attempts: u32,
    /// How long a postback whose click is not stored yet waits for it, in hours. 0: 24.
    pub pending_hours: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawSecurity {
    /// Key that signs uniqueness cookies and landing tokens. Unset: generated on first start.
    pub signing_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRecorder {
    /// Clicks waiting for the batch writer; a click that finds the queue full waits for room
    /// up to `full_wait_ms`, then is dropped (and counted).
    pub queue_capacity: u64,
    /// Most clicks written in one INSERT.
    pub batch_size: u64,
    /// How long a click waits for room in a full queue (0: never waits).
    pub full_wait_ms: u64,
    /// What an answered click survives: `process` (journalled to the OS before the answer:
    /// survives the tracker's crash or SIGKILL), `fsync` (journalled and synced: survives
    /// power loss), `memory` (no journal: a crash loses the queue).
    pub durability: String,
    /// The journal's size cap in MiB (32 or more); past it clicks are answered but not
    /// journalled (each counted as lost).
    pub journal_max_mb: u64,
    /// How long shutdown keeps writing the journal's backlog to the store before it leaves the
    /// rest in the journal for the next start.
    pub drain_timeout_ms: u64,
}

impl Default for RawRecorder {
    fn default() -> Self {
        RawRecorder {
            queue_capacity: 65_536,
            batch_size: 1000,
            full_wait_ms: 100,
            durability: "process".into(),
            journal_max_mb: 1024,
            drain_timeout_ms: 8_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawDemo {
    /// Create the `demo` campaign on a brand-new database.
    pub seed: bool,
    /// Where the demo campaign redirects (macros allowed).
    pub url: String,
}

impl Default for RawDemo {
    fn default() -> Self {
        RawDemo {
            seed: true,
            url: "https://example.com/?subid={subid}".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLog {
    /// A tracing filter: `info`, `debug`, `switchyard=debug,info`, …
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawGeoip {
    /// GeoIP2/GeoLite2/DB-IP City database (`.mmdb`); unset or "": no geography.
    pub city_db: String,
    /// Optional GeoIP2 ISP database (isp, organization, mobile carrier).
    pub isp_db: String,
    /// Optional GeoLite2/GeoIP2 ASN database (used for `isp` when there is no ISP database).
    pub asn_db: String,
    /// Optional GeoIP2 Connection-Type database.
    pub connection_type_db: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawFetch {
    /// Networks (CIDR) that `curl`/`remote` actions and trigger checks may reach although they
    /// are private or loopback (the SSRF guard blocks them otherwise). For tests and intranets.
    pub allow_networks: Vec<String>,
    /// Longest time for one fetch, in milliseconds.
    pub timeout_ms: u64,
    /// Largest body read, in bytes.
    pub max_bytes: u64,
}

impl Default for RawFetch {
    fn default() -> Self {
        RawFetch {
            allow_networks: Vec::new(),
            timeout_ms: 5_000,
            max_bytes: 1 << 20,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawScripts {
    /// Directory of Rhai scripts (`filters/`, `actions/`, `triggers/`), watched for changes.
    pub dir: String,
}

impl Default for RawScripts {
    fn default() -> Self {
        RawScripts {
            dir: "scripts".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawPlugins {
    /// Directory of native plugin libraries (`.so`), watched for changes.
    pub dir: String,
}

impl Default for RawPlugins {
    fn default() -> Self {
        RawPlugins {
            dir: "plugins/lib".into(),
        }
    }
}

/// Budgets and isolation of user code (Rhai scripts and native plugins); see README "User
/// code budgets".
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawUserCode {
    /// One call's budget: a script is stopped here; a call this long counts as an overrun.
    pub call_budget_ms: u64,
    /// A native call still running after this long is set aside (the click goes on).
    pub native_deadline_ms: u64,
    /// A call set aside that has not returned after this long disables its kind.
    pub hang_after_ms: u64,
    /// The sliding window of the failure and overrun ratios, in seconds.
    pub window_seconds: u64,
    /// Calls in the window before a ratio can disable a kind.
    pub min_calls: u64,
    /// Disable a kind when this share of its calls in the window failed (0.0–1.0).
    pub max_failure_ratio: f64,
    /// Disable a kind when this share of its calls in the window overran (0.0–1.0).
    pub max_overrun_ratio: f64,
    /// The share of one core each kind may keep busy (0.0–1.0); past it, calls are skipped.
    pub cpu_share: f64,
    /// Busy time a kind may spend at once before `cpu_share` applies, in milliseconds.
    pub cpu_burst_ms: u64,
    /// Threads that route the clicks of campaigns using user code.
    pub threads: u64,
    /// Clicks that may wait for those threads; past it, clicks route without user code.
    pub queue: u64,
}

impl Default for RawUserCode {
    fn default() -> Self {
        let policy = crate::guard::GuardPolicy::default();
        RawUserCode {
            call_budget_ms: policy.call_budget.as_millis() as u64,
            native_deadline_ms: policy.native_deadline.as_millis() as u64,
            hang_after_ms: policy.hang_after.as_millis() as u64,
            window_seconds: policy.window.as_secs(),
            min_calls: u64::from(policy.min_calls),
            max_failure_ratio: policy.max_failure_ratio,
            max_overrun_ratio: policy.max_overrun_ratio,
            cpu_share: policy.cpu_share,
            cpu_burst_ms: policy.cpu_burst.as_millis() as u64,
            threads: 1,
            queue: 256,
        }
    }
}

/// Config-as-files: a directory of TOML files declaring campaigns and what they use.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawCampaigns {
    /// The campaigns directory ("" = none), relative to the config file; watched for changes.
    pub dir: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawReload {
    /// Watch config.toml, the scripts and the plugin directory and reload on change.
    pub watch: bool,
    /// Quiet time after the last change before reloading, in milliseconds.
    pub debounce_ms: u64,
}

impl Default for RawReload {
    fn default() -> Self {
        RawReload {
            watch: true,
            debounce_ms: 200,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawTriggers {
    /// Run stream triggers.
    pub enabled: bool,
    /// How often the scheduler looks for due triggers, in milliseconds.
    pub tick_ms: u64,
}

impl Default for RawTriggers {
    fn default() -> Self {
        RawTriggers {
            enabled: true,
            tick_ms: 1_000,
        }
    }
}

/// The other vendors' click APIs ("dialects"), each switchable. Their keys are secrets: set
/// here (or by environment), or left unset to have one generated on first start, shown once
/// and stored only as a SHA-256 hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawDialects {
    /// Seed 001: `GET/POST /backend/open-api/v1/users/clicks[/{id}]` with a Bearer token.
    pub open_api_enabled: bool,
    /// The Bearer token of the open-api dialect.
    pub open_api_token: Option<String>,
    /// Seed 003: `GET /api/click/create?secure_key=…`.
    pub hoqu_enabled: bool,
    /// The `secure_key` of the HOQU dialect.
    pub hoqu_secure_key: Option<String>,
    /// Seed 004: the clicks resource under `rest_clicks_base_path`, with a Bearer token.
    pub rest_clicks_enabled: bool,
    /// Where `[base]/clicks` lives (`/rest/v1` gives `/rest/v1/clicks`).
    pub rest_clicks_base_path: String,
    /// The Bearer token of the rest-clicks dialect.
    pub rest_clicks_token: Option<String>,
    /// Alias of the campaign that records clicks created through the rest-clicks dialect when
    /// the click's `uri` does not start with a campaign alias ("" = none).
    pub rest_clicks_campaign: String,
}

impl Default for RawDialects {
    fn default() -> Self {
        RawDialects {
            open_api_enabled: true,
            open_api_token: None,
            hoqu_enabled: true,
            hoqu_secure_key: None,
            rest_clicks_enabled: true,
            rest_clicks_base_path: "/rest/v1".into(),
            rest_clicks_token: None,
            rest_clicks_campaign: String::new(),
        }
    }
}
