//! The two database engines a [`crate::Store`] runs on, and how each gives a [`Db`] to a
//! store function: SQLite (the embedded default: one writer connection plus read-only ones,
//! WAL) and PostgreSQL (`store.url`: a pool of connections shared by several balancers).
//!
//! Each engine runs a function in one of three [`Mode`]s. On PostgreSQL, a statement that
//! changes a table the balancers mirror (nodes, integrations and their secrets, meetings) fires
//! a trigger that sends `NOTIFY conflux_changes` with the writer's `application_name`, the
//! store's instance id: that is how other processes learn of it ([`crate::Changes`]), and
//! writes of other tables (events, history, checks) wake no one.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

use crate::sql::postgres::{Client, PgConn};
use crate::sql::{params, Db};
use crate::{migrations, StoreError};

/// How a function runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Each statement commits by itself.
    Auto,
    /// One transaction holding the write lock from its start.
    Write,
    /// One read-only transaction: a consistent view.
    Consistent,
}

/// The channel PostgreSQL write transactions notify.
pub(crate) const CHANNEL: &str = "conflux_changes";

/// The most read-only SQLite connections kept; more concurrent reads open (and close) their
/// own, with a cold page cache.
const IDLE_READERS: usize = 16;
/// Pages are read through a shared memory map of this many bytes of the database at most
/// (the operating system's page cache, instead of a copy into each connection's cache).
const MMAP_SIZE: i64 = 1 << 30;

pub(crate) struct Sqlite {
    conn: Mutex<Connection>,
    /// The queue for `conn` of the store's async callers: first come, first served. `conn`'s
    /// own lock is not fair, and a poll round's dozens of writes racing for it starved a
    /// join's one write for over a second.
    pub(crate) turns: tokio::sync::Mutex<()>,
    /// Background writes (polls, monitoring, node recordings) queue here first, so that one of
    /// them at most is in `turns` at a time: a request's write waits for one, not for dozens.
    pub(crate) background: tokio::sync::Mutex<()>,
    /// Idle read-only connections; `None` for an in-memory store (reads use `conn`).
    readers: Option<Mutex<Vec<Connection>>>,
    pub(crate) path: PathBuf,
}

impl Sqlite {
    pub(crate) fn open(path: PathBuf) -> Result<Sqlite, StoreError> {
        let mut sqlite = Sqlite::prepare(Connection::open(&path)?, path)?;
        sqlite.readers = Some(Mutex::default());
        Ok(sqlite)
    }

    pub(crate) fn in_memory() -> Result<Sqlite, StoreError> {
        Sqlite::prepare(Connection::open_in_memory()?, PathBuf::from(":memory:"))
    }

    fn prepare(mut conn: Connection, path: PathBuf) -> Result<Sqlite, StoreError> {
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "mmap_size", MMAP_SIZE)?;
        migrations::run_sqlite(&mut conn)?;
        Ok(Sqlite {
            conn: Mutex::new(conn),
            turns: tokio::sync::Mutex::new(()),
            background: tokio::sync::Mutex::new(()),
            readers: None,
            path,
        })
    }

    pub(crate) fn with<T>(
        &self,
        mode: Mode,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let behavior = match mode {
            Mode::Auto => return f(&Db::sqlite(&conn)),
            // Taking the write lock at BEGIN (waiting up to the busy timeout for another
            // writer, such as the CLI beside `serve`) means a read followed by a write inside
            // never fails with "database is locked".
            Mode::Write => rusqlite::TransactionBehavior::Immediate,
            Mode::Consistent => rusqlite::TransactionBehavior::Deferred,
        };
        let tx = conn.transaction_with_behavior(behavior)?;
        let value = f(&Db::sqlite(&tx))?;
        tx.commit()?;
        Ok(value)
    }

    /// Runs the read-only `f` on a read-only connection: concurrently with other reads and
    /// with the writer, seeing what was committed when it started.
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Some(readers) = &self.readers else {
            return self.with(Mode::Auto, f);
        };
        let idle = readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(Duration::from_secs(10))?;
                conn.pragma_update(None, "mmap_size", MMAP_SIZE)?;
                conn
            }
        };
        let result = f(&Db::sqlite(&conn));
        let mut idle = readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// SQLite's `data_version`: it changes when another connection commits, not on this
