//! The meetings to ask their nodes for again soon (see `freshness`): a meeting this balancer
//! sent a join on, 1, 3, 8 and 20 s later.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When a changed meeting is asked for again, after the change: a browser follows a join's
/// redirect and enters within a few seconds, a slow one within twenty.
const AFTER: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(8),
    Duration::from_secs(20),
];
/// Refreshes waiting at most; beyond, changes wait for the next poll.
const MAX_WAITING: usize = 100_000;

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
    pub fn take_due(&self) -> Vec<String> {
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
