//! Versioned schema migrations, written once for SQLite and translated for PostgreSQL
//! (`sql::postgres::migration`). On SQLite each is applied in its own transaction and recorded
//! in `user_version`; on PostgreSQL all pending ones are applied in one transaction under an
//! advisory lock (the first of several balancers starting together migrates, the others wait
//! and find the schema current) and recorded in `conflux_schema`.

use rusqlite::Connection;

use super::StoreError;
use crate::sql::postgres::{migration, PgConn};
use crate::sql::Db;

/// The advisory lock key migrations hold on PostgreSQL ("cflx").
const LOCK: i64 = 0x6366_6c78;

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
    include_str!("migrations/0010_failures.sql"),
    include_str!("migrations/0011_logout_url.sql"),
    include_str!("migrations/0012_forwarded_for.sql"),
    include_str!("migrations/0013_poll_load.sql"),
    include_str!("migrations/0014_given_url.sql"),
    include_str!("migrations/0015_relocation.sql"),
    include_str!("migrations/0016_recording_meta.sql"),
    include_str!("migrations/0017_meetings_listing.sql"),
    include_str!("migrations/0018_archive_backlog.sql"),
    include_str!("migrations/0019_check_changes.sql"),
];

/// The version after which the recordings' metadata is indexed from their XML (Rust, in the
/// migration's transaction).
const RECORDING_META: i64 = 16;

/// The migrations a database at schema `current` still needs, as (version, SQL); refused
/// when a newer Conflux wrote it.
fn pending(current: i64) -> Result<Vec<(i64, &'static str)>, StoreError> {
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if current > known {
        return Err(StoreError::TooNew {
            found: current,
            known,
        });
    }
    Ok((1..)
        .zip(MIGRATIONS.iter().copied())
        .skip(usize::try_from(current).unwrap_or(0))
        .collect())
}

pub(super) fn run_sqlite(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (version, sql) in pending(current)? {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        Db::sqlite(&tx).batch(sql)?;
        if version == RECORDING_META {
            crate::recordings::index_all_meta(&Db::sqlite(&tx))?;
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, "Store migrated.");
    }
    Ok(())
}

pub(super) fn run_postgres(conn: &mut PgConn) -> Result<(), StoreError> {
    conn.client.batch_execute(&format!(
        "BEGIN; SELECT pg_advisory_xact_lock({LOCK}); \
         CREATE TABLE IF NOT EXISTS conflux_schema (version BIGINT NOT NULL)"
    ))?;
    let migrated = (|| {
        let row = conn
            .client
            .query_one("SELECT COALESCE(MAX(version), 0) FROM conflux_schema", &[])?;
        for (version, sql) in pending(row.try_get(0)?)? {
            conn.client.batch_execute(&migration(sql))?;
            if version == RECORDING_META {
                crate::recordings::index_all_meta(&Db::postgres(conn))?;
            }
            conn.client.execute(
                "INSERT INTO conflux_schema (version) VALUES ($1)",
                &[&version],
            )?;
            tracing::info!(version, "Store migrated.");
        }
        Ok(conn.client.batch_execute(&change_triggers())?)
    })();
    match migrated {
        Ok(()) => Ok(conn.client.batch_execute("COMMIT")?),
        Err(e) => {
            let _ = conn.client.batch_execute("ROLLBACK");
            Err(e)
        }
    }
}

/// The tables every balancer mirrors in memory (`crate::Snapshot`).
const MIRRORED: &[&str] = &["nodes", "integrations", "integration_secrets", "meetings"];

/// PostgreSQL: a statement changing a mirrored table notifies `CHANNEL` with the writer's
/// `application_name` (its store's instance id). Made again at every start, so it follows the
/// tables the schema has.
fn change_triggers() -> String {
    let mut sql = format!(
        "CREATE OR REPLACE FUNCTION conflux_changed() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN PERFORM pg_notify('{}', current_setting('application_name')); RETURN NULL; END $$;",
        crate::engine::CHANNEL
    );
    for table in MIRRORED {
        sql.push_str(&format!(
            "CREATE OR REPLACE TRIGGER conflux_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE \
             ON {table} FOR EACH STATEMENT EXECUTE FUNCTION conflux_changed();"
        ));
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_schemas() {
        let mut conn = Connection::open_in_memory().unwrap();
        run_sqlite(&mut conn).unwrap();
        run_sqlite(&mut conn).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(
            run_sqlite(&mut conn),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }

    #[test]
    fn recordings_stored_before_the_metadata_index_are_indexed_by_its_migration() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..usize::try_from(RECORDING_META - 1).unwrap()] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", RECORDING_META - 1)
            .unwrap();
        let xml = conflux_shared::response::Recording {
            record_id: "r1".into(),
            metadata: vec![
                ("Course".into(), "cs101".into()),
                ("conflux-recorder".into(), "hidden".into()),
            ],
            ..Default::default()
        }
        .to_element()
        .to_xml();
        conn.execute_batch("INSERT INTO integrations (id, name, created_at) VALUES (1, 'uni', 0);")
            .unwrap();
        conn.execute(
            "INSERT INTO recordings (record_id, integration_id, meeting_id, state, xml, seen_at) \
             VALUES ('r1', 1, 'm1', 'published', ?1, 0)",
            [&xml],
        )
        .unwrap();
        run_sqlite(&mut conn).unwrap();
        let indexed: Vec<(String, String)> = conn
            .prepare("SELECT key, value FROM recording_meta WHERE record_id = 'r1'")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(indexed, [("course".to_owned(), "cs101".to_owned())]);
    }
}
