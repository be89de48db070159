//! The exchange against scripted servers on loopback, plain and TLS: each server reads one
//! request head at a time and writes the given bytes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use super::*;

mod tls;

/// What a scripted connection does with each request it reads.
#[derive(Clone)]
enum Reply {
    /// Writes these bytes (in pieces of this size, 0 = at once).
    Bytes(&'static [u8], usize),
    /// Closes the connection without answering.
    Close,
}

type Heads = Arc<std::sync::Mutex<Vec<String>>>;

/// A server whose n-th connection answers its requests with `scripts[n]` (the last script
/// repeats). Returns its address, the number of connections accepted and the request heads.
async fn server(scripts: Vec<Vec<Reply>>) -> (String, Arc<AtomicUsize>, Heads) {
    server_with(scripts, None).await
}

/// [`server`], over TLS when `tls` is given.
async fn server_with(
    scripts: Vec<Vec<Reply>>,
    tls: Option<TlsAcceptor>,
) -> (String, Arc<AtomicUsize>, Heads) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (count, seen) = (accepted.clone(), heads.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let n = count.fetch_add(1, Ordering::SeqCst);
            let script = scripts[n.min(scripts.len() - 1)].clone();
            let (tls, seen) = (tls.clone(), seen.clone());
            tokio::spawn(async move {
                match tls {
                    None => serve(stream, script, seen).await,
                    // A failed handshake ends the connection before any request.
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(stream).await {
                            serve(stream, script, seen).await
                        }
                    }
                }
            });
        }
    });
    (address, accepted, heads)
}

/// Answers the requests of one connection by `script`; closes it cleanly (TLS: close_notify)
/// when the script is done, and abruptly on [`Reply::Close`].
async fn serve(mut stream: impl AsyncRead + AsyncWrite + Unpin, script: Vec<Reply>, heads: Heads) {
    let mut pending = Vec::new();
    for reply in script {
        let head = loop {
            if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = pending.drain(..end + 4).collect();
                break String::from_utf8(head).unwrap();
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&chunk[..n]),
            }
        };
        if let Some(length) = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .map(|n| n.parse::<usize>().unwrap())
        {
            while pending.len() < length {
                let mut chunk = [0u8; 4096];
                let n = stream.read(&mut chunk).await.unwrap();
                pending.extend_from_slice(&chunk[..n]);
            }
            pending.drain(..length);
        }
        heads.lock().unwrap().push(head);
        match reply {
            Reply::Close => return,
            Reply::Bytes(bytes, 0) => {
                stream.write_all(bytes).await.unwrap();
                stream.flush().await.unwrap();
            }
            Reply::Bytes(bytes, piece) => {
                for part in bytes.chunks(piece) {
                    stream.write_all(part).await.unwrap();
                    stream.flush().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
    }
    stream.shutdown().await.ok();
}

async fn get(address: &str, path: &str) -> Result<(StatusCode, Bytes), String> {
    send_get(address, path).await.map_err(|e| e.to_string())
}

async fn send_get(address: &str, path: &str) -> Result<(StatusCode, Bytes), SendError> {
    let url = format!("http://{address}{path}");
    send(Call {
        url: &url,
        body: None,
        connect_timeout: Duration::from_secs(2),
        limit: 1024,
        tls: None,
    })
    .await
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\n\r\nhello";

#[tokio::test]
async fn answers_with_a_length_reuse_one_connection() {
    let (address, accepted, heads) = server(vec![vec![Reply::Bytes(OK, 0); 3]]).await;
    for _ in 0..3 {
        let (status, body) = get(&address, "/bigbluebutton/api/isMeetingRunning?a=1")
            .await
            .unwrap();
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"hello"[..]));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(
        heads.lock().unwrap()[0],
        format!("GET /bigbluebutton/api/isMeetingRunning?a=1 HTTP/1.1\r\nHost: {address}\r\n\r\n")
    );
}

#[tokio::test]
async fn chunked_answers_with_extensions_and_trailers_arriving_in_pieces() {
    let answer: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        4;name=x\r\n<res\r\n6\r\nponse>\r\n0\r\nX-Trailer: 1\r\n\r\n";
    let (address, accepted, _) =
        server(vec![vec![Reply::Bytes(answer, 3), Reply::Bytes(OK, 0)]]).await;
    let (_, body) = get(&address, "/a").await.unwrap();
    assert_eq!(&body[..], b"<response>");
    let (_, body) = get(&address, "/b").await.unwrap();
    assert_eq!(&body[..], b"hello");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the chunked answer left the connection usable"
    );
}

