//! GeoIP: an IP address to [`GeoInfo`] through MaxMind DB (`.mmdb`) files in the GeoIP2 schema
//! (MaxMind GeoIP2/GeoLite2, DB-IP Lite).
//!
//! Up to four databases, each optional (`[geoip]` in the configuration):
//!
//! | database | fills |
//! |---|---|
//! | City (`city_db`) | `country_code`, `country_name`, `region`, `region_code`, `city`, `latitude`, `longitude` |
//! | ISP (`isp_db`) | `isp`, `operator` |
//! | ASN (`asn_db`) | `isp`, when the ISP database is absent or knows nothing of the address |
//! | Connection-Type (`connection_type_db`) | `connection_type` |
//!
//! Files are read into memory rather than memory-mapped: `Reader::open_mmap` is `unsafe`
//! (the mapped file must never change while mapped) and this crate forbids `unsafe` code. The
//! cost is resident memory equal to the file sizes (≈ 70 MB for a full City database) and,
//! during a reload, briefly twice that for the database being replaced. The gain is that a file
//! replaced or even truncated in place can never disturb a loaded reader.
//!
//! Lookups decode only the fields [`GeoInfo`] needs into borrowed structs (names are `&str`
//! slices of the loaded file; only the English name is read; only the first subdivision is
//! decoded, the others are skipped). Measured on the City test database in a release build:
//! ≈ 0.57 µs per lookup, against ≈ 1.0 µs when decoding the crate's full `geoip2::City`.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use maxminddb::{MaxMindDbError, Reader};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::GeoInfo;
use crate::config::GeoipConfig;

/// Which of the four GeoIP databases a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeoDatabase {
    /// GeoIP2/GeoLite2/DB-IP City: country, first subdivision, city, coordinates.
    City,
    /// GeoIP2-ISP: provider name and mobile network codes.
    Isp,
    /// GeoLite2/GeoIP2-ASN: autonomous system organisation.
    Asn,
    /// GeoIP2-Connection-Type: `Cable/DSL`, `Cellular`, `Corporate`, `Dialup`, `Satellite`.
    ConnectionType,
}

impl GeoDatabase {
    /// The configuration key that names this database's file.
    pub fn config_key(self) -> &'static str {
        match self {
            GeoDatabase::City => "geoip.city_db",
            GeoDatabase::Isp => "geoip.isp_db",
            GeoDatabase::Asn => "geoip.asn_db",
            GeoDatabase::ConnectionType => "geoip.connection_type_db",
        }
    }
}

impl fmt::Display for GeoDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GeoDatabase::City => "City",
            GeoDatabase::Isp => "ISP",
            GeoDatabase::Asn => "ASN",
            GeoDatabase::ConnectionType => "Connection-Type",
        })
    }
}

/// Why a GeoIP database could not be (re)loaded. Every variant names the file, the
/// configuration key it came from and the reason.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// The file could not be opened or read (missing, unreadable, a directory …).
    #[error("cannot read the GeoIP {database} database {path} ({key}): {reason}", key = .database.config_key())]
    Read {
        database: GeoDatabase,
        /// The path as configured.
        path: PathBuf,
        reason: std::io::Error,
    },
    /// The file was read but is not a valid MaxMind DB file.
    #[error("the GeoIP {database} database {path} ({key}) is not a valid MaxMind DB file: {reason}", key = .database.config_key())]
    Invalid {
        database: GeoDatabase,
        /// The path as configured.
        path: PathBuf,
        reason: MaxMindDbError,
    },
}

