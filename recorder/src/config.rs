//! The recorder's configuration: one TOML file, overridden by `CONFLUX_<SECTION>__<KEY>`
//! environment variables, validated with errors that name the key.

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
    recorder: RawRecorder,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawBalancer {
    url: String,
    /// The integration's secret (its primary one): signs the calls and checks playback tokens.
    secret: String,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawRecorder {
    listen: String,
    public_url: String,
    data_dir: PathBuf,
    private_key: Option<PathBuf>,
    poll_interval_secs: f64,
    max_entry_mb: u64,
    max_total_mb: u64,
}

impl Default for RawRecorder {
    fn default() -> Self {
        RawRecorder {
            listen: "127.0.0.1:8090".into(),
            public_url: String::new(),
            data_dir: PathBuf::from("/var/lib/conflux-recorder"),
            private_key: None,
            poll_interval_secs: 10.0,
            max_entry_mb: 8 * 1024,
            max_total_mb: 64 * 1024,
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub balancer_url: String,
    pub secret: String,
    pub listen: String,
    /// How browsers reach this recorder (playback links). Left out of the file, it is empty
    /// here and `serve` sets it to `http://` and the address it listens on.
    pub public_url: String,
    pub data_dir: PathBuf,
    pub private_key: PathBuf,
    pub poll_interval: Duration,
    /// Unpacking refuses an entry bigger than this, or a recording bigger than `max_total`.
    pub max_entry: u64,
    pub max_total: u64,
}

impl Config {
    /// Reads `path` if it exists (the default file may be absent: env can carry everything),
    /// applies `CONFLUX_<SECTION>__<KEY>` from `env` (every key; unknown ones refused) and
    /// validates.
    pub fn load(path: &Path, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let raw: RawConfig = conflux_shared::config::load(conflux_shared::config::Sources {
            file: Some(path),
            required: false,
            env,
            aliases: &[],
        })?;
        Config::validate(raw)
    }

    fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
        let invalid = |key, problem: String| ConfigError::Invalid { key, problem };
        let url = |key, v: &str| {
            let v = v.trim().trim_end_matches('/');
            if v.starts_with("http://") || v.starts_with("https://") {
                Ok(v.to_owned())
            } else {
                Err(invalid(key, format!("{v:?} is not an http(s) URL")))
            }
        };
        if raw.balancer.secret.trim().is_empty() {
            return Err(invalid(
                "balancer.secret",
                "the integration's secret must be set".into(),
            ));
        }
        let poll = Duration::try_from_secs_f64(raw.recorder.poll_interval_secs)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                invalid(
                    "recorder.poll_interval_secs",
                    format!(
                        "{} is not a positive number of seconds",
                        raw.recorder.poll_interval_secs
                    ),
                )
            })?;
        Ok(Config {
            balancer_url: url("balancer.url", &raw.balancer.url)?,
            secret: raw.balancer.secret.trim().to_owned(),
            listen: raw.recorder.listen,
            public_url: match raw.recorder.public_url.trim() {
                "" => String::new(),
                set => url("recorder.public_url", set)?,
            },
            private_key: raw
                .recorder
                .private_key
                .unwrap_or_else(|| raw.recorder.data_dir.join("recorder.key.pem")),
            data_dir: raw.recorder.data_dir,
            poll_interval: poll,
            max_entry: raw.recorder.max_entry_mb.saturating_mul(1 << 20),
            max_total: raw.recorder.max_total_mb.saturating_mul(1 << 20),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_and_errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recorder.toml");
        std::fs::write(
            &path,
            "[balancer]\nurl = \"http://lb\"\nsecret = \"s\"\n[recorder]\npublic_url = \"http://rec/\"\n",
        )
        .unwrap();
        let env = [(
            "CONFLUX_RECORDER__POLL_INTERVAL_SECS".to_owned(),
            "2".to_owned(),
        )];
        let config = Config::load(&path, &env).unwrap();
        assert_eq!(config.poll_interval, Duration::from_secs(2));
        assert_eq!(config.public_url, "http://rec");
        let none = [];
        std::fs::write(&path, "[balancer]\nurl = \"http://lb\"\n").unwrap();
        let e = Config::load(&path, &none).unwrap_err().to_string();
        assert!(e.contains("balancer.secret"), "{e}");
        std::fs::write(&path, "[balancer]\nurl = \"lb\"\nsecret = \"s\"\n").unwrap();
        let e = Config::load(&path, &none).unwrap_err().to_string();
        assert!(e.contains("balancer.url"), "{e}");
    }
}
