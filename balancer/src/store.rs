//! The balancer's SQLite store: the source of truth for nodes, integrations, meetings and
//! events. Only this module and its children contain SQL.
//!
//! Functions are plain and synchronous (`fn(&Connection, ..)`); async callers go through
//! [`Store::run`], which runs them on the blocking pool. The database runs in WAL mode so the
//! admin CLI can read and write while `serve` runs, and survives `kill -9`.

pub mod events;
pub mod integrations;
pub mod meetings;
mod migrations;
pub mod monitor;
pub mod nodes;
pub mod recordings;
pub mod usage;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

pub use events::{Event, EventKind};
pub use integrations::{Integration, IntegrationId, IntegrationUpdate, NewIntegration};
pub use meetings::{MeetingRecord, NewMeeting};
pub use nodes::{Forced, NewNode, Node, NodeId, NodeState, NodeUpdate, PollResult};

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
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
}

/// A handle on the database, cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) `conflux.sqlite3` in `data_dir` and migrates it.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join("conflux.sqlite3");
        let conn = Connection::open(&path)?;
        Store::prepare(conn, path)
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
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection, on the calling thread (CLI and start-up).
    pub fn blocking<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&mut self.lock())
    }

    /// Runs `f` with the connection on tokio's blocking pool.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&mut store.lock()))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Milliseconds since the epoch, as stored.
pub fn now_ms() -> i64 {
    i64::try_from(conflux_shared::date::now_ms()).unwrap_or(i64::MAX)
}

/// SQLite's `data_version`: it changes when another connection commits, not on this
/// connection's own writes.
pub fn data_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA data_version", [], |r| r.get(0))?)
}
