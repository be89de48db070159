//! Nodes in the store: add, list, change state, record poll results.

use std::fmt;
use std::str::FromStr;

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{now_ms, StoreError};
use conflux_shared::Secret;

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
    /// Configured location (degrees).
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// An admin's override of automatic disabling by monitoring.
    pub forced: Option<Forced>,
    /// TCP ports checked on this node; empty = the configured default.
    pub ports: Vec<u16>,
    /// The key its agent signs reports with (set at enrolment).
    pub agent_key: Option<Secret>,
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
    pub url: String,
    pub secret: Secret,
    pub load_multiplier: f64,
    pub tags: Vec<String>,
    pub state: NodeState,
}

/// What `servers update` may change; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct NodeUpdate {
    pub url: Option<String>,
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
    latitude, longitude, forced, ports, agent_key";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Node> {
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
        tags: split_tags(&tags),
        meetings: row.get(10)?,
        users: row.get(11)?,
        largest_meeting: row.get(12)?,
        videos: row.get(13)?,
        voice: row.get(14)?,
        polled_at: row.get(15)?,
        latitude: row.get(16)?,
        longitude: row.get(17)?,
        forced: match row.get::<_, Option<String>>(18)?.as_deref() {
            Some("enabled") => Some(Forced::Enabled),
            Some("disabled") => Some(Forced::Disabled),
            _ => None,
        },
        ports: row
            .get::<_, String>(19)?
            .split(',')
            .filter_map(|p| p.trim().parse().ok())
            .collect(),
        agent_key: row.get::<_, Option<String>>(20)?.map(Secret),
    })
}

pub fn split_tags(tags: &str) -> Vec<String> {
    tags.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

pub fn list(conn: &Connection) -> Result<Vec<Node>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM nodes ORDER BY name"))?;
    let nodes = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(nodes)
}

/// A node by id (digits) or name.
pub fn find(conn: &Connection, key: &str) -> Result<Node, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM nodes WHERE name = ?1 OR CAST(id AS TEXT) = ?1"
    ))?;
    stmt.query_row([key], from_row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("server {key:?}")))
}

pub fn insert(conn: &Connection, node: &NewNode) -> Result<Node, StoreError> {
    let taken: Option<String> = conn
        .query_row(
            "SELECT name FROM nodes WHERE name = ?1 OR url = ?2",
            params![node.name, node.url],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(name) = taken {
        return Err(StoreError::Conflict(format!(
            "a server with this name or URL exists already ({name})"
        )));
    }
    conn.execute(
        "INSERT INTO nodes (name, url, secret, load_multiplier, tags, state, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![node.name, node.url, node.secret.0, node.load_multiplier, node.tags.join(","), node.state.as_str(), now_ms()],
    )?;
    find(conn, &conn.last_insert_rowid().to_string())
}

/// Sets or clears an admin's override of monitoring.
pub fn set_forced(conn: &Connection, id: NodeId, forced: Option<Forced>) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE nodes SET forced = ?2 WHERE id = ?1",
        params![id.0, forced.map(Forced::as_str)],
    )?;
    Ok(())
}

/// Gives the node a new agent key (enrolment or re-enrolment).
pub fn set_agent_key(conn: &Connection, id: NodeId, key: &Secret) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE nodes SET agent_key = ?2 WHERE id = ?1",
        params![id.0, key.0],
    )?;
    Ok(())
}

pub fn remove(conn: &Connection, id: NodeId) -> Result<(), StoreError> {
    conn.execute("DELETE FROM nodes WHERE id = ?1", [id.0])?;
    Ok(())
}

pub fn set_state(conn: &Connection, id: NodeId, state: NodeState) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE nodes SET state = ?2 WHERE id = ?1",
        params![id.0, state.as_str()],
    )?;
    Ok(())
}

pub fn update(conn: &Connection, id: NodeId, change: &NodeUpdate) -> Result<Node, StoreError> {
    if let Some(url) = &change.url {
        conn.execute(
            "UPDATE nodes SET url = ?2 WHERE id = ?1",
            params![id.0, url],
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
    find(conn, &id.0.to_string())
}

/// Stores a poll's counters and health streaks. Returns the node's new online flag when it
/// changed (after `healthy`/`unhealthy` consecutive results, as Scalelite counts).
pub fn record_poll(
    conn: &Connection,
    id: NodeId,
    result: &PollResult,
    healthy: u32,
    unhealthy: u32,
) -> Result<Option<bool>, StoreError> {
    let node = find(conn, &id.0.to_string())?;
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
             largest_meeting = ?6, videos = ?7, voice = ?8, polled_at = ?9 WHERE id = ?1",
            params![id.0, healthy_streak, online, result.meetings, result.users, result.largest_meeting, result.videos, result.voice, now_ms()],
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
pub fn set_offline(conn: &Connection, id: NodeId) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE nodes SET online = 0, healthy_streak = 0, meetings = 0, users = 0, largest_meeting = 0, videos = 0, voice = 0 WHERE id = ?1",
        [id.0],
    )?;
    Ok(())
}
