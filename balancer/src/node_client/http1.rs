//! HTTP/1.1 to nodes, over TCP or TLS, with keep-alive connections kept per thread: each runtime
//! thread has its own, so a proxied call and the node connection it uses never wake another
//! thread, and taking a connection needs no lock.
//!
//! The exchange itself runs in the calling task: write the request, read the answer (head parsed
//! by `httparse`, the parser hyper uses; body by Content-Length, chunked or until close). A
//! general client drives each connection from a task of its own and hands requests, answers and
//! body chunks over channels; for one small request and one answer that machinery was the
//! largest cost left on the proxy's hot path, for HTTPS nodes (every real BBB node) as for
//! plain ones.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warp::http::StatusCode;
use warp::hyper::body::Bytes;

mod stream;

use stream::{Scheme, Stream};

/// Idle connections kept per node and thread; more are closed when their call ends.
const IDLE_PER_NODE: usize = 256;
/// Kept connections idle longer are closed rather than reused: nodes' web servers drop idle
/// keep-alive connections after about a minute (nginx: 65 s), and a request must not race that.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer head (status line and headers) read.
const MAX_HEAD: usize = 64 * 1024;
/// How many bytes a read asks for at least.
const READ_CHUNK: usize = 16 * 1024;

/// A connection to a node and its read buffer.
struct Connection {
    stream: Stream,
    buffer: Vec<u8>,
    idle_since: Instant,
}

thread_local! {
    /// Idle connections by node origin (`https://host:port`), most recently used last.
    static KEPT: RefCell<HashMap<String, VecDeque<Connection>, foldhash::fast::RandomState>> =
        RefCell::new(HashMap::default());
}

/// One request to a node.
pub struct Call<'a> {
    /// `http://AUTHORITY/PATH?QUERY` or `https://…`
    pub url: &'a str,
    /// A POST's body and its Content-Type; `None` sends a GET.
    pub body: Option<(Option<&'a str>, Bytes)>,
    pub connect_timeout: Duration,
    /// The largest answer body read.
    pub limit: usize,
    /// TLS settings for `https://`; `None`: the system's roots (see [`stream`]).
    pub tls: Option<&'a std::sync::Arc<tokio_rustls::rustls::ClientConfig>>,
}

/// Why an exchange failed.
#[derive(Debug)]
enum Failure {
    /// The connection closed before any byte of the answer: a kept connection the node had
    /// closed meanwhile. A GET may be sent again.
    ClosedEarly,
    Other(String),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        match e.kind() {
            // UnexpectedEof: a TLS connection closed without its close_notify.
            BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof => {
                Failure::ClosedEarly
            }
            _ => Failure::Other(e.to_string()),
        }
    }
}

/// Why a call got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Nothing reached the node (no connection): the call can safely go elsewhere.
    #[error("{0}")]
    NotSent(String),
    /// The request may have reached the node.
    #[error("{0}")]
    Failed(String),
}

