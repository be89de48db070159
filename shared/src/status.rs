//! Nagios service states, shared by the balancer's monitoring and the agent's plugin mode,
//! and the names of the balancer's checks.

use std::fmt;
use std::str::FromStr;

/// A check's state; the order is the severity order used when combining.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Ok,
    Unknown,
    Warning,
    Critical,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }

    /// The plugin exit code Nagios expects.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    /// CRITICAL at or above `critical`, WARNING at or above `warning`, else OK.
    pub fn of(value: f64, warning: Option<f64>, critical: Option<f64>) -> Status {
        if critical.is_some_and(|c| value >= c) {
            Status::Critical
        } else if warning.is_some_and(|w| value >= w) {
            Status::Warning
        } else {
            Status::Ok
        }
    }

    /// Whether a node in this state should get new meetings.
    pub fn is_problem(self) -> bool {
        matches!(self, Status::Warning | Status::Critical)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "OK" => Ok(Status::Ok),
            "WARNING" => Ok(Status::Warning),
            "CRITICAL" => Ok(Status::Critical),
            "UNKNOWN" => Ok(Status::Unknown),
            other => Err(format!("unknown status {other:?}")),
        }
    }
}

/// One of the checks the balancer keeps per node: passive ones from the agent's reports and
/// active ones it runs itself. Declared in alphabetical order (a node's checks list in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckName {
    /// Active: a signed `getMeetings` answered (the poller), or `create` could not connect.
    Api,
    /// Passive: the node's own BBB API as its agent sees it.
    Bbb,
    Cpu,
    /// Active: the BBB demo pages are not served.
    Demo,
    Disk,
    Memory,
    Network,
    /// Active: the node's configured TCP ports accept connections.
    Ports,
    /// Passive: reports keep arriving (UNKNOWN, then CRITICAL when they stop).
    Report,
    /// Active: the API index answers with the expected BBB version.
    Version,
}

impl CheckName {
    pub const ALL: [CheckName; 10] = [
        CheckName::Api,
        CheckName::Bbb,
        CheckName::Cpu,
        CheckName::Demo,
        CheckName::Disk,
        CheckName::Memory,
        CheckName::Network,
        CheckName::Ports,
        CheckName::Report,
        CheckName::Version,
    ];

    /// The name shown on pages, in metrics labels and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckName::Api => "api",
            CheckName::Bbb => "bbb",
            CheckName::Cpu => "cpu",
            CheckName::Demo => "demo",
            CheckName::Disk => "disk",
            CheckName::Memory => "memory",
            CheckName::Network => "network",
            CheckName::Ports => "ports",
            CheckName::Report => "report",
            CheckName::Version => "version",
        }
    }
}

impl fmt::Display for CheckName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CheckName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CheckName::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown check {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_codes() {
        assert_eq!(Status::of(50.0, Some(70.0), Some(90.0)), Status::Ok);
        assert_eq!(Status::of(70.0, Some(70.0), Some(90.0)), Status::Warning);
        assert_eq!(Status::of(95.0, Some(70.0), Some(90.0)), Status::Critical);
        assert_eq!(Status::of(95.0, None, None), Status::Ok);
        assert_eq!(
            [
                Status::Ok,
                Status::Warning,
                Status::Critical,
                Status::Unknown
            ]
            .map(Status::exit_code),
            [0, 1, 2, 3]
        );
        assert_eq!("WARNING".parse(), Ok(Status::Warning));
        assert!(Status::Critical > Status::Warning && Status::Warning > Status::Unknown);
    }

    #[test]
    fn check_names_round_trip_in_order() {
        for name in CheckName::ALL {
            assert_eq!(name.as_str().parse::<CheckName>(), Ok(name));
        }
        let mut sorted = CheckName::ALL.map(CheckName::as_str);
        sorted.sort_unstable();
        assert_eq!(sorted, CheckName::ALL.map(CheckName::as_str));
        assert!("load".parse::<CheckName>().is_err());
    }
}
