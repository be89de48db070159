//! The event log: meetings created and ended, users joined, node state changes. Read by
//! getMeetingEvents and, later, the usage reports.

use std::ops::ControlFlow;

use crate::sql::{params, Db, Row};

use super::{now_ms, IntegrationId, NodeId, Store, StoreError};

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

/// An event to log.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EventKind,
    pub integration: Option<IntegrationId>,
    pub meeting_id: Option<String>,
    pub node: Option<NodeId>,
    pub data: serde_json::Value,
}

impl NewEvent {
    /// An event of a meeting (its integration, its node).
    pub fn meeting(
        kind: EventKind,
        integration: IntegrationId,
        meeting_id: &str,
        node: NodeId,
        data: serde_json::Value,
    ) -> NewEvent {
        NewEvent {
            kind,
            integration: Some(integration),
            meeting_id: Some(meeting_id.to_owned()),
            node: Some(node),
            data,
        }
    }

    /// An event of a node alone.
    pub fn node(kind: EventKind, node: NodeId, data: serde_json::Value) -> NewEvent {
        NewEvent {
            kind,
            integration: None,
            meeting_id: None,
            node: Some(node),
            data,
        }
    }

    pub(crate) fn write(&self, conn: &Db<'_>) -> Result<(), StoreError> {
        log(
            conn,
            self.kind,
            self.integration,
            self.meeting_id.as_deref(),
            self.node,
            &self.data,
        )
    }
}