/// Resolves IP addresses to [`GeoInfo`] with the configured databases, and replaces a database
/// when its file changes.
///
/// `Send + Sync`; share one behind an `Arc`. [`lookup`](Self::lookup) takes no lock (one
/// `ArcSwap` load per configured database) and never fails. A reload reads the new file beside
/// the live reader and swaps it in atomically: a lookup sees either the old database or the
/// new one, never a mix, and a file that fails to load leaves the old reader serving.
pub struct GeoResolver {
    city: Option<Slot>,
    isp: Option<Slot>,
    asn: Option<Slot>,
    connection_type: Option<Slot>,
    /// Serialises reloads so that two concurrent checks cannot load the same file twice.
    reload_lock: Mutex<()>,
}

impl fmt::Debug for GeoResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = |slot: &Option<Slot>| slot.as_ref().map(|slot| slot.path.clone());
        f.debug_struct("GeoResolver")
            .field("city", &path(&self.city))
            .field("isp", &path(&self.isp))
            .field("asn", &path(&self.asn))
            .field("connection_type", &path(&self.connection_type))
            .finish()
    }
}

impl GeoResolver {
    /// Opens every database `config` names. A configured file that is missing, unreadable or
    /// not a valid MaxMind DB file is an error naming the file and the reason; the first such
    /// error is returned.
    ///
    /// Without `city_db` the resolver works but knows no geography ([`is_enabled`](Self::is_enabled)
    /// is `false`); the ISP, ASN and Connection-Type databases, when configured, are still
    /// opened and used by [`lookup`](Self::lookup).
    ///
    /// Files are read whole into memory (see the module documentation for why not `mmap`).
    /// The file's type recorded in its metadata is not checked: a City path that holds another
    /// kind of database simply yields empty geography.
    pub fn open(config: &GeoipConfig) -> Result<GeoResolver, GeoError> {
        let open = |database: GeoDatabase, path: &Option<PathBuf>| {
            path.as_deref()
                .map(|path| Slot::open(database, path))
                .transpose()
        };
        Ok(GeoResolver {
            city: open(GeoDatabase::City, &config.city_db)?,
            isp: open(GeoDatabase::Isp, &config.isp_db)?,
            asn: open(GeoDatabase::Asn, &config.asn_db)?,
            connection_type: open(GeoDatabase::ConnectionType, &config.connection_type_db)?,
            reload_lock: Mutex::new(()),
        })
    }

    /// A resolver without databases: every lookup returns `GeoInfo::default()`.
    pub fn disabled() -> GeoResolver {
        GeoResolver {
            city: None,
            isp: None,
            asn: None,
            connection_type: None,
            reload_lock: Mutex::new(()),
        }
    }

    /// Whether a City database is loaded, i.e. whether lookups can return geography.
    pub fn is_enabled(&self) -> bool {
        self.city.is_some()
    }

    /// What the loaded databases know about `ip`. Never fails and never panics: an address a
    /// database does not contain, or a record it cannot decode, leaves that database's fields
    /// empty. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are looked up as IPv4.
    ///
    /// - `isp`: the ISP database's `isp`, else its `autonomous_system_organization`, else the
    ///   ASN database's `autonomous_system_organization`. The ISP database's `organization` is
    ///   not used: it names the customer holding the block (an office, a company), not the
    ///   provider.
    /// - `operator`: the `isp` value above, but only when the ISP database's record carries a
    ///   `mobile_country_code` or `mobile_network_code`, which MaxMind sets only for mobile
    ///   carriers' networks (GeoIP2-ISP has no separate carrier-name field).
    /// - `connection_type`: GeoIP2 Connection-Type values mapped to lower case:
    ///   `Cable/DSL` → `cable`, `Cellular` → `cellular`, `Corporate` → `corporate`,
    ///   `Dialup` → `dialup`, `Satellite` → `satellite`; any other value → "".
    pub fn lookup(&self, ip: IpAddr) -> GeoInfo {
        let ip = ip.to_canonical();
        let mut info = GeoInfo::default();
        if let Some(slot) = &self.city {
            let loaded = slot.current.load();
            if let Some(record) = decode::<CityRecord>(&loaded.reader, ip) {
                record.fill(&mut info);
            }
        }
        if let Some(slot) = &self.isp {
            let loaded = slot.current.load();
            if let Some(record) = decode::<IspRecord>(&loaded.reader, ip) {
                record.fill(&mut info);
            }
        }
        if info.isp.is_empty()
            && let Some(slot) = &self.asn
        {
            let loaded = slot.current.load();
            if let Some(record) = decode::<AsnRecord>(&loaded.reader, ip) {
                info.isp = own(record.autonomous_system_organization);
            }
        }
        if let Some(slot) = &self.connection_type {
            let loaded = slot.current.load();
            if let Some(record) = decode::<ConnectionTypeRecord>(&loaded.reader, ip) {
                info.connection_type = connection_type_name(record.connection_type).to_string();
            }
        }
        info
    }

