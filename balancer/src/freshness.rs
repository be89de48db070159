//! getMeetings kept current between polls. The list is served from the store, which the poller
//! refreshes once per interval (60 s by default), and creates, which store the node's answer;
//! a meeting this balancer sent a join on is asked for again on its node (getMeetingInfo) 1, 3,
//! 8 and 20 s later, while the user arrives, and its stored `<meeting>` element is replaced.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conflux_shared::query::encode;
use conflux_shared::response::Body;
use tokio::sync::broadcast;

use crate::state::AppState;

/// When a changed meeting is asked for again, after the change: a browser follows a join's
/// redirect and enters within a few seconds, a slow one within twenty.
const AFTER: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(8),
    Duration::from_secs(20),
];
/// How often due meetings are looked for.
const TICK: Duration = Duration::from_millis(500);
/// Refreshes waiting at most; beyond, changes wait for the next poll.
const MAX_WAITING: usize = 100_000;
const CONTEXT: &str = "Unable to access meeting on server.";

/// The meetings to ask for again, with when.
#[derive(Default)]
pub struct Changing {
    due: Mutex<Vec<(Instant, String)>>,
}

impl Changing {
    /// Notes that `meeting_id` changed just now.
    pub fn mark(&self, meeting_id: &str) {
        let now = Instant::now();
        let mut due = self.due.lock().unwrap_or_else(|p| p.into_inner());
        if due.len() + AFTER.len() <= MAX_WAITING {
            due.extend(
                AFTER
                    .iter()
                    .map(|after| (now + *after, meeting_id.to_owned())),
            );
        }
    }

    /// The meetings due now, each once.
    fn take_due(&self) -> Vec<String> {
        let now = Instant::now();
        let mut due = self.due.lock().unwrap_or_else(|p| p.into_inner());
        let mut ready: Vec<String> = Vec::new();
        due.retain(|(at, id)| {
            if *at > now {
                return true;
            }
            if !ready.contains(id) {
                ready.push(id.clone());
            }
            false
        });
        ready
    }
}

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
    let query = format!("meetingID={}", encode(meeting_id));
    let answer = state
        .node_client
        .call(&node, "getMeetingInfo", &query, None, CONTEXT)
        .await
        .and_then(|a| a.parse(CONTEXT));
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
        Ok(()) => state.meetings_changed(),
        Err(e) => tracing::warn!(meeting_id, error = %e, "Could not store a refreshed meeting."),
    }
}
