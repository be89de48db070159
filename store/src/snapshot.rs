//! What each balancer process mirrors in memory ([`Snapshot`]: nodes, integrations, meeting
//! routes; [`Health`]: the monitoring states and last reports), and [`Changes`], the signal
//! that another writer committed, so a process knows when to read them again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::sql::Db;

use crate::monitor::CheckRow;
use crate::{engine, integrations, meetings, monitor, nodes, Store, StoreError};
use crate::{Integration, MeetingRoute, Node, NodeId};

/// The tables a process keeps in memory, read in one transaction.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub nodes: Vec<Node>,
    pub integrations: Vec<Integration>,
    /// Each meeting's id and route.
    pub meetings: Vec<(String, MeetingRoute)>,
}

/// The stored monitoring state: each check's row and each node's last report.
#[derive(Debug, Default)]
pub struct Health {
    pub checks: Vec<CheckRow>,
    /// (node, received at, signed at, report JSON).
    pub reports: Vec<(NodeId, i64, i64, String)>,
}

/// How often the SQLite backend looks for another writer's commits (a one-row PRAGMA), and
/// how long one wait for a PostgreSQL notification lasts.
const POLL: Duration = Duration::from_millis(250);

/// Commits by other writers (the admin CLI, another process), as a stream of wake-ups:
/// [`Changes::next`] returns once something was committed since the previous call.
pub struct Changes {
    store: Store,
    watch: Watch,
}

enum Watch {
    /// SQLite's `data_version` as last seen.
    Sqlite(i64),
    /// A connection listening to the write transactions' notifications; `None` after it was
    /// lost (the next call connects again, and wakes: commits may have been missed).
    Postgres(Arc<Mutex<Listener>>),
}

/// Shared with the blocking task waiting on it, so that neither the connection nor a
/// notification it received is lost when [`Changes::next`] is cancelled.
struct Listener {
    client: Option<crate::sql::postgres::Client>,
    /// Another store committed, and no `next` has returned for it yet.
    woke: bool,
}

/// The three tables as of one moment (the caller holds a transaction).
fn read_snapshot(c: &Db<'_>) -> Result<Snapshot, StoreError> {
    Ok(Snapshot {
        nodes: nodes::list(c)?,
        integrations: integrations::list(c)?,
        meetings: meetings::routes(c)?,
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
        self.consistent(read_health).await
    }

    /// [`Store::health`] for start-up, outside a runtime.
    pub fn health_blocking(&self) -> Result<Health, StoreError> {
        self.blocking_consistent(read_health)
    }

    /// Wake-ups for other writers' commits from now on.
    pub fn changes(&self) -> Result<Changes, StoreError> {
        let watch = match self.postgres() {
            Some(pg) => {
                let client = engine::off_runtime(|| pg.listen())?;
                Watch::Postgres(Arc::new(Mutex::new(Listener {
                    client: Some(client),
                    woke: false,
                })))
            }
            None => Watch::Sqlite(self.blocking(engine::data_version)?),
        };
        Ok(Changes {
            store: self.clone(),
            watch,
        })
    }
}

impl Changes {
    /// Waits until another writer has committed since the last call (or since
    /// [`Store::changes`]). This process's own writes do not count.
    pub async fn next(&mut self) -> Result<(), StoreError> {
        loop {
            match &mut self.watch {
                Watch::Sqlite(seen) => {
                    tokio::time::sleep(POLL).await;
                    let version = self.store.run(engine::data_version).await?;
                    if version != *seen {
                        *seen = version;
                        return Ok(());
                    }
                }
                Watch::Postgres(listener) => {
                    let (store, shared) = (self.store.clone(), listener.clone());
                    tokio::task::spawn_blocking(move || {
                        let pg = store
                            .postgres()
                            .ok_or_else(|| StoreError::Database("not a PostgreSQL store".into()))?;
                        let mut listener = shared.lock().unwrap_or_else(|p| p.into_inner());
                        if listener.woke {
                            return Ok(());
                        }
                        let woke = match listener.client.as_mut() {
                            Some(client) => pg.wait(client, POLL),
                            None => pg.listen().map(|client| {
                                listener.client = Some(client);
                                true
                            }),
                        };
                        match woke {
                            Ok(woke) => listener.woke = woke,
                            Err(_) => listener.client = None,
                        }
                        woke.map(|_| ())
                    })
                    .await
                    .map_err(|e| StoreError::Task(e.to_string()))??;
                    let mut listener = listener.lock().unwrap_or_else(|p| p.into_inner());
                    if std::mem::take(&mut listener.woke) {
                        return Ok(());
                    }
                }
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
        // Two stores on one database: this process's and another's (the CLI on the same file,
        // a second balancer on the same PostgreSQL database).
        let dir = tempfile::tempdir().unwrap();
        let mut pairs = vec![(
            Store::open(dir.path()).unwrap(),
            Store::open(dir.path()).unwrap(),
        )];
        if let Some(url) = crate::testing::postgres_database() {
            pairs.push((
                Store::open_postgres(&url).unwrap(),
                Store::open_postgres(&url).unwrap(),
            ));
        }
        for (ours, theirs) in pairs {
            let mut changes = ours.changes().unwrap();
            // Our own write: no wake-up.
            ours.write(|c| integrations::ensure(c, "a", &[Secret("s1".into())]))
                .await
                .unwrap();
            let quiet = tokio::time::timeout(Duration::from_millis(700), changes.next()).await;
            assert!(quiet.is_err(), "woke for its own write");
            theirs
                .write(|c| integrations::ensure(c, "b", &[Secret("s2".into())]))
                .await
                .unwrap();
            tokio::time::timeout(Duration::from_secs(5), changes.next())
                .await
                .expect("no wake-up for another writer's commit")
                .unwrap();
            let snapshot = ours.snapshot().await.unwrap();
            assert_eq!(snapshot.integrations.len(), 2);
            // A read by the other store is no change.
            theirs.integrations().await.unwrap();
            let quiet = tokio::time::timeout(Duration::from_millis(700), changes.next()).await;
            assert!(quiet.is_err(), "woke for a read");
        }
    }
}
