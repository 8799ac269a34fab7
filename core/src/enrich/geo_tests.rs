//! Tests of the GeoIP reader (`geo.rs`): the MaxMind DB format, lookups and their cost.

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
