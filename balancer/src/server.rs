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
use std::pin::Pin;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower_service::Service;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

use crate::api;
use crate::config::ConnectionLimits;
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

/// Why a request body stopped.
#[derive(Debug, thiserror::Error)]
pub enum BodyFailure {
    #[error("no body data for {0:?}")]
    Stalled(Duration),
    #[error("the body arrives slower than {0} bytes/s")]
    TooSlow(u64),
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

impl BodyFailure {
    /// The client was too slow (408) rather than wrong (400).
    pub fn is_timeout(&self) -> bool {
        !matches!(self, BodyFailure::Http(_))
    }
}

/// A request body that fails once no data came for the body timeout, or once, past that time,
/// it averages less than the minimum rate: a body announced and never sent cannot hold its
/// connection. The timer is only armed when the body has to be waited for.
pub struct TimedBody<B> {
    inner: B,
    limits: ConnectionLimits,
    started: Option<Instant>,
    received: u64,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> TimedBody<B> {
    fn new(inner: B, limits: ConnectionLimits) -> Self {
        TimedBody {
            inner,
            limits,
            started: None,
            received: 0,
            deadline: None,
        }
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes, Error = hyper::Error> + Unpin,
{
    type Data = Bytes;
    type Error = BodyFailure;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyFailure>>> {
        let this = self.get_mut();
        let started = *this.started.get_or_insert_with(Instant::now);
        let stall = this.limits.body_timeout;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                let elapsed = started.elapsed();
                let floor = this.limits.min_body_rate as f64 * elapsed.as_secs_f64();
                if elapsed > stall && (this.received as f64) < floor {
                    return Poll::Ready(Some(Err(BodyFailure::TooSlow(this.limits.min_body_rate))));
                }
                if let Some(deadline) = &mut this.deadline {
                    deadline.as_mut().reset(Instant::now() + stall);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyFailure::Stalled(stall)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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
