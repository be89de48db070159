//! The recorder's index (SQLite in the data folder): its recordings, the archives still to
//! fetch, its position in the balancer's feed and the playback tokens already used.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS recordings (
    record_id    TEXT PRIMARY KEY,
    meeting_id   TEXT NOT NULL,
    published    INTEGER NOT NULL,
    protected    INTEGER NOT NULL,
    deleted      INTEGER NOT NULL DEFAULT 0,
    xml          TEXT NOT NULL,          -- the <recording> element reported to the balancer
    reported     INTEGER NOT NULL DEFAULT 0,
    processed_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
    record_id  TEXT PRIMARY KEY,
    meeting_id TEXT NOT NULL,
    size       INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    published  INTEGER NOT NULL,
    protected  INTEGER NOT NULL,
    meta       TEXT NOT NULL DEFAULT '[]' -- metadata changes received before processing
);
CREATE TABLE IF NOT EXISTS feed_position (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS used_tokens (nonce TEXT PRIMARY KEY, used_at INTEGER NOT NULL);
";

#[derive(Clone)]
pub struct Store(Arc<Mutex<Connection>>);

/// An archive announced by the feed and not processed yet.
#[derive(Debug, Clone)]
pub struct Pending {
    pub record_id: String,
    pub meeting_id: String,
    pub size: u64,
    pub sha256: String,
    pub published: bool,
    pub protected: bool,
    pub meta: Vec<(String, String)>,
}

/// A processed recording.
#[derive(Debug, Clone)]
pub struct Stored {
    pub record_id: String,
    pub published: bool,
    pub protected: bool,
    pub deleted: bool,
    pub xml: String,
}

fn stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    Ok(Stored {
        record_id: r.get(0)?,
        published: r.get(1)?,
        protected: r.get(2)?,
        deleted: r.get(3)?,
        xml: r.get(4)?,
    })
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Store {
    pub fn open(path: &Path) -> rusqlite::Result<Store> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store(Arc::new(Mutex::new(conn))))
    }

    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let mut conn = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn)
    }

    pub fn position(&self) -> rusqlite::Result<i64> {
        self.with(|c| {
            Ok(
                c.query_row("SELECT seq FROM feed_position WHERE id = 1", [], |r| {
                    r.get(0)
                })
                .optional()?
                .unwrap_or(0),
            )
        })
    }

    pub fn pending(&self) -> rusqlite::Result<Vec<Pending>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT record_id, meeting_id, size, sha256, published, protected, meta FROM pending ORDER BY rowid",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(Pending {
                        record_id: r.get(0)?,
                        meeting_id: r.get(1)?,
                        size: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                        sha256: r.get(3)?,
                        published: r.get(4)?,
                        protected: r.get(5)?,
                        meta: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or_default(),
                    })
                })?
                .collect();
            rows
        })
    }

    pub fn recording(&self, record_id: &str) -> rusqlite::Result<Option<Stored>> {
        self.with(|c| {
            c.query_row(
                "SELECT record_id, published, protected, deleted, xml FROM recordings WHERE record_id = ?1",
                [record_id],
                stored,
            )
            .optional()
        })
    }

    pub fn unreported(&self) -> rusqlite::Result<Vec<Stored>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT record_id, published, protected, deleted, xml FROM recordings WHERE reported = 0 AND deleted = 0",
            )?;
            let rows = stmt
                .query_map([], stored)?
                .collect();
            rows
        })
    }

    /// Indexes a processed recording and drops it from the pending list, in one transaction.
    pub fn processed(&self, p: &Pending, xml: &str) -> rusqlite::Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO recordings (record_id, meeting_id, published, protected, deleted, xml, reported, processed_at) \
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, 0, ?6) ON CONFLICT (record_id) DO UPDATE SET \
                 published = ?3, protected = ?4, deleted = 0, xml = ?5, reported = 0, processed_at = ?6",
                params![p.record_id, p.meeting_id, p.published, p.protected, xml, now_secs()],
            )?;
            tx.execute("DELETE FROM pending WHERE record_id = ?1", [&p.record_id])?;
            tx.commit()
        })
    }

    pub fn drop_pending(&self, record_id: &str) -> rusqlite::Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM pending WHERE record_id = ?1", [record_id])
                .map(|_| ())
        })
    }

    pub fn set_reported(&self, record_id: &str) -> rusqlite::Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE recordings SET reported = 1 WHERE record_id = ?1",
                [record_id],
            )
            .map(|_| ())
        })
    }

    /// Consumes a one-time token; false if it was used before.
    pub fn consume_token(&self, nonce: &str) -> rusqlite::Result<bool> {
        self.with(|c| {
            Ok(c.execute(
                "INSERT OR IGNORE INTO used_tokens (nonce, used_at) VALUES (?1, ?2)",
                params![nonce, now_secs()],
            )? == 1)
        })
    }
}
