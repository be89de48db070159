//! Meetings in the store: which node hosts each meeting and which integration owns it.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{now_ms, IntegrationId, NodeId, StoreError};

/// A meeting the balancer placed.
#[derive(Debug, Clone, PartialEq)]
pub struct MeetingRecord {
    pub meeting_id: String,
    pub integration_id: IntegrationId,
    pub node_id: NodeId,
    pub internal_meeting_id: String,
    pub name: String,
    pub created_at: i64,
    pub client_ip: Option<String>,
    pub placement_reason: String,
    /// The node's last `<meeting>` element for it (from create or a poll).
    pub info_xml: Option<String>,
}

/// What a create stores.
#[derive(Debug, Clone)]
pub struct NewMeeting {
    pub meeting_id: String,
    pub integration_id: IntegrationId,
    pub node_id: NodeId,
    pub name: String,
    pub client_ip: Option<String>,
    pub placement_reason: String,
}

const COLUMNS: &str =
    "meeting_id, integration_id, node_id, internal_meeting_id, name, created_at, client_ip, placement_reason, info_xml";

fn from_row(row: &Row<'_>) -> rusqlite::Result<MeetingRecord> {
    Ok(MeetingRecord {
        meeting_id: row.get(0)?,
        integration_id: IntegrationId(row.get(1)?),
        node_id: NodeId(row.get(2)?),
        internal_meeting_id: row.get(3)?,
        name: row.get(4)?,
        created_at: row.get(5)?,
        client_ip: row.get(6)?,
        placement_reason: row.get(7)?,
        info_xml: row.get(8)?,
    })
}

pub fn list(conn: &Connection) -> Result<Vec<MeetingRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM meetings ORDER BY created_at"
    ))?;
    let rows = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn find(conn: &Connection, meeting_id: &str) -> Result<Option<MeetingRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM meetings WHERE meeting_id = ?1"
    ))?;
    Ok(stmt.query_row([meeting_id], from_row).optional()?)
}

/// Stores a newly placed meeting (replacing a forgotten one with the same id).
pub fn insert(conn: &Connection, m: &NewMeeting) -> Result<MeetingRecord, StoreError> {
    conn.execute(
        "INSERT OR REPLACE INTO meetings (meeting_id, integration_id, node_id, name, created_at, client_ip, placement_reason) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![m.meeting_id, m.integration_id.0, m.node_id.0, m.name, now_ms(), m.client_ip, m.placement_reason],
    )?;
    find(conn, &m.meeting_id)?
        .ok_or_else(|| StoreError::NotFound(format!("meeting {:?}", m.meeting_id)))
}

/// Remembers the node's view of a meeting (internal id and its `<meeting>` XML).
pub fn set_info(
    conn: &Connection,
    meeting_id: &str,
    internal_meeting_id: &str,
    info_xml: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE meetings SET internal_meeting_id = ?2, info_xml = ?3 WHERE meeting_id = ?1",
        params![meeting_id, internal_meeting_id, info_xml],
    )?;
    Ok(())
}

pub fn remove(conn: &Connection, meeting_id: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM meetings WHERE meeting_id = ?1", [meeting_id])? > 0)
}

/// Forgets every meeting of a node (it went offline or was panicked); returns their ids.
pub fn remove_on_node(conn: &Connection, node: NodeId) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("DELETE FROM meetings WHERE node_id = ?1 RETURNING meeting_id")?;
    let ids = stmt
        .query_map([node.0], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// The meetings of one integration, oldest first.
pub fn for_integration(
    conn: &Connection,
    integration: IntegrationId,
) -> Result<Vec<MeetingRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM meetings WHERE integration_id = ?1 ORDER BY created_at"
    ))?;
    let rows = stmt
        .query_map([integration.0], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The meetings placed on one node.
pub fn for_node(conn: &Connection, node: NodeId) -> Result<Vec<MeetingRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM meetings WHERE node_id = ?1"
    ))?;
    let rows = stmt
        .query_map([node.0], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