    /// Checks every configured file's modification time and length (and inode on Unix)
    /// against the version loaded; a changed file is read, parsed and swapped in atomically.
    /// Returns whether any database was replaced.
    ///
    /// A file that cannot be read or parsed keeps its old reader serving; every configured
    /// file is still checked, and the first failure is returned. The check runs again on the
    /// next call, so a file that stays broken is reported every time. Blocking file I/O: call
    /// it from a blocking context (as [`spawn_watcher`](Self::spawn_watcher) does).
    pub fn reload_if_changed(&self) -> Result<bool, GeoError> {
        let outcome = self.reload_changed();
        match outcome.errors.into_iter().next() {
            Some(error) => Err(error),
            None => Ok(!outcome.reloaded.is_empty()),
        }
    }

    /// Starts a task that calls [`reload_if_changed`](Self::reload_if_changed) every `every`
    /// (first check after one period) on the blocking thread pool, logging each reloaded file
    /// at info and each failure at warn. The task holds only a weak reference: it ends by
    /// itself once the last `Arc<GeoResolver>` is dropped, or when the handle is aborted.
    ///
    /// Must be called inside a Tokio runtime.
    pub fn spawn_watcher(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let resolver: Weak<GeoResolver> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(resolver) = resolver.upgrade() else {
                    return;
                };
                let outcome = tokio::task::spawn_blocking(move || resolver.reload_changed()).await;
                let outcome = match outcome {
                    Ok(outcome) => outcome,
                    Err(error) => {
                        tracing::warn!(%error, "GeoIP reload check did not finish.");
                        continue;
                    }
                };
                for (database, path) in outcome.reloaded {
                    tracing::info!(%database, path = %path.display(), "GeoIP database reloaded.");
                }
                for error in outcome.errors {
                    tracing::warn!(%error, "GeoIP database not reloaded; the previous version keeps serving.");
                }
            }
        })
    }

    fn slots(&self) -> impl Iterator<Item = &Slot> {
        [&self.city, &self.isp, &self.asn, &self.connection_type]
            .into_iter()
            .flatten()
    }

    fn reload_changed(&self) -> ReloadOutcome {
        let _serialised = self
            .reload_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut outcome = ReloadOutcome::default();
        for slot in self.slots() {
            match slot.reload_if_changed() {
                Ok(true) => outcome.reloaded.push((slot.database, slot.path.clone())),
                Ok(false) => {}
                Err(error) => outcome.errors.push(error),
            }
        }
        outcome
    }
}

/// What one reload pass did.
#[derive(Default)]
struct ReloadOutcome {
    reloaded: Vec<(GeoDatabase, PathBuf)>,
    errors: Vec<GeoError>,
}

/// One configured database: its path and the version now serving.
struct Slot {
    database: GeoDatabase,
    path: PathBuf,
    current: ArcSwap<LoadedDatabase>,
}

struct LoadedDatabase {
    reader: Reader<Vec<u8>>,
    stamp: FileStamp,
}

/// What identifies a version of a file without reading it. The inode catches a replacement
/// by rename that happens to keep the length and the modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

