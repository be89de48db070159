//! HTTP/1.1 to plain-HTTP nodes on hyper's connection API, with keep-alive connections kept per
//! thread: each runtime thread has its own, so a proxied call and the node connection it uses
//! never wake another thread, and taking a connection needs no lock.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use warp::http::header::{CONTENT_TYPE, HOST};
use warp::http::{Method, Request, StatusCode};
use warp::hyper::body::Bytes;

use super::error_chain;

type Sender = SendRequest<Full<Bytes>>;

/// Idle connections kept per node and thread; more are closed when their call ends.
const IDLE_PER_NODE: usize = 256;

thread_local! {
    /// Idle connections by node authority (`host:port`), most recently used last.
    static IDLE: RefCell<HashMap<String, Vec<Sender>>> = RefCell::new(HashMap::new());
}

/// One request to a node.
pub struct Call<'a> {
    /// `http://AUTHORITY/PATH?QUERY`
    pub url: &'a str,
    /// A POST's body and its Content-Type; `None` sends a GET.
    pub body: Option<(Option<&'a str>, Bytes)>,
    pub connect_timeout: Duration,
    /// The largest answer read.
    pub limit: usize,
}

/// Sends `call` and reads the whole answer. A kept connection the node closed meanwhile gives
/// the request back unsent; it then goes on the next kept connection or a new one.
pub async fn send(call: Call<'_>) -> Result<(StatusCode, Bytes), String> {
    let rest = call
        .url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{} is not an http:// URL", call.url))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut request = Request::builder()
        .uri(if path.is_empty() { "/" } else { path })
        .header(HOST, authority);
    let payload = match call.body {
        Some((content_type, payload)) => {
            request = request.method(Method::POST);
            if let Some(ct) = content_type {
                request = request.header(CONTENT_TYPE, ct);
            }
            payload
        }
        None => Bytes::new(),
    };
    let mut request = request
        .body(Full::new(payload))
        .map_err(|e| e.to_string())?;
    loop {
        let (mut sender, fresh) = match checkout(authority).await {
            Some(sender) => (sender, false),
            None => (connect(authority, call.connect_timeout).await?, true),
        };
        match sender.try_send_request(request).await {
            Ok(response) => {
                let status = response.status();
                let body = Limited::new(response.into_body(), call.limit)
                    .collect()
                    .await
                    .map_err(|e| error_chain(&*e))?
                    .to_bytes();
                give_back(authority, sender);
                return Ok((status, body));
            }
            Err(mut failed) => match failed.take_message() {
                Some(unsent) if !fresh => request = unsent,
                _ => return Err(error_chain(failed.error())),
            },
        }
    }
}

/// A kept connection to `authority` that is ready for a request.
async fn checkout(authority: &str) -> Option<Sender> {
    loop {
        let mut sender = IDLE.with_borrow_mut(|idle| idle.get_mut(authority)?.pop())?;
        if sender.ready().await.is_ok() {
            return Some(sender);
        }
    }
}

fn give_back(authority: &str, sender: Sender) {
    if sender.is_closed() {
        return;
    }
    IDLE.with_borrow_mut(|idle| match idle.get_mut(authority) {
        Some(kept) if kept.len() < IDLE_PER_NODE => kept.push(sender),
        Some(_) => {}
        None => {
            idle.insert(authority.to_owned(), vec![sender]);
        }
    });
}

async fn connect(authority: &str, timeout: Duration) -> Result<Sender, String> {
    let address = with_port(authority);
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address.as_ref()))
        .await
        .map_err(|_| format!("tcp connect error: no connection within {timeout:?}"))?
        .map_err(|e| format!("tcp connect error: {e}"))?;
    stream.set_nodelay(true).ok();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| error_chain(&e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "A node connection ended with an error.");
        }
    });
    Ok(sender)
}

/// `authority` with HTTP's port 80 when it names none (`host`, `[::1]`).
fn with_port(authority: &str) -> Cow<'_, str> {
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    if has_port {
        Cow::Borrowed(authority)
    } else {
        Cow::Owned(format!("{authority}:80"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_default_to_80() {
        for (authority, address) in [
            ("127.0.0.1:18081", "127.0.0.1:18081"),
            ("bbb1.example.org", "bbb1.example.org:80"),
            ("bbb1.example.org:8080", "bbb1.example.org:8080"),
            ("[::1]", "[::1]:80"),
            ("[::1]:8090", "[::1]:8090"),
        ] {
            assert_eq!(with_port(authority), address, "{authority}");
        }
    }
}
