//! Nodes in the store: add, list, change state, record poll results.

use std::fmt;
use std::str::FromStr;

use crate::sql::{params, Db, Row};

use super::{meetings, now_ms, Audit, Store, StoreError};
use conflux_shared::Secret;

mod changes;

pub use changes::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub i64);

/// An operator's choice for a node (Scalelite's server states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Takes new meetings.
    Enabled,
    /// Keeps its meetings, takes no new ones; becomes disabled once empty.
    Cordoned,
    /// Takes nothing and is not polled.
    Disabled,
}

/// A node as stored.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: NodeId,
    pub name: String,
    /// The API base, ending in `/bigbluebutton/api`.
    pub url: String,
    pub secret: Secret,
    pub state: NodeState,
    pub online: bool,
    pub healthy_streak: u32,
    pub unhealthy_streak: u32,
    pub load_multiplier: f64,
    pub tags: Vec<String>,
    pub meetings: u32,
    pub users: u32,
    pub largest_meeting: u32,
    pub videos: u32,
    pub voice: u32,
    pub polled_at: Option<i64>,
    /// Scalelite's load as the last poll computed it, before the multiplier.
    pub poll_load: f64,
    /// Configured location (degrees).
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// An admin's override of automatic disabling by monitoring.
    pub forced: Option<Forced>,
    /// TCP ports checked on this node; empty = the configured default.
    pub ports: Vec<u16>,
    /// The key its agent signs reports with (set at enrolment).
    pub agent_key: Option<Secret>,
    /// The URL as it was given (`None`: as `url`), trailing slash and all.
    pub given_url: Option<String>,
}

impl Node {
    /// The URL as the operator gave it, for listings (Scalelite's API shows it so).
    pub fn shown_url(&self) -> &str {
        self.given_url.as_deref().unwrap_or(&self.url)
    }
}

/// An admin's override of monitoring's automatic disable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forced {
    /// Takes meetings even with WARNING or CRITICAL checks.
    Enabled,
    /// Takes no new meetings whatever the checks say.
    Disabled,
}

impl Forced {
    pub fn as_str(self) -> &'static str {
        match self {
            Forced::Enabled => "enabled",
            Forced::Disabled => "disabled",
        }
    }
}

/// What `servers add` stores.
#[derive(Debug, Clone)]
pub struct NewNode {
    pub name: String,
    /// The API base.
    pub url: String,
    /// As given, when it differs from `url`.
    pub given_url: Option<String>,
    pub secret: Secret,
    pub load_multiplier: f64,
    pub tags: Vec<String>,
    pub state: NodeState,
}

/// What `servers update` may change; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct NodeUpdate {
    pub url: Option<String>,
    /// `Some(None)`: as `url`.
    pub given_url: Option<Option<String>>,
    pub secret: Option<Secret>,
    pub load_multiplier: Option<f64>,
    pub tags: Option<Vec<String>>,
    /// `Some(None)` clears the location.
    pub location: Option<Option<(f64, f64)>>,
    pub ports: Option<Vec<u16>>,
}

/// The outcome of polling one node.
#[derive(Debug, Clone, Default)]
pub struct PollResult {
    pub ok: bool,
    pub meetings: u32,
    pub users: u32,
    pub largest_meeting: u32,
    pub videos: u32,
    pub voice: u32,
    /// Scalelite's load, before the multiplier.
    pub load: f64,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Enabled => "enabled",
            NodeState::Cordoned => "cordoned",
            NodeState::Disabled => "disabled",
        }
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NodeState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enabled" => Ok(NodeState::Enabled),
            "cordoned" => Ok(NodeState::Cordoned),
            "disabled" => Ok(NodeState::Disabled),
            other => Err(format!(
                "unknown node state {other:?} (enabled, cordoned, disabled)"
            )),
        }
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

const COLUMNS: &str = "id, name, url, secret, state, online, healthy_streak, unhealthy_streak, \
    load_multiplier, tags, meetings, users, largest_meeting, videos, voice, polled_at, \
    latitude, longitude, forced, ports, agent_key, poll_load, given_url";

