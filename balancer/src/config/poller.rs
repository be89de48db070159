//! `[poller]`: how often and how hard the nodes are polled, and when they count as online.

use std::time::Duration;

use serde::Deserialize;

use super::{invalid, seconds, ConfigError};

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

impl RawPoller {
    pub(super) fn validate(self) -> Result<PollerConfig, ConfigError> {
        if self.concurrency == 0 {
            return Err(invalid("poller.concurrency", "must be at least 1".into()));
        }
        if self.healthy_threshold == 0 || self.unhealthy_threshold == 0 {
            return Err(invalid(
                "poller.healthy_threshold",
                "thresholds must be at least 1".into(),
            ));
        }
        let interval = seconds("poller.interval_secs", self.interval_secs)?;
        if interval < Duration::from_millis(100) {
            return Err(invalid(
                "poller.interval_secs",
                "must be at least 0.1".into(),
            ));
        }
        Ok(PollerConfig {
            interval,
            healthy_threshold: self.healthy_threshold,
            unhealthy_threshold: self.unhealthy_threshold,
            connect_timeout: seconds("poller.connect_timeout_secs", self.connect_timeout_secs)?,
            response_timeout: seconds("poller.response_timeout_secs", self.response_timeout_secs)?,
            concurrency: self.concurrency,
            recordings_every: self.recordings_every.max(1),
        })
    }
}
