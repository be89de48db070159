//! The connection under an exchange: TCP for `http://` nodes, TLS over TCP for `https://` ones
//! (rustls, verified against the system's roots or `SSL_CERT_FILE`/`SSL_CERT_DIR`, sessions
//! resumed on reconnects, as reqwest verified them before).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::{client::TlsStream, TlsConnector};

/// A node's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// The scheme of `url` and the rest of it after `://`.
    pub fn split(url: &str) -> Option<(Scheme, &str)> {
        if let Some(rest) = url.strip_prefix("http://") {
            Some((Scheme::Http, rest))
        } else {
            url.strip_prefix("https://")
                .map(|rest| (Scheme::Https, rest))
        }
    }

    fn default_port(self) -> &'static str {
        match self {
            Scheme::Http => "80",
            Scheme::Https => "443",
        }
    }
}

/// An open connection to a node.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Connects to `authority` (`host[:port]`), with TLS for `https` (`tls`, else the system's
    /// roots); both within `timeout`. Nothing of a request has been sent when this fails.
    pub async fn connect(
        scheme: Scheme,
        authority: &str,
        timeout: Duration,
        tls: Option<&Arc<ClientConfig>>,
    ) -> Result<Stream, String> {
        let connecting = async {
            let address = with_port(authority, scheme);
            let tcp = TcpStream::connect(address.as_ref())
                .await
                .map_err(|e| format!("tcp connect error: {e}"))?;
            tcp.set_nodelay(true).ok();
            match scheme {
                Scheme::Http => Ok(Stream::Plain(tcp)),
                Scheme::Https => {
                    let name = server_name(authority)?;
                    let config = match tls {
                        Some(config) => config.clone(),
                        None => system_tls()?,
                    };
                    let tls = TlsConnector::from(config)
                        .connect(name, tcp)
                        .await
                        .map_err(|e| format!("tls handshake error: {e}"))?;
                    Ok(Stream::Tls(Box::new(tls)))
                }
            }
        };
        tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| format!("connect error: no connection within {timeout:?}"))?
    }

    /// Whether an idle connection is still open: its socket is not readable (the usual case, no
    /// system call), or readable with nothing to read yet. Readable with data or an end means the
    /// node closed it (for TLS, its close_notify) or sent something unasked: either way it is
    /// not reused, so the byte a probe takes from a TLS stream is never missed.
    pub fn is_open(&self) -> bool {
        let tcp = match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref().0,
        };
        match tcp.ready(tokio::io::Interest::READABLE).now_or_never() {
            None => true,
            Some(_) => matches!(
                tcp.try_read(&mut [0u8; 1]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock
            ),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// `authority` with the scheme's port when it names none (`host`, `[::1]`).
pub fn with_port(authority: &str, scheme: Scheme) -> std::borrow::Cow<'_, str> {
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    if has_port {
        std::borrow::Cow::Borrowed(authority)
    } else {
        std::borrow::Cow::Owned(format!("{authority}:{}", scheme.default_port()))
    }
}

/// The name a node's certificate must hold: the authority's host (a DNS name or an IP address,
/// IPv6 without its brackets).
pub(super) fn server_name(authority: &str) -> Result<ServerName<'static>, String> {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    ServerName::try_from(host.to_owned()).map_err(|e| format!("invalid host {host:?}: {e}"))
}

/// The TLS settings of every HTTPS node call, made once: the trusted roots are read from the
/// system (or `SSL_CERT_FILE`/`SSL_CERT_DIR`) at the first call, and the session cache is
/// shared by every thread's connections.
fn system_tls() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let errors: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
                return Err(format!(
                    "no trusted root certificates found (SSL_CERT_FILE, SSL_CERT_DIR or the \
                     system's store): {}",
                    errors.join("; ")
                ));
            }
            tls_config(roots)
        })
        .clone()
}

/// HTTP/1.1 over TLS 1.2 or 1.3 (ring's algorithms) to servers whose certificate `roots` sign.
pub fn tls_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
