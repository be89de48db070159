//! The nodes' health as monitoring sees it: per node and check a state (OK, WARNING, CRITICAL,
//! UNKNOWN) with the time of its last change, the agents' last reports, and the verdict
//! placement reads. The loop that drives it and the active checks are in `monitor`.
//!
//! Passive checks come from the agents' signed reports (`cpu`, `memory`, `disk`, `network`,
//! `bbb`, and `report`, which turns UNKNOWN then CRITICAL when reports stop). Active checks
//! are the balancer's own (`api` from the poller's signed getMeetings, and `version`, `ports`,
//! `demo` in `monitor::active`). A node with any WARNING or CRITICAL check gets no new meetings
//! unless an admin forced it on; see [`Monitor::accepts`].
//!
//! States live in memory (placement reads them on every create) and are written to the store
//! in batches once a second, with the reports and the metric history.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use conflux_geoip::{GeoIp, Position};
use conflux_shared::report::{self, Report};
use conflux_shared::status::{CheckName, Status};

use crate::config::Config;
use conflux_shared::signed_url::host_of;
use conflux_store::monitor::{CheckRow, Sample, Write};
use conflux_store::{self as store, Forced, Node, NodeId, Store};

mod signed;
pub use signed::{authenticate_agent, header_reader, signed_report, ReportError, SignedReport};

/// A check whose state and output are unchanged is rewritten (its `checked_at`) this often (ms).
const REWRITE_AFTER_MS: i64 = 60_000;

/// One check's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub status: Status,
    pub output: String,
    /// When the status last changed (ms since epoch).
    pub since: i64,
    pub checked_at: i64,
    stored_at: i64,
}

/// What the balancer knows of one node's health.
#[derive(Debug, Clone, Default)]
pub struct NodeHealth {
    pub checks: BTreeMap<CheckName, Check>,
    pub report: Option<Arc<Report>>,
    /// When the latest report arrived (ms).
    pub received_at: i64,
    /// The latest accepted report's own timestamp (ms): later ones must be newer.
    pub last_signed: i64,
    /// Bytes received and sent since this balancer started, as the reports' rates add up
    /// (each rate over the time since the report before it): Prometheus counters.
    pub received_bytes: f64,
    pub sent_bytes: f64,
}

pub struct Monitor {
    health: RwLock<HashMap<NodeId, NodeHealth>>,
    writes: Mutex<Queue>,
    /// How many queued writes are committed (counted as [`Queue::queued`]).
    committed: std::sync::atomic::AtomicU64,
    /// Held while a batch is written, so batches commit in the order they were queued.
    flushing: tokio::sync::Mutex<()>,
    pub geoip: GeoIp,
    /// GeoIP positions of node hosts, resolved in the background.
    located: RwLock<HashMap<String, Option<Position>>>,
}

impl Monitor {
    pub fn new(geoip: GeoIp) -> Monitor {
        Monitor {
            health: RwLock::new(HashMap::new()),
            writes: Mutex::new(Queue::default()),
            committed: std::sync::atomic::AtomicU64::new(0),
            flushing: tokio::sync::Mutex::new(()),
            geoip,
            located: RwLock::new(HashMap::new()),
        }
    }

    /// A copy of one node's health.
    pub fn health(&self, node: NodeId) -> Option<NodeHealth> {
        self.read().get(&node).cloned()
    }

    /// Whether monitoring lets `node` take new meetings: forced on, or no WARNING or CRITICAL
    /// check (and not forced off).
    pub fn accepts(&self, node: &Node) -> bool {
        match node.forced {
            Some(Forced::Enabled) => true,
            Some(Forced::Disabled) => false,
            None => !self
                .read()
                .get(&node.id)
                .is_some_and(|h| h.checks.values().any(|c| c.status.is_problem())),
        }
    }

    /// The node's CPU use from a report that is not stale.
    pub fn cpu(&self, node: NodeId, config: &Config, now: i64) -> Option<f64> {
        let health = self.read();
        let h = health.get(&node)?;
        let report = h.report.as_ref()?;
        let fresh_ms = report.interval_secs * config.monitor.stale_unknown_intervals * 1000.0;
        ((now - h.received_at) as f64 <= fresh_ms).then_some(report.cpu_percent)
    }

