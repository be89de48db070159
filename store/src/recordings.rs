//! Recordings in the store: which integration owns each recording, whether found on a node
//! by the poller or handed over as an encrypted archive for the integration's recording server;
//! the feed of changes each recording server applies; the filtered, paginated listing.

use crate::sql::{params, Db, Param, Row};
use conflux_shared::response::{MetaRule, RecordingQuery};
use conflux_shared::transfer::{Change, Feed, FeedEntry};

use super::{now_ms, IntegrationId, NodeId, Store, StoreError};

mod arrival;
mod backlog;
mod meta;
mod operations;

pub use arrival::*;
use backlog::{archive_backlog, refused_archives};
pub(crate) use meta::{index_all_meta, index_meta};
pub use operations::*;

/// A stored recording.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingRecord {
    pub record_id: String,
    pub integration_id: IntegrationId,
    pub node_id: Option<NodeId>,
    pub meeting_id: String,
    pub state: String,
    /// The `<recording>` element as getRecordings shows it.
    pub xml: String,
    /// `None` for recordings on nodes; else where its encrypted archive stands.
    pub archive: Option<ArchiveState>,
    pub protected: bool,
}

/// The integration that created `meeting_id` most recently (from the event log), on `node`
/// or, without one, on any node.
pub(crate) fn owner_of(
    conn: &Db<'_>,
    meeting_id: &str,
    node: Option<NodeId>,
) -> Result<Option<IntegrationId>, StoreError> {
    let owner = conn
        .query_opt(
            "SELECT integration_id FROM events WHERE kind = 'meeting_created' AND meeting_id = ?1 \
             AND (CAST(?2 AS BIGINT) IS NULL OR node_id = ?2) AND integration_id IS NOT NULL ORDER BY at DESC, id DESC LIMIT 1",
            params![meeting_id, node.map(|n| n.0)],
            |r| r.get(0),
        )?;
    Ok(owner.map(IntegrationId))
}

/// Inserts or refreshes a recording found on a node (archived recordings are left alone); its
/// metadata index follows when its listing changed.
pub(crate) fn upsert(
    conn: &Db<'_>,
    r: &RecordingRecord,
    start_time: u64,
    end_time: u64,
) -> Result<(), StoreError> {
    let stored: Option<String> = conn.query_opt(
        "SELECT xml FROM recordings WHERE record_id = ?1",
        params![r.record_id],
        |row| row.get(0),
    )?;
    if stored.as_deref() == Some(r.xml.as_str()) {
        conn.execute(
            "UPDATE recordings SET node_id = ?2, seen_at = ?3 WHERE record_id = ?1 AND archive IS NULL",
            params![r.record_id, r.node_id.map(|n| n.0), now_ms()],
        )?;
        return Ok(());
    }
    conn.execute(
        "INSERT INTO recordings (record_id, integration_id, node_id, meeting_id, state, start_time, end_time, xml, seen_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (record_id) DO UPDATE SET node_id = ?3, state = ?5, xml = ?8, seen_at = ?9 \
         WHERE recordings.archive IS NULL",
        params![
            r.record_id,
            r.integration_id.0,
            r.node_id.map(|n| n.0),
            r.meeting_id,
            r.state,
            clamp(start_time),
            clamp(end_time),
            r.xml,
            now_ms()
        ],
    )?;
    index_meta(conn, &r.record_id)
}

const COLUMNS: &str =
    "record_id, integration_id, node_id, meeting_id, state, xml, archive, protected";

/// The recordings `filter` (a `WHERE` clause) selects, newest first, then `page` (a
/// `LIMIT .. OFFSET ..` or nothing). The page is found first among the record ids (in
/// `recordings_listing`, which holds the order and the state, when the filter allows), and
/// only its rows are read: a deep offset skips index entries, not recordings.
fn select(
    conn: &Db<'_>,
    filter: &str,
    page: &str,
    params: &[&dyn Param],
) -> Result<Vec<RecordingRecord>, StoreError> {
    const ORDER: &str = "ORDER BY start_time DESC, record_id";
    let sql = if page.is_empty() {
        format!("SELECT {COLUMNS} FROM recordings {filter} {ORDER}")
    } else {
        format!(
            "SELECT {COLUMNS} FROM recordings WHERE record_id IN \
             (SELECT record_id FROM recordings {filter} {ORDER}{page}) {ORDER}"
        )
    };
    conn.query(&sql, params, row_to_record)
}

