//! The event log: meetings created and ended, users joined, node state changes. Read by
//! getMeetingEvents and, later, the usage reports.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{now_ms, IntegrationId, NodeId, StoreError};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    MeetingCreated,
    MeetingEnded,
    UserJoined,
    NodeOnline,
    NodeOffline,
    NodeState,
}

/// One logged event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    pub integration_id: Option<IntegrationId>,
    pub meeting_id: Option<String>,
    pub node_id: Option<NodeId>,
    pub data: serde_json::Value,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MeetingCreated => "meeting_created",
            EventKind::MeetingEnded => "meeting_ended",
            EventKind::UserJoined => "user_joined",
            EventKind::NodeOnline => "node_online",
            EventKind::NodeOffline => "node_offline",
            EventKind::NodeState => "node_state",
        }
    }
}

pub fn log(
    conn: &Connection,
    kind: EventKind,
    integration: Option<IntegrationId>,
    meeting_id: Option<&str>,
    node: Option<NodeId>,
    data: &serde_json::Value,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO events (at, kind, integration_id, meeting_id, node_id, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![now_ms(), kind.as_str(), integration.map(|i| i.0), meeting_id, node.map(|n| n.0), data.to_string()],
    )?;
    Ok(())
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    let data: String = row.get(6)?;
    Ok(Event {
        id: row.get(0)?,
        at: row.get(1)?,
        kind: row.get(2)?,
        integration_id: row.get::<_, Option<i64>>(3)?.map(IntegrationId),
        meeting_id: row.get(4)?,
        node_id: row.get::<_, Option<i64>>(5)?.map(NodeId),
        data: serde_json::from_str(&data).unwrap_or_default(),
    })
}

/// Events of one meeting, oldest first.
pub fn for_meeting(conn: &Connection, meeting_id: &str) -> Result<Vec<Event>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, kind, integration_id, meeting_id, node_id, data FROM events WHERE meeting_id = ?1 ORDER BY at, id",
    )?;
    let rows = stmt
        .query_map([meeting_id], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Events of an integration between two times (ms), newest first, at most `limit`.
pub fn for_integration(
    conn: &Connection,
    integration: IntegrationId,
    kind: EventKind,
    from: i64,
    to: i64,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, kind, integration_id, meeting_id, node_id, data FROM events \
         WHERE integration_id = ?1 AND kind = ?2 AND at >= ?3 AND at < ?4 ORDER BY at DESC, id DESC LIMIT ?5",
    )?;
    let rows = stmt
        .query_map(
            params![integration.0, kind.as_str(), from, to, limit],
            from_row,
        )?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The query parameters of the latest create of `meeting_id` by `integration` (passwords and
/// checksum are never logged).
pub fn created_params(
    conn: &Connection,
    meeting_id: &str,
    integration: IntegrationId,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, StoreError> {
    let data: Option<String> = conn
        .query_row(
            "SELECT data FROM events WHERE kind = 'meeting_created' AND meeting_id = ?1 AND integration_id = ?2 \
             ORDER BY at DESC, id DESC LIMIT 1",
            params![meeting_id, integration.0],
            |r| r.get(0),
        )
        .optional()?;
    Ok(data
        .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
        .and_then(|v| v.get("query").and_then(|q| q.as_object()).cloned()))
}
