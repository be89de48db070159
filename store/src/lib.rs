//! The balancer's store: the source of truth for nodes, integrations, meetings and events, on
//! SQLite (embedded, the default) or PostgreSQL (shared by several balancers). The only crate
//! of the balancer with SQL or a database client's type.
//!
//! Functions are plain and synchronous (`fn(&Db, ..)`, SQL written once against [`sql::Db`]);
//! async callers go through [`Store::run`], [`Store::read`] and [`Store::write`], which run
//! them on the blocking pool. SQLite runs in WAL mode so the admin CLI can read and write while
//! `serve` runs, and survives `kill -9`.

mod engine;
pub mod events;
pub mod failures;
pub mod integrations;
mod lease;
pub mod meetings;
mod migrations;
pub mod monitor;
pub mod nodes;
pub mod recordings;
mod snapshot;
mod sql;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod usage;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use engine::Mode;
use sql::Db;

pub use events::{Event, EventKind, NewEvent, RunQuery};
pub use integrations::{
    Integration, IntegrationChange, IntegrationId, IntegrationUpdate, NewIntegration,
};
pub use lease::Lease;
pub use meetings::{MeetingFilter, MeetingRecord, MeetingRoute, MeetingSummary, NewMeeting};
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
    /// The database server does not answer, or `store.url` cannot be used (at open).
    #[error("{0}")]
    Unreachable(String),
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

/// A handle on the database, cheap to clone. On SQLite: one connection for writes (and reads
/// that must see them), and a few read-only connections so slow API reads (deep getRecordings
/// pages, metadata filters) neither wait for nor hold up each other and the writer (WAL). On
/// PostgreSQL: a pool.
#[derive(Clone)]
pub struct Store {
    engine: Arc<Engine>,
}

enum Engine {
    Sqlite(engine::Sqlite),
    Postgres(engine::Postgres),
}

impl Store {
    /// The SQLite file of a store in `data_dir`.
    pub fn sqlite_file(data_dir: &Path) -> std::path::PathBuf {
        data_dir.join("conflux.sqlite3")
    }

    /// Opens (creating if needed) `conflux.sqlite3` in `data_dir` and migrates it.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let sqlite = engine::Sqlite::open(Store::sqlite_file(data_dir))?;
        Ok(Store::with_engine(Engine::Sqlite(sqlite)))
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://user@host:port/db`) and
    /// migrates it; fails at once when the server does not answer.
    pub fn open_postgres(url: &str) -> Result<Store, StoreError> {
        let url = url.to_owned();
        let pg = engine::off_runtime(move || engine::Postgres::open(&url))?;
        Ok(Store::with_engine(Engine::Postgres(pg)))
    }

    /// An in-memory store, for tests.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Ok(Store::with_engine(Engine::Sqlite(
            engine::Sqlite::in_memory()?,
        )))
    }

    fn with_engine(engine: Engine) -> Store {
        Store {
            engine: Arc::new(engine),
        }
    }

    /// Where the data is: the SQLite file, or the PostgreSQL URL without its password.
    pub fn location(&self) -> String {
        match &*self.engine {
            Engine::Sqlite(s) => s.path().display().to_string(),
            Engine::Postgres(p) => p.location.clone(),
        }
    }

    /// Whether other processes may write this store as peers (PostgreSQL: several balancers),
    /// not just the admin CLI now and then.
    pub fn is_shared(&self) -> bool {
        self.postgres().is_some()
    }

    pub(crate) fn postgres(&self) -> Option<&engine::Postgres> {
        match &*self.engine {
            Engine::Postgres(p) => Some(p),
            Engine::Sqlite(_) => None,
        }
    }

    /// Whether the database answers now (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|c| c.query_one("SELECT 1", sql::params![], |r| r.get::<i64>(0)))
            .await
            .map(|_| ())
    }

    /// Runs `f` in `mode` on the calling thread, which may block.
    fn with<T>(
        &self,
        mode: Mode,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &*self.engine {
            Engine::Sqlite(s) => s.with(mode, f),
            Engine::Postgres(p) => p.with(mode, f),
        }
    }

    /// [`Store::with`] from synchronous code (the CLI, start-up, tests), also from inside a
    /// runtime.
    fn blocking_in<T: Send>(
        &self,
        mode: Mode,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        match &*self.engine {
            Engine::Sqlite(s) => s.with(mode, f),
            Engine::Postgres(p) => engine::off_runtime(|| p.with(mode, f)),
        }
    }

    /// [`Store::with`] on tokio's blocking pool.
    async fn pooled<T: Send + 'static>(
        &self,
        mode: Mode,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        // SQLite's one writer connection is taken in turn, in the order callers came.
        let _turn = match &*self.engine {
            Engine::Sqlite(sqlite) => Some(sqlite.turns.lock().await),
            Engine::Postgres(_) => None,
        };
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.with(mode, f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` with a connection, on the calling thread; each statement commits by itself.
    pub(crate) fn blocking<T: Send>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        self.blocking_in(Mode::Auto, f)
    }

    /// Runs `f` in one write transaction, on the calling thread.
    pub(crate) fn blocking_write<T: Send>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        self.blocking_in(Mode::Write, f)
    }

    /// Runs the read-only `f` in one transaction (one consistent view), on the calling thread.
    pub(crate) fn blocking_consistent<T: Send>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        self.blocking_in(Mode::Consistent, f)
    }

    /// Runs `f` with a connection on tokio's blocking pool; each statement commits by itself.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.pooled(Mode::Auto, f).await
    }

    /// Runs `f` in one write transaction on the blocking pool.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.pooled(Mode::Write, f).await
    }

    /// [`Store::write`] for work no request waits on (a poll's results, monitoring, a node's
    /// recordings): on SQLite these take turns among themselves before joining the writer's
    /// queue, so requests' writes never queue behind a poll round's many.
    pub(crate) async fn write_background<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let _one = match &*self.engine {
            Engine::Sqlite(sqlite) => Some(sqlite.background.lock().await),
            Engine::Postgres(_) => None,
        };
        self.write(f).await
    }

    /// [`Store::blocking_consistent`] on the blocking pool.
    pub(crate) async fn consistent<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.pooled(Mode::Consistent, f).await
    }

    /// Runs the read-only `f` on the blocking pool, concurrently with other reads and with the
    /// writer. It sees what was committed when it started.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || match &*store.engine {
            Engine::Sqlite(s) => s.read(f),
            Engine::Postgres(p) => p.with(Mode::Consistent, f),
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
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

/// How far before its previous read a balancer reads again what the others wrote "since" (ms):
/// rows stamped by a slower clock, or committed late, are still seen (readers take rows in
/// once or merge them).
pub const SYNC_MARGIN_MS: i64 = 5_000;

/// Milliseconds since the epoch, as stored.
pub fn now_ms() -> i64 {
    i64::try_from(conflux_shared::date::now_ms()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
            let (started, release) = (started.0, std::sync::Mutex::new(release.1));
            writer.blocking_write(|c| {
                c.execute("INSERT INTO scratch VALUES (2)", sql::params![])?;
                started.send(()).unwrap();
                release.lock().unwrap().recv().unwrap();
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
