//! `conflux-balancer` as a library: the BBB API in front of a pool of nodes, its store, poller
//! and admin commands. `main.rs` is a thin CLI over it; tests can run [`serve`] in-process.

pub mod admin;
pub mod api;
pub mod cli;
pub mod config;
pub mod demo;
pub mod placement;
pub mod poller;
pub mod state;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::state::AppState;

/// How often snapshots are reloaded from the store (to see the admin CLI's changes).
const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// Serves the balancer on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let poller = tokio::spawn(poller::run(state.clone(), state.shutdown.subscribe()));
    let refresher = tokio::spawn(refresh_loop(state.clone(), state.shutdown.subscribe()));
    let routes = api::routes(state.clone());
    warp::serve(routes)
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
    state.shutdown.send(()).ok();
    poller.await?;
    refresher.await?;
    Ok(())
}

async fn refresh_loop(state: Arc<AppState>, mut shutdown: tokio::sync::broadcast::Receiver<()>) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = state.refresh().await {
                    tracing::error!(error = %e, "Could not refresh snapshots.");
                }
            }
            _ = shutdown.recv() => return,
        }
    }
}
