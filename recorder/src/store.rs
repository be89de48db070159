//! The recorder's index (SQLite in the data folder): its recordings, the archives still to
//! fetch, its position in the balancer's feed and the playback tokens already used. The only
//! module of the recorder with SQL: callers get typed operations, each one transaction.
//!
//! The schema is versioned (`PRAGMA user_version`, one entry of [`MIGRATIONS`] per version):
//! an older index is migrated on open, a newer one is refused.

use std::path::Path;
use std::sync::{Arc, Mutex};

use conflux_shared::transfer::Change;
use rusqlite::{params, Connection, OptionalExtension};

/// The schema, one step per version. Version 1 is the schema from before versioning (its
/// `IF NOT EXISTS` makes it a no-op on such an index).
const MIGRATIONS: &[&str] = &["
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
"];

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("recorder index: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("recorder index: the pending metadata of {record_id} is damaged: {source}")]
    Meta {
        record_id: String,
        source: serde_json::Error,
    },
    #[error("the recorder index was written by a newer conflux-recorder (schema {found}, this build knows {known})")]
    TooNew { found: i64, known: i64 },
}

type Result<T> = std::result::Result<T, StoreError>;

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

/// Brings the schema to the newest version, each step in its own transaction.
fn migrate(conn: &mut Connection) -> Result<()> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn set_position(c: &Connection, seq: i64) -> Result<()> {
    c.execute(
        "INSERT INTO feed_position (id, seq) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET seq = max(seq, ?1)",
        [seq],
    )?;
    Ok(())
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        migrate(&mut conn)?;
        Ok(Store(Arc::new(Mutex::new(conn))))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn)
    }

    /// Moves the feed position past `seq` without applying its entry (an entry refused as
    /// unsafe, already logged by the caller).
    pub fn skip(&self, seq: i64) -> Result<()> {
        self.with(|c| set_position(c, seq))
    }

    /// Applies one feed entry (`changed_xml`: the recording's new `<recording>` element, when
    /// the change edits it) and moves the position past it, in one transaction.
    pub fn apply(
        &self,
        seq: i64,
        rid: &str,
        change: &Change,
        changed_xml: Option<&str>,
    ) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            match change {
                Change::Archive { meeting_id, size, sha256, published, protected } => {
                    tx.execute(
                        "INSERT INTO pending (record_id, meeting_id, size, sha256, published, protected) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                         ON CONFLICT (record_id) DO UPDATE SET meeting_id = ?2, size = ?3, sha256 = ?4, published = ?5, protected = ?6",
                        params![rid, meeting_id, i64::try_from(*size).unwrap_or(i64::MAX), sha256, published, protected],
                    )?;
                }
                Change::Publish { published } => {
                    tx.execute("UPDATE pending SET published = ?2 WHERE record_id = ?1", params![rid, published])?;
                    tx.execute("UPDATE recordings SET published = ?2 WHERE record_id = ?1", params![rid, published])?;
                }
                Change::Protect { protected } => {
                    tx.execute("UPDATE pending SET protected = ?2 WHERE record_id = ?1", params![rid, protected])?;
                    tx.execute("UPDATE recordings SET protected = ?2 WHERE record_id = ?1", params![rid, protected])?;
                }
                Change::Update { meta } => {
                    let old: Option<String> = tx
                        .query_row("SELECT meta FROM pending WHERE record_id = ?1", [rid], |r| r.get(0))
                        .optional()?;
                    if let Some(old) = old {
                        let mut all: Vec<(String, String)> = serde_json::from_str(&old)
                            .map_err(|source| StoreError::Meta { record_id: rid.to_owned(), source })?;
                        all.extend(meta.iter().cloned());
                        let all = serde_json::to_string(&all)
                            .map_err(|source| StoreError::Meta { record_id: rid.to_owned(), source })?;
                        tx.execute("UPDATE pending SET meta = ?2 WHERE record_id = ?1", params![rid, all])?;
                    }
                }
                Change::Delete => {
                    tx.execute("DELETE FROM pending WHERE record_id = ?1", [rid])?;
                    tx.execute("UPDATE recordings SET deleted = 1, published = 0 WHERE record_id = ?1", [rid])?;
                }
            }
            if let Some(xml) = changed_xml {
                tx.execute("UPDATE recordings SET xml = ?2 WHERE record_id = ?1", params![rid, xml])?;
            }
            set_position(&tx, seq)?;
            Ok(tx.commit()?)
        })
    }

    pub fn position(&self) -> Result<i64> {
        self.with(|c| {
            let seq = c
                .query_row("SELECT seq FROM feed_position WHERE id = 1", [], |r| {
                    r.get(0)
                })
                .optional()?;
            Ok(seq.unwrap_or(0))
        })
    }

    pub fn pending(&self) -> Result<Vec<Pending>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT record_id, meeting_id, size, sha256, published, protected, meta FROM pending ORDER BY rowid",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    Pending {
                        record_id: r.get(0)?,
                        meeting_id: r.get(1)?,
                        size: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                        sha256: r.get(3)?,
                        published: r.get(4)?,
                        protected: r.get(5)?,
                        meta: Vec::new(),
                    },
                    r.get::<_, String>(6)?,
                ))
            })?;
            let mut pending = Vec::new();
            for row in rows {
                let (mut p, meta) = row?;
                p.meta = serde_json::from_str(&meta).map_err(|source| StoreError::Meta {
                    record_id: p.record_id.clone(),
                    source,
                })?;
                pending.push(p);
            }
            Ok(pending)
        })
    }

    pub fn recording(&self, record_id: &str) -> Result<Option<Stored>> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT record_id, published, protected, deleted, xml FROM recordings WHERE record_id = ?1",
                [record_id],
                stored,
            )
            .optional()?)
        })
    }

    pub fn unreported(&self) -> Result<Vec<Stored>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT record_id, published, protected, deleted, xml FROM recordings WHERE reported = 0 AND deleted = 0",
            )?;
            let rows = stmt.query_map([], stored)?.collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// Indexes a processed recording and drops it from the pending list, in one transaction.
    pub fn processed(&self, p: &Pending, xml: &str) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO recordings (record_id, meeting_id, published, protected, deleted, xml, reported, processed_at) \
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, 0, ?6) ON CONFLICT (record_id) DO UPDATE SET \
                 published = ?3, protected = ?4, deleted = 0, xml = ?5, reported = 0, processed_at = ?6",
                params![p.record_id, p.meeting_id, p.published, p.protected, xml, now_secs()],
            )?;
            tx.execute("DELETE FROM pending WHERE record_id = ?1", [&p.record_id])?;
            Ok(tx.commit()?)
        })
    }

    pub fn drop_pending(&self, record_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM pending WHERE record_id = ?1", [record_id])?;
            Ok(())
        })
    }

    pub fn set_reported(&self, record_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE recordings SET reported = 1 WHERE record_id = ?1",
                [record_id],
            )?;
            Ok(())
        })
    }

    /// Consumes a one-time token; false if it was used before.
    pub fn consume_token(&self, nonce: &str) -> Result<bool> {
        self.with(|c| {
            let inserted = c.execute(
                "INSERT OR IGNORE INTO used_tokens (nonce, used_at) VALUES (?1, ?2)",
                params![nonce, now_secs()],
            )?;
            Ok(inserted == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive() -> Change {
        Change::Archive {
            meeting_id: "m1".into(),
            size: 10,
            sha256: "ab".into(),
            published: true,
            protected: false,
        }
    }

    #[test]
    fn an_unversioned_index_is_migrated_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recorder.sqlite3");
        {
            // The index as recorders before versioning wrote it.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(MIGRATIONS[0]).unwrap();
            c.execute("INSERT INTO feed_position (id, seq) VALUES (1, 7)", [])
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.position().unwrap(), 7);
        drop(store);
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }

    #[test]
    fn feed_entries_apply_with_their_position_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.sqlite3")).unwrap();
        store.apply(1, "r1", &archive(), None).unwrap();
        let meta = Change::Update {
            meta: vec![("course".into(), "Physics".into())],
        };
        store.apply(2, "r1", &meta, None).unwrap();
        let pending = store.pending().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].meta, vec![("course".into(), "Physics".into())]);
        assert_eq!(store.position().unwrap(), 2);
        store.skip(1).unwrap();
        assert_eq!(store.position().unwrap(), 2, "the position never goes back");
        store
            .with(|c| Ok(c.execute("UPDATE pending SET meta = '{' WHERE record_id = 'r1'", [])?))
            .unwrap();
        assert!(matches!(store.pending(), Err(StoreError::Meta { .. })));
        assert!(matches!(
            store.apply(3, "r1", &meta, None),
            Err(StoreError::Meta { .. })
        ));
        assert_eq!(store.position().unwrap(), 2, "a failed entry is not passed");
        store.apply(4, "r1", &Change::Delete, None).unwrap();
        assert!(store.pending().unwrap().is_empty());
    }
}
