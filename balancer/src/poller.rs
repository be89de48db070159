//! The poller: every interval, `getMeetings` on every enabled or cordoned node, concurrently
//! with bounded parallelism and the configured timeouts. It stores each node's counters and
//! meetings, moves nodes online/offline after the healthy/unhealthy thresholds, forgets the
//! meetings of nodes that went offline and of meetings a node no longer has, and disables
//! cordoned nodes once empty. It never blocks API requests: they read snapshots.

use std::collections::HashMap;
use std::sync::Arc;

use conflux_shared::response::{Body, Meeting};
use conflux_shared::status::{CheckName, Status};
use futures_util::StreamExt;
use tokio::sync::broadcast;

use crate::api::ApiError;
use crate::config::PlacementConfig;
use crate::node_client::NodeError;
use crate::state::AppState;
use conflux_store::{self as store, IntegrationId, Node, NodeState, PollResult};

/// A meeting the node does not list is forgotten only if it was placed this long before the
/// poll began: a create still on its way to the node is not yet listed.
const FORGET_GRACE_MS: i64 = 60_000;

/// Polls until `shutdown` fires.
pub async fn run(state: Arc<AppState>, mut shutdown: broadcast::Receiver<()>) {
    let mut tick = tokio::time::interval(state.config.poller.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut round: u32 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if !state.singletons.held().await {
                    continue;
                }
                poll_all(&state, round % state.config.poller.recordings_every == 0).await;
                round = round.wrapping_add(1);
            }
            _ = shutdown.recv() => return,
        }
    }
}

/// One round over every pollable node; with `recordings`, their recordings are fetched too.
pub async fn poll_all(state: &Arc<AppState>, recordings: bool) {
    let nodes: Vec<Arc<Node>> = state
        .nodes
        .load()
        .nodes
        .iter()
        .filter(|n| n.state != NodeState::Disabled)
        .cloned()
        .collect();
    let polled: Vec<(Vec<(String, u32)>, bool)> = futures_util::stream::iter(nodes)
        .map(|node| poll_node(state, node, recordings))
        .buffer_unordered(state.config.poller.concurrency)
        .collect()
        .await;
    let mut users: HashMap<IntegrationId, u32> = HashMap::new();
    let mut changed = false;
    for (counts, node_changed) in polled {
        changed |= node_changed;
        for (meeting_id, participants) in counts {
            if let Some(route) = state.route(&meeting_id) {
                *users.entry(route.integration).or_default() += participants;
            }
        }
    }
    record_usage(state, &users).await;
    state.integration_users.store(Arc::new(users));
    if changed {
        // Cached getMeetings answers are rebuilt only when a poll rewrote a meeting.
        state.meetings_changed();
    }
    if let Err(e) = state.refresh().await {
        tracing::error!(error = %e, "Could not refresh the node table.");
    }
}

/// Adds this round's users to each integration's usage of the day: users × the time since
/// the previous round (at most two intervals, so a pause is not billed).
async fn record_usage(state: &Arc<AppState>, users: &HashMap<IntegrationId, u32>) {
    let interval = state.config.poller.interval;
    let seconds = {
        let mut last = state.last_round.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        let elapsed = last
            .map_or(interval, |t| now.duration_since(t))
            .min(interval * 2);
        *last = Some(now);
        elapsed.as_secs_f64()
    };
    let users: HashMap<IntegrationId, u32> = users
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (*i, *n))
        .collect();
    if users.is_empty() {
        return;
    }
    let day = time::OffsetDateTime::now_utc().date().to_string();
    if let Err(e) = state.store.record_usage(day, users, seconds).await {
        tracing::error!(error = %e, "Could not record usage.");
    }
}

/// Polls one node; returns its running meetings' ids and participant counts, and whether a
/// stored meeting changed.
async fn poll_node(
    state: &Arc<AppState>,
    node: Arc<Node>,
    recordings: bool,
) -> (Vec<(String, u32)>, bool) {
    let started = store::now_ms();
    let meetings = fetch(state, &node).await;
    if recordings && meetings.is_ok() {
        if let Err(e) = sync_recordings(state, &node, started).await {
            tracing::warn!(node = %node.name, error = %e, "Could not fetch recordings.");
        }
    }
    let counts: Vec<(String, u32)> = match &meetings {
        Ok(list) => list
            .iter()
            .filter(|m| m.end_time == 0)
            .map(|m| (m.meeting_id.clone(), m.participant_count))
            .collect(),
        Err(_) => Vec::new(),
    };
    match &meetings {
        Ok(list) => state.monitor.set(node.id, CheckName::Api, Status::Ok, {
            // The time only when slow: an output that changed with every poll was stored
            // anew every round (10,000 rows a round on a national network).
            let ms = store::now_ms() - started;
            let meetings = list.len();
            if ms >= 1000 {
                format!("signed getMeetings answered slowly, in {ms} ms ({meetings} meetings)")
            } else {
                format!("signed getMeetings answered ({meetings} meetings)")
            }
        }),
        Err(e) => state.monitor.set(
            node.id,
            CheckName::Api,
            Status::Critical,
            format!("getMeetings: {e}"),
        ),
    }
    let result = match &meetings {
        Ok(list) => summarize(list, &state.config.placement, store::now_ms()),
        Err(e) => {
            tracing::debug!(node = %node.name, error = %e, "Poll failed.");
            PollResult::default()
        }
    };
    let (healthy, unhealthy) = (
        state.config.poller.healthy_threshold,
        state.config.poller.unhealthy_threshold,
    );
    let name = node.name.clone();
    let poll = store::Poll {
        node: node.id,
        result,
        healthy,
        unhealthy,
        meetings: meetings.ok().map(|list| {
            list.iter()
                .map(|m| store::PolledMeeting {
                    meeting_id: m.meeting_id.clone(),
                    internal_meeting_id: m.internal_meeting_id.clone(),
                    info_xml: m.to_element().to_xml(),
                    ended: m.end_time > 0,
                })
                .collect()
        }),
        started,
        grace_ms: FORGET_GRACE_MS,
    };
    let outcome = state.store.record_poll_round(poll).await;
    let changed = match outcome {
        Ok(polled) => {
            match polled.online {
                Some(true) => tracing::info!(node = %name, "Node online."),
                Some(false) => tracing::warn!(
                    node = %name,
                    forgotten = polled.forgotten.len(),
                    "Node offline; its meetings are forgotten."
                ),
                None => {}
            }
            polled.meetings_changed
        }
        Err(e) => {
            tracing::error!(node = %name, error = %e, "Could not store a poll result.");
            false
        }
    };
    (counts, changed)
}