fn from_row(row: &Row<'_>) -> Result<Node, StoreError> {
    let state: String = row.get(4)?;
    let tags: String = row.get(9)?;
    Ok(Node {
        id: NodeId(row.get(0)?),
        name: row.get(1)?,
        url: row.get(2)?,
        secret: Secret(row.get(3)?),
        state: state.parse().unwrap_or(NodeState::Disabled),
        online: row.get(5)?,
        healthy_streak: row.get(6)?,
        unhealthy_streak: row.get(7)?,
        load_multiplier: row.get(8)?,
        tags: tags
            .split(',')
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect(),
        meetings: row.get(10)?,
        users: row.get(11)?,
        largest_meeting: row.get(12)?,
        videos: row.get(13)?,
        voice: row.get(14)?,
        polled_at: row.get(15)?,
        latitude: row.get(16)?,
        longitude: row.get(17)?,
        forced: match row.get::<Option<String>>(18)?.as_deref() {
            Some("enabled") => Some(Forced::Enabled),
            Some("disabled") => Some(Forced::Disabled),
            _ => None,
        },
        ports: row
            .get::<String>(19)?
            .split(',')
            .filter_map(|p| p.trim().parse().ok())
            .collect(),
        agent_key: row.get::<Option<String>>(20)?.map(Secret),
        poll_load: row.get(21)?,
        given_url: row.get(22)?,
    })
}

pub(crate) fn list(conn: &Db<'_>) -> Result<Vec<Node>, StoreError> {
    let nodes = conn.query(
        &format!("SELECT {COLUMNS} FROM nodes ORDER BY name"),
        params![],
        from_row,
    )?;
    Ok(nodes)
}

/// A node by name, else by id (digits), each on its index (an operator's key).
pub(crate) fn find(conn: &Db<'_>, key: &str) -> Result<Node, StoreError> {
    let by_name = conn.query_opt(
        &format!("SELECT {COLUMNS} FROM nodes WHERE name = ?1"),
        params![key],
        from_row,
    )?;
    let found = match (by_name, key.parse::<i64>()) {
        (Some(node), _) => Some(node),
        (None, Ok(id)) => by_id(conn, NodeId(id))?,
        (None, Err(_)) => None,
    };
    found.ok_or_else(|| StoreError::NotFound(format!("server {key:?}")))
}

/// A node by its id (the balancer's own lookups: a poll, a change).
pub(crate) fn get(conn: &Db<'_>, id: NodeId) -> Result<Node, StoreError> {
    by_id(conn, id)?.ok_or_else(|| StoreError::NotFound(format!("server {id}")))
}

fn by_id(conn: &Db<'_>, id: NodeId) -> Result<Option<Node>, StoreError> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM nodes WHERE id = ?1"),
        params![id.0],
        from_row,
    )
}

pub(crate) fn insert(conn: &Db<'_>, node: &NewNode) -> Result<Node, StoreError> {
    let taken: Option<String> = conn.query_opt(
        "SELECT name FROM nodes WHERE name = ?1 OR url = ?2",
        params![node.name, node.url],
        |r| r.get(0),
    )?;
    if let Some(name) = taken {
        return Err(StoreError::Conflict(format!(
            "a server with this name or URL exists already ({name})"
        )));
    }
    let id: i64 = conn.query_one(
        "INSERT INTO nodes (name, url, secret, load_multiplier, tags, state, created_at, given_url) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        params![
            node.name,
            node.url,
            node.secret.0,
            node.load_multiplier,
            node.tags.join(","),
            node.state.as_str(),
            now_ms(),
            node.given_url
        ],
        |r| r.get(0),
    )?;
    get(conn, NodeId(id))
}

/// Sets or clears an admin's override of monitoring.
pub(crate) fn set_forced(
    conn: &Db<'_>,
    id: NodeId,
    forced: Option<Forced>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE nodes SET forced = ?2 WHERE id = ?1",
        params![id.0, forced.map(Forced::as_str)],
    )?;
    Ok(())
}

/// Gives the node a new agent key (enrolment or re-enrolment).
pub(crate) fn set_agent_key(conn: &Db<'_>, id: NodeId, key: &Secret) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE nodes SET agent_key = ?2 WHERE id = ?1",
        params![id.0, key.0],
    )?;
    Ok(())
}

pub(crate) fn remove(conn: &Db<'_>, id: NodeId) -> Result<(), StoreError> {
    conn.execute("DELETE FROM nodes WHERE id = ?1", params![id.0])?;
    Ok(())
}