/// Sends `call` and reads the whole answer.
pub async fn send(call: Call<'_>) -> Result<(StatusCode, Bytes), SendError> {
    let (scheme, rest) = Scheme::split(call.url)
        .ok_or_else(|| SendError::NotSent(format!("{} is not an HTTP(S) URL", call.url)))?;
    let (authority, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let origin = &call.url[..call.url.len() - target.len()];
    let target = if target.is_empty() { "/" } else { target };
    if let Some(b) = target.bytes().find(|b| *b <= b' ' || *b == 0x7f) {
        return Err(SendError::NotSent(format!(
            "the request target holds byte {b:#04x}"
        )));
    }
    let (head, body) = request(authority, target, call.body);
    loop {
        let (mut connection, reused) = match checkout(origin) {
            Some(connection) => (connection, true),
            None => {
                let stream = Stream::connect(scheme, authority, call.connect_timeout, call.tls)
                    .await
                    .map_err(SendError::NotSent)?;
                let connection = Connection {
                    stream,
                    buffer: Vec::with_capacity(READ_CHUNK),
                    idle_since: Instant::now(),
                };
                (connection, false)
            }
        };
        match exchange(&mut connection, &head, &body, call.limit).await {
            Ok((status, answer, keep)) => {
                if keep {
                    give_back(origin, connection);
                }
                return Ok((status, answer));
            }
            Err(Failure::ClosedEarly) if reused && body.is_none() => continue,
            Err(Failure::ClosedEarly) => {
                return Err(SendError::Failed(
                    "the connection closed before an answer".into(),
                ))
            }
            Err(Failure::Other(e)) => return Err(SendError::Failed(e)),
        }
    }
}

/// The request head, and the body to send after it.
fn request(
    authority: &str,
    target: &str,
    body: Option<(Option<&str>, Bytes)>,
) -> (Vec<u8>, Option<Bytes>) {
    let mut head = Vec::with_capacity(target.len() + authority.len() + 64);
    let method: &[u8] = if body.is_some() { b"POST " } else { b"GET " };
    head.extend_from_slice(method);
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    head.extend_from_slice(authority.as_bytes());
    head.extend_from_slice(b"\r\n");
    let body = body.map(|(content_type, body)| {
        if let Some(ct) = content_type.filter(|ct| !ct.contains(['\r', '\n'])) {
            head.extend_from_slice(b"Content-Type: ");
            head.extend_from_slice(ct.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        body
    });
    head.extend_from_slice(b"\r\n");
    (head, body)
}

/// Writes the request and reads the answer: its status, body, and whether the connection may
/// carry another request.
async fn exchange(
    connection: &mut Connection,
    head: &[u8],
    body: &Option<Bytes>,
    limit: usize,
) -> Result<(StatusCode, Bytes, bool), Failure> {
    match body {
        // One write for a small body, so it leaves in the head's packet.
        Some(body) if body.len() <= READ_CHUNK => {
            let mut whole = Vec::with_capacity(head.len() + body.len());
            whole.extend_from_slice(head);
            whole.extend_from_slice(body);
            connection.stream.write_all(&whole).await?;
        }
        Some(body) => {
            connection.stream.write_all(head).await?;
            connection.stream.write_all(body).await?;
        }
        None => connection.stream.write_all(head).await?,
    }
    // TLS may keep records of the request back until flushed (TCP's flush does nothing).
    connection.stream.flush().await?;
    let answer = Answer::read(connection, limit).await?;
    Ok((answer.status, answer.body, answer.keep_alive))
}

/// A node's answer.
struct Answer {
    status: StatusCode,
    body: Bytes,
    keep_alive: bool,
}

/// How the answer's body is delimited.
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

impl Answer {
    async fn read(connection: &mut Connection, limit: usize) -> Result<Answer, Failure> {
        connection.buffer.clear();
        let (status, framing, mut keep_alive, head_len) = loop {
            let parsed = parse_head(&connection.buffer)?;
            match parsed {
                Some(head) if head.status.is_informational() => {
                    if head.status == StatusCode::SWITCHING_PROTOCOLS {
                        return Err(Failure::Other("the node switched protocols".into()));
                    }
                    connection.buffer.drain(..head.len);
                }
                Some(head) => break (head.status, head.framing, head.keep_alive, head.len),
                None if connection.buffer.len() > MAX_HEAD => {
                    return Err(Failure::Other(format!(
                        "answer head larger than {MAX_HEAD} bytes"
                    )))
                }
                None => {
                    let read = read_more(connection).await;
                    if connection.buffer.is_empty() {
                        // Nothing of the answer yet: an end or a reset is an early close.
                        if read? == 0 {
                            return Err(Failure::ClosedEarly);
                        }
                    } else if read.map_err(|e| Failure::Other(e.to_string()))? == 0 {
                        return Err(Failure::Other(
                            "the connection closed inside the answer head".into(),
                        ));
                    }
                }
            }
        };
        connection.buffer.drain(..head_len);
        let body = read_body(connection, framing, limit, &mut keep_alive)
            .await
            .map_err(|f| match f {
                // Past the head, a close is a broken answer, not a connection to replace.
                Failure::ClosedEarly => {
                    Failure::Other("the connection closed inside the answer".into())
                }
                other => other,
            })?;
        // Bytes after the answer were never asked for: do not reuse such a connection.
        keep_alive &= connection.buffer.is_empty();
        Ok(Answer {
            status,
            body: Bytes::from(body),
            keep_alive,
        })
    }
}

/// The body after the head, as `framing` delimits it; an answer read until close leaves its
/// connection not to be kept.
async fn read_body(
    connection: &mut Connection,
    framing: Framing,
    limit: usize,
    keep_alive: &mut bool,
) -> Result<Vec<u8>, Failure> {
    let too_large = || Failure::Other(format!("answer larger than {limit} bytes"));
    Ok(match framing {
        Framing::Empty => Vec::new(),
        Framing::Length(n) if n > limit => return Err(too_large()),
        Framing::Length(n) => {
            let mut body = Vec::with_capacity(n);
            let buffered = connection.buffer.len().min(n);
            body.extend_from_slice(&connection.buffer[..buffered]);
            connection.buffer.drain(..buffered);
            while body.len() < n {
                let want = n - body.len();
                let read = (&mut connection.stream)
                    .take(want as u64)
                    .read_buf(&mut body)
                    .await?;
                if read == 0 {
                    return Err(Failure::Other(
                        "the connection closed inside the answer".into(),
                    ));
                }
            }
            body
        }
        Framing::Chunked => read_chunked(connection, limit).await?,
        Framing::UntilClose => {
            *keep_alive = false;
            let mut body = std::mem::take(&mut connection.buffer);
            loop {
                if body.len() > limit {
                    return Err(too_large());
                }
                body.reserve(READ_CHUNK);
                if connection.stream.read_buf(&mut body).await? == 0 {
                    break body;
                }
            }
        }
    })
}

/// An answer head: status, framing, keep-alive, length in bytes.
struct Head {
    status: StatusCode,
    framing: Framing,
    keep_alive: bool,
    len: usize,
}

/// The head at the start of `buffer`, or `None` while it is incomplete.
fn parse_head(buffer: &[u8]) -> Result<Option<Head>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buffer) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Failure::Other(format!("invalid answer head: {e}"))),
    };
    let code = response.code.unwrap_or_default();
    let status = StatusCode::from_u16(code)
        .map_err(|_| Failure::Other(format!("invalid answer status {code}")))?;
    let mut keep_alive = response.version == Some(1);
    let mut length = None;
    let mut chunked = false;
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or_default();
        if header.name.eq_ignore_ascii_case("content-length") {
            let n = value.trim().parse::<usize>().ok();
            if n.is_none() || (length.is_some() && length != n) {
                return Err(Failure::Other(format!("invalid Content-Length {value:?}")));
            }
            length = n;
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            if !chunked {
                return Err(Failure::Other(format!(
                    "unsupported Transfer-Encoding {value:?}"
                )));
            }
        } else if header.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    let framing = if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else {
        match length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    Ok(Some(Head {
        status,
        framing,
        keep_alive,
        len,
    }))
}