impl FileStamp {
    fn of(metadata: &std::fs::Metadata) -> FileStamp {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            #[cfg(unix)]
            inode: metadata.ino(),
        }
    }
}

impl Slot {
    fn open(database: GeoDatabase, path: &Path) -> Result<Slot, GeoError> {
        let loaded = LoadedDatabase::read(database, path)?;
        Ok(Slot {
            database,
            path: path.to_path_buf(),
            current: ArcSwap::from_pointee(loaded),
        })
    }

    fn reload_if_changed(&self) -> Result<bool, GeoError> {
        let read_error = |reason| GeoError::Read {
            database: self.database,
            path: self.path.clone(),
            reason,
        };
        let on_disk = FileStamp::of(&std::fs::metadata(&self.path).map_err(read_error)?);
        if on_disk == self.current.load().stamp {
            return Ok(false);
        }
        let loaded = LoadedDatabase::read(self.database, &self.path)?;
        self.current.store(Arc::new(loaded));
        Ok(true)
    }
}

impl LoadedDatabase {
    /// Reads the file through one handle, so that the stamp describes exactly the bytes read
    /// even if the path is replaced meanwhile.
    fn read(database: GeoDatabase, path: &Path) -> Result<LoadedDatabase, GeoError> {
        let read_error = |reason| GeoError::Read {
            database,
            path: path.to_path_buf(),
            reason,
        };
        let mut file = File::open(path).map_err(read_error)?;
        let metadata = file.metadata().map_err(read_error)?;
        if metadata.is_dir() {
            return Err(read_error(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory",
            )));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
        file.read_to_end(&mut bytes).map_err(read_error)?;
        let reader = Reader::from_source(bytes).map_err(|reason| GeoError::Invalid {
            database,
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(LoadedDatabase {
            reader,
            stamp: FileStamp::of(&metadata),
        })
    }
}

/// The record for `ip`, or `None` when the database has none or it does not decode.
fn decode<'a, T: Deserialize<'a>>(reader: &'a Reader<Vec<u8>>, ip: IpAddr) -> Option<T> {
    reader.lookup(ip).ok()?.decode().ok().flatten()
}

fn own(value: Option<&str>) -> String {
    value.unwrap_or_default().to_string()
}

/// GeoIP2 Connection-Type values to the lower-case names [`GeoInfo::connection_type`] promises.
fn connection_type_name(value: Option<&str>) -> &'static str {
    match value {
        Some("Cable/DSL") => "cable",
        Some("Cellular") => "cellular",
        Some("Corporate") => "corporate",
        Some("Dialup") => "dialup",
        Some("Satellite") => "satellite",
        _ => "",
    }
}

// The borrowed record shapes: only what `GeoInfo` needs; serde skips every other key.

#[derive(Deserialize)]
struct CityRecord<'a> {
    #[serde(borrow)]
    country: Option<Place<'a>>,
    #[serde(borrow, default, deserialize_with = "first_subdivision")]
    subdivisions: Option<Place<'a>>,
    #[serde(borrow)]
    city: Option<Place<'a>>,
    location: Option<Location>,
}

impl CityRecord<'_> {
    fn fill(self, info: &mut GeoInfo) {
        if let Some(country) = self.country {
            info.country_code = own(country.iso_code);
            info.country_name = own(country.names.and_then(|names| names.en));
        }
        if let Some(region) = self.subdivisions {
            info.region_code = own(region.iso_code);
            info.region = own(region.names.and_then(|names| names.en));
        }
        if let Some(city) = self.city {
            info.city = own(city.names.and_then(|names| names.en));
        }
        if let Some(location) = self.location {
            info.latitude = location.latitude;
            info.longitude = location.longitude;
        }
    }
}

/// A country, subdivision or city.
#[derive(Deserialize)]
struct Place<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
    #[serde(borrow)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow)]
    en: Option<&'a str>,
}

