//! The monitoring loop: once a second it ages the agents' reports, flushes the batched health
//! writes and locates hosts; hourly it prunes the history; and it runs the active checks
//! ([`active`]). The health it keeps up to date is [`crate::health::Monitor`].

pub mod active;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::state::AppState;
use conflux_store as store;

/// How often batched writes are flushed and report ages evaluated.
const TICK: Duration = Duration::from_secs(1);
/// History is pruned this often.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The monitoring loop: report ages, batched writes, host locations, history pruning, and the
/// active checks.
pub async fn run(state: Arc<AppState>, mut shutdown: broadcast::Receiver<()>) {
    let checks = active::spawn(&state);
    let mut tick = tokio::time::interval(TICK);
    let mut last_prune = tokio::time::Instant::now() - PRUNE_EVERY;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.recv() => break,
        }
        let nodes = state.nodes.load_full();
        state.monitor.evaluate_ages(&nodes.nodes, &state.config);
        state.monitor.flush(&state.store).await;
        state.monitor.locate_hosts(&nodes.nodes).await;
        if last_prune.elapsed() >= PRUNE_EVERY && state.singletons.held().await {
            last_prune = tokio::time::Instant::now();
            let now = store::now_ms() / 1000;
            match state.store.prune_history(now).await {
                Ok(n) if n > 0 => tracing::info!(rows = n, "History pruned."),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "Could not prune history."),
            }
        }
    }
    for task in checks {
        task.abort();
    }
    state.monitor.flush(&state.store).await;
}
