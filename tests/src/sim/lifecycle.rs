//! The simulated node's clock: ends meetings whose `duration` ran out, whose last user left a
//! while ago, or that nobody joined in time, and forgets ended meetings after a retention
//! period, as bbb-web does. Runs every quarter of a second; holds the lock only briefly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::state::Meeting;
use super::Sim;

pub(crate) async fn run(sim: Arc<Sim>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        sweep(&sim, Instant::now());
    }
}

fn sweep(sim: &Sim, now: Instant) {
    let minute = sim.config.minute;
    let minutes = |n: u64| minute.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
    let mut inner = sim.lock();
    for meeting in inner.meetings.values_mut().filter(|m| !m.is_ended()) {
        let age = now.duration_since(meeting.created_at);
        let out_of_time = meeting.duration > 0 && age >= minutes(meeting.duration);
        let never_joined =
            !meeting.has_user_joined && age >= minutes(meeting.expire_no_join_minutes);
        let left_empty = meeting.users.is_empty()
            && meeting.last_left_at.is_some_and(|t| {
                now.duration_since(t) >= minutes(meeting.expire_last_left_minutes)
            });
        if out_of_time || never_joined || left_empty {
            meeting.end(false);
            super::callbacks::meeting_ended(sim, meeting);
        }
    }
    let retention = sim.config.ended_retention;
    let expired: Vec<String> = inner
        .meetings
        .values()
        .filter(|m| {
            m.ended_at
                .is_some_and(|t| now.duration_since(t) >= retention)
        })
        .map(|m| m.meeting_id.clone())
        .collect();
    for id in expired {
        if let Some(meeting) = inner.meetings.remove(&id) {
            inner.remember_ended(meeting);
        }
    }
}

impl Meeting {
    /// Removes a user; the meeting ends after the configured grace once it is empty.
    pub(crate) fn remove_user(&mut self, user_id: &str) -> bool {
        let before = self.users.len();
        self.users
            .retain(|u| u.user_id != user_id && u.internal_user_id != user_id);
        if self.users.is_empty() && before > 0 {
            self.last_left_at = Some(Instant::now());
        }
        self.users.len() < before
    }
}