/// The recordings of `integration` among `ids` (exact ids).
pub(crate) fn by_ids(
    conn: &Db<'_>,
    integration: IntegrationId,
    ids: &[String],
) -> Result<Vec<RecordingRecord>, StoreError> {
    let marks: Vec<String> = (2..ids.len() + 2).map(|n| format!("?{n}")).collect();
    let mut values: Vec<Box<dyn Param>> = vec![Box::new(integration.0)];
    values.extend(ids.iter().map(|i| Box::new(i.as_str()) as Box<dyn Param>));
    select(
        conn,
        &format!(
            "WHERE integration_id = ?1 AND record_id IN ({})",
            marks.join(",")
        ),
        "",
        &refs(&values),
    )
}

/// The recordings of `integration` that pass `q`'s filters (metadata on its index), newest
/// first, then `q`'s page.
pub(crate) fn query(
    conn: &Db<'_>,
    integration: IntegrationId,
    q: &RecordingQuery,
) -> Result<Vec<RecordingRecord>, StoreError> {
    // With a record, meeting or metadata filter, their indexes are the selective ones (`+`
    // keeps SQLite from walking the integration's whole listing instead, checking each entry).
    let selective = !q.record_ids.is_empty() || !q.meeting_ids.is_empty() || !q.meta.is_empty();
    let mut filter = String::from(if selective {
        "WHERE +integration_id = ?1"
    } else {
        "WHERE integration_id = ?1"
    });
    let mut values: Vec<Box<dyn Param>> = vec![Box::new(integration.0)];
    let mut any_of = |clause: &dyn Fn(&str) -> String, items: Vec<String>| {
        if items.is_empty() {
            return;
        }
        let clauses: Vec<String> = items
            .into_iter()
            .map(|item| {
                values.push(Box::new(item));
                clause(&format!("?{}", values.len()))
            })
            .collect();
        filter.push_str(&format!(" AND ({})", clauses.join(" OR ")));
    };
    // Case-sensitive literal prefixes, as BBB matches them (on the primary key's index).
    any_of(
        &|p| conn.starts_with("record_id", p),
        q.record_ids
            .iter()
            .map(|id| conn.prefix_pattern(id))
            .collect(),
    );
    any_of(&|p| format!("meeting_id = {p}"), q.meeting_ids.clone());
    any_of(&|p| format!("state = {p}"), q.states.clone());
    // Metadata filters, on the metadata index (keys lower-cased as stored there).
    let mut meta = |pairs: Vec<(String, Vec<String>)>| {
        let clauses: Vec<String> = pairs
            .into_iter()
            .map(|(key, list)| {
                values.push(Box::new(key.to_ascii_lowercase()));
                let key = format!("?{}", values.len());
                let list: Vec<String> = list
                    .into_iter()
                    .map(|v| {
                        values.push(Box::new(v));
                        format!("?{}", values.len())
                    })
                    .collect();
                format!("(key = {key} AND value IN ({}))", list.join(", "))
            })
            .collect();
        if !clauses.is_empty() {
            filter.push_str(&format!(
                " AND record_id IN (SELECT record_id FROM recording_meta WHERE integration_id = ?1 AND ({}))",
                clauses.join(" OR ")
            ));
        }
    };
    match q.meta_rule {
        // Every metadata filter must hold (each its own AND).
        MetaRule::All => {
            for (key, value) in q.meta.iter().filter(|(_, value)| !value.is_empty()) {
                meta(vec![(key.clone(), vec![value.clone()])]);
            }
        }
        // Any key with any of its listed values.
        MetaRule::AnyOf => meta(
            q.meta
                .iter()
                .map(|(key, values)| {
                    let list: Vec<String> = values
                        .split(',')
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(String::from)
                        .collect();
                    (key.clone(), list)
                })
                .filter(|(_, list)| !list.is_empty())
                .collect(),
        ),
    }
    let page = conn.page(q.limit, q.offset);
    select(conn, &filter, &page, &refs(&values))
}

