//! `conflux-balancer` as a library: the BBB API in front of a pool of nodes, its store, poller
//! and admin commands. `main.rs` is a thin CLI over it; tests can run [`serve`] in-process.

mod accept;
pub mod admin;
pub mod agents;
pub mod api;
pub mod archives;
pub mod auth;
pub mod callbacks;
pub mod changing;
pub mod cli;
pub mod config;
mod connection;
pub mod dashboard;
pub mod demo;
pub mod failures;
pub mod freshness;
pub mod health;
pub mod metrics;
pub mod monitor;
pub mod moving;
pub mod node_client;
pub mod ops;
pub mod placement;
pub mod poller;
mod server;
pub mod state;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::state::AppState;

/// Serves the balancer on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if state.store.is_shared() && state.config.recordings.archive_dir.is_none() {
        tracing::warn!(
            dir = %archives::dir(&state.config).display(),
            "recordings.archive_dir is not set: archives stay in this balancer's data folder, \
             where the other balancers cannot serve them. Set it to a folder all of them mount."
        );
    }
    let poller = tokio::spawn(poller::run(state.clone(), state.shutdown.subscribe()));
    let refresher = tokio::spawn(refresh_loop(state.clone(), state.shutdown.subscribe()));
    let monitor = tokio::spawn(monitor::run(state.clone(), state.shutdown.subscribe()));
    let archives = tokio::spawn(archives::run(state.clone(), state.shutdown.subscribe()));
    let freshness = tokio::spawn(freshness::run(state.clone(), state.shutdown.subscribe()));
    let gate = Arc::new(server::Gate::new(
        state.config.connections,
        state.metrics.open_connections.clone(),
    ));
    let extra = extra_acceptors(&listener, &state, &gate)?;
    server::run(listener, state.clone(), routes(&state), gate, shutdown).await;
    state.shutdown.send(()).ok();
    poller.await?;
    refresher.await?;
    monitor.await?;
    archives.await?;
    freshness.await?;
    for thread in extra {
        let _ = thread.join();
    }
    Ok(())
}

/// Everything the balancer serves besides the APIs (see [`server`]): the agents' and recorders'
/// doors, `/metrics`, the health endpoints and the web pages; anything else answers BBB's
/// `unsupportedRequest`, as Scalelite does.
/// `/healthz` (liveness) answers while the process serves; `/readyz` (readiness) only while
/// the store answers (the snapshots are loaded before `serve` listens).
fn routes(state: &Arc<AppState>) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    use warp::{Filter, Reply};
    let metrics = {
        let state = state.clone();
        warp::get()
            .and(warp::path!("metrics"))
            .and(warp::header::optional::<String>("authorization"))
            .and(warp::header::optional::<String>("accept"))
            .then(
                move |authorization: Option<String>, accept: Option<String>| {
                    let state = state.clone();
                    async move {
                        if !metrics::authorized(&state.config, authorization.as_deref()) {
                            let reply = warp::reply::with_status(
                                "a bearer token is needed (metrics.token)\n",
                                warp::http::StatusCode::UNAUTHORIZED,
                            );
                            return warp::reply::with_header(reply, "www-authenticate", "Bearer")
                                .into_response();
                        }
                        let format = metrics::Format::negotiate(accept.as_deref());
                        let text = state.metrics.render(&scrape(&state).await, format);
                        warp::reply::with_header(text, "content-type", format.content_type())
                            .into_response()
                    }
                },
            )
    };
    let live = warp::get()
        .and(warp::path!("healthz"))
        .map(|| "ok\n".into_response());
    let ready = {
        let state = state.clone();
        warp::get().and(warp::path!("readyz")).then(move || {
            let state = state.clone();
            async move {
                match state.store.ping().await {
                    Ok(()) => "ready\n".into_response(),
                    Err(e) => warp::reply::with_status(
                        format!("the store does not answer: {e}\n"),
                        warp::http::StatusCode::SERVICE_UNAVAILABLE,
                    )
                    .into_response(),
                }
            }
        })
    };
    agents::routes(state.clone())
        .or(archives::routes(state.clone()))
        .unify()
        .or(callbacks::routes(state.clone()))
        .unify()
        .or(metrics)
        .unify()
        .or(live)
        .unify()
        .or(ready)
        .unify()
        .or(dashboard::routes(state.clone()))
        .unify()
        .or(warp::any().map(api::unsupported))
        .unify()
        .boxed()
}

