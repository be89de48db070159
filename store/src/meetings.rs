//! Meetings in the store: which node hosts each meeting and which integration owns it.

use crate::sql::{params, Db, Row};

use super::{now_ms, Audit, IntegrationId, NewEvent, NodeId, Store, StoreError};

mod listing;

pub use listing::{MeetingFilter, MeetingSummary};

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
    /// The logoutURL it was created with.
    pub logout_url: Option<String>,
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
    pub logout_url: Option<String>,
}

const COLUMNS: &str =
    "meeting_id, integration_id, node_id, internal_meeting_id, name, created_at, client_ip, placement_reason, info_xml, logout_url";

fn from_row(row: &Row<'_>) -> Result<MeetingRecord, StoreError> {
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
        logout_url: row.get(9)?,
    })
}

/// Where a meeting lives: what a balancer keeps of every meeting in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeetingRoute {
    pub integration_id: IntegrationId,
    pub node_id: NodeId,
}

/// Every meeting's route, without the rest of its row (a snapshot of 100,000 meetings read
/// their stored `<meeting>` elements too: hundreds of MB, holding the writer for seconds).
pub(crate) fn routes(conn: &Db<'_>) -> Result<Vec<(String, MeetingRoute)>, StoreError> {
    conn.query(
        "SELECT meeting_id, integration_id, node_id FROM meetings",
        params![],
        |r| {
            Ok((
                r.get(0)?,
                MeetingRoute {
                    integration_id: IntegrationId(r.get(1)?),
                    node_id: NodeId(r.get(2)?),
                },
            ))
        },
    )
}

pub(crate) fn list(conn: &Db<'_>) -> Result<Vec<MeetingRecord>, StoreError> {
    let rows = conn.query(
        &format!("SELECT {COLUMNS} FROM meetings ORDER BY created_at"),
        params![],
        from_row,
    )?;
    Ok(rows)
}

pub(crate) fn find(conn: &Db<'_>, meeting_id: &str) -> Result<Option<MeetingRecord>, StoreError> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM meetings WHERE meeting_id = ?1"),
        params![meeting_id],
        from_row,
    )
}

/// Stores a newly placed meeting (replacing a forgotten one with the same id).
pub(crate) fn insert(conn: &Db<'_>, m: &NewMeeting) -> Result<MeetingRecord, StoreError> {
    conn.execute(
        "INSERT INTO meetings (meeting_id, integration_id, node_id, name, created_at, client_ip, placement_reason, logout_url) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (meeting_id) DO UPDATE SET integration_id = excluded.integration_id, \
         node_id = excluded.node_id, name = excluded.name, created_at = excluded.created_at, \
         client_ip = excluded.client_ip, placement_reason = excluded.placement_reason, \
         logout_url = excluded.logout_url, internal_meeting_id = '', info_xml = NULL, \
         create_query = NULL, relocated_at = NULL",
        params![m.meeting_id, m.integration_id.0, m.node_id.0, m.name, now_ms(), m.client_ip, m.placement_reason, m.logout_url],
    )?;
    find(conn, &m.meeting_id)?
        .ok_or_else(|| StoreError::NotFound(format!("meeting {:?}", m.meeting_id)))
}

/// Remembers the node's view of a meeting (internal id and its `<meeting>` XML).
pub(crate) fn set_info(
    conn: &Db<'_>,
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

pub(crate) fn remove(conn: &Db<'_>, meeting_id: &str) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM meetings WHERE meeting_id = ?1",
        params![meeting_id],
    )? > 0)
}

/// Forgets every meeting of a node (it went offline or was panicked); returns their ids.
pub(crate) fn remove_on_node(conn: &Db<'_>, node: NodeId) -> Result<Vec<String>, StoreError> {
    let ids = conn.query(
        "DELETE FROM meetings WHERE node_id = ?1 RETURNING meeting_id",
        params![node.0],
        |r| r.get(0),
    )?;
    Ok(ids)
}

/// The meetings of one integration, oldest first.
pub(crate) fn for_integration(
    conn: &Db<'_>,
    integration: IntegrationId,
) -> Result<Vec<MeetingRecord>, StoreError> {
    let rows = conn.query(
        &format!("SELECT {COLUMNS} FROM meetings WHERE integration_id = ?1 ORDER BY created_at"),
        params![integration.0],
        from_row,
    )?;
    Ok(rows)
}

