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
#[path = "geo_tests.rs"]
mod tests;