#[tokio::test]
async fn answers_until_close_and_connection_close_are_not_reused() {
    let until_close: &[u8] = b"HTTP/1.0 200 OK\r\n\r\nuntil the end";
    let close: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
    // Each connection closes once its script is done.
    let (address, accepted, _) = server(vec![
        vec![Reply::Bytes(until_close, 0)],
        vec![Reply::Bytes(close, 0), Reply::Bytes(OK, 0)],
        vec![Reply::Bytes(OK, 0)],
    ])
    .await;
    let (_, body) = get(&address, "/1").await.unwrap();
    assert_eq!(&body[..], b"until the end");
    let (_, body) = get(&address, "/2").await.unwrap();
    assert_eq!(&body[..], b"ok");
    let (_, body) = get(&address, "/3").await.unwrap();
    assert_eq!(&body[..], b"hello");
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn informational_answers_are_skipped() {
    let answer: &[u8] =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\ngone";
    let (address, _, _) = server(vec![vec![Reply::Bytes(answer, 0)]]).await;
    let (status, body) = get(&address, "/").await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::NOT_FOUND, &b"gone"[..]));
}

#[tokio::test]
async fn a_kept_connection_the_node_closed_is_replaced() {
    // First connection: one answer, then the node closes it while idle.
    let (address, accepted, _) =
        server(vec![vec![Reply::Bytes(OK, 0)], vec![Reply::Bytes(OK, 0)]]).await;
    get(&address, "/1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, body) = get(&address, "/2").await.unwrap();
    assert_eq!(&body[..], b"hello");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_get_the_node_dropped_unanswered_is_sent_again_but_a_post_is_not() {
    // The first connection answers once, then reads the next request and closes unanswered.
    let script = vec![
        vec![Reply::Bytes(OK, 0), Reply::Close],
        vec![Reply::Bytes(OK, 0)],
    ];
    let (address, accepted, heads) = server(script.clone()).await;
    get(&address, "/1").await.unwrap();
    let (_, body) = get(&address, "/2").await.unwrap();
    assert_eq!(&body[..], b"hello");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert_eq!(heads.lock().unwrap().len(), 3, "the GET was sent twice");

    let (address, _, heads) = server(script).await;
    get(&address, "/1").await.unwrap();
    let url = format!("http://{address}/insertDocument");
    let posted = send(Call {
        url: &url,
        body: Some((Some("application/xml"), Bytes::from_static(b"<modules/>"))),
        connect_timeout: Duration::from_secs(2),
        limit: 1024,
        tls: None,
    })
    .await;
    assert!(posted.is_err(), "a POST is never sent twice: {posted:?}");
    let heads = heads.lock().unwrap();
    assert_eq!(heads.len(), 2);
    assert!(heads[1].starts_with("POST /insertDocument HTTP/1.1\r\n"));
    assert!(heads[1].contains("Content-Type: application/xml\r\nContent-Length: 10\r\n"));
}

#[tokio::test]
async fn oversized_broken_or_truncated_answers_fail() {
    let long: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n";
    let long_chunks: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3ff\r\n";
    let garbage: &[u8] = b"SMTP ready\r\n\r\n";
    let bad_length: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello";
    let truncated: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort";
    for (answer, expected) in [
        (long, "larger than 1024"),
        (long_chunks, "closed inside a chunk"),
        (garbage, "invalid answer head"),
        (bad_length, "invalid Content-Length"),
        (truncated, "closed inside the answer"),
    ] {
        let (address, _, _) = server(vec![vec![Reply::Bytes(answer, 0)]]).await;
        let error = get(&address, "/").await.unwrap_err();
        assert!(
            error.contains(expected),
            "{error:?} should say {expected:?}"
        );
    }
    let oversized_chunked: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n401\r\n";
    let (address, _, _) = server(vec![vec![Reply::Bytes(oversized_chunked, 0)]]).await;
    assert!(get(&address, "/")
        .await
        .unwrap_err()
        .contains("larger than 1024"));
}

#[tokio::test]
async fn targets_with_blanks_or_controls_are_refused_before_sending() {
    let error = get("127.0.0.1:9", "/a b").await.unwrap_err();
    assert!(error.contains("0x20"), "{error}");
}

#[test]
fn ports_default_to_the_schemes() {
    for (authority, address) in [
        ("127.0.0.1:18081", "127.0.0.1:18081"),
        ("bbb1.example.org", "bbb1.example.org:80"),
        ("bbb1.example.org:8080", "bbb1.example.org:8080"),
        ("[::1]", "[::1]:80"),
        ("[::1]:8090", "[::1]:8090"),
    ] {
        assert_eq!(
            stream::with_port(authority, Scheme::Http),
            address,
            "{authority}"
        );
    }
    assert_eq!(
        stream::with_port("bbb1.example.org", Scheme::Https),
        "bbb1.example.org:443"
    );
    assert_eq!(stream::with_port("[::1]", Scheme::Https), "[::1]:443");
}

#[tokio::test]
async fn a_refused_connection_sent_nothing() {
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .to_string();
    // The listener is closed again: connecting is refused.
    assert!(matches!(
        send_get(&address, "/").await,
        Err(SendError::NotSent(_))
    ));
}