pub(crate) fn log(
    conn: &Db<'_>,
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

fn from_row(row: &Row<'_>) -> Result<Event, StoreError> {
    let data: String = row.get(6)?;
    Ok(Event {
        id: row.get(0)?,
        at: row.get(1)?,
        kind: row.get(2)?,
        integration_id: row.get::<Option<i64>>(3)?.map(IntegrationId),
        meeting_id: row.get(4)?,
        node_id: row.get::<Option<i64>>(5)?.map(NodeId),
        data: serde_json::from_str(&data).unwrap_or_default(),
    })
}

/// The events of one run of a meeting: those of `created`'s integration and meeting after the
/// create, up to (not including) the meeting's next create, oldest first, at most `limit`.
/// One index seek on `(meeting_id, at)` and a walk of the run only, however often the meeting
/// ID was used before (one room = one ID, as Moodle and Greenlight do).
pub(crate) fn run_of(conn: &Db<'_>, created: &Event, limit: u32) -> Result<Vec<Event>, StoreError> {
    let mut run = Vec::new();
    conn.scan(
        "SELECT id, at, kind, integration_id, meeting_id, node_id, data FROM events \
         WHERE meeting_id = ?1 AND (at > ?2 OR (at = ?2 AND id > ?3)) ORDER BY at, id LIMIT ?4",
        params![
            created.meeting_id,
            created.at,
            created.id,
            limit.saturating_add(1)
        ],
        |row| {
            let event = from_row(row)?;
            if event.kind == EventKind::MeetingCreated.as_str() {
                return Ok(ControlFlow::Break(()));
            }
            if event.integration_id == created.integration_id && run.len() < limit as usize {
                run.push(event);
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(run)
}

/// How many users joined the run of `created` (as [`run_of`] would list them, without reading
/// their data): enough to skip a run that a filter or an offset leaves out.
pub(crate) fn users_in_run(
    conn: &Db<'_>,
    created: &Event,
    limit: u32,
) -> Result<usize, StoreError> {
    let mut users = 0;
    conn.scan(
        "SELECT kind, integration_id FROM events \
         WHERE meeting_id = ?1 AND (at > ?2 OR (at = ?2 AND id > ?3)) ORDER BY at, id LIMIT ?4",
        params![
            created.meeting_id,
            created.at,
            created.id,
            limit.saturating_add(1)
        ],
        |row| {
            let kind: String = row.get(0)?;
            if kind == EventKind::MeetingCreated.as_str() {
                return Ok(ControlFlow::Break(()));
            }
            let integration = row.get::<Option<i64>>(1)?.map(IntegrationId);
            if kind == EventKind::UserJoined.as_str() && integration == created.integration_id {
                users += 1;
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(users)
}

/// Events of an integration between two times (ms), newest first, at most `limit` after
/// skipping `offset`.
pub(crate) fn for_integration(
    conn: &Db<'_>,
    integration: IntegrationId,
    kind: EventKind,
    (from, to): (i64, i64),
    offset: u32,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    let rows = conn.query(
        "SELECT id, at, kind, integration_id, meeting_id, node_id, data FROM events \
         WHERE integration_id = ?1 AND kind = ?2 AND at >= ?3 AND at < ?4 \
         ORDER BY at DESC, id DESC LIMIT ?5 OFFSET ?6",
        params![integration.0, kind.as_str(), from, to, limit, offset],
        from_row,
    )?;
    Ok(rows)
}

/// The latest create of `meeting_id` by `integration`.
pub(crate) fn latest_created(
    conn: &Db<'_>,
    meeting_id: &str,
    integration: IntegrationId,
) -> Result<Option<Event>, StoreError> {
    conn.query_opt(
        "SELECT id, at, kind, integration_id, meeting_id, node_id, data FROM events \
             WHERE kind = 'meeting_created' AND meeting_id = ?1 AND integration_id = ?2 \
             ORDER BY at DESC, id DESC LIMIT 1",
        params![meeting_id, integration.0],
        from_row,
    )
}

/// The query parameters of the latest create of `meeting_id` by `integration` (passwords and
/// checksum are never logged).
pub(crate) fn created_params(
    conn: &Db<'_>,
    meeting_id: &str,
    integration: IntegrationId,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, StoreError> {
    Ok(latest_created(conn, meeting_id, integration)?
        .and_then(|e| e.data.get("query").and_then(|q| q.as_object()).cloned()))
}

/// How getMeetingEvents reads runs of meetings (see [`Store::meeting_runs`]).
#[derive(Debug, Clone, Copy)]
pub struct RunQuery {
    pub integration: IntegrationId,
    /// Creates between these times (ms).
    pub from: i64,
    pub to: i64,
    /// Runs with fewer joins are skipped.
    pub min_users: usize,
    pub offset: u32,
    pub limit: u32,
}

/// Events of one run read at most (so a meeting's end is still found after many rejoins).
const MAX_RUN: u32 = 5000;
/// Creates read per round trip, and at most per query (sparse `min_users` filters).
const PAGE: u32 = 200;
const MAX_SCANNED: u32 = 10_000;

impl Store {
    /// Logs one event.
    pub async fn log(&self, event: NewEvent) -> Result<(), StoreError> {
        self.run(move |c| event.write(c)).await
    }

    /// Logs events in one transaction (imports, benchmarks).
    pub async fn log_events(&self, events: Vec<NewEvent>) -> Result<(), StoreError> {
        self.write(move |c| events.iter().try_for_each(|e| e.write(c)))
            .await
    }

    /// Meeting runs for getMeetingEvents, newest first: each create with the events that
    /// followed it (up to the meeting's next create). Creates are read a page at a time and
    /// each run only as far as its next create, so the cost is bounded by what is answered, not
    /// by how often an ID was used; at most 10,000 creates are looked at.
    pub async fn meeting_runs(&self, q: RunQuery) -> Result<Vec<(Event, Vec<Event>)>, StoreError> {
        self.read(move |c| {
            let mut out = Vec::new();
            let (mut skipped, mut scanned) = (0, 0);
            while out.len() < q.limit as usize && scanned < MAX_SCANNED {
                let page = for_integration(
                    c,
                    q.integration,
                    EventKind::MeetingCreated,
                    (q.from, q.to),
                    scanned,
                    PAGE,
                )?;
                scanned += PAGE;
                let last_page = page.len() < PAGE as usize;
                for created in page {
                    if users_in_run(c, &created, MAX_RUN)? < q.min_users {
                        continue;
                    }
                    if skipped < q.offset {
                        skipped += 1;
                        continue;
                    }
                    let run = run_of(c, &created, MAX_RUN)?;
                    out.push((created, run));
                    if out.len() == q.limit as usize {
                        break;
                    }
                }
                if last_page {
                    break;
                }
            }
            Ok(out)
        })
        .await
    }

    /// The current run of a meeting: its latest create and what followed (at most `limit`
    /// events), oldest first; empty if it was never created.
    pub async fn current_run(
        &self,
        meeting_id: &str,
        integration: IntegrationId,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let id = meeting_id.to_owned();
        self.read(move |c| {
            Ok(match latest_created(c, &id, integration)? {
                Some(created) => {
                    let run = run_of(c, &created, limit)?;
                    std::iter::once(created).chain(run).collect()
                }
                None => Vec::new(),
            })
        })
        .await
    }

    /// The parameters of the meeting's latest create (the recording-ready URL's source).
    pub async fn created_params(
        &self,
        meeting_id: &str,
        integration: IntegrationId,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, StoreError> {
        let id = meeting_id.to_owned();
        self.read(move |c| created_params(c, &id, integration))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    #[test]
    fn a_run_ends_at_the_next_create_and_keeps_to_its_integration() {
        for store in crate::testing::stores() {
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

    #[tokio::test]
    async fn meeting_runs_page_and_filter_through_the_store() {
        for store in crate::testing::stores() {
            let (integration, node) = (IntegrationId(1), NodeId(1));
            let event = |kind, meeting: &str| {
                NewEvent::meeting(kind, integration, meeting, node, serde_json::json!({}))
            };
            // Three runs of one room (the newest with two joins), one run of another with none.
            let mut events = Vec::new();
            for joins in [0, 1, 2] {
                events.push(event(EventKind::MeetingCreated, "room"));
                for _ in 0..joins {
                    events.push(event(EventKind::UserJoined, "room"));
                }
                events.push(event(EventKind::MeetingEnded, "room"));
            }
            events.push(event(EventKind::MeetingCreated, "other"));
            store.log_events(events).await.unwrap();
            let q = RunQuery {
                integration,
                from: 0,
                to: i64::MAX,
                min_users: 1,
                offset: 0,
                limit: 10,
            };
            let runs = store.meeting_runs(q).await.unwrap();
            let joins: Vec<usize> = runs
                .iter()
                .map(|(_, run)| run.iter().filter(|e| e.kind == "user_joined").count())
                .collect();
            assert_eq!(joins, [2, 1], "newest first, runs without joins skipped");
            let page = store
                .meeting_runs(RunQuery {
                    offset: 1,
                    limit: 1,
                    ..q
                })
                .await
                .unwrap();
            assert_eq!(page.len(), 1);
            assert_eq!(
                page[0].1.iter().filter(|e| e.kind == "user_joined").count(),
                1
            );
            let all = store
                .meeting_runs(RunQuery { min_users: 0, ..q })
                .await
                .unwrap();
            assert_eq!(all.len(), 4);
        }
    }
}
