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
use warp::http::{HeaderValue, Method, Request, StatusCode, Uri};
use warp::hyper::body::Bytes;

use super::error_chain;

type Sender = SendRequest<Full<Bytes>>;

/// Idle connections kept per node and thread; more are closed when their call ends.
const IDLE_PER_NODE: usize = 256;

/// A node's kept connections on this thread.
struct Kept {
    /// The `Host` header for the node.
    host: HeaderValue,
    /// Idle connections, most recently used last.
    idle: Vec<Sender>,
}

thread_local! {
    /// By node authority (`host:port`).
    static KEPT: RefCell<HashMap<String, Kept, foldhash::fast::RandomState>> =
        RefCell::new(HashMap::default());
}

/// One request to a node.
pub struct Call<'a> {
    /// `http://AUTHORITY/PATH?QUERY`
    pub url: String,
    /// A POST's body and its Content-Type; `None` sends a GET.
    pub body: Option<(Option<&'a str>, Bytes)>,
    pub connect_timeout: Duration,
    /// The largest answer read.
    pub limit: usize,
}

/// Sends `call` and reads the whole answer. A kept connection the node closed meanwhile gives
/// the request back unsent; it then goes on the next kept connection or a new one.
pub async fn send(call: Call<'_>) -> Result<(StatusCode, Bytes), String> {
    const SCHEME: &str = "http://";
    if !call.url.starts_with(SCHEME) {
        return Err(format!("{} is not an http:// URL", call.url));
    }
    let path_at = call.url[SCHEME.len()..]
        .find('/')
        .map_or(call.url.len(), |i| SCHEME.len() + i);
    // The origin-form target shares the URL's bytes (no copy).
    let url = Bytes::from(call.url);
    let authority = std::str::from_utf8(&url[SCHEME.len()..path_at]).unwrap_or_default();
    let target = if path_at == url.len() {
        Uri::from_static("/")
    } else {
        Uri::from_maybe_shared(url.slice(path_at..)).map_err(|e| e.to_string())?
    };
    let (mut kept, host) = checkout(authority).await?;
    let mut request = Request::builder().uri(target).header(HOST, host);
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
        let (mut sender, fresh) = match kept.take() {
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
                Some(unsent) if !fresh => {
                    request = unsent;
                    kept = checkout(authority).await?.0;
                }
                _ => return Err(error_chain(failed.error())),
            },
        }
    }
}

/// A kept connection to `authority` that is ready for a request, if any, and the node's `Host`
/// header.
async fn checkout(authority: &str) -> Result<(Option<Sender>, HeaderValue), String> {
    loop {
        let (sender, host) = KEPT.with_borrow_mut(|kept| {
            if let Some(node) = kept.get_mut(authority) {
                return Ok((node.idle.pop(), node.host.clone()));
            }
            let host = HeaderValue::from_str(authority).map_err(|e| e.to_string())?;
            let node = Kept {
                host: host.clone(),
                idle: Vec::new(),
            };
            kept.insert(authority.to_owned(), node);
            Ok::<_, String>((None, host))
        })?;
        match sender {
            Some(mut sender) => {
                if sender.ready().await.is_ok() {
                    return Ok((Some(sender), host));
                }
            }
            None => return Ok((None, host)),
        }
    }
}

fn give_back(authority: &str, sender: Sender) {
    if sender.is_closed() {
        return;
    }
    KEPT.with_borrow_mut(|kept| {
        if let Some(node) = kept.get_mut(authority) {
            if node.idle.len() < IDLE_PER_NODE {
                node.idle.push(sender);
            }
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
