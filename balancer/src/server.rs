//! The HTTP server: HTTP/1.1 connections served by hyper, one accept loop per runtime. BBB API
//! requests (the hot path) go straight to [`api::serve`]; everything else (the agents' and
//! recorders' doors, `/metrics`, the web pages) goes through the warp routes.
//!
//! What a client connection may hold is bounded ([`ConnectionLimits`]): its request head must
//! arrive within the header timeout (which also ends idle keep-alive connections), a body must
//! keep coming ([`TimedBody`]), and connections beyond the cap are refused with a 503 at once.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;

use tower_service::Service;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use crate::api;
use crate::config::ConnectionLimits;
use crate::connection::{Peer, TimedBody};
use crate::state::AppState;

/// What the balancer's open connections are counted against, shared by every acceptor.
#[derive(Debug)]
pub struct Gate {
    /// Also the `conflux_open_connections` gauge.
    open: Gauge<i64, AtomicI64>,
    max: usize,
    limits: ConnectionLimits,
}

/// One open connection; leaving the gate when dropped.
struct Pass(Arc<Gate>);

impl Gate {
    /// A gate for `limits`, the cap kept under the process's open-file limit (which is first
    /// raised to its hard limit): each connection is a file, and the store, the node
    /// connections and the logs need some too.
    pub fn new(limits: ConnectionLimits, open: Gauge<i64, AtomicI64>) -> Gate {
        let files = raise_open_file_limit();
        let reserve = (files / 8).max(64);
        let max = limits
            .max_connections
            .min(usize::try_from(files.saturating_sub(reserve)).unwrap_or(usize::MAX))
            .max(1);
        if max < limits.max_connections {
            tracing::warn!(
                max_connections = max,
                open_files = files,
                "server.max_connections lowered to fit the open-file limit."
            );
        }
        Gate { open, max, limits }
    }

    fn enter(self: &Arc<Self>) -> Option<Pass> {
        let before = self.open.inc();
        let pass = Pass(self.clone());
        (usize::try_from(before).unwrap_or(0) < self.max).then_some(pass)
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.0.open.dec();
    }
}

/// Raises the open-file soft limit to the hard limit; the soft limit in force after.
fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "Could not raise the open-file limit.");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// The answer to a connection over the cap, written without waiting (a fresh socket's send
/// buffer takes it whole) before the connection is closed.
const REFUSAL: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n\
Content-Type: text/xml;charset=utf-8\r\nContent-Length: 166\r\n\r\n\
<response><returncode>FAILED</returncode><messageKey>tooManyConnections</messageKey>\
<message>The server has too many open connections; try again.</message></response>";

/// Serves `listener` until `shutdown` resolves, then lets open requests finish.
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    web: BoxedFilter<(Response,)>,
    gate: Arc<Gate>,
    shutdown: impl Future<Output = ()>,
) {
    let web = warp::service(web);
    let limits = gate.limits;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
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
        let Some(pass) = gate.enter() else {
            refuse(&stream, &state);
            continue;
        };
        stream.set_nodelay(true).ok();
        let state = state.clone();
        let web = web.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let request = request.map(|body| TimedBody::new(body, limits));
            respond(state.clone(), web.clone(), peer, request)
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _pass = pass;
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
    mut request: hyper::Request<TimedBody<Incoming>>,
) -> Result<Response, Infallible>
where
    W: Service<hyper::Request<TimedBody<Incoming>>, Response = Response, Error = Infallible>,
{
    match api::Target::of(request.uri().path()) {
        api::Target::Unknown => {
            request.extensions_mut().insert(Peer(peer));
            web.call(request).await
        }
        target => Ok(api::serve(&state, target, request, Some(peer)).await),
    }
}

/// Answers a connection over the cap and closes it.
fn refuse(stream: &tokio::net::TcpStream, state: &AppState) {
    state.metrics.connection_refused();
    let _ = stream.try_write(REFUSAL);
    tracing::debug!("Connection refused: too many open.");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_whole_bbb_answer() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        let answer = conflux_shared::Response::from_xml(body).unwrap();
        assert_eq!(answer.key(), Some("tooManyConnections"));
    }
}