    /// Sets a check's state; logs and queues a store write when it changed.
    pub fn set(&self, node: NodeId, name: CheckName, status: Status, output: String) {
        let now = store::now_ms();
        let mut health = self.health.write().unwrap_or_else(|p| p.into_inner());
        let checks = &mut health.entry(node).or_default().checks;
        let previous = checks.get(&name);
        let changed = previous.is_none_or(|c| c.status != status);
        let since = match previous {
            Some(c) if !changed => c.since,
            _ => now,
        };
        let rewrite = changed
            || previous.is_none_or(|c| c.output != output || now - c.stored_at >= REWRITE_AFTER_MS);
        if changed {
            let from = previous.map_or("none", |c| c.status.as_str());
            if status.is_problem() {
                tracing::warn!(node = node.0, check = %name, from, to = %status, %output, "Check changed.");
            } else {
                tracing::info!(node = node.0, check = %name, from, to = %status, %output, "Check changed.");
            }
        }
        let stored_at = if rewrite {
            now
        } else {
            previous.map_or(now, |c| c.stored_at)
        };
        if rewrite {
            self.queue(Write::Check(CheckRow {
                node,
                name,
                state: status,
                output: output.clone(),
                since,
                checked_at: now,
                // A check's first state is history only when it is not OK.
                changed_from: (changed && (previous.is_some() || status != Status::Ok))
                    .then(|| previous.map(|c| c.status)),
            }));
        }
        checks.insert(
            name,
            Check {
                status,
                output,
                since,
                checked_at: now,
                stored_at,
            },
        );
    }

    /// Takes in a report whose signature and freshness were checked: refused when it is not
    /// newer than the last accepted, here or (with a shared store) on any balancer.
    pub async fn accept_report(
        &self,
        store: &Store,
        config: &Config,
        signed: SignedReport,
    ) -> Result<NodeId, ReportError> {
        let SignedReport {
            node,
            timestamp,
            report,
            json,
        } = signed;
        let now = store::now_ms();
        if store.is_shared()
            && !store
                .claim_report(node, now, timestamp, json.clone())
                .await
                .map_err(|e| ReportError::Store(e.to_string()))?
        {
            return Err(ReportError::Replay);
        }
        {
            let mut health = self.health.write().unwrap_or_else(|p| p.into_inner());
            let h = health.entry(node).or_default();
            if timestamp <= h.last_signed {
                return Err(ReportError::Replay);
            }
            if let Some(before) = &h.report {
                // At most three intervals: a gap in the reports is not filled with guesses.
                let secs = ((timestamp - h.last_signed) as f64 / 1000.0)
                    .min(3.0 * before.interval_secs.max(report.interval_secs));
                h.received_bytes += report.net_in.max(0.0) * secs;
                h.sent_bytes += report.net_out.max(0.0) * secs;
            }
            h.last_signed = timestamp;
            h.received_at = now;
            h.report = Some(Arc::new(report.clone()));
        }
        self.queue(Write::Report {
            node,
            received_at: now,
            signed_at: timestamp,
            json,
            sample: sample(&report),
        });
        for (name, status, output) in passive_checks(&report, config) {
            self.set(node, name, status, output);
        }
        self.set(
            node,
            CheckName::Report,
            Status::Ok,
            "report received".into(),
        );
        Ok(node)
    }

    /// Takes in what other balancers on the same store concluded (checks and reports stored
    /// since `since`): a stored check newer than this process's state replaces it, and so
    /// does a stored report signed later than the last one seen here.
    pub fn merge(&self, stored: store::Health) {
        let mut health = self.health.write().unwrap_or_else(|p| p.into_inner());
        for row in stored.checks {
            let checks = &mut health.entry(row.node).or_default().checks;
            if checks
                .get(&row.name)
                .is_some_and(|c| c.checked_at >= row.checked_at)
            {
                continue;
            }
            checks.insert(
                row.name,
                Check {
                    status: row.state,
                    output: row.output,
                    since: row.since,
                    checked_at: row.checked_at,
                    stored_at: row.checked_at,
                },
            );
        }
        for (node, received_at, signed_at, json) in stored.reports {
            let entry = health.entry(node).or_default();
            if entry.last_signed >= signed_at {
                continue;
            }
            entry.report = serde_json::from_str(&json).ok().map(Arc::new);
            entry.received_at = received_at;
            entry.last_signed = signed_at;
        }
    }

    /// Turns the `report` check UNKNOWN, then CRITICAL, for nodes whose reports stopped, and
    /// forgets nodes that were removed.
    pub fn evaluate_ages(&self, nodes: &[Arc<Node>], config: &Config) {
        let now = store::now_ms();
        let known: std::collections::HashSet<NodeId> = nodes.iter().map(|n| n.id).collect();
        let stale: Vec<(NodeId, Status, String)> = {
            let mut health = self.health.write().unwrap_or_else(|p| p.into_inner());
            health.retain(|id, _| known.contains(id));
            health
                .iter()
                .filter_map(|(id, h)| {
                    let report = h.report.as_ref()?;
                    let age = (now - h.received_at) as f64 / 1000.0;
                    let late = age / report.interval_secs;
                    let status = if late > config.monitor.stale_critical_intervals {
                        Status::Critical
                    } else if late > config.monitor.stale_unknown_intervals {
                        Status::Unknown
                    } else {
                        return None;
                    };
                    Some((*id, status, format!("no report for {age:.0} s")))
                })
                .collect()
        };
        for (id, status, output) in stale {
            self.set(id, CheckName::Report, status, output);
        }
    }

