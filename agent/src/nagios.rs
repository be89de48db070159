//! Nagios plugin mode: one measurement, one status line in the plugin format
//! (`SERVICE STATUS - text | label=value[UOM];warn;crit;min;max ...`) and the exit code Nagios
//! expects (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), so Nagios or Icinga can run the agent
//! as a check command unchanged. Thresholds are the guidelines' ranges ([`Range`]); bad
//! arguments are UNKNOWN (3), as the guidelines want (main.rs).

use std::time::Duration;

use conflux_shared::status::Status;

use crate::cli::CheckKind;
use crate::collect::{bbb, Collector, Machine};
use crate::config::Config;
use crate::threshold::Range;

/// A plugin result.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginOutput {
    pub status: Status,
    pub line: String,
}

/// Measures `what` and judges it against the thresholds.
pub async fn check(
    config: &Config,
    what: CheckKind,
    warning: Option<Range>,
    critical: Option<Range>,
    sample: Duration,
) -> PluginOutput {
    if what == CheckKind::Bbb {
        let client = match reqwest::Client::builder().timeout(config.timeout).build() {
            Ok(c) => c,
            Err(e) => return unknown("BBB", &e.to_string()),
        };
        if config.secret.is_empty() || config.local_api_url.is_empty() {
            return unknown("BBB", "node.api_url and node.secret must be configured");
        }
        return match bbb::counts(&client, &config.local_api_url, &config.secret).await {
            Ok(c) => judge(
                "BBB",
                f64::from(c.users),
                warning,
                critical,
                format!(
                    "{} meetings, {} users, {} with audio, {} listening, {} with video, API {}",
                    c.meetings, c.users, c.voice, c.listeners, c.video, c.version
                ),
                format!(
                    "meetings={} users={};{};{};0 voice={} listeners={} video={}",
                    c.meetings,
                    c.users,
                    threshold(warning, 1.0),
                    threshold(critical, 1.0),
                    c.voice,
                    c.listeners,
                    c.video
                ),
            ),
            Err(e) => PluginOutput {
                status: Status::Critical,
                line: format!("BBB CRITICAL - {e}"),
            },
        };
    }
    let mut collector = match Collector::new(&config.disks) {
        Ok(c) => c,
        Err(e) => return unknown("AGENT", &e.to_string()),
    };
    tokio::time::sleep(sample.max(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL)).await;
    judge_machine(&collector.sample(), what, warning, critical)
}

/// The verdict for a machine measurement (pure, for tests).
pub fn judge_machine(
    m: &Machine,
    what: CheckKind,
    warning: Option<Range>,
    critical: Option<Range>,
) -> PluginOutput {
    let (w, c) = (threshold(warning, 1.0), threshold(critical, 1.0));
    match what {
        CheckKind::Cpu => judge(
            "CPU",
            m.cpu_percent,
            warning,
            critical,
            format!(
                "{:.1}% used, load {:.2} {:.2} {:.2}",
                m.cpu_percent, m.load[0], m.load[1], m.load[2]
            ),
            format!(
                "cpu={:.1}%;{w};{c};0;100 load1={:.2} load5={:.2} load15={:.2}",
                m.cpu_percent, m.load[0], m.load[1], m.load[2]
            ),
        ),
        CheckKind::Memory => {
            let percent = percent(m.memory_used, m.memory_total);
            judge(
                "MEMORY",
                percent,
                warning,
                critical,
                format!(
                    "{percent:.1}% used ({} of {} MiB)",
                    m.memory_used >> 20,
                    m.memory_total >> 20
                ),
                format!(
                    "memory={percent:.1}%;{w};{c};0;100 used={}B;;;0;{}",
                    m.memory_used, m.memory_total
                ),
            )
        }
        CheckKind::Disk => {
            let Some(fullest) = m
                .disks
                .iter()
                .max_by(|a, b| a.percent().total_cmp(&b.percent()))
            else {
                return unknown("DISK", "no disk matches report.disks");
            };
            let text = m
                .disks
                .iter()
                .map(|d| format!("{} {:.1}%", d.mount, d.percent()))
                .collect::<Vec<_>>()
                .join(", ");
            let perf = m
                .disks
                .iter()
                .map(|d| format!("'{}'={:.1}%;{w};{c};0;100", d.mount, d.percent()))
                .collect::<Vec<_>>()
                .join(" ");
            judge(
                "DISK",
                fullest.percent(),
                warning,
                critical,
                format!("used: {text}"),
                perf,
            )
        }
        CheckKind::Network => {
            // Thresholds in Mbit/s; perfdata in bytes a second (its unit B), the thresholds
            // stated in bytes too.
            let (rx, tx) = (m.net_in * 8.0 / 1e6, m.net_out * 8.0 / 1e6);
            let (w, c) = (
                threshold(warning, BYTES_PER_MBIT),
                threshold(critical, BYTES_PER_MBIT),
            );
            judge(
                "NETWORK",
                rx.max(tx),
                warning,
                critical,
                format!("in {rx:.2} Mbit/s, out {tx:.2} Mbit/s"),
                format!(
                    "in={:.0}B;{w};{c};0 out={:.0}B;{w};{c};0",
                    m.net_in, m.net_out
                ),
            )
        }
        CheckKind::Bbb => unknown("BBB", "not a machine measurement"),
    }
}