async fn fetch(state: &AppState, node: &Node) -> Result<Vec<Meeting>, NodeError> {
    let answer = state
        .node_client
        .call(node, "getMeetings", "", None, "Unable to access server.")
        .await?;
    let response = answer.parse("Unable to access server.")?;
    match response.body {
        Body::Meetings(list) if response.is_success() => Ok(list),
        _ => Err(NodeError::Failed {
            context: "Unable to access server.",
            detail: format!("{}: getMeetings answered {:?}", node.name, response.key()),
        }),
    }
}

/// Stores the node's recordings under the integrations that created their meetings, and
/// drops those the node no longer lists. Recordings made for a recording server are skipped:
/// they reach the store only as encrypted archives (the node's plaintext copy is never listed).
async fn sync_recordings(state: &Arc<AppState>, node: &Node, started: i64) -> Result<(), ApiError> {
    let answer = state
        .node_client
        .call(
            node,
            "getRecordings",
            "state=any",
            None,
            "Unable to access server.",
        )
        .await?;
    let Body::Recordings(list) = answer.parse("Unable to access server.")?.body else {
        return Ok(());
    };
    let list = list
        .into_iter()
        .filter(|r| r.meta(conflux_shared::transfer::META_RECORDER).is_none())
        .collect();
    state
        .store
        .sync_node_recordings(node.id, list, started)
        .await?;
    Ok(())
}

/// Scalelite's load of a node's running meetings, before the multiplier (its poller's rule):
/// per meeting, breakouts aside, its attendees (participantCount + moderatorCount, moderators
/// counted twice as there), at least `min_user_count` while younger than the join buffer.
fn scalelite_load(running: &[&Meeting], placement: &PlacementConfig, now_ms: i64) -> f64 {
    let buffer_ms = i64::try_from(placement.join_buffer.as_millis()).unwrap_or(i64::MAX);
    running
        .iter()
        .filter(|m| !m.is_breakout)
        .map(|m| {
            let attendees = m.participant_count + m.moderator_count;
            let created = i64::try_from(m.create_time).unwrap_or(i64::MAX);
            let young = now_ms.saturating_sub(created) < buffer_ms;
            f64::from(if young {
                attendees.max(placement.min_user_count)
            } else {
                attendees
            })
        })
        .sum()
}

/// A node's counters from its running meetings.
fn summarize(meetings: &[Meeting], placement: &PlacementConfig, now_ms: i64) -> PollResult {
    let running: Vec<&Meeting> = meetings.iter().filter(|m| m.end_time == 0).collect();
    PollResult {
        load: scalelite_load(&running, placement, now_ms),
        ok: true,
        meetings: u32::try_from(running.len()).unwrap_or(u32::MAX),
        users: running.iter().map(|m| m.participant_count).sum(),
        largest_meeting: running
            .iter()
            .map(|m| m.participant_count)
            .max()
            .unwrap_or(0),
        videos: running.iter().map(|m| m.video_count).sum(),
        voice: running.iter().map(|m| m.audio_users()).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_is_scalelites() {
        let placement = crate::config::Config::validate(crate::config::RawConfig::default())
            .unwrap()
            .placement;
        let now = 10_000_000_000;
        let meeting = |participants, moderators, age_ms: i64, breakout| Meeting {
            participant_count: participants,
            moderator_count: moderators,
            create_time: u64::try_from(now - age_ms).unwrap(),
            is_breakout: breakout,
            ..Meeting::default()
        };
        let hour = 3_600_000;
        let meetings = [
            meeting(3, 1, 60_000, false),  // young: at least 15
            meeting(20, 2, 60_000, false), // young, bigger: 22 (moderators counted twice)
            meeting(4, 1, hour, false),    // old: its attendees, 5
            meeting(40, 0, 60_000, true),  // a breakout: not counted
        ];
        let running: Vec<&Meeting> = meetings.iter().collect();
        assert_eq!(scalelite_load(&running, &placement, now), 15.0 + 22.0 + 5.0);
    }
}