/// The meetings placed on one node.
pub(crate) fn for_node(conn: &Db<'_>, node: NodeId) -> Result<Vec<MeetingRecord>, StoreError> {
    let rows = conn.query(
        &format!("SELECT {COLUMNS} FROM meetings WHERE node_id = ?1"),
        params![node.0],
        from_row,
    )?;
    Ok(rows)
}

impl Store {
    /// Every meeting placed.
    pub async fn meetings(&self) -> Result<Vec<MeetingRecord>, StoreError> {
        self.run(list).await
    }

    pub async fn meeting(&self, meeting_id: &str) -> Result<Option<MeetingRecord>, StoreError> {
        let id = meeting_id.to_owned();
        self.run(move |c| find(c, &id)).await
    }

    /// The meetings of an integration (the mobile getMeetings), read on a read-only
    /// connection, beside the writer.
    pub async fn meetings_of(
        &self,
        integration: IntegrationId,
    ) -> Result<Vec<MeetingRecord>, StoreError> {
        self.read(move |c| for_integration(c, integration)).await
    }

    /// Appends the stored `<meeting>` elements of `integration`'s meetings, oldest first, to
    /// `xml` (the body of its getMeetings answer after its head); returns it and how many.
    /// Read on a read-only connection, beside the writer.
    pub async fn meeting_elements(
        &self,
        integration: IntegrationId,
        mut xml: String,
    ) -> Result<(usize, String), StoreError> {
        self.read(move |c| {
            let mut count = 0;
            c.scan(
                "SELECT info_xml FROM meetings WHERE integration_id = ?1 \
                 AND info_xml IS NOT NULL ORDER BY integration_id, created_at",
                params![integration.0],
                |row| {
                    xml.push_str(&row.get::<String>(0)?);
                    count += 1;
                    Ok(std::ops::ControlFlow::Continue(()))
                },
            )?;
            Ok((count, xml))
        })
        .await
    }

    /// The meetings placed on a node.
    pub async fn meetings_on(&self, node: NodeId) -> Result<Vec<MeetingRecord>, StoreError> {
        self.run(move |c| for_node(c, node)).await
    }

    /// Stores a placed meeting (before its create is forwarded), replacing an earlier
    /// placement of the same meeting ID.
    pub async fn add_meeting(&self, new: NewMeeting) -> Result<MeetingRecord, StoreError> {
        self.run(move |c| insert(c, &new)).await
    }

    /// Stores many placed meetings in one transaction (imports, benchmarks).
    pub async fn add_meetings(&self, meetings: Vec<NewMeeting>) -> Result<(), StoreError> {
        self.write(move |c| meetings.iter().try_for_each(|m| insert(c, m).map(|_| ())))
            .await
    }

    /// The node's answer to a create: the meeting's `<meeting>` element and internal id, with
    /// its `meeting_created` event, in one transaction.
    /// `create_query`: the create as forwarded, for a meeting that may still move to its first
    /// user ([`Store::claim_relocation`]).
    pub async fn meeting_created(
        &self,
        internal_meeting_id: String,
        info_xml: String,
        create_query: Option<String>,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        self.write(move |c| {
            let id = event.meeting_id.as_deref().unwrap_or_default();
            set_info(c, id, &internal_meeting_id, &info_xml)?;
            if let Some(query) = &create_query {
                c.execute(
                    "UPDATE meetings SET create_query = ?2 WHERE meeting_id = ?1",
                    params![id, query],
                )?;
            }
            event.write(c)
        })
        .await
    }

    /// Claims the one move of `meeting_id` (still on `from`) to its first user's node: the
    /// create query to repeat there, if the meeting kept one, nobody joined it since it was
    /// created and no move was claimed before (on any balancer).
    pub async fn claim_relocation(
        &self,
        meeting_id: &str,
        from: NodeId,
    ) -> Result<Option<String>, StoreError> {
        const MOVABLE: &str = "meeting_id = ?1 AND node_id = ?2 AND relocated_at IS NULL \
             AND create_query IS NOT NULL AND NOT EXISTS (SELECT 1 FROM events \
             WHERE events.meeting_id = ?1 AND events.kind = 'user_joined' \
             AND events.at >= meetings.created_at)";
        let id = meeting_id.to_owned();
        // Read first: most joins that ask are of meetings already joined, and a write (even of
        // no row) would take the write lock and, on PostgreSQL, signal every balancer.
        let (key, node) = (id.clone(), from.0);
        let movable = self
            .read(move |c| {
                c.exists(
                    &format!("SELECT 1 FROM meetings WHERE {MOVABLE}"),
                    params![key, node],
                )
            })
            .await?;
        if !movable {
            return Ok(None);
        }
        self.write(move |c| {
            c.query_opt(
                &format!(
                    "UPDATE meetings SET relocated_at = ?3 WHERE {MOVABLE} RETURNING create_query"
                ),
                params![id, from.0, now_ms()],
                |r| r.get(0),
            )
        })
        .await
    }

