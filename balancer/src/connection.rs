//! What `server.rs` attaches to each request of a connection, for the handlers below it:
//! [`TimedBody`], a request body with a deadline (so a body announced and never sent, or
//! dripped a byte at a time, cannot hold its connection; the API turns a [`BodyFailure`] into
//! its BBB answer), and [`Peer`], the remote address the warp routes read with [`peer`].

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, SizeHint};
use tokio::time::Instant;
use warp::Filter;

use crate::config::{ConnectionLimits, IpNet};

/// The connection's remote address, for the warp routes (see [`peer`]).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// The remote address of the connection a warp route is serving.
pub fn peer() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Clone {
    warp::ext::optional::<Peer>().map(|peer: Option<Peer>| peer.map(|Peer(addr)| addr))
}

/// The client's address: the right-most X-Forwarded-For entry not added by a trusted proxy,
/// when the peer itself is trusted; else the peer.
pub fn client_ip(
    peer: Option<SocketAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer.map(|p| p.ip());
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    match (peer, forwarded_for) {
        (Some(p), Some(header)) if is_trusted(p) => {
            let hops: Vec<IpAddr> = header
                .split(',')
                .filter_map(|h| h.trim().parse().ok())
                .collect();
            hops.iter()
                .rev()
                .copied()
                .find(|ip| !is_trusted(*ip))
                .or(hops.first().copied())
                .or(Some(p))
        }
        _ => peer,
    }
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
    pub fn new(inner: B, limits: ConnectionLimits) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let outsider: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(
            client_ip(Some(local), Some("198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(
                Some(local),
                Some("1.2.3.4, 198.51.100.7, 10.0.0.2"),
                &trusted
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(Some(outsider), Some("198.51.100.7"), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(Some(local), Some("garbage"), &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(client_ip(Some(local), None, &trusted), ip("127.0.0.1"));
    }
}
