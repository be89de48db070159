//! Versioned schema migrations, applied in order inside one transaction each and recorded in
//! SQLite's `user_version`.

use rusqlite::Connection;

use super::StoreError;
use crate::sql::Db;

/// Every migration, oldest first. Never edit a released one: add the next.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_recordings.sql"),
    include_str!("migrations/0003_integration_prefix.sql"),
    include_str!("migrations/0004_monitoring.sql"),
    include_str!("migrations/0005_web.sql"),
    include_str!("migrations/0006_usage.sql"),
    include_str!("migrations/0007_tokens.sql"),
    include_str!("migrations/0008_recorders.sql"),
    include_str!("migrations/0009_archives.sql"),
];

pub(super) fn run(conn: &mut Connection) -> Result<(), StoreError> {
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > known {
        return Err(StoreError::TooNew {
            found: current,
            known,
        });
    }
    for (version, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        Db::sqlite(&tx).batch(sql)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(version + 1).unwrap_or(i64::MAX),
        )?;
        tx.commit()?;
        tracing::info!(version = version + 1, "Store migrated.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_schemas() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        run(&mut conn).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(
            run(&mut conn),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }
}
