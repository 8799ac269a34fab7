//! The visit and what the click path keeps while it routes one: the visit as it came
//! ([`Visit`]), the per-click context filters and actions see ([`ClickContext`]) with the
//! long-lived services behind it ([`TrafficEnv`]: visitor memory, hit counters, offer caps,
//! the cookie signer, macro files), and the macro values of a click ([`ClickMacros`]). The
//! registry's filters and actions and the routing of `traffic` both build on this module; it
//! imports neither.

use std::net::IpAddr;

mod caps;
mod context;
mod counters;
mod macro_files;
mod macros;
mod signing;
mod uniqueness;

pub use caps::{ConversionCaps, OfferCap, day_start};
pub use context::{ClickContext, TrafficEnv, UniqueFlags};
pub use counters::{HitCounters, Hits};
pub use macro_files::MacroFiles;
pub use macros::ClickMacros;
pub use signing::Signer;
pub use uniqueness::{
    Binding, MemoryUniqueness, Scope, UniquenessStore, VisitorCookie, VisitorRecord,
};

/// What the tracker knows about an incoming visit before routing.
#[derive(Debug, Clone)]
pub struct Visit {
    pub ip: IpAddr,
    pub user_agent: String,
    pub referrer: String,
    /// The first language tag of Accept-Language (`en`, `de`), lower-case, or "".
    pub language: String,
    /// The query parameters, in order, percent-decoded.
    pub query: Vec<(String, String)>,
    /// Request headers with lower-case names.
    pub headers: Vec<(String, String)>,
    /// The host the visitor reached (`tracker.example`), for `{current_domain}` and links.
    pub host: String,
    /// `http` or `https`.
    pub scheme: String,
    /// The visitor cookie (or the Click API's `uniqueness_cookie`), if sent.
    pub cookie: Option<String>,
}

impl Visit {
    /// A visit with only an IP and a User-Agent (tests, the `route` command).
    pub fn new(ip: IpAddr, user_agent: &str) -> Self {
        Visit {
            ip,
            user_agent: user_agent.to_string(),
            referrer: String::new(),
            language: String::new(),
            query: Vec::new(),
            headers: Vec::new(),
            host: "localhost".into(),
            scheme: "http".into(),
            cookie: None,
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A header by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Browser prefetch/preview requests (not a person's click).
    pub fn is_prefetch(&self) -> bool {
        self.headers
            .iter()
            .any(|(name, value)| crate::enrich::is_prefetch_header(name, value))
    }

    /// `scheme://host` of the tracker as the visitor reached it.
    pub fn base_url(&self) -> String {
        self.url("")
    }

    /// `scheme://host` followed by `path` (which starts with `/`), in one string.
    pub fn url(&self, path: impl std::fmt::Display) -> String {
        format!("{}://{}{path}", self.scheme, self.host)
    }
}
