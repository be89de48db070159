//! The monitoring loop: once a second it ages the agents' reports, flushes the batched health
//! writes, takes in what other balancers on a shared store concluded, and locates hosts;
//! hourly it prunes the history; and it runs the active checks ([`active`]). The health it
//! keeps up to date is [`crate::health::Monitor`].

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

/// Takes in the checks and reports other balancers stored since `synced` (with
/// [`store::SYNC_MARGIN_MS`] for their clocks and commits); returns when this read began, the
/// next `synced`.
async fn sync(state: &AppState, synced: i64) -> i64 {
    let began = store::now_ms();
    match state
        .store
        .health_since(synced - store::SYNC_MARGIN_MS)
        .await
    {
        Ok(stored) => {
            state.monitor.merge(stored);
            began
        }
        Err(e) => {
            tracing::warn!(error = %e, "Could not read the other balancers' health data.");
            synced
        }
    }
}

/// The monitoring loop: report ages, batched writes, host locations, history pruning, and the
/// active checks.
pub async fn run(state: Arc<AppState>, mut shutdown: broadcast::Receiver<()>) {
    let checks = active::spawn(&state);
    let mut tick = tokio::time::interval(TICK);
    let mut last_prune = tokio::time::Instant::now() - PRUNE_EVERY;
    let mut synced = store::now_ms();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.recv() => break,
        }
        let nodes = state.nodes.load_full();
        let shared = state.store.is_shared();
        if shared {
            synced = sync(&state, synced).await;
            state.failures.sync(&state.store).await;
        }
        // One lease check a tick (a round trip on PostgreSQL; always held on SQLite).
        let holder = state.singletons.held().await;
        // With a shared store, what the other balancers received is known here only a tick
        // late: the reports' ages are judged by the lease holder alone.
        if !shared || holder {
            state.monitor.evaluate_ages(&nodes.nodes, &state.config);
        }
        state.monitor.flush(&state.store).await;
        state.monitor.locate_hosts(&nodes.nodes).await;
        if last_prune.elapsed() >= PRUNE_EVERY && holder {
            last_prune = tokio::time::Instant::now();
            let now = store::now_ms() / 1000;
            match state.store.prune_history(now).await {
                Ok(n) if n > 0 => tracing::info!(rows = n, "History pruned."),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "Could not prune history."),
            }
            if shared {
                if let Err(e) = state.store.prune_failures().await {
                    tracing::error!(error = %e, "Could not prune the stored failures.");
                }
            }
        }
    }
    for task in checks {
        task.abort();
    }
    state.monitor.flush(&state.store).await;
}
