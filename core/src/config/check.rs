//! Where a configuration key came from (a line of the file or an environment variable), and
//! the key-by-key checks: each section deserialised key by key so that each bad key is its own
//! problem, then semantic checks of the values that deserialised fine.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use toml::{Table, Value};

use super::*;

/// Finds where a key came from, for messages: a line of the file or an env variable.
pub(super) struct Locator<'a> {
    pub(super) source: &'a str,
    pub(super) text: &'a str,
    pub(super) env_keys: BTreeMap<String, String>,
}

impl Locator<'_> {
    pub(super) fn at(&self, section: &str, key: Option<&str>) -> String {
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
    pub(super) fn line_of(&self, section: &str, key: Option<&str>) -> Option<usize> {
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
pub(super) fn section<S: DeserializeOwned + Default>(
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
pub(super) struct Checker<'a, 'b> {
    pub(super) locator: &'a Locator<'b>,
    pub(super) problems: &'a mut Vec<Problem>,
}

impl Checker<'_, '_> {
    pub(super) fn fail(&mut self, section: &str, key: &str, message: String) {
        self.problems.push(Problem {
            location: self.locator.at(section, Some(key)),
            message,
        });
    }

    pub(super) fn listen(&mut self, text: &str) -> SocketAddr {
        text.parse().unwrap_or_else(|_| {
            self.fail(
                "server",
                "listen",
                format!("`{text}` is not an IP:PORT address (for example 127.0.0.1:8080)"),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        })
    }

    pub(super) fn networks(&mut self, section: &str, key: &str, entries: &[String]) -> Vec<IpNet> {
        let mut nets = Vec::new();
        for entry in entries {
            match entry.parse::<IpNet>() {
                Ok(net) => nets.push(net),
                Err(message) => self.fail(section, key, message),
            }
        }
        nets
    }

    pub(super) fn millis(&mut self, section: &str, key: &str, value: u64) -> Duration {
        if value == 0 {
            self.fail(section, key, "must be greater than 0".into());
        }
        Duration::from_millis(value)
    }

    /// The `[user_code]` section as a policy.
    pub(super) fn user_code(&mut self, raw: &super::raw::RawUserCode) -> crate::guard::GuardPolicy {
        let section = "user_code";
        let mut ratio = |key: &str, value: f64| {
            if !(0.0..=1.0).contains(&value) || value.is_nan() {
                self.fail(
                    section,
                    key,
                    format!("must be between 0.0 and 1.0, not {value}"),
                );
            }
            value.clamp(0.0, 1.0)
        };
        let max_failure_ratio = ratio("max_failure_ratio", raw.max_failure_ratio);
        let max_overrun_ratio = ratio("max_overrun_ratio", raw.max_overrun_ratio);
        let cpu_share = ratio("cpu_share", raw.cpu_share);
        if cpu_share == 0.0 {
            self.fail(section, "cpu_share", "must be greater than 0".into());
        }
        let call_budget = self.millis(section, "call_budget_ms", raw.call_budget_ms);
        let native_deadline = self.millis(section, "native_deadline_ms", raw.native_deadline_ms);
        if native_deadline < call_budget {
            self.fail(
                section,
                "native_deadline_ms",
                format!(
                    "must be at least call_budget_ms ({} ms)",
                    call_budget.as_millis()
                ),
            );
        }
        crate::guard::GuardPolicy {
            call_budget,
            native_deadline,
            hang_after: self.millis(section, "hang_after_ms", raw.hang_after_ms),
            window: Duration::from_secs(self.bounded(
                section,
                "window_seconds",
                raw.window_seconds,
                1,
                86_400,
            ) as u64),
            min_calls: self.bounded(section, "min_calls", raw.min_calls, 1, 1_000_000) as u32,
            max_failure_ratio,
            max_overrun_ratio,
            cpu_share,
            cpu_burst: self.millis(section, "cpu_burst_ms", raw.cpu_burst_ms),
        }
    }

    pub(super) fn positive(&mut self, section: &str, key: &str, value: u64) -> usize {
        if value == 0 {
            self.fail(section, key, "must be greater than 0".into());
        }
        usize::try_from(value).unwrap_or(usize::MAX)
    }

    pub(super) fn bounded(
        &mut self,
        section: &str,
        key: &str,
        value: u64,
        min: u64,
        max: u64,
    ) -> usize {
        if !(min..=max).contains(&value) {
            self.fail(
                section,
                key,
                format!("must be between {min} and {max}, not {value}"),
            );
        }
        value.clamp(min, max) as usize
    }

    pub(super) fn secret(
        &mut self,
        section: &str,
        key: &str,
        value: Option<String>,
    ) -> Option<String> {
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
    pub(super) fn base_path(&mut self, section: &str, key: &str, text: &str) -> String {
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

    pub(super) fn postback(&mut self, raw: &RawPostback) -> PostbackConfig {
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

    pub(super) fn database(&mut self, raw: &RawDatabase, base: &Path) -> DatabaseConfig {
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

    pub(super) fn redirect_url(&mut self, section: &str, key: &str, text: &str) -> String {
        if let Err(message) = crate::template::Template::parse(text).and_then(|t| t.check_target())
        {
            self.fail(section, key, message);
        }
        text.to_string()
    }

    pub(super) fn log_format(&mut self, format: &str) -> bool {
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

    pub(super) fn log_level(&mut self, level: &str) -> String {
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
