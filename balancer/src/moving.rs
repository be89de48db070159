//! The meetings this balancer is moving to another node right now (`api::relocate`): their
//! joins wait for the move, then follow the meeting, instead of landing on the node it leaves.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

/// The longest a join waits for a move (a create on the new node, within its timeouts).
const WAIT: Duration = Duration::from_secs(15);

#[derive(Default)]
pub struct Moving {
    /// Each move's receiver: it sees the channel close when the move ends.
    moves: Mutex<HashMap<String, watch::Receiver<()>>>,
}

/// A move in progress; it ends (and its waiters go on) when this is dropped.
pub struct Move<'a> {
    moving: &'a Moving,
    meeting_id: String,
    _done: watch::Sender<()>,
}

impl Moving {
    /// Starts moving `meeting_id`.
    pub fn start(&self, meeting_id: &str) -> Move<'_> {
        let (done, waiting) = watch::channel(());
        self.lock().insert(meeting_id.to_owned(), waiting);
        Move {
            moving: self,
            meeting_id: meeting_id.to_owned(),
            _done: done,
        }
    }

    /// Returns once `meeting_id` is not being moved (at once, nearly always).
    pub async fn wait(&self, meeting_id: &str) {
        let waiting = self.lock().get(meeting_id).cloned();
        if let Some(mut waiting) = waiting {
            // Err once the mover's sender is dropped: the move is over.
            let _ = tokio::time::timeout(WAIT, waiting.changed()).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Receiver<()>>> {
        self.moves.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Move<'_> {
    fn drop(&mut self) {
        self.moving.lock().remove(&self.meeting_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn joins_wait_for_a_move_to_end() {
        let moving = std::sync::Arc::new(Moving::default());
        moving.wait("m").await; // nothing moving: at once
        let started = std::time::Instant::now();
        let waiter = {
            let moving = moving.clone();
            tokio::spawn(async move { moving.wait("m").await })
        };
        {
            let _move = moving.start("m");
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(!waiter.is_finished());
        }
        waiter.await.unwrap();
        assert!(
            started.elapsed() < WAIT / 2,
            "ended with the move, not the timeout"
        );
        assert!(moving.lock().is_empty());
    }
}