/// connection's own writes.
pub(crate) fn data_version(conn: &Db<'_>) -> Result<i64, StoreError> {
    conn.query_one("PRAGMA data_version", params![], |r| r.get(0))
}

pub(crate) struct Postgres {
    pool: r2d2::Pool<Manager>,
    pub(crate) config: postgres::Config,
    /// Names this store in its notifications, so it can ignore its own.
    pub(crate) instance: String,
    /// `postgres://user@host:port/db`, without the password.
    pub(crate) location: String,
}

/// Connections at most in the pool.
const POOL_SIZE: u32 = 16;

impl Postgres {
    /// Connects to `url`, migrates the database (under a lock, whichever process comes first)
    /// and starts the pool. Fails at once when the server does not answer.
    pub(crate) fn open(url: &str) -> Result<Postgres, StoreError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Unreachable(format!("store.url is not usable: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        let instance = instance();
        config.application_name(&instance);
        let location = location(&config);
        let mut first = PgConn::connect(&config)
            .map_err(|e| StoreError::Unreachable(format!("cannot connect to {location}: {e}")))?;
        migrations::run_postgres(&mut first)?;
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .test_on_check_out(false)
            // A database that does not answer fails calls in a second rather than holding them.
            .connection_timeout(Duration::from_secs(1))
            .build_unchecked(Manager(config.clone()));
        Ok(Postgres {
            pool,
            config,
            instance,
            location,
        })
    }

    pub(crate) fn with<T>(
        &self,
        mode: Mode,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .pool
            .get()
            .map_err(|e| StoreError::Database(format!("{}: {e}", self.location)))?;
        let begin = match mode {
            Mode::Auto => return f(&Db::postgres(&mut conn)),
            Mode::Write => "BEGIN",
            Mode::Consistent => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        conn.client.batch_execute(begin)?;
        let result = f(&Db::postgres(&mut conn));
        let done = result.and_then(|value| {
            conn.client.batch_execute("COMMIT")?;
            Ok(value)
        });
        if done.is_err() && !conn.client.is_closed() {
            // Leaves the connection usable for the pool; a failed ROLLBACK means it is not.
            let _ = conn.client.batch_execute("ROLLBACK");
        }
        done
    }
}

impl Postgres {
    /// A connection of its own (not pooled) listening to [`CHANNEL`].
    pub(crate) fn listen(&self) -> Result<Client, StoreError> {
        let mut client = Client::connect(&self.config)?;
        client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
        Ok(client)
    }

    /// Waits up to `timeout` for another store's notification; whether one came.
    pub(crate) fn wait(&self, client: &mut Client, timeout: Duration) -> Result<bool, StoreError> {
        use postgres::fallible_iterator::FallibleIterator;
        let mut woke = false;
        {
            let mut notifications = client.notifications();
            let mut waiting = notifications.timeout_iter(timeout);
            while let Some(n) = waiting.next()? {
                if n.payload() != self.instance {
                    woke = true;
                    break;
                }
            }
        }
        if woke {
            // Others may have queued more: one wake-up covers them all.
            let mut notifications = client.notifications();
            let mut queued = notifications.iter();
            while queued.next()?.is_some() {}
        }
        Ok(woke)
    }
}

/// A name no other store has: this host's process id, the time, a count within the process.
fn instance() -> String {
    static OPENED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{}-{n}", std::process::id(), crate::now_ms())
}

/// `postgres://user@host:port/db` of `config`, without the password.
fn location(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    format!(
        "postgres://{}@{host}:{}/{}",
        config.get_user().unwrap_or(""),
        config.get_ports().first().copied().unwrap_or(5432),
        config.get_dbname().unwrap_or("")
    )
}

/// Opens pooled connections.
struct Manager(postgres::Config);

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        PgConn::connect(&self.0)
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}

/// Runs `f` where a blocking database client may block: here, or on a scoped thread when
/// called from inside a tokio runtime (the synchronous PostgreSQL client must not block a
/// runtime thread).
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

impl Sqlite {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