    /// Where a node is: its configured location, else GeoIP of its host.
    pub fn position(&self, node: &Node) -> Option<Position> {
        if let (Some(lat), Some(lon)) = (node.latitude, node.longitude) {
            return Position::new(lat, lon);
        }
        let located = self.located.read().unwrap_or_else(|p| p.into_inner());
        located.get(&host_of(&node.url)).copied().flatten()
    }

    /// Resolves and geolocates the hosts of nodes without a configured location (once each).
    pub async fn locate_hosts(&self, nodes: &[Arc<Node>]) {
        if self.geoip.is_empty() {
            return;
        }
        for node in nodes.iter().filter(|n| n.latitude.is_none()) {
            let host = host_of(&node.url);
            if self
                .located
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&host)
            {
                continue;
            }
            let ip = match host.parse::<std::net::IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => tokio::net::lookup_host((host.as_str(), 0))
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                    .map(|a| a.ip()),
            };
            let position = ip.and_then(|ip| self.geoip.locate(ip)).map(|p| p.position);
            tracing::info!(node = %node.name, %host, ?position, "Node located by GeoIP.");
            self.located
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(host, position);
        }
    }

    fn queue(&self, write: Write) {
        let mut queue = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        queue.writes.push(write);
        queue.queued += 1;
    }

    /// Writes the queued changes in one transaction (the background flush, every second).
    pub async fn flush(&self, store: &Store) {
        if let Err(e) = self.write_batch(store).await {
            tracing::error!(error = %e, "Could not store monitoring data; will retry.");
        }
    }

    /// Returns once everything queued so far is committed: a report is acknowledged only when
    /// its replay window (the signed timestamp) would survive a crash. Concurrent callers share
    /// one transaction.
    pub async fn persist(&self, store: &Store) -> Result<(), store::StoreError> {
        use std::sync::atomic::Ordering;
        let wanted = self.writes.lock().unwrap_or_else(|p| p.into_inner()).queued;
        while self.committed.load(Ordering::Acquire) < wanted {
            self.write_batch(store).await?;
        }
        Ok(())
    }

    /// Takes the queue and commits it, in queue order; on failure the batch goes back to the
    /// front of the queue (up to a bound) for the next try.
    async fn write_batch(&self, store: &Store) -> Result<(), store::StoreError> {
        use std::sync::atomic::Ordering;
        let _turn = self.flushing.lock().await;
        let (batch, upto) = {
            let mut queue = self.writes.lock().unwrap_or_else(|p| p.into_inner());
            (std::mem::take(&mut queue.writes), queue.queued)
        };
        if !batch.is_empty() {
            let batch = Arc::new(batch);
            let writing = batch.clone();
            let written = store.write_health(writing.to_vec()).await;
            if let Err(e) = written {
                let mut queue = self.writes.lock().unwrap_or_else(|p| p.into_inner());
                if queue.writes.len() + batch.len() <= MAX_QUEUED {
                    let later = std::mem::take(&mut queue.writes);
                    queue.writes = Arc::unwrap_or_clone(batch);
                    queue.writes.extend(later);
                } else {
                    tracing::error!(
                        writes = batch.len(),
                        "Monitoring writes dropped: the store keeps failing."
                    );
                    self.committed.store(upto, Ordering::Release);
                }
                return Err(e);
            }
        }
        self.committed.store(upto, Ordering::Release);
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<NodeId, NodeHealth>> {
        self.health.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// Monitoring writes waiting for the store, and how many were ever queued.
#[derive(Default)]
struct Queue {
    writes: Vec<Write>,
    queued: u64,
}

/// Writes kept for a retry while the store fails; beyond, they are dropped (and logged).
const MAX_QUEUED: usize = 100_000;

/// The passive checks a report yields: (name, status, output).
pub fn passive_checks(r: &Report, config: &Config) -> Vec<(CheckName, Status, String)> {
    let m = &config.monitor;
    let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
    let mut checks = vec![
        (
            CheckName::Cpu,
            Status::of(r.cpu_percent, Some(m.cpu.warning), Some(m.cpu.critical)),
            format!(
                "CPU {:.0}% used, load {:.2} {:.2} {:.2}",
                r.cpu_percent, r.load[0], r.load[1], r.load[2]
            ),
        ),
        (
            CheckName::Memory,
            Status::of(
                r.memory_percent(),
                Some(m.memory.warning),
                Some(m.memory.critical),
            ),
            format!(
                "memory {:.0}% used ({:.1} of {:.1} GiB)",
                r.memory_percent(),
                gib(r.memory_used),
                gib(r.memory_total)
            ),
        ),
        match r.fullest_disk() {
            Some(d) => (
                CheckName::Disk,
                Status::of(d.percent(), Some(m.disk.warning), Some(m.disk.critical)),
                format!("disk {} {:.0}% used", d.mount, d.percent()),
            ),
            None => (CheckName::Disk, Status::Unknown, "no disk reported".into()),
        },
        (
            CheckName::Network,
            Status::Ok,
            format!(
                "in {:.2} Mbit/s, out {:.2} Mbit/s",
                r.net_in * 8.0 / 1e6,
                r.net_out * 8.0 / 1e6
            ),
        ),
    ];
    checks.push(match &r.bbb {
        Ok(b) => (
            CheckName::Bbb,
            Status::Ok,
            format!(
                "{} meetings, {} users, {} with audio, {} listening, {} with video (BBB API {})",
                b.meetings, b.users, b.voice, b.listeners, b.video, b.version
            ),
        ),
        Err(e) => (CheckName::Bbb, Status::Critical, format!("BBB API: {e}")),
    });
    checks
}

fn sample(r: &Report) -> Sample {
    let counts = r.bbb.as_ref().ok();
    let count = |f: fn(&report::BbbCounts) -> u32| counts.map_or(0.0, |c| f64::from(f(c)));
    Sample {
        cpu: r.cpu_percent,
        memory: r.memory_percent(),
        disk: r.fullest_disk().map_or(0.0, report::Disk::percent),
        net_in: r.net_in,
        net_out: r.net_out,
        meetings: count(|c| c.meetings),
        users: count(|c| c.users),
        voice: count(|c| c.voice),
        video: count(|c| c.video),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conflux_shared::report::{BbbCounts, Disk};

    fn config() -> Config {
        Config::validate(crate::config::RawConfig::default()).unwrap()
    }

    fn report(cpu: f64) -> Report {
        Report {
            cpu_percent: cpu,
            load: [0.1, 0.2, 0.3],
            memory_used: 1 << 30,
            memory_total: 4 << 30,
            disks: vec![Disk {
                mount: "/".into(),
                used: 50,
                total: 100,
            }],
            net_in: 125_000.0,
            net_out: 0.0,
            bbb: Ok(BbbCounts {
                meetings: 2,
                users: 7,
                ..BbbCounts::default()
            }),
            interval_secs: 10.0,
        }
    }

    #[test]
    fn passive_checks_follow_thresholds() {
        let config = config();
        let states = |r: &Report| -> Vec<(CheckName, Status)> {
            passive_checks(r, &config)
                .into_iter()
                .map(|(n, s, _)| (n, s))
                .collect()
        };
        assert!(states(&report(10.0)).iter().all(|(_, s)| *s == Status::Ok));
        assert!(states(&report(90.0)).contains(&(CheckName::Cpu, Status::Warning)));
        assert!(states(&report(99.0)).contains(&(CheckName::Cpu, Status::Critical)));
        let mut broken = report(10.0);
        broken.bbb = Err("connection refused".into());
        broken.disks.clear();
        let s = states(&broken);
        assert!(s.contains(&(CheckName::Bbb, Status::Critical)));
        assert!(s.contains(&(CheckName::Disk, Status::Unknown)));
        let network = &passive_checks(&report(1.0), &config)[3].2;
        assert_eq!(network, "in 1.00 Mbit/s, out 0.00 Mbit/s");
    }

    #[test]
    fn a_state_change_keeps_its_time_until_the_next_change() {
        let monitor = Monitor::new(GeoIp::default());
        let id = NodeId(1);
        monitor.set(id, CheckName::Cpu, Status::Ok, "a".into());
        let since = monitor.health(id).unwrap().checks[&CheckName::Cpu].since;
        std::thread::sleep(std::time::Duration::from_millis(5));
        monitor.set(id, CheckName::Cpu, Status::Ok, "a".into());
        assert_eq!(
            monitor.health(id).unwrap().checks[&CheckName::Cpu].since,
            since
        );
        monitor.set(id, CheckName::Cpu, Status::Critical, "c".into());
        assert!(monitor.health(id).unwrap().checks[&CheckName::Cpu].since > since);
        // The first set and the change are queued for the store; the unchanged one is not.
        assert_eq!(monitor.writes.lock().unwrap().writes.len(), 2);
    }
}