#[derive(Deserialize)]
struct Location {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

/// Decodes the first element of the `subdivisions` array and skips the rest undecoded.
fn first_subdivision<'de, D>(deserializer: D) -> Result<Option<Place<'de>>, D::Error>
where
    D: Deserializer<'de>,
{
    struct FirstOf;

    impl<'de> Visitor<'de> for FirstOf {
        type Value = Option<Place<'de>>;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("an array of subdivisions")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self::Value, A::Error> {
            let first = items.next_element::<Place<'de>>()?;
            while items.next_element::<IgnoredAny>()?.is_some() {}
            Ok(first)
        }
    }

    deserializer.deserialize_seq(FirstOf)
}

#[derive(Deserialize)]
struct IspRecord<'a> {
    #[serde(borrow)]
    isp: Option<&'a str>,
    #[serde(borrow)]
    autonomous_system_organization: Option<&'a str>,
    #[serde(borrow)]
    mobile_country_code: Option<&'a str>,
    #[serde(borrow)]
    mobile_network_code: Option<&'a str>,
}

impl IspRecord<'_> {
    fn fill(self, info: &mut GeoInfo) {
        let provider = self.isp.or(self.autonomous_system_organization);
        info.isp = own(provider);
        if self.mobile_country_code.is_some() || self.mobile_network_code.is_some() {
            info.operator = own(provider);
        }
    }
}

#[derive(Deserialize)]
struct AsnRecord<'a> {
    #[serde(borrow)]
    autonomous_system_organization: Option<&'a str>,
}