/// A chunked body: `SIZE[;ext]\r\nDATA\r\n` … `0\r\n`, trailers, `\r\n`.
async fn read_chunked(connection: &mut Connection, limit: usize) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    loop {
        let line = read_line(connection).await?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| Failure::Other(format!("invalid chunk size {size:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(connection).await?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > limit {
            return Err(Failure::Other(format!("answer larger than {limit} bytes")));
        }
        while connection.buffer.len() < size + 2 {
            if read_more(connection).await? == 0 {
                return Err(Failure::Other(
                    "the connection closed inside a chunk".into(),
                ));
            }
        }
        if &connection.buffer[size..size + 2] != b"\r\n" {
            return Err(Failure::Other("a chunk does not end with CRLF".into()));
        }
        body.extend_from_slice(&connection.buffer[..size]);
        connection.buffer.drain(..size + 2);
    }
}

/// One CRLF-terminated line of a chunked body, without its CRLF.
async fn read_line(connection: &mut Connection) -> Result<String, Failure> {
    loop {
        if let Some(end) = connection.buffer.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&connection.buffer[..end]).into_owned();
            connection.buffer.drain(..end + 2);
            return Ok(line);
        }
        if connection.buffer.len() > MAX_HEAD {
            return Err(Failure::Other("a chunk line is too long".into()));
        }
        if read_more(connection).await? == 0 {
            return Err(Failure::Other(
                "the connection closed inside a chunk".into(),
            ));
        }
    }
}

/// Reads what the node sent next into the connection's buffer; 0 at the end of the stream.
async fn read_more(connection: &mut Connection) -> std::io::Result<usize> {
    connection.buffer.reserve(READ_CHUNK);
    connection.stream.read_buf(&mut connection.buffer).await
}

/// A kept connection to `origin` that still looks open.
fn checkout(origin: &str) -> Option<Connection> {
    KEPT.with_borrow_mut(|kept| {
        let idle = kept.get_mut(origin)?;
        while let Some(connection) = idle.pop_back() {
            if connection.idle_since.elapsed() < IDLE_TIMEOUT && connection.stream.is_open() {
                return Some(connection);
            }
        }
        None
    })
}

fn give_back(origin: &str, mut connection: Connection) {
    connection.idle_since = Instant::now();
    KEPT.with_borrow_mut(|kept| {
        let idle = match kept.get_mut(origin) {
            Some(idle) => idle,
            None => kept.entry(origin.to_owned()).or_default(),
        };
        while idle
            .front()
            .is_some_and(|c| c.idle_since.elapsed() >= IDLE_TIMEOUT)
        {
            idle.pop_front();
        }
        if idle.len() < IDLE_PER_NODE {
            idle.push_back(connection);
        }
    });
}

#[cfg(test)]
mod tests;
