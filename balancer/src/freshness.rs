//! getMeetings kept current between polls. The list is served from the store, which the poller
//! refreshes once per interval (60 s by default), and creates, which store the node's answer;
//! a meeting this balancer sent a join on is asked for again on its node (getMeetingInfo) 1, 3,
//! 8 and 20 s later, while the user arrives, and its stored `<meeting>` element is replaced.

use std::sync::Arc;
use std::time::Duration;

use conflux_shared::response::Body;
use tokio::sync::broadcast;

use crate::state::AppState;

/// How often due meetings are looked for.
const TICK: Duration = Duration::from_millis(500);

/// Refreshes the meetings that are due, every half second, until shutdown.
pub async fn run(state: Arc<AppState>, mut shutdown: broadcast::Receiver<()>) {
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.recv() => return,
        }
        for meeting_id in state.changing.take_due() {
            refresh(&state, &meeting_id).await;
        }
    }
}

/// Asks the meeting's node for it and stores what it says; a failure waits for the poll.
async fn refresh(state: &AppState, meeting_id: &str) {
    let Some(route) = state.find_route(meeting_id).await else {
        return;
    };
    let Some(node) = state.nodes.load().get(route.node).cloned() else {
        return;
    };
    let answer = state
        .node_client
        .meeting_call(&node, "getMeetingInfo", meeting_id)
        .await;
    let meeting = match answer {
        Ok(response) if response.is_success() => match response.body {
            Body::Meeting(meeting) => meeting,
            _ => return,
        },
        Ok(_) => return,
        Err(e) => {
            return tracing::debug!(meeting_id, error = %e, "Meeting not refreshed; the poll will.")
        }
    };
    let xml = meeting.to_element().to_xml();
    let stored = state
        .store
        .set_meeting_info(meeting_id.to_owned(), meeting.internal_meeting_id, xml)
        .await;
    match stored {
        Ok(()) => state.meetings_changed_in(route.integration),
        Err(e) => tracing::warn!(meeting_id, error = %e, "Could not store a refreshed meeting."),
    }
}