pub(crate) fn set_state(conn: &Db<'_>, id: NodeId, state: NodeState) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE nodes SET state = ?2 WHERE id = ?1",
        params![id.0, state.as_str()],
    )?;
    Ok(())
}

pub(crate) fn update(conn: &Db<'_>, id: NodeId, change: &NodeUpdate) -> Result<Node, StoreError> {
    if let Some(url) = &change.url {
        conn.execute(
            "UPDATE nodes SET url = ?2 WHERE id = ?1",
            params![id.0, url],
        )?;
    }
    if let Some(given) = &change.given_url {
        conn.execute(
            "UPDATE nodes SET given_url = ?2 WHERE id = ?1",
            params![id.0, given],
        )?;
    }
    if let Some(secret) = &change.secret {
        conn.execute(
            "UPDATE nodes SET secret = ?2 WHERE id = ?1",
            params![id.0, secret.0],
        )?;
    }
    if let Some(m) = change.load_multiplier {
        conn.execute(
            "UPDATE nodes SET load_multiplier = ?2 WHERE id = ?1",
            params![id.0, m],
        )?;
    }
    if let Some(tags) = &change.tags {
        conn.execute(
            "UPDATE nodes SET tags = ?2 WHERE id = ?1",
            params![id.0, tags.join(",")],
        )?;
    }
    if let Some(location) = change.location {
        conn.execute(
            "UPDATE nodes SET latitude = ?2, longitude = ?3 WHERE id = ?1",
            params![id.0, location.map(|l| l.0), location.map(|l| l.1)],
        )?;
    }
    if let Some(ports) = &change.ports {
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        conn.execute(
            "UPDATE nodes SET ports = ?2 WHERE id = ?1",
            params![id.0, ports.join(",")],
        )?;
    }
    get(conn, id)
}

/// Stores a poll's counters and health streaks. Returns the node's new online flag when it
/// changed (after `healthy`/`unhealthy` consecutive results, as Scalelite counts).
pub(crate) fn record_poll(
    conn: &Db<'_>,
    id: NodeId,
    result: &PollResult,
    healthy: u32,
    unhealthy: u32,
) -> Result<Option<bool>, StoreError> {
    let node = get(conn, id)?;
    let (healthy_streak, unhealthy_streak) = if result.ok {
        (node.healthy_streak.saturating_add(1), 0)
    } else {
        (0, node.unhealthy_streak.saturating_add(1))
    };
    let online = if result.ok && !node.online && healthy_streak >= healthy {
        true
    } else if !result.ok && node.online && unhealthy_streak >= unhealthy {
        false
    } else {
        node.online
    };
    if result.ok {
        conn.execute(
            "UPDATE nodes SET healthy_streak = ?2, unhealthy_streak = 0, online = ?3, meetings = ?4, users = ?5, \
             largest_meeting = ?6, videos = ?7, voice = ?8, polled_at = ?9, poll_load = CAST(?10 AS DOUBLE PRECISION) WHERE id = ?1",
            params![id.0, healthy_streak, online, result.meetings, result.users, result.largest_meeting, result.videos, result.voice, now_ms(), result.load],
        )?;
    } else {
        conn.execute(
            "UPDATE nodes SET healthy_streak = 0, unhealthy_streak = ?2, online = ?3, polled_at = ?4 WHERE id = ?1",
            params![id.0, unhealthy_streak, online, now_ms()],
        )?;
    }
    Ok((online != node.online).then_some(online))
}

