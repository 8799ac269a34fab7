//! Enrichment of a click: geography (GeoIP), device/OS/browser (User-Agent parsing) and bot
//! signals. Each is computed at most once per click, and only when routing or recording needs
//! it (see `traffic::ClickContext`).
//!
//! The implementations live in submodules; this file fixes the shapes the rest of the code
//! sees.

mod bot;
mod device;

pub use bot::BotDetector;
pub use device::DeviceDetector;

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