    /// Moves `meeting_id` from `from` to `to`, where it was just created (its internal id and
    /// `<meeting>`), with the create's event; false if it is no longer on `from`.
    pub async fn relocate_meeting(
        &self,
        from: NodeId,
        to: NodeId,
        internal_meeting_id: String,
        info_xml: String,
        reason: String,
        event: NewEvent,
    ) -> Result<bool, StoreError> {
        self.write(move |c| {
            let id = event.meeting_id.clone().unwrap_or_default();
            let moved = c.execute(
                "UPDATE meetings SET node_id = ?3, internal_meeting_id = ?4, info_xml = ?5, \
                 placement_reason = ?6 WHERE meeting_id = ?1 AND node_id = ?2",
                params![id, from.0, to.0, internal_meeting_id, info_xml, reason],
            )? > 0;
            if moved {
                event.write(c)?;
            }
            Ok(moved)
        })
        .await
    }

    /// Replaces a known meeting's `<meeting>` element with a fresher one from its node.
    pub async fn set_meeting_info(
        &self,
        meeting_id: String,
        internal_meeting_id: String,
        info_xml: String,
    ) -> Result<(), StoreError> {
        self.run(move |c| set_info(c, &meeting_id, &internal_meeting_id, &info_xml))
            .await
    }

    /// Forgets a meeting an operator ended, with its audit row, in one transaction.
    pub async fn end_meeting(&self, meeting_id: &str, audit: Audit) -> Result<bool, StoreError> {
        let id = meeting_id.to_owned();
        self.audited(audit, move |c| remove(c, &id)).await
    }

