//! Monitoring in the store: check states, each node's latest report and the metric history.
//!
//! History is RRD-like: every report is written at three resolutions (raw, 5-minute and
//! hourly rows); a bucket row keeps the running mean of the reports that fell into it, so
//! no downsampling pass has to re-read raw rows. [`prune`] drops raw rows after a day,
//! 5-minute rows after 31 days and hourly rows after 5 years, which bounds the file:
//! about 8,640 + 8,928 + 43,800 rows per node at a 10 s report interval.

use crate::sql::{params, Db, Row};
use conflux_shared::status::{CheckName, Status};

mod changes;

use changes::check_changes;
pub use changes::CheckChange;

use super::{NodeId, Store, StoreError};

/// (resolution in seconds, retention in seconds); 0 = one row per report.
pub const RESOLUTIONS: [(i64, i64); 3] =
    [(0, 86_400), (300, 31 * 86_400), (3_600, 5 * 365 * 86_400)];

/// One check's stored state.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRow {
    pub node: NodeId,
    pub name: CheckName,
    pub state: Status,
    pub output: String,
    pub since: i64,
    pub checked_at: i64,
    /// The state changed (from this one, `None` for a new check): kept in the alert history.
    pub changed_from: Option<Option<Status>>,
}

/// The metrics of one report (or the mean of a bucket).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    pub cpu: f64,
    pub memory: f64,
    pub disk: f64,
    pub net_in: f64,
    pub net_out: f64,
    pub meetings: f64,
    pub users: f64,
    pub voice: f64,
    pub video: f64,
}

/// A write the monitor batches.
#[derive(Debug, Clone)]
pub enum Write {
    Check(CheckRow),
    Report {
        node: NodeId,
        received_at: i64,
        signed_at: i64,
        json: String,
        sample: Sample,
    },
}

/// Applies a batch (the caller holds a transaction).
pub(crate) fn apply(tx: &Db<'_>, batch: &[Write]) -> Result<(), StoreError> {
    for write in batch {
        match write {
            Write::Check(c) => {
                tx.execute(
                    "INSERT INTO node_checks (node_id, name, state, output, since, checked_at)
                     SELECT CAST(?1 AS BIGINT), ?2, ?3, ?4, CAST(?5 AS BIGINT), CAST(?6 AS BIGINT)
                     WHERE EXISTS (SELECT 1 FROM nodes WHERE id = ?1)
                     ON CONFLICT (node_id, name) DO UPDATE SET state = excluded.state,
                       output = excluded.output, since = excluded.since, checked_at = excluded.checked_at",
                    params![
                    c.node.0,
                    c.name.as_str(),
                    c.state.as_str(),
                    c.output,
                    c.since,
                    c.checked_at
                    ],
                )?;
                if let Some(previous) = c.changed_from {
                    tx.execute(
                        "INSERT INTO check_changes (node_id, name, state, previous, output, at)
                         SELECT CAST(?1 AS BIGINT), ?2, ?3, ?4, ?5, CAST(?6 AS BIGINT)
                         WHERE EXISTS (SELECT 1 FROM nodes WHERE id = ?1)",
                        params![
                            c.node.0,
                            c.name.as_str(),
                            c.state.as_str(),
                            previous.map(Status::as_str),
                            c.output,
                            c.since
                        ],
                    )?;
                }
            }
            Write::Report {
                node,
                received_at,
                signed_at,
                json,
                sample,
            } => {
                // Claimed already when the store is shared: the same timestamp is taken.
                let newer = Newer::OrSame;
                if store_report(tx, *node, *received_at, *signed_at, json, newer)? {
                    add_sample(tx, *node, received_at / 1000, sample)?;
                }
            }
        }
    }
    Ok(())
}

/// Folds a sample into each resolution's bucket as a running mean.
fn add_sample(conn: &Db<'_>, node: NodeId, at: i64, s: &Sample) -> Result<(), StoreError> {
    const ADD: &str =
        "INSERT INTO history (node_id, resolution, ts, n, cpu, memory, disk, net_in, net_out,
                              meetings, users, voice, video)
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (node_id, resolution, ts) DO UPDATE SET
           n = history.n + 1,
           cpu = history.cpu + (excluded.cpu - history.cpu) / (history.n + 1),
           memory = history.memory + (excluded.memory - history.memory) / (history.n + 1),
           disk = history.disk + (excluded.disk - history.disk) / (history.n + 1),
           net_in = history.net_in + (excluded.net_in - history.net_in) / (history.n + 1),
           net_out = history.net_out + (excluded.net_out - history.net_out) / (history.n + 1),
           meetings = history.meetings + (excluded.meetings - history.meetings) / (history.n + 1),
           users = history.users + (excluded.users - history.users) / (history.n + 1),
           voice = history.voice + (excluded.voice - history.voice) / (history.n + 1),
           video = history.video + (excluded.video - history.video) / (history.n + 1)";
    for (resolution, _) in RESOLUTIONS {
        let ts = if resolution == 0 {
            at
        } else {
            at - at.rem_euclid(resolution)
        };
        conn.execute(
            ADD,
            params![
                node.0, resolution, ts, s.cpu, s.memory, s.disk, s.net_in, s.net_out, s.meetings,
                s.users, s.voice, s.video
            ],
        )?;
    }
    Ok(())
}

