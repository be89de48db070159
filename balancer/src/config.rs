//! The balancer's configuration: one TOML file, overridden by `CONFLUX_<SECTION>__<KEY>`
//! environment variables, with Scalelite's variable names accepted as aliases.
//!
//! Loading has two stages, as ripgrep's does: [`RawConfig`] (serde, unknown keys refused,
//! defaults) and [`Config::validate`], which turns it into checked values and names the key of
//! anything wrong. The file and the environment are layered by `conflux_shared::config`, which
//! the agent and the recorder use too; the environment is passed in, so tests pass a list.

use std::collections::BTreeMap;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use conflux_shared::config::{Alias, Kind, LoadError, Sources};
use conflux_shared::{AlgorithmSet, Secret};
use serde::Deserialize;

/// A configuration problem, always naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config: {0}")]
    Load(#[from] LoadError),
    #[error("config key {key}: {problem}")]
    Invalid { key: String, problem: String },
}

/// The file as written, with defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    pub api: RawApi,
    pub poller: RawPoller,
    pub placement: RawPlacement,
    pub geoip: RawGeoIp,
    pub monitor: RawMonitor,
    pub web: RawWeb,
    pub recordings: RawRecordings,
    pub metrics: RawMetrics,
    pub default_integration: RawDefaultIntegration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMetrics {
    /// When set, `/metrics` needs `Authorization: Bearer <token>`.
    pub token: Option<Secret>,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRecordings {
    /// Scalelite-style `*.tar` recordings dropped here by nodes without the agent are
    /// encrypted for their institution's recording server (default `<data_dir>/spool`).
    pub spool_dir: Option<PathBuf>,
    pub import_interval_secs: f64,
    /// Uploaded archives larger than this are refused.
    pub max_archive_mb: u64,
    /// New recordings are protected (one-time playback links) unless updateRecordings says
    /// otherwise.
    pub protected: bool,
    /// How long a protected recording's playback link stays valid.
    pub token_minutes: f64,
    /// Integrations without a recording server get no recordings (the record flag is removed,
    /// Mconf's rule). Off, their recordings stay on the nodes, as with Scalelite without its
    /// importer.
    pub require_recorder: bool,
}

impl Default for RawRecordings {
    fn default() -> Self {
        RawRecordings {
            spool_dir: None,
            import_interval_secs: 10.0,
            max_archive_mb: 20 * 1024,
            protected: false,
            token_minutes: 60.0,
            require_recorder: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawWeb {
    /// The dashboard and node pages are readable without logging in.
    pub public: bool,
    /// Session cookies carry `Secure` (turn off only for plain-HTTP set-ups other than loopback).
    pub secure_cookies: bool,
    pub session_hours: f64,
}

impl Default for RawWeb {
    fn default() -> Self {
        RawWeb {
            public: false,
            secure_cookies: true,
            session_hours: 12.0,
        }
    }
}

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

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawApi {
    pub checksum_algorithms: String,
    pub get_meetings_disabled: bool,
    pub get_recordings_filtered: bool,
    pub recording_disabled: bool,
    /// Minutes; 0 = no limit.
    pub max_meeting_duration: u64,
    pub create_exclude_params: Vec<String>,
    pub join_exclude_params: Vec<String>,
    pub default_create_params: BTreeMap<String, String>,
    pub override_create_params: BTreeMap<String, String>,
    pub default_join_params: BTreeMap<String, String>,
    pub override_join_params: BTreeMap<String, String>,
    pub build_number: String,
    /// Algorithm used to sign calls to nodes.
    pub node_checksum_algorithm: String,
    /// Failed checksums one client address (an IPv6 /64) may make at once ...
    pub client_failure_burst: f64,
    /// ... and how many more it may make per hour after that.
    pub client_failures_per_hour: f64,
    /// The same for all clients of one integration (or of none named): once spent, clients
    /// with recent failures are refused.
    pub scope_failure_burst: f64,
    pub scope_failures_per_hour: f64,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawPoller {
    pub interval_secs: f64,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    pub connect_timeout_secs: f64,
    pub response_timeout_secs: f64,
    pub concurrency: usize,
    /// Nodes' recordings are fetched every this many polls.
    pub recordings_every: u32,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawPlacement {
    pub min_user_count: u32,
    pub join_buffer_secs: f64,
    pub policy: String,
    pub fallback: String,
    pub radius_km: f64,
    pub cpu_limit_percent: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawGeoIp {
    /// MaxMind DB files; empty = every `*.mmdb` in `<data_dir>/geoip`.
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMonitor {
    /// Agents enrol with this token; no token = enrolment closed.
    pub enrolment_token: Option<Secret>,
    /// Whether a node an agent enrolled takes meetings at once (else it waits for an admin).
    pub enrol_enabled: bool,
    pub cpu_warning: f64,
    pub cpu_critical: f64,
    pub memory_warning: f64,
    pub memory_critical: f64,
    pub disk_warning: f64,
    pub disk_critical: f64,
    /// A report this many agent intervals late makes the report check UNKNOWN, then CRITICAL.
    pub stale_unknown_intervals: f64,
    pub stale_critical_intervals: f64,
    /// TCP ports checked on every node unless a node lists its own.
    pub ports: Vec<u16>,
    pub ports_interval_secs: f64,
    /// A node whose API version does not start with this is WARNING (empty = any).
    pub expected_version: String,
    pub version_interval_secs: f64,
    /// Paths that must not answer 200 on a node (BBB's demos).
    pub demo_paths: Vec<String>,
    pub demo_interval_secs: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawDefaultIntegration {
    pub name: Option<String>,
    pub secret: Option<Secret>,
    /// Extra secrets accepted for the default integration (Scalelite's LOADBALANCER_SECRETS).
    pub extra_secrets: Vec<Secret>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub trusted_proxies: Vec<IpNet>,
    pub connections: ConnectionLimits,
    pub api: ApiConfig,
    pub poller: PollerConfig,
    pub placement: PlacementConfig,
    pub geoip_files: Vec<PathBuf>,
    pub monitor: MonitorConfig,
    pub web: WebConfig,
    pub recordings: RecordingsConfig,
    /// The bearer token `/metrics` needs, if any.
    pub metrics_token: Option<Secret>,
    pub default_integration: Option<DefaultIntegration>,
}

/// What one client connection may hold (see `server.rs`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub min_body_rate: u64,
    pub max_connections: usize,
}

#[derive(Debug, Clone)]
pub struct RecordingsConfig {
    /// None = `<data_dir>/spool`.
    pub spool_dir: Option<PathBuf>,
    pub import_interval: Duration,
    pub max_archive_bytes: u64,
    pub protected: bool,
    pub token_lifetime: Duration,
    pub require_recorder: bool,
}

#[derive(Debug, Clone)]
pub struct WebConfig {
    pub public: bool,
    pub secure_cookies: bool,
    pub session: Duration,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub algorithms: AlgorithmSet,
    pub node_algorithm: conflux_shared::Algorithm,
    pub get_meetings_disabled: bool,
    pub get_recordings_filtered: bool,
    pub recording_disabled: bool,
    pub max_meeting_duration: u64,
    pub create_exclude_params: Vec<String>,
    pub join_exclude_params: Vec<String>,
    pub default_create_params: Vec<(String, String)>,
    pub override_create_params: Vec<(String, String)>,
    pub default_join_params: Vec<(String, String)>,
    pub override_join_params: Vec<(String, String)>,
    pub build_number: String,
    pub failures: crate::failures::FailureLimits,
}

#[derive(Debug, Clone)]
pub struct PollerConfig {
    pub interval: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub concurrency: usize,
    pub recordings_every: u32,
}

#[derive(Debug, Clone)]
pub struct PlacementConfig {
    pub min_user_count: u32,
    pub join_buffer: Duration,
    pub rules: crate::placement::Rules,
}

#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub enrolment_token: Option<Secret>,
    pub enrol_enabled: bool,
    pub cpu: Thresholds,
    pub memory: Thresholds,
    pub disk: Thresholds,
    pub stale_unknown_intervals: f64,
    pub stale_critical_intervals: f64,
    pub ports: Vec<u16>,
    pub ports_interval: Duration,
    pub expected_version: String,
    pub version_interval: Duration,
    pub demo_paths: Vec<String>,
    pub demo_interval: Duration,
}

/// WARNING at or above `warning`, CRITICAL at or above `critical` (percent).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub warning: f64,
    pub critical: f64,
}

#[derive(Debug, Clone)]
pub struct DefaultIntegration {
    pub name: String,
    pub secrets: Vec<Secret>,
}

/// An address block, e.g. `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
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

impl Default for RawApi {
    fn default() -> Self {
        RawApi {
            checksum_algorithms: "sha1,sha256,sha384,sha512".into(),
            get_meetings_disabled: false,
            get_recordings_filtered: false,
            recording_disabled: false,
            max_meeting_duration: 0,
            create_exclude_params: Vec::new(),
            join_exclude_params: Vec::new(),
            default_create_params: BTreeMap::new(),
            override_create_params: BTreeMap::new(),
            default_join_params: BTreeMap::new(),
            override_join_params: BTreeMap::new(),
            build_number: String::new(),
            node_checksum_algorithm: "sha256".into(),
            client_failure_burst: 20.0,
            client_failures_per_hour: 30.0,
            scope_failure_burst: 100.0,
            scope_failures_per_hour: 120.0,
        }
    }
}

impl Default for RawPoller {
    fn default() -> Self {
        RawPoller {
            interval_secs: 60.0,
            healthy_threshold: 1,
            unhealthy_threshold: 2,
            connect_timeout_secs: 5.0,
            response_timeout_secs: 10.0,
            concurrency: 64,
            recordings_every: 5,
        }
    }
}

impl Default for RawPlacement {
    fn default() -> Self {
        RawPlacement {
            min_user_count: 15,
            join_buffer_secs: 900.0,
            policy: "geo".into(),
            fallback: "scalelite".into(),
            radius_km: 300.0,
            cpu_limit_percent: 70.0,
        }
    }
}

impl Default for RawMonitor {
    fn default() -> Self {
        RawMonitor {
            enrolment_token: None,
            enrol_enabled: false,
            cpu_warning: 85.0,
            cpu_critical: 95.0,
            memory_warning: 90.0,
            memory_critical: 95.0,
            disk_warning: 85.0,
            disk_critical: 95.0,
            stale_unknown_intervals: 3.0,
            stale_critical_intervals: 6.0,
            ports: Vec::new(),
            ports_interval_secs: 30.0,
            expected_version: String::new(),
            version_interval_secs: 60.0,
            demo_paths: vec!["/demo/demo1.jsp".into()],
            demo_interval_secs: 300.0,
        }
    }
}

/// Scalelite's environment variables and the keys they set.
const ALIASES: &[Alias] = &[
    alias(
        "LOADBALANCER_SECRET",
        "default_integration",
        "secret",
        Kind::Text,
    ),
    alias(
        "LOADBALANCER_SECRETS",
        "default_integration",
        "extra_secrets",
        Kind::List(':'),
    ),
    alias(
        "LOADBALANCER_CHECKSUM_ALGORITHM",
        "api",
        "checksum_algorithms",
        Kind::Text,
    ),
    alias("POLL_INTERVAL", "poller", "interval_secs", Kind::Value),
    alias(
        "SERVER_HEALTHY_THRESHOLD",
        "poller",
        "healthy_threshold",
        Kind::Value,
    ),
    alias(
        "SERVER_UNHEALTHY_THRESHOLD",
        "poller",
        "unhealthy_threshold",
        Kind::Value,
    ),
    alias(
        "CONNECT_TIMEOUT",
        "poller",
        "connect_timeout_secs",
        Kind::Value,
    ),
    alias(
        "RESPONSE_TIMEOUT",
        "poller",
        "response_timeout_secs",
        Kind::Value,
    ),
    alias(
        "LOAD_MIN_USER_COUNT",
        "placement",
        "min_user_count",
        Kind::Value,
    ),
    alias(
        "LOAD_JOIN_BUFFER_TIME",
        "placement",
        "join_buffer_secs",
        Kind::Minutes,
    ),
    alias(
        "MAX_MEETING_DURATION",
        "api",
        "max_meeting_duration",
        Kind::Value,
    ),
    alias(
        "CREATE_EXCLUDE_PARAMS",
        "api",
        "create_exclude_params",
        Kind::List(','),
    ),
    alias(
        "JOIN_EXCLUDE_PARAMS",
        "api",
        "join_exclude_params",
        Kind::List(','),
    ),
    alias(
        "DEFAULT_CREATE_PARAMS",
        "api",
        "default_create_params",
        Kind::Pairs,
    ),
    alias(
        "OVERRIDE_CREATE_PARAMS",
        "api",
        "override_create_params",
        Kind::Pairs,
    ),
    alias(
        "DEFAULT_JOIN_PARAMS",
        "api",
        "default_join_params",
        Kind::Pairs,
    ),
    alias(
        "OVERRIDE_JOIN_PARAMS",
        "api",
        "override_join_params",
        Kind::Pairs,
    ),
    alias(
        "GET_MEETINGS_API_DISABLED",
        "api",
        "get_meetings_disabled",
        Kind::Bool,
    ),
    alias(
        "GET_RECORDINGS_API_FILTERED",
        "api",
        "get_recordings_filtered",
        Kind::Bool,
    ),
    alias(
        "RECORDING_DISABLED",
        "api",
        "recording_disabled",
        Kind::Bool,
    ),
    alias("BUILD_NUMBER", "api", "build_number", Kind::Text),
    alias("RECORDING_SPOOL_DIR", "recordings", "spool_dir", Kind::Text),
    alias(
        "RECORDING_IMPORT_POLL_INTERVAL",
        "recordings",
        "import_interval_secs",
        Kind::Value,
    ),
    alias(
        "PROTECTED_RECORDINGS_ENABLED",
        "recordings",
        "protected",
        Kind::Bool,
    ),
    alias(
        "PROTECTED_RECORDINGS_TOKEN_TIMEOUT",
        "recordings",
        "token_minutes",
        Kind::Value,
    ),
];

const fn alias(var: &'static str, section: &'static str, key: &'static str, kind: Kind) -> Alias {
    Alias {
        var,
        section,
        key,
        kind,
    }
}

impl Config {
    /// Reads `path` (if any), applies Scalelite's names and `CONFLUX_<SECTION>__<KEY>` from
    /// `env` (every key of the file can be set; an unknown variable is refused), then
    /// validates. `data_dir` (from `--data-dir`) wins over the file and the environment.
    pub fn load(
        path: Option<&std::path::Path>,
        data_dir: Option<PathBuf>,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = conflux_shared::config::load(Sources {
            file: path,
            required: true,
            env,
            aliases: ALIASES,
        })?;
        let mut config = Config::validate(raw)?;
        if let Some(dir) = data_dir {
            config.data_dir = dir;
        }
        Ok(config)
    }

    /// Checks values and converts them; errors name the key.
    pub fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            key: key.into(),
            problem,
        };
        let seconds = |key: &str, v: f64| {
            Duration::try_from_secs_f64(v)
                .map_err(|_| invalid(key, format!("{v} is not a number of seconds")))
        };
        let positive = |key: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(invalid(key, format!("{v} is not a positive number")))
            }
        };
        let percent = |key: &str, v: f64| {
            if (0.0..=100.0).contains(&v) {
                Ok(v)
            } else {
                Err(invalid(key, format!("{v} is not a percentage (0-100)")))
            }
        };
        let algorithms: AlgorithmSet = raw
            .api
            .checksum_algorithms
            .parse()
            .map_err(|e| invalid("api.checksum_algorithms", format!("{e}")))?;
        if algorithms == AlgorithmSet::empty() {
            return Err(invalid(
                "api.checksum_algorithms",
                "no algorithm enabled".into(),
            ));
        }
        let node_algorithm = raw
            .api
            .node_checksum_algorithm
            .parse()
            .map_err(|e| invalid("api.node_checksum_algorithm", format!("{e}")))?;
        let trusted_proxies = raw
            .server
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse()
                    .map_err(|e: String| invalid("server.trusted_proxies", e))
            })
            .collect::<Result<_, _>>()?;
        let budget = |name: &str, burst: f64, per_hour: f64| {
            Ok::<_, ConfigError>(crate::failures::Budget {
                burst: positive(&format!("api.{name}_failure_burst"), burst)?,
                per_hour: positive(&format!("api.{name}_failures_per_hour"), per_hour)?,
            })
        };
        let failures = crate::failures::FailureLimits {
            client: budget(
                "client",
                raw.api.client_failure_burst,
                raw.api.client_failures_per_hour,
            )?,
            scope: budget(
                "scope",
                raw.api.scope_failure_burst,
                raw.api.scope_failures_per_hour,
            )?,
        };
        if raw.server.max_connections == 0 {
            return Err(invalid(
                "server.max_connections",
                "must be at least 1".into(),
            ));
        }
        let connections = ConnectionLimits {
            header_timeout: seconds(
                "server.header_timeout_secs",
                positive("server.header_timeout_secs", raw.server.header_timeout_secs)?,
            )?,
            body_timeout: seconds(
                "server.body_timeout_secs",
                positive("server.body_timeout_secs", raw.server.body_timeout_secs)?,
            )?,
            min_body_rate: raw.server.min_body_bytes_per_sec,
            max_connections: raw.server.max_connections,
        };
        if raw.poller.concurrency == 0 {
            return Err(invalid("poller.concurrency", "must be at least 1".into()));
        }
        if raw.poller.healthy_threshold == 0 || raw.poller.unhealthy_threshold == 0 {
            return Err(invalid(
                "poller.healthy_threshold",
                "thresholds must be at least 1".into(),
            ));
        }
        let interval = seconds("poller.interval_secs", raw.poller.interval_secs)?;
        if interval < Duration::from_millis(100) {
            return Err(invalid(
                "poller.interval_secs",
                "must be at least 0.1".into(),
            ));
        }
        if raw.server.listen.parse::<SocketAddr>().is_err() && !raw.server.listen.contains(':') {
            return Err(invalid(
                "server.listen",
                format!("{:?} is not HOST:PORT", raw.server.listen),
            ));
        }
        let default_integration = match raw.default_integration.secret {
            Some(secret) if secret.0.trim().is_empty() => {
                return Err(invalid(
                    "default_integration.secret",
                    "must not be empty".into(),
                ))
            }
            Some(secret) => Some(DefaultIntegration {
                name: raw
                    .default_integration
                    .name
                    .unwrap_or_else(|| "default".into()),
                secrets: std::iter::once(secret)
                    .chain(
                        raw.default_integration
                            .extra_secrets
                            .into_iter()
                            .filter(|s| !s.0.is_empty()),
                    )
                    .collect(),
            }),
            None if !raw.default_integration.extra_secrets.is_empty() => {
                return Err(invalid(
                    "default_integration.extra_secrets",
                    "needs default_integration.secret (LOADBALANCER_SECRET)".into(),
                ))
            }
            None => None,
        };
        let policy = |key: &str, v: &str| {
            v.parse::<crate::placement::Policy>()
                .map_err(|e| invalid(key, e))
        };
        let rules = crate::placement::Rules {
            policy: policy("placement.policy", &raw.placement.policy)?,
            fallback: match policy("placement.fallback", &raw.placement.fallback)? {
                crate::placement::Policy::Geo => {
                    return Err(invalid(
                        "placement.fallback",
                        "must not be geo (it is what geo falls back to)".into(),
                    ))
                }
                p => p,
            },
            radius_km: positive("placement.radius_km", raw.placement.radius_km)?,
            cpu_limit: percent(
                "placement.cpu_limit_percent",
                raw.placement.cpu_limit_percent,
            )?,
        };
        let m = &raw.monitor;
        let thresholds = |name: &str, warning: f64, critical: f64| {
            let warning = percent(&format!("monitor.{name}_warning"), warning)?;
            let critical = percent(&format!("monitor.{name}_critical"), critical)?;
            if warning > critical {
                return Err(invalid(
                    &format!("monitor.{name}_warning"),
                    format!("{warning} is above {name}_critical {critical}"),
                ));
            }
            Ok(Thresholds { warning, critical })
        };
        if m.stale_unknown_intervals <= 0.0
            || m.stale_critical_intervals < m.stale_unknown_intervals
        {
            return Err(invalid(
                "monitor.stale_critical_intervals",
                "needs 0 < stale_unknown_intervals <= stale_critical_intervals".into(),
            ));
        }
        if m.ports.contains(&0) {
            return Err(invalid("monitor.ports", "0 is not a port".into()));
        }
        if let Some(path) = m.demo_paths.iter().find(|p| !p.starts_with('/')) {
            return Err(invalid(
                "monitor.demo_paths",
                format!("{path:?} must start with /"),
            ));
        }
        let enrolment_token = m.enrolment_token.clone().filter(|t| !t.0.trim().is_empty());
        if enrolment_token.as_ref().is_some_and(|t| t.0.len() < 16) {
            return Err(invalid(
                "monitor.enrolment_token",
                "must be at least 16 characters (it lets a machine join the pool)".into(),
            ));
        }
        let monitor = MonitorConfig {
            enrolment_token,
            enrol_enabled: m.enrol_enabled,
            cpu: thresholds("cpu", m.cpu_warning, m.cpu_critical)?,
            memory: thresholds("memory", m.memory_warning, m.memory_critical)?,
            disk: thresholds("disk", m.disk_warning, m.disk_critical)?,
            stale_unknown_intervals: m.stale_unknown_intervals,
            stale_critical_intervals: m.stale_critical_intervals,
            ports: m.ports.clone(),
            ports_interval: seconds("monitor.ports_interval_secs", m.ports_interval_secs)?,
            expected_version: m.expected_version.trim().to_owned(),
            version_interval: seconds("monitor.version_interval_secs", m.version_interval_secs)?,
            demo_paths: m.demo_paths.clone(),
            demo_interval: seconds("monitor.demo_interval_secs", m.demo_interval_secs)?,
        };
        Ok(Config {
            listen: raw.server.listen,
            data_dir: raw
                .server
                .data_dir
                .unwrap_or_else(|| PathBuf::from("/var/lib/conflux")),
            trusted_proxies,
            connections,
            api: ApiConfig {
                algorithms,
                node_algorithm,
                get_meetings_disabled: raw.api.get_meetings_disabled,
                get_recordings_filtered: raw.api.get_recordings_filtered,
                recording_disabled: raw.api.recording_disabled,
                max_meeting_duration: raw.api.max_meeting_duration,
                create_exclude_params: raw.api.create_exclude_params,
                join_exclude_params: raw.api.join_exclude_params,
                default_create_params: raw.api.default_create_params.into_iter().collect(),
                override_create_params: raw.api.override_create_params.into_iter().collect(),
                default_join_params: raw.api.default_join_params.into_iter().collect(),
                override_join_params: raw.api.override_join_params.into_iter().collect(),
                build_number: raw.api.build_number,
                failures,
            },
            poller: PollerConfig {
                interval,
                healthy_threshold: raw.poller.healthy_threshold,
                unhealthy_threshold: raw.poller.unhealthy_threshold,
                connect_timeout: seconds(
                    "poller.connect_timeout_secs",
                    raw.poller.connect_timeout_secs,
                )?,
                response_timeout: seconds(
                    "poller.response_timeout_secs",
                    raw.poller.response_timeout_secs,
                )?,
                concurrency: raw.poller.concurrency,
                recordings_every: raw.poller.recordings_every.max(1),
            },
            placement: PlacementConfig {
                min_user_count: raw.placement.min_user_count,
                join_buffer: seconds("placement.join_buffer_secs", raw.placement.join_buffer_secs)?,
                rules,
            },
            geoip_files: raw.geoip.files,
            monitor,
            web: WebConfig {
                public: raw.web.public,
                secure_cookies: raw.web.secure_cookies,
                session: seconds("web.session_hours", raw.web.session_hours * 3600.0)?,
            },
            recordings: RecordingsConfig {
                spool_dir: raw.recordings.spool_dir,
                import_interval: seconds(
                    "recordings.import_interval_secs",
                    positive(
                        "recordings.import_interval_secs",
                        raw.recordings.import_interval_secs,
                    )?,
                )?,
                max_archive_bytes: raw.recordings.max_archive_mb.saturating_mul(1 << 20),
                protected: raw.recordings.protected,
                token_lifetime: seconds(
                    "recordings.token_minutes",
                    positive("recordings.token_minutes", raw.recordings.token_minutes)? * 60.0,
                )?,
                require_recorder: raw.recordings.require_recorder,
            },
            metrics_token: raw.metrics.token.filter(|t| !t.0.trim().is_empty()),
            default_integration,
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml_text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("balancer.toml");
        std::fs::write(&path, toml_text).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(Some(&path), None, &env)
    }

    #[test]
    fn defaults_are_scalelites() {
        let c = load("", &[]).unwrap();
        assert_eq!(c.poller.interval, Duration::from_secs(60));
        assert_eq!(
            (c.poller.healthy_threshold, c.poller.unhealthy_threshold),
            (1, 2)
        );
        assert_eq!(c.placement.min_user_count, 15);
        assert_eq!(c.placement.join_buffer, Duration::from_secs(900));
        assert!(c.default_integration.is_none());
    }

    #[test]
    fn file_env_and_scalelite_aliases() {
        let c = load(
            "[poller]\ninterval_secs = 5\n[api]\nbuild_number = \"file\"\n",
            &[
                ("LOADBALANCER_SECRET", "s1"),
                ("LOADBALANCER_SECRETS", "s2:s3"),
                ("POLL_INTERVAL", "7"),
                ("LOAD_JOIN_BUFFER_TIME", "2"),
                ("CREATE_EXCLUDE_PARAMS", "logo, bannerText"),
                ("OVERRIDE_CREATE_PARAMS", "record=false,muteOnStart=true"),
                ("GET_MEETINGS_API_DISABLED", "yes"),
                ("CONFLUX_API__BUILD_NUMBER", "env"),
            ],
        )
        .unwrap();
        assert_eq!(c.poller.interval, Duration::from_secs(7));
        assert_eq!(c.placement.join_buffer, Duration::from_secs(120));
        assert_eq!(c.api.create_exclude_params, ["logo", "bannerText"]);
        assert_eq!(
            c.api.override_create_params,
            [
                ("muteOnStart".into(), "true".into()),
                ("record".into(), "false".into())
            ]
        );
        assert!(c.api.get_meetings_disabled);
        assert_eq!(c.api.build_number, "env");
        let d = c.default_integration.unwrap();
        assert_eq!(
            d.secrets.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
            ["s1", "s2", "s3"]
        );
        assert_eq!(format!("{:?}", d.secrets[0]), "***");
    }

    #[test]
    fn every_key_can_be_set_from_the_environment_and_unknown_ones_are_refused() {
        // These were silently ignored while the keys the environment could set were listed
        // by hand.
        let c = load(
            "",
            &[
                ("CONFLUX_API__CREATE_EXCLUDE_PARAMS", "logo,bannerText"),
                ("CONFLUX_API__JOIN_EXCLUDE_PARAMS", "avatarURL"),
                ("CONFLUX_API__DEFAULT_CREATE_PARAMS", "record=false"),
                (
                    "CONFLUX_API__OVERRIDE_JOIN_PARAMS",
                    "userdata-x=1,userdata-y=2",
                ),
                ("CONFLUX_SERVER__TRUSTED_PROXIES", "127.0.0.1"),
                ("CONFLUX_MONITOR__PORTS", "443,7443"),
                ("CONFLUX_METRICS__TOKEN", "12345678"),
                ("CONFLUX_DEFAULT_INTEGRATION__SECRET", "0123456789"),
            ],
        )
        .unwrap();
        assert_eq!(c.api.create_exclude_params, ["logo", "bannerText"]);
        assert_eq!(c.api.join_exclude_params, ["avatarURL"]);
        assert_eq!(c.api.default_create_params.len(), 1);
        assert_eq!(c.api.override_join_params.len(), 2);
        assert_eq!(c.monitor.ports, [443, 7443]);
        assert!(c.metrics_token.is_some());
        assert!(c.default_integration.is_some());
        for var in [
            "CONFLUX_API__CREATE_EXCLUDE",
            "CONFLUX_POLLERS__INTERVAL_SECS",
        ] {
            let e = load("", &[(var, "1")]).unwrap_err().to_string();
            assert!(e.contains(var) && e.contains("unknown field"), "{e}");
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        type Env<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(&str, Env, &str)] = &[
            (
                "[poller]\ninterval_secs = \"often\"\n",
                &[],
                "interval_secs",
            ),
            ("[poller]\nbogus = 1\n", &[], "bogus"),
            (
                "[api]\nchecksum_algorithms = \"md5\"\n",
                &[],
                "api.checksum_algorithms",
            ),
            (
                "",
                &[("GET_MEETINGS_API_DISABLED", "maybe")],
                "GET_MEETINGS_API_DISABLED",
            ),
            (
                "",
                &[("DEFAULT_CREATE_PARAMS", "novalue")],
                "DEFAULT_CREATE_PARAMS",
            ),
            (
                "",
                &[("CONFLUX_POLLER__CONCURRENCY", "0")],
                "poller.concurrency",
            ),
            (
                "[server]\ntrusted_proxies = [\"10.0.0.0/99\"]\n",
                &[],
                "server.trusted_proxies",
            ),
            ("not toml [", &[], "config"),
            (
                "[placement]\npolicy = \"nearest\"\n",
                &[],
                "placement.policy",
            ),
            (
                "[placement]\nfallback = \"geo\"\n",
                &[],
                "placement.fallback",
            ),
            (
                "",
                &[("CONFLUX_PLACEMENT__CPU_LIMIT_PERCENT", "170")],
                "placement.cpu_limit_percent",
            ),
            (
                "[monitor]\ncpu_warning = 95\ncpu_critical = 90\n",
                &[],
                "monitor.cpu_warning",
            ),
            (
                "[monitor]\nenrolment_token = \"short\"\n",
                &[],
                "monitor.enrolment_token",
            ),
            ("[monitor]\nports = [0]\n", &[], "monitor.ports"),
            (
                "[monitor]\ndemo_paths = [\"demo\"]\n",
                &[],
                "monitor.demo_paths",
            ),
        ];
        for (text, env, key) in cases {
            let err = load(text, env).unwrap_err().to_string();
            assert!(err.contains(key), "{err:?} should name {key}");
            assert!(!err.contains('\n'), "{err:?} is one line");
        }
    }

    #[test]
    fn cidr_matching() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: IpNet = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
    }
}
