//! The store's typed operations on nodes: operators' changes (each with its audit row),
//! agent enrolment, and a poll's results, each one transaction.

use super::*;

/// One change an operator makes to the pool (the CLI, the admin pages, the Scalelite API, a
/// pool file). [`Store::change_nodes`] applies several in one transaction.
#[derive(Debug, Clone)]
pub enum NodeChange {
    Add(NewNode),
    Update(NodeId, NodeUpdate),
    SetState(NodeId, NodeState),
    Force(NodeId, Option<Forced>),
    /// Disables the node and forgets its meetings (the caller ends them on the node).
    Disable(NodeId),
    /// Removes the node and forgets its meetings.
    Remove(NodeId),
    /// Forgets the node's meetings and marks it offline (and disabled unless `keep_state`).
    Panic {
        id: NodeId,
        keep_state: bool,
    },
}

/// What a [`NodeChange`] did: the node as it is now (`None` once removed) and the meetings it
/// forgot (the caller ends them on the node).
#[derive(Debug, Clone)]
pub struct NodeChanged {
    pub node: Option<Node>,
    pub forgotten: Vec<String>,
}

/// An agent's enrolment: the node of its URL (created if new) gets this secret, location and
/// agent key.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub url: String,
    pub name: String,
    pub secret: Secret,
    pub location: Option<(f64, f64)>,
    pub agent_key: Secret,
    /// The state of a node enrolled for the first time.
    pub state: NodeState,
}

fn apply(c: &Db<'_>, change: NodeChange) -> Result<NodeChanged, StoreError> {
    let now = |id: NodeId| get(c, id).map(Some);
    let (node, forgotten) = match change {
        NodeChange::Add(new) => (Some(insert(c, &new)?), Vec::new()),
        NodeChange::Update(id, change) => (Some(update(c, id, &change)?), Vec::new()),
        NodeChange::SetState(id, state) => {
            set_state(c, id, state)?;
            (now(id)?, Vec::new())
        }
        NodeChange::Force(id, forced) => {
            set_forced(c, id, forced)?;
            crate::events::log(
                c,
                crate::EventKind::NodeState,
                None,
                None,
                Some(id),
                &serde_json::json!({ "forced": forced.map_or("auto", Forced::as_str) }),
            )?;
            (now(id)?, Vec::new())
        }
        NodeChange::Disable(id) => {
            let forgotten = meetings::remove_on_node(c, id)?;
            set_state(c, id, NodeState::Disabled)?;
            (now(id)?, forgotten)
        }
        NodeChange::Remove(id) => {
            let forgotten = meetings::remove_on_node(c, id)?;
            remove(c, id)?;
            (None, forgotten)
        }
        NodeChange::Panic { id, keep_state } => {
            let forgotten = meetings::remove_on_node(c, id)?;
            set_offline(c, id)?;
            if !keep_state {
                set_state(c, id, NodeState::Disabled)?;
            }
            (now(id)?, forgotten)
        }
    };
    Ok(NodeChanged { node, forgotten })
}

impl Store {
    /// Every node, by name.
    pub async fn nodes(&self) -> Result<Vec<Node>, StoreError> {
        self.run(list).await
    }

    /// A node by id (digits) or name.
    pub async fn node(&self, key: &str) -> Result<Node, StoreError> {
        let key = key.to_owned();
        self.run(move |c| find(c, &key)).await
    }

    /// Applies `changes` in order with their audit row, all or nothing.
    pub async fn change_nodes(
        &self,
        changes: Vec<NodeChange>,
        audit: Audit,
    ) -> Result<Vec<NodeChanged>, StoreError> {
        self.audited(audit, move |c| {
            changes.into_iter().map(|change| apply(c, change)).collect()
        })
        .await
    }

    /// One [`NodeChange`] with its audit row.
    pub async fn change_node(
        &self,
        change: NodeChange,
        audit: Audit,
    ) -> Result<NodeChanged, StoreError> {
        self.audited(audit, move |c| apply(c, change)).await
    }