    /// Forgets a meeting (ended, refused, gone); with `event`, logged in the same transaction.
    /// Returns whether it was known.
    pub async fn remove_meeting(
        &self,
        meeting_id: &str,
        event: Option<NewEvent>,
    ) -> Result<bool, StoreError> {
        let id = meeting_id.to_owned();
        self.write(move |c| {
            if let Some(event) = event {
                event.write(c)?;
            }
            remove(c, &id)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    //! Through the store's interface, on each backend.
    use super::*;
    use crate::{
        Audit, EventKind, IntegrationChange, NewIntegration, NewNode, NodeChange, NodeState,
    };
    use conflux_shared::Secret;

    /// `store` with one integration and two nodes.
    async fn filled(store: Store) -> (Store, IntegrationId, NodeId, NodeId) {
        {
            let audit = || Audit::new("test", "add", "");
            let integration = store
                .change_integration(
                    vec![IntegrationChange::Add(NewIntegration {
                        name: "uni".into(),
                        secret: Secret("secret-uni".into()),
                    })],
                    audit(),
                )
                .await
                .unwrap()
                .unwrap()
                .id;
            let mut nodes = Vec::new();
            for name in ["n1", "n2"] {
                let new = NewNode {
                    given_url: None,
                    name: name.into(),
                    url: format!("http://{name}/bigbluebutton/api"),
                    secret: Secret("s".into()),
                    load_multiplier: 1.0,
                    tags: Vec::new(),
                    state: NodeState::Enabled,
                };
                let node = store
                    .change_node(NodeChange::Add(new), audit())
                    .await
                    .unwrap();
                nodes.push(node.node.unwrap().id);
            }
            (store, integration, nodes[0], nodes[1])
        }
    }

    fn meeting(id: &str, integration: IntegrationId, node: NodeId) -> NewMeeting {
        NewMeeting {
            meeting_id: id.into(),
            integration_id: integration,
            node_id: node,
            name: format!("Meeting {id}"),
            client_ip: Some("192.0.2.1".into()),
            placement_reason: "nearest".into(),
            logout_url: Some("https://lms.example.org/".into()),
        }
    }

    #[tokio::test]
    async fn a_meetings_life_create_info_end() {
        for store in crate::testing::stores() {
            let (store, uni, n1, n2) = filled(store).await;
            store.add_meeting(meeting("a", uni, n1)).await.unwrap();
            store.add_meeting(meeting("b", uni, n2)).await.unwrap();
            // Placing a known meeting again replaces its placement (a re-create after it ended).
            store.add_meeting(meeting("a", uni, n2)).await.unwrap();
            assert_eq!(store.meeting("a").await.unwrap().unwrap().node_id, n2);
            store.add_meeting(meeting("a", uni, n1)).await.unwrap();
            let created = NewEvent::meeting(
                EventKind::MeetingCreated,
                uni,
                "a",
                n1,
                serde_json::json!({}),
            );
            store
                .meeting_created("internal-a".into(), "<meeting/>".into(), None, created)
                .await
                .unwrap();
            let a = store.meeting("a").await.unwrap().unwrap();
            assert_eq!(a.internal_meeting_id, "internal-a");
            assert_eq!(a.info_xml.as_deref(), Some("<meeting/>"));
            assert_eq!(store.meetings_of(uni).await.unwrap().len(), 2);
            assert_eq!(store.meetings_on(n2).await.unwrap()[0].meeting_id, "b");
            let ended =
                NewEvent::meeting(EventKind::MeetingEnded, uni, "a", n1, serde_json::json!({}));
            assert!(store.remove_meeting("a", Some(ended)).await.unwrap());
            assert!(!store.remove_meeting("a", None).await.unwrap());
            assert!(store.meeting("a").await.unwrap().is_none());
            let run = store.current_run("a", uni, 10).await.unwrap();
            let kinds: Vec<&str> = run.iter().map(|e| e.kind.as_str()).collect();
            assert_eq!(kinds, ["meeting_created", "meeting_ended"]);
        }
    }

    #[tokio::test]
    async fn a_meeting_moves_once_and_only_before_anyone_joined() {
        for store in crate::testing::stores() {
            let (store, uni, n1, n2) = filled(store).await;
            let event = |kind, id: &str, node| {
                NewEvent::meeting(kind, uni, id, node, serde_json::json!({}))
            };
            for id in ["early", "joined", "bodied"] {
                store.add_meeting(meeting(id, uni, n1)).await.unwrap();
                let query = (id != "bodied").then(|| format!("meetingID={id}&name=x"));
                store
                    .meeting_created(
                        "i".into(),
                        "<meeting/>".into(),
                        query,
                        event(EventKind::MeetingCreated, id, n1),
                    )
                    .await
                    .unwrap();
            }
            store
                .log(event(EventKind::UserJoined, "joined", n1))
                .await
                .unwrap();
            assert_eq!(store.claim_relocation("joined", n1).await.unwrap(), None);
            assert_eq!(store.claim_relocation("bodied", n1).await.unwrap(), None);
            assert_eq!(store.claim_relocation("early", n2).await.unwrap(), None);
            assert_eq!(
                store
                    .claim_relocation("early", n1)
                    .await
                    .unwrap()
                    .as_deref(),
                Some("meetingID=early&name=x")
            );
            assert_eq!(
                store.claim_relocation("early", n1).await.unwrap(),
                None,
                "claimed once"
            );
            let moved = |from| {
                store.relocate_meeting(
                    from,
                    n2,
                    "i2".into(),
                    "<meeting>2</meeting>".into(),
                    "first user".into(),
                    event(EventKind::MeetingCreated, "early", n2),
                )
            };
            assert!(moved(n1).await.unwrap());
            assert!(!moved(n1).await.unwrap(), "no longer on n1");
            let early = store.meeting("early").await.unwrap().unwrap();
            assert_eq!(
                (early.node_id, early.internal_meeting_id.as_str()),
                (n2, "i2")
            );
            assert_eq!(early.placement_reason, "first user");
            assert_eq!(store.owner_of("early", Some(n2)).await.unwrap(), Some(uni));
            // Placed anew (a re-create after it ended): it may move again.
            store.add_meeting(meeting("early", uni, n1)).await.unwrap();
            store
                .meeting_created(
                    "i3".into(),
                    "<meeting/>".into(),
                    Some("q".into()),
                    event(EventKind::MeetingCreated, "early", n1),
                )
                .await
                .unwrap();
            assert!(store.claim_relocation("early", n1).await.unwrap().is_some());
        }
    }
}