fn judge(
    service: &str,
    value: f64,
    warning: Option<Range>,
    critical: Option<Range>,
    text: String,
    perfdata: String,
) -> PluginOutput {
    let status = if critical.is_some_and(|c| c.alerts(value)) {
        Status::Critical
    } else if warning.is_some_and(|w| w.alerts(value)) {
        Status::Warning
    } else {
        Status::Ok
    };
    PluginOutput {
        status,
        line: format!("{service} {status} - {text} | {perfdata}"),
    }
}

fn unknown(service: &str, why: &str) -> PluginOutput {
    PluginOutput {
        status: Status::Unknown,
        line: format!("{service} UNKNOWN - {why}"),
    }
}

/// Bytes a second in one Mbit/s.
const BYTES_PER_MBIT: f64 = 125_000.0;

/// A threshold for perfdata, its ends times `factor` (empty when not given).
fn threshold(t: Option<Range>, factor: f64) -> String {
    t.map(|r| r.scaled(factor).to_string()).unwrap_or_default()
}

fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conflux_shared::report::Disk;

    fn machine() -> Machine {
        Machine {
            cpu_percent: 42.0,
            load: [1.0, 0.5, 0.25],
            memory_used: 3 << 30,
            memory_total: 4 << 30,
            disks: vec![
                Disk {
                    mount: "/".into(),
                    used: 50,
                    total: 100,
                },
                Disk {
                    mount: "/var".into(),
                    used: 91,
                    total: 100,
                },
            ],
            net_in: 1_250_000.0,
            net_out: 125_000.0,
        }
    }

    fn check(what: CheckKind, w: Option<&str>, c: Option<&str>, status: Status, line: &str) {
        let range = |r: Option<&str>| r.map(|r| r.parse::<Range>().unwrap());
        let out = judge_machine(&machine(), what, range(w), range(c));
        assert_eq!((out.status, out.line.as_str()), (status, line));
    }

    #[test]
    fn plugin_lines_and_states() {
        check(
            CheckKind::Cpu,
            Some("70"),
            Some("90"),
            Status::Ok,
            "CPU OK - 42.0% used, load 1.00 0.50 0.25 | cpu=42.0%;70;90;0;100 load1=1.00 load5=0.50 load15=0.25",
        );
        check(
            CheckKind::Memory,
            Some("70"),
            Some("90"),
            Status::Warning,
            "MEMORY WARNING - 75.0% used (3072 of 4096 MiB) | memory=75.0%;70;90;0;100 used=3221225472B;;;0;4294967296",
        );
        check(
            CheckKind::Disk,
            Some("80"),
            Some("90"),
            Status::Critical,
            "DISK CRITICAL - used: / 50.0%, /var 91.0% | '/'=50.0%;80;90;0;100 '/var'=91.0%;80;90;0;100",
        );
        check(
            CheckKind::Network,
            None,
            None,
            Status::Ok,
            "NETWORK OK - in 10.00 Mbit/s, out 1.00 Mbit/s | in=1250000B;;;0 out=125000B;;;0",
        );
        check(
            CheckKind::Network,
            Some("5"),
            Some("100"),
            Status::Warning,
            "NETWORK WARNING - in 10.00 Mbit/s, out 1.00 Mbit/s | in=1250000B;625000;12500000;0 out=125000B;625000;12500000;0",
        );
        // A floor: CPU under 50% is a WARNING (too idle to be real, say).
        check(
            CheckKind::Cpu,
            Some("50:"),
            None,
            Status::Warning,
            "CPU WARNING - 42.0% used, load 1.00 0.50 0.25 | cpu=42.0%;50:;;0;100 load1=1.00 load5=0.50 load15=0.25",
        );
        let mut empty = machine();
        empty.disks.clear();
        assert_eq!(
            judge_machine(&empty, CheckKind::Disk, None, None).status,
            Status::Unknown
        );
    }
}