/// Marks a node offline at once (panic, or an operator's disable).
pub(crate) fn set_offline(conn: &Db<'_>, id: NodeId) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE nodes SET online = 0, healthy_streak = 0, meetings = 0, users = 0, largest_meeting = 0, videos = 0, voice = 0, poll_load = 0 WHERE id = ?1",
        params![id.0],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Through the store's interface, on an in-memory database, so the same tests can run
    //! against another backend.
    use super::*;
    use crate::{IntegrationChange, NewIntegration, NewMeeting};

    fn new(name: &str) -> NewNode {
        NewNode {
            given_url: None,
            name: name.into(),
            url: format!("https://{name}.example.org/bigbluebutton/api"),
            secret: Secret("s".into()),
            load_multiplier: 1.0,
            tags: vec!["a".into()],
            state: NodeState::Enabled,
        }
    }

    fn audit(action: &str) -> Audit {
        Audit::new("test", action, "detail")
    }

    async fn with_meeting(store: &Store, node: NodeId, meeting: &str) {
        let integration = store
            .change_integration(
                vec![IntegrationChange::Add(NewIntegration {
                    name: format!("i-{meeting}"),
                    secret: Secret(format!("secret-{meeting}")),
                })],
                audit("integrations add"),
            )
            .await
            .unwrap()
            .unwrap();
        store
            .add_meeting(NewMeeting {
                meeting_id: meeting.into(),
                integration_id: integration.id,
                node_id: node,
                name: "m".into(),
                client_ip: None,
                placement_reason: "test".into(),
                logout_url: None,
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_url_as_given_is_kept_beside_the_api_base() {
        for store in crate::testing::stores() {
            let given = "https://bbb1.example.org/bigbluebutton/api/";
            let added = store
                .change_node(
                    NodeChange::Add(NewNode {
                        given_url: Some(given.into()),
                        ..new("bbb1")
                    }),
                    audit("servers add"),
                )
                .await
                .unwrap()
                .node
                .unwrap();
            assert_eq!(added.shown_url(), given);
            assert_eq!(added.url, "https://bbb1.example.org/bigbluebutton/api");
            let update = |given_url| NodeUpdate {
                url: Some("https://bbb1.example.org/bigbluebutton/api".into()),
                given_url: Some(given_url),
                ..NodeUpdate::default()
            };
            store
                .change_node(NodeChange::Update(added.id, update(None)), audit("u"))
                .await
                .unwrap();
            let node = store.node("bbb1").await.unwrap();
            assert_eq!(node.given_url, None);
            assert_eq!(node.shown_url(), node.url);
        }
    }

    #[tokio::test]
    async fn changes_apply_with_their_audit_row_all_or_nothing() {
        for store in crate::testing::stores() {
            let added = store
                .change_node(NodeChange::Add(new("bbb1")), audit("servers add"))
                .await
                .unwrap();
            let node = added.node.unwrap();
            assert_eq!(store.node("bbb1").await.unwrap().id, node.id);
            assert_eq!(
                store.node(&node.id.0.to_string()).await.unwrap().name,
                "bbb1"
            );
            // A batch whose second change conflicts stores nothing, not even its audit row.
            let refused = store
                .change_nodes(
                    vec![NodeChange::Add(new("bbb2")), NodeChange::Add(new("bbb1"))],
                    audit("servers sync"),
                )
                .await;
            assert!(matches!(refused, Err(StoreError::Conflict(_))));
            assert_eq!(store.nodes().await.unwrap().len(), 1);
            let log = store.audit_log(10).await.unwrap();
            assert_eq!(log.len(), 1);
            assert_eq!(
                (log[0].1.as_str(), log[0].2.as_str()),
                ("test", "servers add")
            );
            let changed = store
                .change_nodes(
                    vec![
                        NodeChange::Update(
                            node.id,
                            NodeUpdate {
                                load_multiplier: Some(2.0),
                                location: Some(Some((1.0, 2.0))),
                                ..NodeUpdate::default()
                            },
                        ),
                        NodeChange::SetState(node.id, NodeState::Cordoned),
                        NodeChange::Force(node.id, Some(Forced::Enabled)),
                    ],
                    audit("servers update"),
                )
                .await
                .unwrap();
            let now = changed.last().unwrap().node.clone().unwrap();
            assert_eq!(now.load_multiplier, 2.0);
            assert_eq!((now.latitude, now.longitude), (Some(1.0), Some(2.0)));
            assert_eq!(now.state, NodeState::Cordoned);
            assert_eq!(now.forced, Some(Forced::Enabled));
            assert!(matches!(
                store.node("nope").await,
                Err(StoreError::NotFound(_))
            ));
        }
    }

    #[tokio::test]
    async fn disable_panic_and_remove_forget_the_nodes_meetings() {
        for store in crate::testing::stores() {
            let mut ids = Vec::new();
            for name in ["a", "b", "c"] {
                let node = store
                    .change_node(NodeChange::Add(new(name)), audit("servers add"))
                    .await
                    .unwrap()
                    .node
                    .unwrap();
                with_meeting(&store, node.id, &format!("m-{name}")).await;
                ids.push(node.id);
            }
            let disabled = store
                .change_node(NodeChange::Disable(ids[0]), audit("servers disable"))
                .await
                .unwrap();
            assert_eq!(disabled.forgotten, vec!["m-a".to_owned()]);
            assert_eq!(disabled.node.unwrap().state, NodeState::Disabled);
            let panicked = store
                .change_node(
                    NodeChange::Panic {
                        id: ids[1],
                        keep_state: true,
                    },
                    audit("servers panic"),
                )
                .await
                .unwrap();
            assert_eq!(panicked.forgotten, vec!["m-b".to_owned()]);
            let node = panicked.node.unwrap();
            assert_eq!((node.state, node.online), (NodeState::Enabled, false));
            let removed = store
                .change_node(NodeChange::Remove(ids[2]), audit("servers remove"))
                .await
                .unwrap();
            assert_eq!(removed.forgotten, vec!["m-c".to_owned()]);
            assert!(removed.node.is_none());
            assert!(store.meetings().await.unwrap().is_empty());
            assert_eq!(store.nodes().await.unwrap().len(), 2);
        }
    }

    #[tokio::test]
    async fn an_agent_enrols_its_url_once_with_a_fresh_key_each_time() {
        for store in crate::testing::stores() {
            let enrolment = |key: &str| Enrolment {
                url: "https://bbb9.example.org/bigbluebutton/api".into(),
                name: "bbb9".into(),
                secret: Secret("node-secret".into()),
                location: Some((10.0, 20.0)),
                agent_key: Secret(key.into()),
                state: NodeState::Disabled,
            };
            let first = store.enrol_node(enrolment("k1")).await.unwrap();
            let again = store.enrol_node(enrolment("k2")).await.unwrap();
            assert_eq!(first.id, again.id);
            let stored = store.node("bbb9").await.unwrap();
            assert_eq!(stored.agent_key, Some(Secret("k2".into())));
            assert_eq!(stored.latitude, Some(10.0));
            assert_eq!(stored.state, NodeState::Disabled);
            assert_eq!(store.nodes().await.unwrap().len(), 1);
        }
    }

    #[tokio::test]
    async fn polls_flip_the_online_flag_after_the_thresholds_and_empty_cordoned_nodes_close() {
        for store in crate::testing::stores() {
            let node = store
                .change_node(NodeChange::Add(new("p")), audit("servers add"))
                .await
                .unwrap()
                .node
                .unwrap();
            let poll = |ok: bool, meetings: Option<Vec<PolledMeeting>>| Poll {
                node: node.id,
                result: PollResult {
                    ok,
                    ..PollResult::default()
                },
                healthy: 2,
                unhealthy: 2,
                meetings,
                started: now_ms(),
                grace_ms: 0,
            };
            assert_eq!(
                store
                    .record_poll_round(poll(true, Some(vec![])))
                    .await
                    .unwrap()
                    .online,
                None
            );
            assert_eq!(
                store
                    .record_poll_round(poll(true, Some(vec![])))
                    .await
                    .unwrap()
                    .online,
                Some(true)
            );
            with_meeting(&store, node.id, "m1").await;
            assert_eq!(
                store
                    .record_poll_round(poll(false, None))
                    .await
                    .unwrap()
                    .online,
                None
            );
            let offline = store.record_poll_round(poll(false, None)).await.unwrap();
            assert_eq!(offline.online, Some(false));
            assert_eq!(offline.forgotten, vec!["m1".to_owned()]);
            // A cordoned node that lists only ended meetings is disabled.
            store
                .change_node(
                    NodeChange::SetState(node.id, NodeState::Cordoned),
                    audit("servers cordon"),
                )
                .await
                .unwrap();
            let ended = PolledMeeting {
                meeting_id: "old".into(),
                internal_meeting_id: "old-1".into(),
                info_xml: "<meeting/>".into(),
                ended: true,
            };
            store
                .record_poll_round(poll(true, Some(vec![ended])))
                .await
                .unwrap();
            assert_eq!(store.node("p").await.unwrap().state, NodeState::Disabled);
        }
    }
}
