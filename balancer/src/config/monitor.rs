//! `[monitor]`: agent enrolment, the passive checks' thresholds and the active checks.

use std::time::Duration;

use conflux_shared::Secret;
use serde::Deserialize;

use super::{invalid, percent, seconds, ConfigError};

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

impl RawMonitor {
    pub(super) fn validate(self) -> Result<MonitorConfig, ConfigError> {
        let m = self;
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
        Ok(MonitorConfig {
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
        })
    }
}
