//! Lookups in databases written with `mmdb-writer` in both layouts, and in MaxMind's own
//! GeoIP2 test database when scripts/test has fetched it.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::Serialize;

use super::*;

#[derive(Serialize)]
struct Flat {
    country_code: &'static str,
    city: &'static str,
    latitude: f32,
    longitude: f32,
}

#[derive(Serialize)]
struct GeoIp2 {
    city: Names,
    country: IsoCode,
    location: Loc,
}

#[derive(Serialize)]
struct Names {
    names: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
struct IsoCode {
    iso_code: &'static str,
}

#[derive(Serialize)]
struct Loc {
    latitude: f64,
    longitude: f64,
}

fn write(dir: &Path, name: &str, kind: &str, records: &[(&str, &dyn erased::Record)]) -> PathBuf {
    let mut writer = mmdb_writer::Writer::new(kind);
    for (net, record) in records {
        record.insert(&mut writer, net.parse::<IpNet>().unwrap());
    }
    let path = dir.join(name);
    std::fs::write(&path, writer.to_bytes().unwrap()).unwrap();
    path
}

mod erased {
    /// Lets one list hold records of both layouts.
    pub trait Record {
        fn insert(&self, writer: &mut mmdb_writer::Writer, net: ipnet::IpNet);
    }
    impl<T: serde::Serialize> Record for T {
        fn insert(&self, writer: &mut mmdb_writer::Writer, net: ipnet::IpNet) {
            writer.insert(net, self).unwrap();
        }
    }
}

#[test]
fn reads_the_flat_dbip_layout_and_the_geoip2_layout() {
    let dir = tempfile::tempdir().unwrap();
    let flat = write(
        dir.path(),
        "flat.mmdb",
        "city ipv4",
        &[(
            "198.51.100.0/24",
            &Flat {
                country_code: "BR",
                city: "Porto Alegre",
                latitude: -30.0346,
                longitude: -51.2177,
            },
        )],
    );
    let nested = write(
        dir.path(),
        "geoip2.mmdb",
        "GeoLite2-City",
        &[(
            "2001:db8::/32",
            &GeoIp2 {
                city: Names {
                    names: BTreeMap::from([("en", "Frankfurt"), ("de", "Frankfurt am Main")]),
                },
                country: IsoCode { iso_code: "DE" },
                location: Loc {
                    latitude: 50.11,
                    longitude: 8.68,
                },
            },
        )],
    );
    let geo = GeoIp::open(&[flat, nested]).unwrap();
    let porto = geo.locate("198.51.100.7".parse().unwrap()).unwrap();
    assert_eq!(porto.city.as_deref(), Some("Porto Alegre"));
    assert_eq!(porto.country.as_deref(), Some("BR"));
    assert!((porto.position.lat + 30.0346).abs() < 1e-4);
    let frankfurt = geo.locate("2001:db8::1".parse().unwrap()).unwrap();
    assert_eq!(frankfurt.city.as_deref(), Some("Frankfurt"));
    assert_eq!(frankfurt.country.as_deref(), Some("DE"));
    assert_eq!(geo.locate("203.0.113.1".parse().unwrap()), None);
    assert_eq!(geo.describe().len(), 2);
}

#[test]
fn a_bad_file_names_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.mmdb");
    std::fs::write(&path, b"not a database").unwrap();
    let error = GeoIp::open(std::slice::from_ref(&path)).unwrap_err();
    assert!(error.to_string().contains("broken.mmdb"), "{error}");
    assert!(GeoIp::open(&[dir.path().join("missing.mmdb")]).is_err());
}

#[test]
fn distances_are_great_circle_kilometres() {
    let porto_alegre = Position::new(-30.03, -51.22).unwrap();
    let sao_paulo = Position::new(-23.55, -46.63).unwrap();
    let d = porto_alegre.distance_km(sao_paulo);
    assert!((840.0..860.0).contains(&d), "{d}");
    assert_eq!(porto_alegre.distance_km(porto_alegre), 0.0);
    assert_eq!(Position::new(91.0, 0.0), None);
    assert_eq!(Position::new(0.0, -181.0), None);
}

/// MaxMind's GeoIP2-City-Test.mmdb from the PyPI `maxminddb` source package; scripts/test
/// fetches it into target/test-data. Its documented records: 81.2.69.142 is London,
/// 2001:218::/32 is Japan.
#[test]
fn reads_maxminds_geoip2_test_database() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-data/GeoIP2-City-Test.mmdb");
    assert!(
        path.exists(),
        "{} is missing: scripts/test fetches it (pip download maxminddb)",
        path.display()
    );
    let geo = GeoIp::open(&[path]).unwrap();
    let london = geo.locate("81.2.69.142".parse().unwrap()).unwrap();
    assert_eq!(london.city.as_deref(), Some("London"));
    assert_eq!(london.country.as_deref(), Some("GB"));
    assert!((london.position.lat - 51.5142).abs() < 0.01);
    let japan = geo.locate("2001:218::1".parse().unwrap()).unwrap();
    assert_eq!(japan.country.as_deref(), Some("JP"));
}
