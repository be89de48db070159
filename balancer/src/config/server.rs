//! `[server]`: where the balancer listens, its data folder, the proxies whose
//! X-Forwarded-For is believed, and what one connection may hold.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{invalid, positive, seconds, ConfigError};

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawServer {
    pub listen: String,
    pub data_dir: Option<PathBuf>,
    /// Proxies whose X-Forwarded-For is believed (addresses or CIDR blocks).
    pub trusted_proxies: Vec<String>,
    /// A request head must arrive whole within this; it also closes idle keep-alive
    /// connections.
    pub header_timeout_secs: f64,
    /// The longest wait for the next piece of a request body.
    pub body_timeout_secs: f64,
    /// A body still arriving after `body_timeout_secs` must average at least this rate.
    pub min_body_bytes_per_sec: u64,
    /// Open connections at most (also kept under the open-file limit); more are refused.
    pub max_connections: usize,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: "127.0.0.1:8080".into(),
            data_dir: None,
            trusted_proxies: vec!["127.0.0.1".into(), "::1".into()],
            header_timeout_secs: 30.0,
            body_timeout_secs: 30.0,
            min_body_bytes_per_sec: 1024,
            max_connections: 10_000,
        }
    }
}

/// What one client connection may hold (see `server.rs`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub min_body_rate: u64,
    pub max_connections: usize,
}

/// An address block, e.g. `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or(format!("{s:?} has a bad prefix length"))?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        fn bits(ip: IpAddr) -> (u128, u8) {
            match ip {
                IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
                IpAddr::V6(v6) => (u128::from(v6), 128),
            }
        }
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let ((net, width), (candidate, candidate_width)) = (bits(self.addr), bits(ip));
        if width != candidate_width {
            return false;
        }
        let shift = u32::from(width - self.prefix);
        shift >= 128 || (net >> shift) == (candidate >> shift)
    }
}

/// The validated `[server]` section.
pub(super) struct Server {
    pub listen: String,
    pub data_dir: PathBuf,
    pub trusted_proxies: Vec<IpNet>,
    pub connections: ConnectionLimits,
}

impl RawServer {
    pub(super) fn validate(self) -> Result<Server, ConfigError> {
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse()
                    .map_err(|e: String| invalid("server.trusted_proxies", e))
            })
            .collect::<Result<_, _>>()?;
        if self.max_connections == 0 {
            return Err(invalid(
                "server.max_connections",
                "must be at least 1".into(),
            ));
        }
        let connections = ConnectionLimits {
            header_timeout: seconds(
                "server.header_timeout_secs",
                positive("server.header_timeout_secs", self.header_timeout_secs)?,
            )?,
            body_timeout: seconds(
                "server.body_timeout_secs",
                positive("server.body_timeout_secs", self.body_timeout_secs)?,
            )?,
            min_body_rate: self.min_body_bytes_per_sec,
            max_connections: self.max_connections,
        };
        if self.listen.parse::<SocketAddr>().is_err() && !self.listen.contains(':') {
            return Err(invalid(
                "server.listen",
                format!("{:?} is not HOST:PORT", self.listen),
            ));
        }
        Ok(Server {
            listen: self.listen,
            data_dir: self
                .data_dir
                .unwrap_or_else(|| PathBuf::from("/var/lib/conflux")),
            trusted_proxies,
            connections,
        })
    }
}
