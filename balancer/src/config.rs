//! The balancer's configuration: one TOML file, overridden by `CONFLUX_<SECTION>__<KEY>`
//! environment variables, with Scalelite's variable names accepted as aliases.
//!
//! Loading has two stages, as ripgrep's does: [`RawConfig`] (serde, unknown keys refused,
//! defaults) and [`Config::validate`], which turns it into checked values and names the key of
//! anything wrong. The file and the environment are layered by `conflux_shared::config`, which
//! the agent and the recorder use too; the environment is passed in, so tests pass a list.
//! Each section's raw and validated types and its checks live in `config/<section>.rs`.

use std::path::PathBuf;
use std::time::Duration;

use conflux_shared::config::{Alias, Kind, LoadError, Sources};
use conflux_shared::Secret;
use serde::Deserialize;

mod api;
mod monitor;
mod placement;
mod poller;
mod recordings;
mod scalelite_env;
mod server;
mod store;
mod web;

pub use api::{ApiConfig, RawApi};
pub use monitor::{MonitorConfig, RawMonitor, Thresholds};
pub use placement::{PlacementConfig, RawPlacement};
pub use poller::{PollerConfig, RawPoller};
pub use recordings::{RawRecordings, RecordingsConfig};
pub use server::{ConnectionLimits, IpNet, RawServer};
pub use store::RawStore;
pub use web::{RawWeb, WebConfig};

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
    pub store: RawStore,
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

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawGeoIp {
    /// MaxMind DB files; empty = every `*.mmdb` in `<data_dir>/geoip`.
    pub files: Vec<PathBuf>,
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
    /// The PostgreSQL database shared with other balancers; `None`: SQLite in `data_dir`.
    pub store_url: Option<String>,
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

#[derive(Debug, Clone)]
pub struct DefaultIntegration {
    pub name: String,
    pub secrets: Vec<Secret>,
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
    alias("URL_HOST", "api", "public_url", Kind::Text),
    alias("DATABASE_URL", "store", "url", Kind::Text),
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
        let env = &scalelite_env::with_listen(env)?;
        let raw: RawConfig = conflux_shared::config::load(Sources {
            file: path,
            required: true,
            env,
            aliases: ALIASES,
        })?;
        if let Some(warning) = scalelite_env::unused(env) {
            tracing::warn!("{warning}");
        }
        let mut config = Config::validate(raw)?;
        if let Some(dir) = data_dir {
            config.data_dir = dir;
        }
        Ok(config)
    }

    /// Checks values and converts them, section by section; errors name the key.
    pub fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
        let server = raw.server.validate()?;
        Ok(Config {
            listen: server.listen,
            data_dir: server.data_dir,
            store_url: raw.store.validate()?,
            trusted_proxies: server.trusted_proxies,
            connections: server.connections,
            api: raw.api.validate()?,
            poller: raw.poller.validate()?,
            placement: raw.placement.validate()?,
            geoip_files: raw.geoip.files,
            monitor: raw.monitor.validate()?,
            web: raw.web.validate()?,
            recordings: raw.recordings.validate()?,
            metrics_token: raw.metrics.token.filter(|t| !t.0.trim().is_empty()),
            default_integration: raw.default_integration.validate()?,
        })
    }
}

impl RawDefaultIntegration {
    fn validate(self) -> Result<Option<DefaultIntegration>, ConfigError> {
        Ok(match self.secret {
            Some(secret) if secret.0.trim().is_empty() => {
                return Err(invalid(
                    "default_integration.secret",
                    "must not be empty".into(),
                ))
            }
            Some(secret) => Some(DefaultIntegration {
                name: self.name.unwrap_or_else(|| "default".into()),
                secrets: std::iter::once(secret)
                    .chain(self.extra_secrets.into_iter().filter(|s| !s.0.is_empty()))
                    .collect(),
            }),
            None if !self.extra_secrets.is_empty() => {
                return Err(invalid(
                    "default_integration.extra_secrets",
                    "needs default_integration.secret (LOADBALANCER_SECRET)".into(),
                ))
            }
            None => None,
        })
    }
}

fn invalid(key: &str, problem: String) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem,
    }
}

fn seconds(key: &str, v: f64) -> Result<Duration, ConfigError> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| invalid(key, format!("{v} is not a number of seconds")))
}

fn positive(key: &str, v: f64) -> Result<f64, ConfigError> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(invalid(key, format!("{v} is not a positive number")))
    }
}

fn percent(key: &str, v: f64) -> Result<f64, ConfigError> {
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(invalid(key, format!("{v} is not a percentage (0-100)")))
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
    fn nodes_are_signed_with_the_strongest_algorithm_scalelite_would_use() {
        use conflux_shared::Algorithm;
        let node = |toml: &str, env: &[(&str, &str)]| load(toml, env).unwrap().api.node_algorithm;
        assert_eq!(node("", &[]), Algorithm::Sha256);
        let listed = [("LOADBALANCER_CHECKSUM_ALGORITHM", "SHA1:SHA512")];
        assert_eq!(node("", &listed), Algorithm::Sha512);
        let only_sha1 = [("LOADBALANCER_CHECKSUM_ALGORITHM", "SHA1")];
        assert_eq!(node("", &only_sha1), Algorithm::Sha1);
        let chosen = "[api]\nnode_checksum_algorithm = \"sha384\"\n";
        assert_eq!(node(chosen, &listed), Algorithm::Sha384);
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