#[derive(Deserialize)]
struct ConnectionTypeRecord<'a> {
    #[serde(borrow)]
    connection_type: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MaxMind's test databases, vendored with their licence (see its SOURCE.md).
    fn test_db(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/geoip")
            .join(name)
    }

    const CITY: &str = "GeoIP2-City-Test.mmdb";
    const ISP: &str = "GeoIP2-ISP-Test.mmdb";
    const ASN: &str = "GeoLite2-ASN-Test.mmdb";
    const CONNECTION_TYPE: &str = "GeoIP2-Connection-Type-Test.mmdb";

    fn all_four() -> GeoipConfig {
        GeoipConfig {
            city_db: Some(test_db(CITY)),
            isp_db: Some(test_db(ISP)),
            asn_db: Some(test_db(ASN)),
            connection_type_db: Some(test_db(CONNECTION_TYPE)),
        }
    }

    fn city_only(path: PathBuf) -> GeoipConfig {
        GeoipConfig {
            city_db: Some(path),
            ..GeoipConfig::default()
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// Replaces `path` the way database updaters should: write a temporary file, then rename.
    fn replace(path: &Path, bytes: &[u8]) {
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, bytes).unwrap();
        std::fs::rename(&temporary, path).unwrap();
    }

    #[test]
    fn resolver_is_send_and_sync() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<GeoResolver>();
        shareable::<Arc<GeoResolver>>();
    }

    #[test]
    fn london_from_every_database() {
        let resolver = GeoResolver::open(&all_four()).unwrap();
        assert!(resolver.is_enabled());
        assert_eq!(
            resolver.lookup(ip("81.2.69.160")),
            GeoInfo {
                country_code: "GB".into(),
                country_name: "United Kingdom".into(),
                region: "England".into(),
                region_code: "ENG".into(),
                city: "London".into(),
                latitude: Some(51.5142),
                longitude: Some(-0.0931),
                isp: "Andrews & Arnold Ltd".into(),
                operator: String::new(),
                connection_type: String::new(),
            }
        );
    }

    #[test]
    fn first_subdivision_only() {
        let resolver = GeoResolver::open(&all_four()).unwrap();
        let info = resolver.lookup(ip("2.125.160.216"));
        assert_eq!(info.country_code, "GB");
        assert_eq!(
            (info.region_code.as_str(), info.region.as_str()),
            ("ENG", "England")
        );
        assert_eq!(info.city, "Boxford");
        assert_eq!(info.connection_type, "cable");
        assert_eq!(
            info.isp, "",
            "neither the ISP nor the ASN test database has it"
        );
    }

    #[test]
    fn milton_washington() {
        let resolver = GeoResolver::open(&all_four()).unwrap();
        let info = resolver.lookup(ip("216.160.83.56"));
        assert_eq!(info.country_code, "US");
        assert_eq!(info.country_name, "United States");
        assert_eq!(
            (info.region_code.as_str(), info.region.as_str()),
            ("WA", "Washington")
        );
        assert_eq!(info.city, "Milton");
        assert_eq!(info.latitude, Some(47.2513));
        assert_eq!(info.longitude, Some(-122.3149));
        assert_eq!(info.isp, "Century Link");
        assert_eq!(info.connection_type, "corporate");
    }

    #[test]
    fn non_ascii_names_survive() {
        let resolver = GeoResolver::open(&all_four()).unwrap();
        let info = resolver.lookup(ip("89.160.20.112"));
        assert_eq!(info.country_code, "SE");
        assert_eq!(info.country_name, "Sweden");
        assert_eq!(info.region, "Östergötland County");
        assert_eq!(info.region_code, "E");
        assert_eq!(info.city, "Linköping");
        assert_eq!(info.isp, "Bredband2 AB");
    }

    #[test]
    fn ipv6_and_ipv4_mapped_addresses() {
        let resolver = GeoResolver::open(&all_four()).unwrap();
        let japan = resolver.lookup(ip("2001:218::1"));
        assert_eq!(japan.country_code, "JP");
        assert_eq!(japan.country_name, "Japan");
        assert_eq!(japan.city, "");
        assert_eq!(japan.latitude, Some(35.68536));
        assert_eq!(resolver.lookup(ip("2003::1")).connection_type, "cable");
        assert_eq!(
            resolver.lookup(ip("2600:6000::1")).isp,
            "Merit Network Inc."
        );
        assert_eq!(
            resolver.lookup(ip("::ffff:81.2.69.160")),
            resolver.lookup(ip("81.2.69.160"))
        );
    }

    #[test]
    fn mobile_carrier_is_the_operator() {
        let resolver = GeoResolver::open(&all_four()).unwrap();
        let info = resolver.lookup(ip("149.101.100.1"));
        assert_eq!(info.isp, "Verizon Wireless");
        assert_eq!(info.operator, "Verizon Wireless");
        assert_eq!(info.connection_type, "cellular");
        let fixed = resolver.lookup(ip("1.128.0.1"));
        assert_eq!(
            (fixed.isp.as_str(), fixed.operator.as_str()),
            ("Telstra Internet", "")
        );
    }

    #[test]
    fn asn_database_fills_isp_without_an_isp_database() {
        let resolver = GeoResolver::open(&GeoipConfig {
            isp_db: None,
            ..all_four()
        })
        .unwrap();
        assert_eq!(resolver.lookup(ip("1.128.0.1")).isp, "Telstra Pty Ltd");
        assert_eq!(resolver.lookup(ip("89.160.20.112")).isp, "Bredband2 AB");
        assert_eq!(resolver.lookup(ip("149.101.100.1")).operator, "");
    }

    #[test]
    fn connection_type_mapping() {
        let resolver = GeoResolver::open(&all_four()).unwrap();
        assert_eq!(resolver.lookup(ip("1.0.0.1")).connection_type, "cable");
        assert_eq!(resolver.lookup(ip("1.0.1.1")).connection_type, "cellular");
        assert_eq!(
            resolver.lookup(ip("201.243.200.1")).connection_type,
            "corporate"
        );
        assert_eq!(
            resolver.lookup(ip("214.78.120.1")).connection_type,
            "satellite"
        );
        assert_eq!(connection_type_name(Some("Dialup")), "dialup");
        assert_eq!(connection_type_name(Some("Something New")), "");
        assert_eq!(connection_type_name(None), "");
    }

    #[test]
    fn unknown_addresses_are_empty() {
        let resolver = GeoResolver::open(&all_four()).unwrap();
        for unknown in [
            "10.0.0.1",
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fe80::1",
        ] {
            assert_eq!(
                resolver.lookup(ip(unknown)),
                GeoInfo::default(),
                "{unknown}"
            );
        }
    }

    #[test]
    fn disabled_resolver_knows_nothing() {
        let resolver = GeoResolver::disabled();
        assert!(!resolver.is_enabled());
        assert_eq!(resolver.lookup(ip("81.2.69.160")), GeoInfo::default());
        assert!(!resolver.reload_if_changed().unwrap());

        let unconfigured = GeoResolver::open(&GeoipConfig::default()).unwrap();
        assert!(!unconfigured.is_enabled());
        assert_eq!(unconfigured.lookup(ip("81.2.69.160")), GeoInfo::default());
    }

    #[test]
    fn without_a_city_database_the_others_still_answer() {
        let resolver = GeoResolver::open(&GeoipConfig {
            city_db: None,
            ..all_four()
        })
        .unwrap();
        assert!(!resolver.is_enabled());
        let info = resolver.lookup(ip("216.160.83.56"));
        assert_eq!(info.country_code, "");
        assert_eq!(info.isp, "Century Link");
        assert_eq!(info.connection_type, "corporate");
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let missing = test_db("no-such-file.mmdb");
        let error = GeoResolver::open(&GeoipConfig {
            asn_db: Some(missing.clone()),
            ..all_four()
        })
        .unwrap_err();
        assert!(matches!(
            error,
            GeoError::Read {
                database: GeoDatabase::Asn,
                ..
            }
        ));
        let message = error.to_string();
        assert!(
            message.contains(&missing.display().to_string()),
            "{message}"
        );
        assert!(message.contains("geoip.asn_db"), "{message}");
        assert!(message.contains("No such file"), "{message}");
    }

    #[test]
    fn a_file_that_is_not_mmdb_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("city.mmdb");
        std::fs::write(&garbage, b"not a MaxMind database").unwrap();
        let error = GeoResolver::open(&city_only(garbage.clone())).unwrap_err();
        assert!(matches!(
            error,
            GeoError::Invalid {
                database: GeoDatabase::City,
                ..
            }
        ));
        let message = error.to_string();
        assert!(
            message.contains(&garbage.display().to_string()),
            "{message}"
        );
        assert!(message.contains("geoip.city_db"), "{message}");
        assert!(message.contains("not a valid MaxMind DB file"), "{message}");

        let error = GeoResolver::open(&city_only(dir.path().to_path_buf())).unwrap_err();
        assert!(matches!(error, GeoError::Read { .. }), "{error}");
    }

    #[test]
    fn reload_swaps_a_replaced_file_and_keeps_the_old_one_on_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("city.mmdb");
        // A valid database that has no geography for London: the Connection-Type one.
        std::fs::copy(test_db(CONNECTION_TYPE), &path).unwrap();
        let resolver = GeoResolver::open(&city_only(path.clone())).unwrap();
        assert_eq!(resolver.lookup(ip("81.2.69.160")).city, "");
        assert!(
            !resolver.reload_if_changed().unwrap(),
            "nothing changed yet"
        );

        replace(&path, &std::fs::read(test_db(CITY)).unwrap());
        assert!(resolver.reload_if_changed().unwrap());
        assert_eq!(resolver.lookup(ip("81.2.69.160")).city, "London");
        assert!(!resolver.reload_if_changed().unwrap(), "already loaded");

        replace(&path, b"garbage, not a database");
        let error = resolver.reload_if_changed().unwrap_err();
        assert!(matches!(error, GeoError::Invalid { .. }), "{error}");
        assert!(error.to_string().contains(&path.display().to_string()));
        assert_eq!(resolver.lookup(ip("81.2.69.160")).city, "London");
        assert!(
            resolver.reload_if_changed().is_err(),
            "still broken, still reported"
        );

        std::fs::remove_file(&path).unwrap();
        let error = resolver.reload_if_changed().unwrap_err();
        assert!(matches!(error, GeoError::Read { .. }), "{error}");
        assert_eq!(resolver.lookup(ip("81.2.69.160")).city, "London");
    }

    #[test]
    fn a_broken_file_does_not_block_reloading_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let city = dir.path().join("city.mmdb");
        let isp = dir.path().join("isp.mmdb");
        std::fs::copy(test_db(CONNECTION_TYPE), &city).unwrap();
        std::fs::copy(test_db(ISP), &isp).unwrap();
        let resolver = GeoResolver::open(&GeoipConfig {
            city_db: Some(city.clone()),
            isp_db: Some(isp.clone()),
            ..GeoipConfig::default()
        })
        .unwrap();

        replace(&city, &std::fs::read(test_db(CITY)).unwrap());
        replace(&isp, b"garbage");
        let error = resolver.reload_if_changed().unwrap_err();
        assert!(matches!(
            error,
            GeoError::Invalid {
                database: GeoDatabase::Isp,
                ..
            }
        ));
        let info = resolver.lookup(ip("81.2.69.160"));
        assert_eq!(info.city, "London");
        assert_eq!(info.isp, "Andrews & Arnold Ltd");
    }

    #[tokio::test]
    async fn watcher_picks_up_a_replaced_file_and_stops_with_the_resolver() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("city.mmdb");
        std::fs::copy(test_db(CONNECTION_TYPE), &path).unwrap();
        let resolver = Arc::new(GeoResolver::open(&city_only(path.clone())).unwrap());
        let watcher = resolver.spawn_watcher(Duration::from_millis(10));

        replace(&path, &std::fs::read(test_db(CITY)).unwrap());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while resolver.lookup(ip("81.2.69.160")).city != "London" {
            assert!(tokio::time::Instant::now() < deadline, "never reloaded");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        drop(resolver);
        tokio::time::timeout(Duration::from_secs(10), watcher)
            .await
            .expect("the watcher ends once the resolver is dropped")
            .unwrap();
    }

    /// Rough cost of one lookup with all four databases; run with
    /// `cargo test -p switchyard --lib enrich::geo::tests::lookup_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a timing measurement, not a check"]
    fn lookup_cost() {
        let addresses = [
            "81.2.69.160",
            "216.160.83.56",
            "89.160.20.112",
            "2001:218::1",
            "10.0.0.1",
        ]
        .map(ip);
        for (name, config) in [
            ("city only", city_only(test_db(CITY))),
            ("all four", all_four()),
        ] {
            let resolver = GeoResolver::open(&config).unwrap();
            let rounds = 100_000;
            let started = std::time::Instant::now();
            for _ in 0..rounds {
                for address in addresses {
                    std::hint::black_box(resolver.lookup(std::hint::black_box(address)));
                }
            }
            let per_lookup = started.elapsed().as_nanos() / (rounds * addresses.len() as u128);
            println!(
                "{name}: {per_lookup} ns per lookup (mix of {} addresses)",
                addresses.len()
            );
        }
        // For comparison: the same City lookups decoding the crate's full `geoip2::City`.
        let reader = Reader::open_readfile(test_db(CITY)).unwrap();
        let rounds = 100_000;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            for address in addresses {
                let result = reader.lookup(std::hint::black_box(address)).unwrap();
                std::hint::black_box(result.decode::<maxminddb::geoip2::City>().unwrap());
            }
        }
        let per_lookup = started.elapsed().as_nanos() / (rounds * addresses.len() as u128);
        println!("full geoip2::City decode: {per_lookup} ns per lookup");
    }
}
