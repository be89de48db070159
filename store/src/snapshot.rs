//! What each balancer process mirrors in memory ([`Snapshot`]: nodes, integrations, meeting
//! routes; [`Health`]: the monitoring states and last reports), and [`Changes`], the signal
//! that another writer committed, so a process knows when to read them again.

use std::time::Duration;

use crate::sql::Db;

use crate::monitor::CheckRow;
use crate::{data_version, integrations, meetings, monitor, nodes, Store, StoreError};
use crate::{Integration, MeetingRecord, Node, NodeId};

/// The tables a process keeps in memory, read in one transaction.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub nodes: Vec<Node>,
    pub integrations: Vec<Integration>,
    pub meetings: Vec<MeetingRecord>,
}

/// The stored monitoring state: each check's row and each node's last report.
#[derive(Debug, Default)]
pub struct Health {
    pub checks: Vec<CheckRow>,
    /// (node, received at, signed at, report JSON).
    pub reports: Vec<(NodeId, i64, i64, String)>,
}

/// How often the SQLite backend looks for another writer's commits (a one-row PRAGMA).
const POLL: Duration = Duration::from_millis(250);

/// Commits by other writers (the admin CLI, another process), as a stream of wake-ups:
/// [`Changes::next`] returns once something was committed since the previous call.
pub struct Changes {
    store: Store,
    seen: i64,
}

/// The three tables as of one moment (the caller holds a transaction).
fn read_snapshot(c: &Db<'_>) -> Result<Snapshot, StoreError> {
    Ok(Snapshot {
        nodes: nodes::list(c)?,
        integrations: integrations::list(c)?,
        meetings: meetings::list(c)?,
    })
}

fn read_health(c: &Db<'_>) -> Result<Health, StoreError> {
    Ok(Health {
        checks: monitor::checks(c)?,
        reports: monitor::reports(c)?,
    })
}

impl Store {
    /// The tables a process mirrors, read now.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.consistent(read_snapshot).await
    }

    /// [`Store::snapshot`] for start-up, outside a runtime.
    pub fn snapshot_blocking(&self) -> Result<Snapshot, StoreError> {
        self.blocking_consistent(read_snapshot)
    }

    /// The stored monitoring state: each check and each node's last report.
    pub async fn health(&self) -> Result<Health, StoreError> {
        self.run(read_health).await
    }

    /// [`Store::health`] for start-up, outside a runtime.
    pub fn health_blocking(&self) -> Result<Health, StoreError> {
        self.blocking(read_health)
    }

    /// Wake-ups for other writers' commits from now on.
    pub fn changes(&self) -> Result<Changes, StoreError> {
        let seen = self.blocking(data_version)?;
        Ok(Changes {
            store: self.clone(),
            seen,
        })
    }
}

impl Changes {
    /// Waits until another writer has committed since the last call (or since
    /// [`Store::changes`]). This process's own writes do not count.
    pub async fn next(&mut self) -> Result<(), StoreError> {
        loop {
            tokio::time::sleep(POLL).await;
            let version = self.store.run(data_version).await?;
            if version != self.seen {
                self.seen = version;
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conflux_shared::Secret;

    #[tokio::test]
    async fn changes_wake_for_other_writers_only() {
        let dir = tempfile::tempdir().unwrap();
        let ours = Store::open(dir.path()).unwrap();
        let mut changes = ours.changes().unwrap();
        // Our own write: no wake-up.
        ours.run(|c| integrations::ensure(c, "a", &[Secret("s1".into())]))
            .await
            .unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(700), changes.next()).await;
        assert!(quiet.is_err(), "woke for its own write");
        // Another writer (the CLI opens its own store on the same file).
        let theirs = Store::open(dir.path()).unwrap();
        theirs
            .run(|c| integrations::ensure(c, "b", &[Secret("s2".into())]))
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), changes.next())
            .await
            .expect("no wake-up for another writer's commit")
            .unwrap();
        let snapshot = ours.snapshot().await.unwrap();
        assert_eq!(snapshot.integrations.len(), 2);
    }
}