fn refs<'a>(values: &'a [Box<dyn Param + 'a>]) -> Vec<&'a dyn Param> {
    values.iter().map(|v| &**v as &dyn Param).collect()
}

impl RecordingRecord {
    /// A recording as `node` lists it, owned by `integration`.
    pub fn on_node(
        r: &conflux_shared::response::Recording,
        integration: IntegrationId,
        node: NodeId,
    ) -> RecordingRecord {
        RecordingRecord {
            record_id: r.record_id.clone(),
            integration_id: integration,
            node_id: Some(node),
            meeting_id: r.meeting_id.clone(),
            state: r.state.clone(),
            xml: r.to_element().to_xml(),
            archive: None,
            protected: false,
        }
    }
}

/// Where a recording's encrypted archive stands (the `archive` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveState {
    /// On the balancer, waiting for its recorder.
    Stored,
    /// On its recorder.
    Done,
    /// Refused by its recorder (kept aside for inspection).
    Failed,
    Deleted,
}

impl ArchiveState {
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveState::Stored => "stored",
            ArchiveState::Done => "done",
            ArchiveState::Failed => "failed",
            ArchiveState::Deleted => "deleted",
        }
    }

    fn parse(text: &str) -> Option<ArchiveState> {
        [
            ArchiveState::Stored,
            ArchiveState::Done,
            ArchiveState::Failed,
            ArchiveState::Deleted,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

fn row_to_record(row: &Row<'_>) -> Result<RecordingRecord, StoreError> {
    Ok(RecordingRecord {
        record_id: row.get(0)?,
        integration_id: IntegrationId(row.get(1)?),
        node_id: row.get::<Option<i64>>(2)?.map(NodeId),
        meeting_id: row.get(3)?,
        state: row.get(4)?,
        xml: row.get(5)?,
        archive: row
            .get::<Option<String>>(6)?
            .map(|a| {
                ArchiveState::parse(&a)
                    .ok_or_else(|| StoreError::Damaged(format!("recording archive state {a:?}")))
            })
            .transpose()?,
        protected: row.get(7)?,
    })
}

/// Recordings of a node seen before `before` (ms): gone from the node since.
pub(crate) fn remove_unseen(conn: &Db<'_>, node: NodeId, before: i64) -> Result<usize, StoreError> {
    conn.execute(
        "DELETE FROM recordings WHERE node_id = ?1 AND seen_at < ?2 AND archive IS NULL",
        params![node.0, before],
    )
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Appends a change to the feed of `integration`'s recorder.
pub(crate) fn push_change(
    conn: &Db<'_>,
    integration: IntegrationId,
    record_id: &str,
    change: &Change,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(change).map_err(|e| StoreError::Conflict(e.to_string()))?;
    conn.execute(
        "INSERT INTO recorder_feed (integration_id, record_id, change, at) VALUES (?1, ?2, ?3, ?4)",
        params![integration.0, record_id, json, now_ms()],
    )?;
    Ok(())
}

/// Up to `limit` feed entries of `integration` after position `since`.
pub(crate) fn feed(
    conn: &Db<'_>,
    integration: IntegrationId,
    since: i64,
    limit: usize,
) -> Result<Feed, StoreError> {
    let rows: Vec<(i64, String, String)> = conn.query("SELECT seq, record_id, change FROM recorder_feed WHERE integration_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3", 
            params![integration.0, since, i64::try_from(limit).unwrap_or(500)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
    // An entry that cannot be read is never skipped (the recorder would lose it): the feed
    // stops before it, and fails when it is the first one, until an operator repairs it.
    let mut entries = Vec::new();
    for (seq, record_id, json) in rows {
        match serde_json::from_str(&json) {
            Ok(change) => entries.push(FeedEntry {
                seq,
                record_id,
                change,
            }),
            Err(e) if entries.is_empty() => {
                return Err(StoreError::Damaged(format!(
                    "recorder feed entry {seq} ({record_id}): {e}"
                )))
            }
            Err(_) => break,
        }
    }
    let next = entries.last().map_or(since, |e| e.seq);
    Ok(Feed { entries, next })
}

/// Whether `integration` owns an archive of `record_id` that waits for its recorder.
pub(crate) fn archive_waiting(
    conn: &Db<'_>,
    integration: IntegrationId,
    record_id: &str,
) -> Result<bool, StoreError> {
    conn
        .exists("SELECT 1 FROM recordings WHERE record_id = ?1 AND integration_id = ?2 AND archive = 'stored'", params![record_id, integration.0])
}

/// The recorder processed `record_id`: `xml` is its `<recording>` with playback on the recorder.
/// Returns false when the recording is unknown, not the integration's, or deleted meanwhile.
pub(crate) fn processed(
    conn: &Db<'_>,
    integration: IntegrationId,
    record_id: &str,
    state: &str,
    xml: &str,
) -> Result<bool, StoreError> {
    let done = conn.execute(
        "UPDATE recordings SET archive = 'done', state = ?3, xml = ?4, failure = NULL, seen_at = ?5 \
         WHERE record_id = ?1 AND integration_id = ?2 AND archive IN ('stored', 'failed', 'done')",
        params![record_id, integration.0, state, xml, now_ms()],
    )? == 1;
    if done {
        index_meta(conn, record_id)?;
    }
    Ok(done)
}

/// The recorder refused the archive of `record_id` (kept for inspection).
pub(crate) fn failed(
    conn: &Db<'_>,
    integration: IntegrationId,
    record_id: &str,
    reason: &str,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE recordings SET archive = 'failed', state = 'failed', failure = ?3 \
         WHERE record_id = ?1 AND integration_id = ?2 AND archive = 'stored'",
        params![record_id, integration.0, reason],
    )? == 1)
}

/// Record ids whose copy `node` may drop: the recorder has them, or they were deleted.
pub(crate) fn settled_on(conn: &Db<'_>, node: NodeId) -> Result<Vec<String>, StoreError> {
    let ids = conn.query("SELECT record_id FROM recordings WHERE archive_node = ?1 AND archive IN ('done', 'deleted')", params![node.0], |r| r.get(0))?;
    Ok(ids)
}

/// `node` dropped its copy of `record_id`.
pub(crate) fn dropped(conn: &Db<'_>, node: NodeId, record_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE recordings SET archive_node = NULL WHERE record_id = ?1 AND archive_node = ?2",
        params![record_id, node.0],
    )?;
    Ok(())
}

/// Marks `record_id` deleted (listed only with state=deleted/any, without metadata or
/// playback, as Scalelite does) and queues the deletion for the recorder when it has a copy.
pub(crate) fn delete(
    conn: &Db<'_>,
    integration: IntegrationId,
    record_id: &str,
    xml: &str,
) -> Result<(), StoreError> {
    let archived: Option<Option<String>> = conn.query_opt(
        "SELECT archive FROM recordings WHERE record_id = ?1 AND integration_id = ?2",
        params![record_id, integration.0],
        |r| r.get(0),
    )?;
    conn.execute(
        "UPDATE recordings SET state = 'deleted', xml = ?3, \
         archive = CASE WHEN archive IS NULL THEN NULL ELSE 'deleted' END \
         WHERE record_id = ?1 AND integration_id = ?2",
        params![record_id, integration.0, xml],
    )?;
    index_meta(conn, record_id)?;
    if matches!(archived, Some(Some(_))) {
        push_change(conn, integration, record_id, &Change::Delete)?;
    }
    Ok(())
}

/// Sets the stored `<recording>` (and state) of a recording after publish/update.
pub(crate) fn set_xml(
    conn: &Db<'_>,
    record_id: &str,
    state: &str,
    xml: &str,
    protected: bool,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE recordings SET state = ?2, xml = ?3, protected = ?4 WHERE record_id = ?1",
        params![record_id, state, xml, protected],
    )?;
    index_meta(conn, record_id)
}

/// Recordings of `integration` that ended before `before_ms` and are not deleted yet.
pub(crate) fn expired(
    conn: &Db<'_>,
    integration: IntegrationId,
    before_ms: i64,
) -> Result<Vec<RecordingRecord>, StoreError> {
    select(
        conn,
        "WHERE integration_id = ?1 AND state != 'deleted' AND end_time > 0 AND end_time < ?2",
        "",
        params![integration.0, before_ms],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations;
    use conflux_shared::response::Recording;
    use conflux_shared::Query;

    fn ids(conn: &Db<'_>, integration: IntegrationId, query: &str) -> Vec<String> {
        ids_by(conn, integration, query, MetaRule::All)
    }

    fn ids_by(
        conn: &Db<'_>,
        integration: IntegrationId,
        query: &str,
        rule: MetaRule,
    ) -> Vec<String> {
        let mut q = RecordingQuery::from_query(&Query::parse(query).unwrap()).unwrap();
        q.meta_rule = rule;
        let rows = super::query(conn, integration, &q).unwrap();
        rows.into_iter().map(|r| r.record_id).collect()
    }

    #[test]
    fn the_owner_is_the_integration_that_created_the_meeting_on_that_node() {
        for store in crate::testing::stores() {
            store
                .blocking(|c| {
                    let created = |integration, node| {
                        crate::events::log(
                            c,
                            crate::EventKind::MeetingCreated,
                            Some(IntegrationId(integration)),
                            Some("m1"),
                            Some(NodeId(node)),
                            &serde_json::Value::Null,
                        )
                    };
                    created(1, 10)?;
                    created(2, 20)?;
                    assert_eq!(owner_of(c, "m1", Some(NodeId(10)))?, Some(IntegrationId(1)));
                    assert_eq!(owner_of(c, "m1", None)?, Some(IntegrationId(2)));
                    assert_eq!(owner_of(c, "m1", Some(NodeId(30)))?, None);
                    assert_eq!(owner_of(c, "m2", None)?, None);
                    Ok(())
                })
                .unwrap();
        }
    }

    #[test]
    fn filters_prefixes_literally_and_narrows_by_metadata() {
        for store in crate::testing::stores() {
            store
                .blocking(|c| {
                    let i = integrations::insert(
                        c,
                        &integrations::NewIntegration {
                            name: "uni".into(),
                            secret: conflux_shared::Secret("s3cret-0123456789".into()),
                        },
                    )?
                    .id;
                    for (n, (rid, meeting, course)) in [
                        ("abc-1", "m1", "Physics & Co"),
                        ("abc-2", "m1", "math"),
                        ("ABC-3", "m2", "math"),
                        ("a*c-4", "m3", "math"),
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        let r = Recording {
                            record_id: rid.into(),
                            meeting_id: meeting.into(),
                            state: "published".into(),
                            published: true,
                            start_time: n as u64,
                            metadata: vec![
                                ("course".into(), course.into()),
                                ("meetingName".into(), "Hidden".into()),
                            ],
                            ..Recording::default()
                        };
                        let record = RecordingRecord {
                            record_id: rid.into(),
                            integration_id: i,
                            node_id: None,
                            meeting_id: meeting.into(),
                            state: r.state.clone(),
                            xml: r.to_element().to_xml(),
                            archive: None,
                            protected: false,
                        };
                        upsert(c, &record, r.start_time, 0)?;
                    }
                    assert_eq!(ids(c, i, "recordID=abc"), ["abc-2", "abc-1"]);
                    assert_eq!(ids(c, i, "recordID=a*c"), ["a*c-4"]);
                    assert_eq!(ids(c, i, "recordID=ABC,a%2A"), ["a*c-4", "ABC-3"]);
                    assert_eq!(ids(c, i, "meetingID=m1&limit=1&offset=1"), ["abc-1"]);
                    assert_eq!(ids(c, i, "meta_course=math&meetingID=m2"), ["ABC-3"]);
                    assert_eq!(ids(c, i, "meta_Course=Physics%20%26%20Co"), ["abc-1"]);
                    assert_eq!(ids(c, i, "state=deleted"), Vec::<String>::new());
                    // Metadata on its index: paginated in SQL, values exact, hidden keys
                    // (BBB's repeated ones) not searchable, Scalelite's rule on request.
                    let math = ["a*c-4", "ABC-3", "abc-2"];
                    assert_eq!(ids(c, i, "meta_course=math"), math);
                    assert_eq!(ids(c, i, "meta_course=math&limit=1&offset=1"), ["ABC-3"]);
                    assert!(ids(c, i, "meta_course=MATH").is_empty());
                    assert!(ids(c, i, "meta_meetingName=Hidden").is_empty());
                    assert!(ids(c, i, "meta_course=math&meta_term=fall").is_empty());
                    let any = |q| ids_by(c, i, q, MetaRule::AnyOf);
                    assert_eq!(
                        any("meta_course=Physics%20%26%20Co,none&meta_term=fall"),
                        ["abc-1"]
                    );
                    assert_eq!(any("meta_course=math&meta_term=fall").len(), 3);
                    // The index follows an edit.
                    let edited = Recording {
                        record_id: "abc-1".into(),
                        metadata: vec![("course".into(), "math".into())],
                        ..Recording::default()
                    };
                    set_xml(
                        c,
                        "abc-1",
                        "published",
                        &edited.to_element().to_xml(),
                        false,
                    )?;
                    assert_eq!(ids(c, i, "meta_course=math").len(), 4);
                    assert!(ids(c, i, "meta_course=Physics%20%26%20Co").is_empty());
                    Ok(())
                })
                .unwrap();
        }
    }
}
