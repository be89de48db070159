//! The agent's configuration: one TOML file, overridden by `CONFLUX_<SECTION>__<KEY>`
//! environment variables (layered by `conflux_shared::config`; tests pass a list), validated into
//! [`Config`] with errors that name the key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config: {0}")]
    Load(#[from] conflux_shared::config::LoadError),
    #[error("config key {key}: {problem}")]
    Invalid { key: &'static str, problem: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    balancer: RawBalancer,
    node: RawNode,
    report: RawReport,
    recordings: RawRecordings,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawRecordings {
    published_dir: PathBuf,
    outbox_dir: PathBuf,
    interval_secs: f64,
}

impl Default for RawRecordings {
    fn default() -> Self {
        RawRecordings {
            published_dir: PathBuf::from("/var/bigbluebutton/published"),
            outbox_dir: PathBuf::from("/var/lib/conflux-agent/outbox"),
            interval_secs: 30.0,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawBalancer {
    url: String,
    enrolment_token: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawNode {
    name: String,
    api_url: String,
    local_api_url: String,
    secret: String,
    latitude: Option<f64>,
    longitude: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawReport {
    interval_secs: f64,
    disks: Vec<String>,
    state_file: PathBuf,
    timeout_secs: f64,
}

impl Default for RawReport {
    fn default() -> Self {
        RawReport {
            interval_secs: 10.0,
            disks: vec!["/".into()],
            state_file: PathBuf::from("/var/lib/conflux-agent/state.json"),
            timeout_secs: 10.0,
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The balancer's base URL (no trailing slash); empty in plugin-only set-ups.
    pub balancer_url: String,
    pub enrolment_token: String,
    pub name: String,
    /// The node's API base as the balancer calls it.
    pub api_url: String,
    /// Where the agent reads the node's counts (defaults to `api_url`).
    pub local_api_url: String,
    pub secret: String,
    pub location: Option<(f64, f64)>,
    pub interval: Duration,
    /// Mount points reported; empty = every mounted file system.
    pub disks: Vec<String>,
    pub state_file: PathBuf,
    pub timeout: Duration,
    /// BBB's published recordings (`<format>/<recordID>/`), watched for recordings made for an
    /// institution's recording server.
    pub published_dir: PathBuf,
    /// Where encrypted archives wait until their recorder has them.
    pub outbox_dir: PathBuf,
    pub recordings_interval: Duration,
}

impl Config {
    /// Reads `path` if it exists (a missing default file is fine: env may carry everything),
    /// applies `CONFLUX_<SECTION>__<KEY>` from `env` (every key; unknown ones refused) and
    /// validates.
    pub fn load(
        path: &Path,
        env: &[(String, String)],
        required: bool,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = conflux_shared::config::load(conflux_shared::config::Sources {
            file: Some(path),
            required,
            env,
            aliases: &[],
        })?;
        Config::validate(raw)
    }

    fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
        let invalid = |key, problem: String| ConfigError::Invalid { key, problem };
        let url = |key, v: &str| {
            let v = v.trim().trim_end_matches('/');
            if v.is_empty() || v.starts_with("http://") || v.starts_with("https://") {
                Ok(v.to_owned())
            } else {
                Err(invalid(key, format!("{v:?} is not an http(s) URL")))
            }
        };
        let seconds = |key, v: f64| {
            Duration::try_from_secs_f64(v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| invalid(key, format!("{v} is not a positive number of seconds")))
        };
        let api_url = url("node.api_url", &raw.node.api_url)?;
        let local = url("node.local_api_url", &raw.node.local_api_url)?;
        let location = match (raw.node.latitude, raw.node.longitude) {
            (Some(lat), Some(lon))
                if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
            {
                Some((lat, lon))
            }
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "node.latitude",
                    "latitude and longitude go together, in degrees".into(),
                ))
            }
        };
        Ok(Config {
            balancer_url: url("balancer.url", &raw.balancer.url)?,
            enrolment_token: raw.balancer.enrolment_token,
            name: match raw.node.name.trim() {
                "" => sysinfo::System::host_name().unwrap_or_else(|_| "bbb".into()),
                name => name.to_owned(),
            },
            local_api_url: if local.is_empty() {
                api_url.clone()
            } else {
                local
            },
            api_url,
            secret: raw.node.secret.trim().to_owned(),
            location,
            interval: seconds("report.interval_secs", raw.report.interval_secs)?,
            disks: raw.report.disks,
            state_file: raw.report.state_file,
            timeout: seconds("report.timeout_secs", raw.report.timeout_secs)?,
            published_dir: raw.recordings.published_dir,
            outbox_dir: raw.recordings.outbox_dir,
            recordings_interval: seconds("recordings.interval_secs", raw.recordings.interval_secs)?,
        })
    }

    /// Whether reporting can start: the balancer, the node and its secret are known.
    pub fn check_reporting(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("balancer.url", &self.balancer_url),
            ("node.api_url", &self.api_url),
            ("node.secret", &self.secret),
        ] {
            if value.is_empty() {
                return Err(ConfigError::Invalid {
                    key,
                    problem: "must be set to report".into(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, toml).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(&path, &env, true)
    }

    #[test]
    fn file_and_environment() {
        let config = load(
            "[balancer]\nurl = \"https://lb.example.org/\"\n[node]\napi_url = \"https://bbb1.example.org/bigbluebutton/api\"\n",
            &[("CONFLUX_NODE__SECRET", "12345"), ("CONFLUX_REPORT__DISKS", "/, /var")],
        )
        .unwrap();
        assert_eq!(config.balancer_url, "https://lb.example.org");
        assert_eq!(
            config.secret, "12345",
            "a numeric-looking secret stays text"
        );
        assert_eq!(config.local_api_url, config.api_url);
        assert_eq!(config.disks, ["/", "/var"]);
        assert_eq!(config.interval, Duration::from_secs(10));
        config.check_reporting().unwrap();
    }

    #[test]
    fn bad_values_name_their_key() {
        let error = |toml: &str| load(toml, &[]).unwrap_err().to_string();
        assert!(error("[report]\ninterval_secs = 0\n").contains("report.interval_secs"));
        assert!(error("[node]\napi_url = \"ftp://x\"\n").contains("node.api_url"));
        assert!(error("[node]\nlatitude = 1.0\n").contains("node.latitude"));
        assert!(error("[nodes]\n").contains("unknown field"));
        let empty = load("", &[]).unwrap();
        assert!(empty
            .check_reporting()
            .unwrap_err()
            .to_string()
            .contains("balancer.url"));
    }
}
