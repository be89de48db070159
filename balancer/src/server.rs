//! The HTTP server: HTTP/1.1 connections served by hyper, one accept loop per runtime. BBB API
//! requests (the hot path) go straight to [`api::serve`]; everything else (the agents' and
//! recorders' doors, `/metrics`, the web pages) goes through the warp routes.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tower_service::Service;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

use crate::api;
use crate::state::AppState;

/// The connection's remote address, for the warp routes (see [`peer`]).
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// The remote address of the connection a warp route is serving.
pub fn peer() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Clone {
    warp::ext::optional::<Peer>().map(|peer: Option<Peer>| peer.map(|Peer(addr)| addr))
}

/// Serves `listener` until `shutdown` resolves, then lets open requests finish.
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    web: BoxedFilter<(Response,)>,
    shutdown: impl Future<Output = ()>,
) {
    let web = warp::service(web);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        stream.set_nodelay(true).ok();
        let state = state.clone();
        let web = web.clone();
        let service = hyper::service::service_fn(move |request| {
            respond(state.clone(), web.clone(), peer, request)
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "Connection ended with an error.");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

async fn respond<W>(
    state: Arc<AppState>,
    mut web: W,
    peer: SocketAddr,
    mut request: hyper::Request<Incoming>,
) -> Result<Response, Infallible>
where
    W: Service<hyper::Request<Incoming>, Response = Response, Error = Infallible>,
{
    match api::Target::of(request.uri().path()) {
        api::Target::Unknown => {
            request.extensions_mut().insert(Peer(peer));
            web.call(request).await
        }
        target => Ok(api::serve(&state, target, request, Some(peer)).await),
    }
}

/// Out of file descriptors and the like: log, wait a little, go on (hyper 0.14's policy).
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %error, "Could not accept a connection.");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
