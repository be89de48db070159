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

/// The events of one run of a meeting: those of `created`'s integration and meeting after the
/// create, up to (not including) the meeting's next create, oldest first, at most `limit`.
/// One index seek on `(meeting_id, at)` and a walk of the run only, however often the meeting
/// ID was used before (one room = one ID, as Moodle and Greenlight do).
pub fn run_of(conn: &Connection, created: &Event, limit: u32) -> Result<Vec<Event>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, kind, integration_id, meeting_id, node_id, data FROM events \
         WHERE meeting_id = ?1 AND (at > ?2 OR (at = ?2 AND id > ?3)) ORDER BY at, id LIMIT ?4",
    )?;
    let mut rows = stmt.query(params![
        created.meeting_id,
        created.at,
        created.id,
        limit.saturating_add(1)
    ])?;
    let mut run = Vec::new();
    while let Some(row) = rows.next()? {
        let event = from_row(row)?;
        if event.kind == EventKind::MeetingCreated.as_str() {
            break;
        }
        if event.integration_id == created.integration_id && run.len() < limit as usize {
            run.push(event);
        }
    }
    Ok(run)
}

/// How many users joined the run of `created` (as [`run_of`] would list them, without reading
/// their data): enough to skip a run that a filter or an offset leaves out.
pub fn users_in_run(conn: &Connection, created: &Event, limit: u32) -> Result<usize, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind, integration_id FROM events \
         WHERE meeting_id = ?1 AND (at > ?2 OR (at = ?2 AND id > ?3)) ORDER BY at, id LIMIT ?4",
    )?;
    let mut rows = stmt.query(params![
        created.meeting_id,
        created.at,
        created.id,
        limit.saturating_add(1)
    ])?;
    let mut users = 0;
    while let Some(row) = rows.next()? {
        let kind: String = row.get(0)?;
        if kind == EventKind::MeetingCreated.as_str() {
            break;
        }
        let integration = row.get::<_, Option<i64>>(1)?.map(IntegrationId);
        if kind == EventKind::UserJoined.as_str() && integration == created.integration_id {
            users += 1;
        }
    }
    Ok(users)
}

/// Events of an integration between two times (ms), newest first, at most `limit` after
/// skipping `offset`.
pub fn for_integration(
    conn: &Connection,
    integration: IntegrationId,
    kind: EventKind,
    (from, to): (i64, i64),
    offset: u32,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, kind, integration_id, meeting_id, node_id, data FROM events \
         WHERE integration_id = ?1 AND kind = ?2 AND at >= ?3 AND at < ?4 \
         ORDER BY at DESC, id DESC LIMIT ?5 OFFSET ?6",
    )?;
    let rows = stmt
        .query_map(
            params![integration.0, kind.as_str(), from, to, limit, offset],
            from_row,
        )?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The latest create of `meeting_id` by `integration`.
pub fn latest_created(
    conn: &Connection,
    meeting_id: &str,
    integration: IntegrationId,
) -> Result<Option<Event>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id, at, kind, integration_id, meeting_id, node_id, data FROM events \
             WHERE kind = 'meeting_created' AND meeting_id = ?1 AND integration_id = ?2 \
             ORDER BY at DESC, id DESC LIMIT 1",
            params![meeting_id, integration.0],
            from_row,
        )
        .optional()?)
}

/// The query parameters of the latest create of `meeting_id` by `integration` (passwords and
/// checksum are never logged).
pub fn created_params(
    conn: &Connection,
    meeting_id: &str,
    integration: IntegrationId,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, StoreError> {
    Ok(latest_created(conn, meeting_id, integration)?
        .and_then(|e| e.data.get("query").and_then(|q| q.as_object()).cloned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use serde_json::json;

    #[test]
    fn a_run_ends_at_the_next_create_and_keeps_to_its_integration() {
        let store = Store::open_in_memory().unwrap();
        store
            .blocking(|c| {
                let (uni, school) = (Some(IntegrationId(1)), Some(IntegrationId(2)));
                let log = |kind, who, meeting: &str| {
                    super::log(c, kind, who, Some(meeting), None, &json!({}))
                };
                for _ in 0..3 {
                    log(EventKind::MeetingCreated, uni, "room")?;
                    log(EventKind::UserJoined, uni, "room")?;
                    log(EventKind::UserJoined, school, "room")?;
                    log(EventKind::UserJoined, uni, "other")?;
                    log(EventKind::UserJoined, uni, "room")?;
                    log(EventKind::MeetingEnded, uni, "room")?;
                }
                let created = for_integration(
                    c,
                    IntegrationId(1),
                    EventKind::MeetingCreated,
                    (0, i64::MAX),
                    0,
                    10,
                )?;
                assert_eq!(created.len(), 3);
                assert!(created[0].id > created[1].id, "newest first");
                for create in &created {
                    let run = run_of(c, create, 100)?;
                    let kinds: Vec<&str> = run.iter().map(|e| e.kind.as_str()).collect();
                    assert_eq!(kinds, ["user_joined", "user_joined", "meeting_ended"]);
                    assert!(run.iter().all(|e| e.id > create.id));
                }
                assert_eq!(run_of(c, &created[2], 2)?.len(), 2, "bounded");
                assert_eq!(users_in_run(c, &created[1], 100)?, 2);
                let second = for_integration(
                    c,
                    IntegrationId(1),
                    EventKind::MeetingCreated,
                    (0, i64::MAX),
                    1,
                    1,
                )?;
                assert_eq!(second[0].id, created[1].id, "offset");
                let latest = latest_created(c, "room", IntegrationId(1))?.unwrap();
                assert_eq!(latest.id, created[0].id);
                Ok(())
            })
            .unwrap();
    }
}
