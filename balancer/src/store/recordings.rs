//! Recordings in the store: which integration owns each recording found on the nodes.

use rusqlite::{params, Connection, OptionalExtension};

use super::{now_ms, IntegrationId, NodeId, StoreError};

/// A stored recording.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingRecord {
    pub record_id: String,
    pub integration_id: IntegrationId,
    pub node_id: Option<NodeId>,
    pub meeting_id: String,
    pub state: String,
    /// The node's `<recording>` element.
    pub xml: String,
}

/// The integration that created `meeting_id` on `node` most recently (from the event log).
pub fn owner_of(
    conn: &Connection,
    meeting_id: &str,
    node: NodeId,
) -> Result<Option<IntegrationId>, StoreError> {
    let owner = conn
        .query_row(
            "SELECT integration_id FROM events WHERE kind = 'meeting_created' AND meeting_id = ?1 AND node_id = ?2 \
             AND integration_id IS NOT NULL ORDER BY at DESC, id DESC LIMIT 1",
            params![meeting_id, node.0],
            |r| r.get(0),
        )
        .optional()?;
    Ok(owner.map(IntegrationId))
}

/// Inserts or refreshes a recording.
pub fn upsert(conn: &Connection, r: &RecordingRecord, start_time: u64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO recordings (record_id, integration_id, node_id, meeting_id, state, start_time, xml, seen_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (record_id) DO UPDATE SET node_id = ?3, state = ?5, xml = ?7, seen_at = ?8",
        params![
            r.record_id,
            r.integration_id.0,
            r.node_id.map(|n| n.0),
            r.meeting_id,
            r.state,
            i64::try_from(start_time).unwrap_or(i64::MAX),
            r.xml,
            now_ms()
        ],
    )?;
    Ok(())
}

/// Every recording of an integration, newest first.
pub fn for_integration(
    conn: &Connection,
    integration: IntegrationId,
) -> Result<Vec<RecordingRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT record_id, integration_id, node_id, meeting_id, state, xml FROM recordings \
         WHERE integration_id = ?1 ORDER BY start_time DESC, record_id",
    )?;
    let rows = stmt
        .query_map([integration.0], |row| {
            Ok(RecordingRecord {
                record_id: row.get(0)?,
                integration_id: IntegrationId(row.get(1)?),
                node_id: row.get::<_, Option<i64>>(2)?.map(NodeId),
                meeting_id: row.get(3)?,
                state: row.get(4)?,
                xml: row.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Record ids of a node seen before `before` (ms): gone from the node since.
pub fn remove_unseen(conn: &Connection, node: NodeId, before: i64) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM recordings WHERE node_id = ?1 AND seen_at < ?2",
        params![node.0, before],
    )?)
}