    /// Enrols an agent's node (the same URL again is the same node re-enrolling, with a new
    /// key) and logs the event; returns the node as it was found or created.
    pub async fn enrol_node(&self, e: Enrolment) -> Result<Node, StoreError> {
        self.write(move |c| {
            let existing = list(c)?.into_iter().find(|n| n.url == e.url);
            let node = match existing {
                Some(node) => node,
                None => insert(
                    c,
                    &NewNode {
                        given_url: None,
                        name: e.name,
                        url: e.url,
                        secret: e.secret.clone(),
                        load_multiplier: 1.0,
                        tags: Vec::new(),
                        state: e.state,
                    },
                )?,
            };
            update(
                c,
                node.id,
                &NodeUpdate {
                    secret: Some(e.secret),
                    location: e.location.map(Some),
                    ..NodeUpdate::default()
                },
            )?;
            set_agent_key(c, node.id, &e.agent_key)?;
            crate::events::log(
                c,
                crate::EventKind::NodeState,
                None,
                None,
                Some(node.id),
                &serde_json::json!({ "enrolled": true, "state": node.state.as_str() }),
            )?;
            Ok(node)
        })
        .await
    }
}

/// A meeting as a node's getMeetings lists it.
#[derive(Debug, Clone)]
pub struct PolledMeeting {
    pub meeting_id: String,
    pub internal_meeting_id: String,
    /// The node's `<meeting>` element.
    pub info_xml: String,
    pub ended: bool,
}

/// One node's poll, to be stored by [`Store::record_poll_round`].
#[derive(Debug, Clone)]
pub struct Poll {
    pub node: NodeId,
    pub result: PollResult,
    /// Consecutive results that flip the online flag (Scalelite's thresholds).
    pub healthy: u32,
    pub unhealthy: u32,
    /// What the node listed; `None` when it did not answer.
    pub meetings: Option<Vec<PolledMeeting>>,
    /// When the poll began (ms): a meeting placed after `started - grace_ms` and not listed
    /// yet is kept (its create may still be on its way).
    pub started: i64,
    pub grace_ms: i64,
}

/// What storing a poll changed: the node's new online flag (when it flipped), the meetings
/// forgotten because the node went offline, and whether any stored meeting changed.
#[derive(Debug, Clone, Default)]
pub struct Polled {
    pub online: Option<bool>,
    pub forgotten: Vec<String>,
    /// A meeting's element was rewritten or a meeting removed (getMeetings answers change).
    pub meetings_changed: bool,
}

fn store_poll(c: &Db<'_>, p: &Poll) -> Result<Polled, StoreError> {
    use crate::events::log;
    use crate::EventKind;
    use serde_json::json;
    let id = p.node;
    let online = record_poll(c, id, &p.result, p.healthy, p.unhealthy)?;
    let mut forgotten = Vec::new();
    match online {
        Some(true) => log(c, EventKind::NodeOnline, None, None, Some(id), &json!({}))?,
        Some(false) => {
            forgotten = meetings::remove_on_node(c, id)?;
            let data = json!({ "forgotten": forgotten.len() });
            log(c, EventKind::NodeOffline, None, None, Some(id), &data)?;
        }
        None => {}
    }
    let mut meetings_changed = !forgotten.is_empty();
    let Some(list) = &p.meetings else {
        return Ok(Polled {
            online,
            forgotten,
            meetings_changed,
        });
    };
    for record in meetings::for_node(c, id)? {
        match list.iter().find(|m| m.meeting_id == record.meeting_id) {
            // Unchanged since the last poll: nothing written (nor signalled to other balancers).
            Some(m)
                if record.info_xml.as_deref() == Some(m.info_xml.as_str())
                    && record.internal_meeting_id == m.internal_meeting_id => {}
            Some(m) => {
                meetings::set_info(c, &m.meeting_id, &m.internal_meeting_id, &m.info_xml)?;
                meetings_changed = true;
            }
            None if record.created_at < p.started - p.grace_ms => {
                meetings::remove(c, &record.meeting_id)?;
                meetings_changed = true;
                log(
                    c,
                    EventKind::MeetingEnded,
                    Some(record.integration_id),
                    Some(&record.meeting_id),
                    Some(id),
                    &json!({ "by": "poll" }),
                )?;
            }
            None => {}
        }
    }
    let node = get(c, id)?;
    if node.state == NodeState::Cordoned && list.iter().all(|m| m.ended) {
        set_state(c, id, NodeState::Disabled)?;
        let data = json!({ "state": "disabled", "why": "cordoned and empty" });
        log(c, EventKind::NodeState, None, None, Some(id), &data)?;
    }
    Ok(Polled {
        online,
        forgotten,
        meetings_changed,
    })
}

impl Store {
    /// Stores one node's poll in one transaction: its counters and health streaks (with the
    /// online/offline events, forgetting the meetings of a node gone offline), each listed
    /// meeting's element when it changed, the meetings it no longer lists, and a cordoned node
    /// disabled once empty.
    pub async fn record_poll_round(&self, poll: Poll) -> Result<Polled, StoreError> {
        self.write_background(move |c| store_poll(c, &poll)).await
    }
}
