//! The balancer's SQLite store: the source of truth for nodes, integrations, meetings and
//! events. The only crate of the balancer with SQL or a `rusqlite` type.
//!
//! Functions are plain and synchronous (`fn(&Db, ..)`, SQL written once against [`sql::Db`]);
//! async callers go through [`Store::run`], [`Store::read`] and [`Store::write`], which run
//! them on the blocking pool. The database runs in WAL mode so the admin CLI can read and write
//! while `serve` runs, and survives `kill -9`.

pub mod events;
pub mod integrations;
pub mod meetings;
mod migrations;
pub mod monitor;
pub mod nodes;
pub mod recordings;
mod snapshot;
mod sql;
pub mod usage;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

use sql::Db;

pub use events::{Event, EventKind, NewEvent, RunQuery};
pub use integrations::{
    Integration, IntegrationChange, IntegrationId, IntegrationUpdate, NewIntegration,
};
pub use meetings::{MeetingRecord, NewMeeting};
pub use nodes::{
    Enrolment, Forced, NewNode, Node, NodeChange, NodeChanged, NodeId, NodeState, NodeUpdate, Poll,
    PollResult, Polled, PolledMeeting,
};
pub use snapshot::{Changes, Health, Snapshot};

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(
        "the database was written by a newer Conflux (schema {found}, this build knows {known})"
    )]
    TooNew { found: i64, known: i64 },
    #[error("the store task failed: {0}")]
    Task(String),
    /// A stored row cannot be read back (kept as it is, for an operator to look at).
    #[error("damaged {0}")]
    Damaged(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Database(e.to_string())
    }
}

/// A handle on the database, cheap to clone: one connection for writes (and reads that must
/// see them), and a few read-only connections so slow API reads (deep getRecordings pages,
/// metadata filters) neither wait for nor hold up each other and the writer (WAL).
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// Idle read-only connections; `None` for an in-memory store (reads use `conn`).
    readers: Option<Arc<Mutex<Vec<Connection>>>>,
    path: PathBuf,
}

/// The most read-only connections kept; more concurrent reads open (and close) their own.
const IDLE_READERS: usize = 4;

impl Store {
    /// Opens (creating if needed) `conflux.sqlite3` in `data_dir` and migrates it.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join("conflux.sqlite3");
        let conn = Connection::open(&path)?;
        let mut store = Store::prepare(conn, path)?;
        store.readers = Some(Arc::default());
        Ok(store)
    }

    /// An in-memory store, for tests.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::prepare(Connection::open_in_memory()?, PathBuf::from(":memory:"))
    }

    fn prepare(mut conn: Connection, path: PathBuf) -> Result<Store, StoreError> {
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::run(&mut conn)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            readers: None,
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the writer connection, on the calling thread (CLI and start-up).
    pub(crate) fn blocking<T>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&Db::sqlite(&self.lock()))
    }

    /// Runs `f` in one write transaction, on the calling thread. The transaction takes the
    /// write lock when it begins (waiting up to the busy timeout for another writer, such as
    /// the CLI beside `serve`), so a read followed by a write inside it never fails with
    /// "database is locked".
    pub(crate) fn blocking_write<T>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let value = f(&Db::sqlite(&tx))?;
        tx.commit()?;
        Ok(value)
    }

    /// Runs the read-only `f` in one transaction (one consistent view), on the calling thread.
    pub(crate) fn blocking_consistent<T>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let value = f(&Db::sqlite(&tx))?;
        tx.commit()?;
        Ok(value)
    }

    /// [`Store::blocking_consistent`] on tokio's blocking pool.
    pub(crate) async fn consistent<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.blocking_consistent(f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` with the writer connection on tokio's blocking pool (each statement commits
    /// by itself).
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.blocking(f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs the read-only `f` on a read-only connection on tokio's blocking pool, concurrently
    /// with other reads and with the writer. It sees what was committed when it started.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let Some(readers) = self.readers.clone() else {
            return self.run(f).await;
        };
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let idle = readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match idle {
                Some(conn) => conn,
                None => {
                    let conn = Connection::open_with_flags(
                        &path,
                        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )?;
                    conn.busy_timeout(Duration::from_secs(10))?;
                    conn
                }
            };
            let result = f(&Db::sqlite(&conn));
            let mut idle = readers.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < IDLE_READERS {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Who made an admin change, and what it was: its row in the audit log is written in the
/// change's own transaction, so a change is never stored without it (nor the row without the
/// change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// `cli`, a web user's name, `token:NAME`, `scalelite`.
    pub actor: String,
    /// What was done, named after the CLI command (`servers add`).
    pub action: String,
    /// What it was done to; never a secret.
    pub detail: String,
}

impl Audit {
    pub fn new(actor: &str, action: &str, detail: impl Into<String>) -> Audit {
        Audit {
            actor: actor.to_owned(),
            action: action.to_owned(),
            detail: detail.into(),
        }
    }
}

impl Store {
    /// Runs `f` in one write transaction on the blocking pool.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.blocking_write(f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` and writes `audit`, in one transaction.
    pub(crate) async fn audited<T: Send + 'static>(
        &self,
        audit: Audit,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.write(move |c| {
            let value = f(c)?;
            users::audit(c, &audit.actor, &audit.action, &audit.detail)?;
            Ok(value)
        })
        .await
    }
}

/// Milliseconds since the epoch, as stored.
pub fn now_ms() -> i64 {
    i64::try_from(conflux_shared::date::now_ms()).unwrap_or(i64::MAX)
}

/// SQLite's `data_version`: it changes when another connection commits, not on this
/// connection's own writes.
pub(crate) fn data_version(conn: &Db<'_>) -> Result<i64, StoreError> {
    conn.query_one("PRAGMA data_version", sql::params![], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(conn: &Db<'_>) -> Result<i64, StoreError> {
        conn.query_one("SELECT count(*) FROM scratch", sql::params![], |r| r.get(0))
    }

    #[tokio::test]
    async fn reads_see_commits_and_do_not_wait_for_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .run(|c| c.batch("CREATE TABLE scratch (x); INSERT INTO scratch VALUES (1);"))
            .await
            .unwrap();
        assert_eq!(store.read(count).await.unwrap(), 1);
        // The writer busy in a long transaction: reads still answer, with what was committed.
        let (started, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let writer = store.clone();
        let busy = std::thread::spawn(move || {
            writer.blocking_write(|c| {
                c.execute("INSERT INTO scratch VALUES (2)", sql::params![])?;
                started.0.send(()).unwrap();
                release.1.recv().unwrap();
                Ok(())
            })
        });
        started.1.recv().unwrap();
        let during = tokio::time::timeout(Duration::from_secs(5), store.read(count)).await;
        release.0.send(()).unwrap();
        busy.join().unwrap().unwrap();
        assert_eq!(during.expect("a read waited for the writer").unwrap(), 1);
        assert_eq!(store.read(count).await.unwrap(), 2);
        let refused = store
            .read(|c| c.execute("DELETE FROM scratch", sql::params![]))
            .await;
        assert!(refused.is_err(), "read connections are read-only");
    }
}
