//! The metadata index of the recordings (`recording_meta`): each recording's metadata as
//! getRecordings lists it, so that `meta_` filters search an index instead of every
//! recording's XML. Rebuilt from the stored `<recording>` after every write of it.

use crate::sql::{params, Db};

use super::StoreError;

/// Rebuilds the metadata index of `record_id` from its stored `<recording>`: the keys
/// getRecordings lists, lower-cased (BBB lower-cases them), with their values.
pub(crate) fn index_meta(conn: &Db<'_>, record_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM recording_meta WHERE record_id = ?1",
        params![record_id],
    )?;
    let stored: Option<(i64, String)> = conn.query_opt(
        "SELECT integration_id, xml FROM recordings WHERE record_id = ?1",
        params![record_id],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if let Some((integration, xml)) = stored {
        insert_meta(conn, record_id, integration, &xml)?;
    }
    Ok(())
}

/// Indexes the metadata of every stored recording (when the index is created).
pub(crate) fn index_all_meta(conn: &Db<'_>) -> Result<(), StoreError> {
    let rows: Vec<(String, i64, String)> = conn.query(
        "SELECT record_id, integration_id, xml FROM recordings",
        params![],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    for (record_id, integration, xml) in rows {
        insert_meta(conn, &record_id, integration, &xml)?;
    }
    Ok(())
}

fn insert_meta(
    conn: &Db<'_>,
    record_id: &str,
    integration: i64,
    xml: &str,
) -> Result<(), StoreError> {
    let Ok(recording) = conflux_shared::response::Recording::from_xml(xml) else {
        return Ok(()); // unreadable: listed by nobody's metadata
    };
    for (key, value) in recording
        .metadata
        .iter()
        .filter(|(k, _)| conflux_shared::response::Recording::lists_meta(k))
    {
        conn.execute(
            "INSERT INTO recording_meta (record_id, integration_id, key, value) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (record_id, key) DO NOTHING",
            params![record_id, integration, key.to_ascii_lowercase(), value],
        )?;
    }
    Ok(())
}