/// What `/metrics` shows of the state beside the request metrics. A store that does not
/// answer leaves the recordings' figures at zero (its failure is logged), never the scrape.
async fn scrape(state: &AppState) -> metrics::Scrape<'_> {
    let meetings = state.meetings_per_integration();
    let users = state.integration_users.load();
    let (backlog, refused) = match (
        state.store.archive_backlog().await,
        state.store.refused_archives().await,
    ) {
        (Ok(backlog), Ok(refused)) => (backlog, refused),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "Could not read the recordings' figures for /metrics.");
            Default::default()
        }
    };
    let now = conflux_store::now_ms();
    let integrations = state
        .integrations
        .load()
        .iter()
        .map(|i| {
            let (waiting, oldest) = backlog.get(&i.id).copied().unwrap_or((0, now));
            metrics::IntegrationFigures {
                name: i.name.clone(),
                meetings: meetings.get(&i.id).copied().unwrap_or(0),
                users: users.get(&i.id).copied().unwrap_or(0),
                archives_waiting: waiting,
                oldest_wait_secs: ((now - oldest) as f64 / 1000.0).max(0.0),
                archives_refused: refused.get(&i.id).map_or(0, |(n, _)| *n),
            }
        })
        .collect();
    metrics::Scrape {
        nodes: state.nodes.load().nodes.clone(),
        health: &state.monitor,
        integrations,
    }
}

/// One more acceptor per core beyond the first, each a single-threaded runtime on its own
/// thread sharing the listening socket: a request and the node call it makes stay on one
/// thread (no cross-thread wake-ups on the proxy path).
fn extra_acceptors(
    listener: &TcpListener,
    state: &Arc<AppState>,
    gate: &Arc<server::Gate>,
) -> anyhow::Result<Vec<std::thread::JoinHandle<()>>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = Vec::new();
    for i in 1..cores {
        let shared: std::net::TcpListener = socket2::SockRef::from(listener).try_clone()?.into();
        shared.set_nonblocking(true)?;
        let state = state.clone();
        let gate = gate.clone();
        let mut stop = state.shutdown.subscribe();
        let thread = std::thread::Builder::new()
            .name(format!("acceptor-{i}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .max_blocking_threads(4)
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => return tracing::error!(error = %e, "Could not start an acceptor."),
                };
                runtime.block_on(async move {
                    match TcpListener::from_std(shared) {
                        Ok(listener) => {
                            let stopped = async move {
                                stop.recv().await.ok();
                            };
                            server::run(listener, state.clone(), routes(&state), gate, stopped)
                                .await;
                        }
                        Err(e) => tracing::error!(error = %e, "Could not share the listener."),
                    }
                });
            })?;
        threads.push(thread);
    }
    Ok(threads)
}

async fn refresh_loop(state: Arc<AppState>, mut shutdown: tokio::sync::broadcast::Receiver<()>) {
    let mut changes = match state.store.changes() {
        Ok(changes) => changes,
        Err(e) => {
            return tracing::error!(error = %e, "Cannot watch the store: other writers' changes are not seen.")
        }
    };
    loop {
        tokio::select! {
            changed = changes.next() => {
                if let Err(e) = changed {
                    tracing::error!(error = %e, "Could not watch the store.");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                } else if let Err(e) = state.refresh().await {
                    tracing::error!(error = %e, "Could not refresh snapshots.");
                } else {
                    // Another writer (the lease holder's poller, a CLI) may have rewritten
                    // meetings' elements without moving any route.
                    state.meetings_changed();
                }
            }
            _ = shutdown.recv() => return,
        }
    }
}