/// Drops history past each resolution's retention; returns the rows removed.
pub(crate) fn prune(conn: &Db<'_>, now_secs: i64) -> Result<usize, StoreError> {
    let mut removed = 0;
    for (resolution, keep) in RESOLUTIONS {
        removed += conn.execute(
            "DELETE FROM history WHERE resolution = ?1 AND ts < ?2",
            params![resolution, now_secs - keep],
        )?;
    }
    removed += changes::prune(conn, now_secs)?;
    Ok(removed)
}

/// A node's history at `resolution` from `since` (s since epoch), oldest first.
pub(crate) fn history(
    conn: &Db<'_>,
    node: NodeId,
    resolution: i64,
    since: i64,
) -> Result<Vec<(i64, Sample)>, StoreError> {
    let rows = conn.query(
        "SELECT ts, cpu, memory, disk, net_in, net_out, meetings, users, voice, video
         FROM history WHERE node_id = ?1 AND resolution = ?2 AND ts >= ?3 ORDER BY ts",
        params![node.0, resolution, since],
        sample_row,
    )?;
    Ok(rows)
}

/// The whole network's history at `resolution` (> 0) from `since`: CPU, memory and disk are
/// the nodes' mean, the rest their sum.
pub(crate) fn network_history(
    conn: &Db<'_>,
    resolution: i64,
    since: i64,
) -> Result<Vec<(i64, Sample)>, StoreError> {
    let rows = conn.query(
        "SELECT ts, avg(cpu), avg(memory), avg(disk), sum(net_in), sum(net_out), sum(meetings),
                sum(users), sum(voice), sum(video)
         FROM history WHERE resolution = ?1 AND ts >= ?2 GROUP BY ts ORDER BY ts",
        params![resolution, since],
        sample_row,
    )?;
    Ok(rows)
}

/// `(ts, Sample)` from a row of `ts` and the nine metrics, in `Sample`'s order.
fn sample_row(r: &Row<'_>) -> Result<(i64, Sample), StoreError> {
    Ok((
        r.get(0)?,
        Sample {
            cpu: r.get(1)?,
            memory: r.get(2)?,
            disk: r.get(3)?,
            net_in: r.get(4)?,
            net_out: r.get(5)?,
            meetings: r.get(6)?,
            users: r.get(7)?,
            voice: r.get(8)?,
            video: r.get(9)?,
        },
    ))
}

/// Every stored check. A row this version does not know (a check a newer balancer wrote,
/// after a downgrade) is left out and logged: monitoring writes it again.
pub(crate) fn checks(conn: &Db<'_>) -> Result<Vec<CheckRow>, StoreError> {
    checks_since(conn, i64::MIN)
}

