//! Enrichment of a click: geography (GeoIP), device/OS/browser (User-Agent parsing) and bot
//! signals. Each is computed at most once per click, and only when routing or recording needs
//! it (see `traffic::ClickContext`).
//!
//! The implementations live in submodules; this file fixes the shapes the rest of the code
//! sees.

mod bot;
mod device;
pub mod geo;

pub use bot::{BotDetector, bot_networks, is_prefetch_header};
pub use device::DeviceDetector;
pub use geo::{GeoDatabase, GeoError, GeoResolver};

/// Building an enrichment component failed. Raised at start-up only: the hot path never fails.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    /// Data compiled into the binary (uap-core regexes, crawler patterns) cannot be loaded.
    #[error("the bundled {dataset} data cannot be used: {reason}")]
    BundledData {
        /// Which data set (`uap-core regexes.json`, `crawler-user-agents.json`).
        dataset: &'static str,
        reason: String,
    },
}

/// What GeoIP knows about an address. Empty strings mean "unknown".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeoInfo {
    /// ISO 3166-1 alpha-2, upper case (`DE`).
    pub country_code: String,
    /// English country name (`Germany`).
    pub country_name: String,
    /// English name of the first subdivision (`Bavaria`).
    pub region: String,
    /// ISO 3166-2 code of the first subdivision without the country prefix (`BY`).
    pub region_code: String,
    /// English city name.
    pub city: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// Internet service provider (ISP database) or AS organisation (ASN database).
    pub isp: String,
    /// Mobile carrier name, when the ISP database knows one.
    pub operator: String,
    /// `cable`, `dialup`, `cellular`, `corporate`, `satellite` (lower case) or "".
    pub connection_type: String,
}

/// What User-Agent parsing knows about a client. Empty strings mean "unknown".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `desktop`, `mobile`, `tablet`, `tv`, `console`, `wearable`, `bot`, or "" when unknown.
    pub device_type: String,
    pub device_brand: String,
    pub device_model: String,
    pub os: String,
    pub os_version: String,
    pub browser: String,
    pub browser_version: String,
}

/// Geography for an address. Implemented by the GeoIP resolver; tests may supply their own.
pub trait GeoLookup: Send + Sync {
    /// Never fails: an unknown address gives empty geography.
    fn lookup(&self, ip: std::net::IpAddr) -> GeoInfo;
}

/// Device, OS and browser for a User-Agent.
pub trait DeviceLookup: Send + Sync {
    /// Never fails: an unknown or empty UA gives an empty `DeviceInfo`.
    fn detect(&self, user_agent: &str) -> std::sync::Arc<DeviceInfo>;
}

/// Bot signals that need data: crawler signatures and the bot IP list.
pub trait BotSignals: Send + Sync {
    /// True for a known crawler signature or an empty User-Agent.
    fn is_bot_user_agent(&self, user_agent: &str) -> bool;
    /// True when the address is on the bot list.
    fn is_bot_ip(&self, ip: std::net::IpAddr) -> bool;
    /// Replaces the bot list (a source without one ignores it).
    fn set_bot_list(&self, _networks: Vec<crate::net::IpNet>) {}
}

/// No data: empty geography, empty devices, only an empty UA is a bot.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEnrichment;

impl GeoLookup for NoEnrichment {
    fn lookup(&self, _: std::net::IpAddr) -> GeoInfo {
        GeoInfo::default()
    }
}

impl DeviceLookup for NoEnrichment {
    fn detect(&self, _: &str) -> std::sync::Arc<DeviceInfo> {
        std::sync::Arc::new(DeviceInfo::default())
    }
}

impl BotSignals for NoEnrichment {
    fn is_bot_user_agent(&self, user_agent: &str) -> bool {
        user_agent.trim().is_empty()
    }

    fn is_bot_ip(&self, _: std::net::IpAddr) -> bool {
        false
    }
}

/// The enrichment services a click can use, shared by every request.
#[derive(Clone)]
pub struct Enrichment {
    pub geo: std::sync::Arc<dyn GeoLookup>,
    pub devices: std::sync::Arc<dyn DeviceLookup>,
    pub bots: std::sync::Arc<dyn BotSignals>,
}

impl Default for Enrichment {
    fn default() -> Self {
        Enrichment {
            geo: std::sync::Arc::new(NoEnrichment),
            devices: std::sync::Arc::new(NoEnrichment),
            bots: std::sync::Arc::new(NoEnrichment),
        }
    }
}

impl GeoLookup for GeoResolver {
    fn lookup(&self, ip: std::net::IpAddr) -> GeoInfo {
        GeoResolver::lookup(self, ip)
    }
}

impl DeviceLookup for DeviceDetector {
    fn detect(&self, user_agent: &str) -> std::sync::Arc<DeviceInfo> {
        DeviceDetector::detect(self, user_agent)
    }
}

impl BotSignals for BotDetector {
    fn is_bot_user_agent(&self, user_agent: &str) -> bool {
        BotDetector::is_bot_user_agent(self, user_agent)
    }

    fn is_bot_ip(&self, ip: std::net::IpAddr) -> bool {
        BotDetector::is_bot_ip(self, ip)
    }

    fn set_bot_list(&self, networks: Vec<crate::net::IpNet>) {
        self.set_networks(networks);
    }
}