/// The stored checks written at or after `since` (ms), as [`checks`].
pub(crate) fn checks_since(conn: &Db<'_>, since: i64) -> Result<Vec<CheckRow>, StoreError> {
    let rows = conn.query("SELECT node_id, name, state, output, since, checked_at FROM node_checks WHERE checked_at >= ?1 ORDER BY node_id, name", params![since], |r| {
        Ok((
            NodeId(r.get(0)?),
            r.get::<String>(1)?,
            r.get::<String>(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })?;
    let mut checks = Vec::new();
    for row in rows {
        let (node, name, state, output, since, checked_at) = row;
        match (name.parse(), state.parse()) {
            (Ok(name), Ok(state)) => checks.push(CheckRow {
                node,
                name,
                state,
                output,
                since,
                checked_at,
                changed_from: None,
            }),
            _ => {
                tracing::warn!(node = node.0, %name, %state, "Stored check not understood; left out.")
            }
        }
    }
    Ok(checks)
}

/// Each node's latest report: (node, received_at, signed_at, JSON).
pub(crate) fn reports(conn: &Db<'_>) -> Result<Vec<(NodeId, i64, i64, String)>, StoreError> {
    reports_since(conn, i64::MIN)
}

/// The latest reports received at or after `since` (ms), as [`reports`].
pub(crate) fn reports_since(
    conn: &Db<'_>,
    since: i64,
) -> Result<Vec<(NodeId, i64, i64, String)>, StoreError> {
    let rows = conn.query(
        "SELECT node_id, received_at, signed_at, report FROM node_reports WHERE received_at >= ?1",
        params![since],
        |r| Ok((NodeId(r.get(0)?), r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    Ok(rows)
}

/// Which stored report a new one replaces.
#[derive(Clone, Copy)]
enum Newer {
    /// One signed earlier.
    Strictly,
    /// One signed earlier or at the same time.
    OrSame,
}

/// Stores `json` as the node's latest report if its signed timestamp is newer than the stored
/// one's; whether it was (false also when the node is gone).
fn store_report(
    conn: &Db<'_>,
    node: NodeId,
    received_at: i64,
    signed_at: i64,
    json: &str,
    newer: Newer,
) -> Result<bool, StoreError> {
    let replaces = match newer {
        Newer::Strictly => "<",
        Newer::OrSame => "<=",
    };
    let stored = conn.execute(
        &format!(
            "INSERT INTO node_reports (node_id, received_at, signed_at, report)
             SELECT CAST(?1 AS BIGINT), CAST(?2 AS BIGINT), CAST(?3 AS BIGINT), ?4
             WHERE EXISTS (SELECT 1 FROM nodes WHERE id = ?1)
             ON CONFLICT (node_id) DO UPDATE SET received_at = excluded.received_at,
               signed_at = excluded.signed_at, report = excluded.report
             WHERE node_reports.signed_at {replaces} excluded.signed_at"
        ),
        params![node.0, received_at, signed_at, json],
    )?;
    Ok(stored == 1)
}

/// [`store_report`] for a report not seen before: refused when one signed at the same time or
/// later is stored.
pub(crate) fn claim_report(
    conn: &Db<'_>,
    node: NodeId,
    received_at: i64,
    signed_at: i64,
    json: &str,
) -> Result<bool, StoreError> {
    store_report(conn, node, received_at, signed_at, json, Newer::Strictly)
}

impl Store {
    /// Takes a report's signed timestamp as the node's latest, in one statement, so that a
    /// report replayed to another balancer on the same database is refused there too: false
    /// when a report signed at the same time or later is stored (or the node is gone).
    pub async fn claim_report(
        &self,
        node: NodeId,
        received_at: i64,
        signed_at: i64,
        json: String,
    ) -> Result<bool, StoreError> {
        self.write(move |c| claim_report(c, node, received_at, signed_at, &json))
            .await
    }

    /// The checks and reports written at or after `since` (ms): what other balancers on the
    /// same database concluded lately.
    pub async fn health_since(&self, since: i64) -> Result<crate::Health, StoreError> {
        self.run(move |c| {
            Ok(crate::Health {
                checks: checks_since(c, since)?,
                reports: reports_since(c, since)?,
            })
        })
        .await
    }

    /// Writes a batch of check states and reports in one transaction.
    pub async fn write_health(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        self.write_background(move |c| apply(c, &batch)).await
    }

    /// Drops history past each resolution's retention; returns the rows removed.
    /// The latest `limit` check changes (the alert history), newest first.
    pub async fn check_changes(
        &self,
        node: Option<NodeId>,
        limit: usize,
    ) -> Result<Vec<CheckChange>, StoreError> {
        self.read(move |c| check_changes(c, node, limit)).await
    }

    pub async fn prune_history(&self, now_secs: i64) -> Result<usize, StoreError> {
        self.run(move |c| prune(c, now_secs)).await
    }

    /// A node's history at `resolution` from `since` (s since epoch), oldest first.
    pub async fn history(
        &self,
        node: NodeId,
        resolution: i64,
        since: i64,
    ) -> Result<Vec<(i64, Sample)>, StoreError> {
        self.read(move |c| history(c, node, resolution, since))
            .await
    }

    /// The whole network's history (see [`network_history`]).
    pub async fn network_history(
        &self,
        resolution: i64,
        since: i64,
    ) -> Result<Vec<(i64, Sample)>, StoreError> {
        self.read(move |c| network_history(c, resolution, since))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewNode, NodeState, Store};
    use conflux_shared::Secret;

    /// A store with one node, on each backend.
    fn stores_with_node() -> Vec<(Store, NodeId)> {
        crate::testing::stores()
            .into_iter()
            .map(|store| {
                let node = store
                    .blocking(|c| {
                        crate::nodes::insert(
                            c,
                            &NewNode {
                                given_url: None,
                                name: "bbb1".into(),
                                url: "http://bbb1/bigbluebutton/api".into(),
                                secret: Secret("s".into()),
                                load_multiplier: 1.0,
                                tags: vec![],
                                state: NodeState::Enabled,
                            },
                        )
                    })
                    .unwrap();
                (store, node.id)
            })
            .collect()
    }

    fn report(node: NodeId, at_secs: i64, cpu: f64) -> Write {
        Write::Report {
            node,
            received_at: at_secs * 1000,
            signed_at: at_secs * 1000,
            json: "{}".into(),
            sample: Sample {
                cpu,
                ..Sample::default()
            },
        }
    }

    #[test]
    fn buckets_keep_running_means_and_pruning_bounds_them() {
        for (store, node) in stores_with_node() {
            let base = 1_700_000_000 - 1_700_000_000 % 3600;
            let batch: Vec<Write> = (0..6)
                .map(|i| report(node, base + i * 10, i as f64 * 10.0))
                .collect();
            store.blocking(|c| apply(c, &batch)).unwrap();
            let raw = store.blocking(|c| history(c, node, 0, 0)).unwrap();
            assert_eq!(raw.len(), 6);
            let five = store.blocking(|c| history(c, node, 300, 0)).unwrap();
            assert_eq!(five.len(), 1);
            assert!(
                (five[0].1.cpu - 25.0).abs() < 1e-9,
                "mean of 0..50: {five:?}"
            );
            let hourly = store.blocking(|c| history(c, node, 3600, 0)).unwrap();
            assert_eq!(hourly[0].0, base);
            // A day later the raw rows go, the buckets stay.
            let removed = store.blocking(|c| prune(c, base + 86_400 + 100)).unwrap();
            assert_eq!(removed, 6);
            assert!(store
                .blocking(|c| history(c, node, 0, 0))
                .unwrap()
                .is_empty());
            assert_eq!(
                store.blocking(|c| history(c, node, 300, 0)).unwrap().len(),
                1
            );
        }
    }

    #[test]
    fn a_report_is_claimed_once_and_only_when_newer() {
        for (store, node) in stores_with_node() {
            let claim = |signed| store.blocking(|c| claim_report(c, node, 5, signed, "{}"));
            assert!(claim(100).unwrap(), "the first");
            assert!(!claim(100).unwrap(), "a replay");
            assert!(!claim(99).unwrap(), "an older one");
            assert!(claim(101).unwrap(), "the next");
            let since = store.blocking(|c| reports_since(c, 5)).unwrap();
            assert_eq!(since, vec![(node, 5, 101, "{}".to_owned())]);
            assert!(store.blocking(|c| reports_since(c, 6)).unwrap().is_empty());
            assert!(!store
                .blocking(|c| claim_report(c, NodeId(node.0 + 1), 5, 200, "{}"))
                .unwrap());
        }
    }

    #[test]
    fn a_state_change_is_kept_in_the_alert_history_and_pruned_after_90_days() {
        for (store, node) in stores_with_node() {
            let change = |state, from, at| {
                Write::Check(CheckRow {
                    node,
                    name: CheckName::Disk,
                    state,
                    output: format!("disk {state}"),
                    since: at,
                    checked_at: at,
                    changed_from: from,
                })
            };
            let day = 86_400_000;
            let writes = [
                change(Status::Warning, Some(None), 1_000),
                change(Status::Warning, None, 2_000), // output only: no history
                change(Status::Critical, Some(Some(Status::Warning)), 100 * day),
            ];
            store.blocking(|c| apply(c, &writes)).unwrap();
            let history = store
                .blocking(|c| check_changes(c, Some(node), 10))
                .unwrap();
            let seen: Vec<_> = history
                .iter()
                .map(|h| (h.state.as_str(), h.previous.as_deref(), h.at))
                .collect();
            assert_eq!(
                seen,
                [
                    ("CRITICAL", Some("WARNING"), 100 * day),
                    ("WARNING", None, 1_000)
                ]
            );
            store.blocking(|c| prune(c, 100 * day / 1000)).unwrap();
            let kept = store.blocking(|c| check_changes(c, None, 10)).unwrap();
            assert_eq!(
                kept.len(),
                1,
                "the change of 100 days ago is pruned: {kept:?}"
            );
        }
    }

    #[test]
    fn writes_for_a_removed_node_are_dropped() {
        for (store, node) in stores_with_node() {
            store.blocking(|c| crate::nodes::remove(c, node)).unwrap();
            let check = Write::Check(CheckRow {
                node,
                name: CheckName::Cpu,
                state: Status::Ok,
                output: String::new(),
                since: 1,
                checked_at: 1,
                changed_from: Some(Some(Status::Critical)),
            });
            store
                .blocking(|c| apply(c, &[check, report(node, 1_000, 5.0)]))
                .unwrap();
            assert!(store.blocking(checks).unwrap().is_empty());
            assert!(store.blocking(reports).unwrap().is_empty());
            let history = store.blocking(|c| check_changes(c, None, 10)).unwrap();
            assert!(history.is_empty(), "no history for a removed node");
        }
    }
}
