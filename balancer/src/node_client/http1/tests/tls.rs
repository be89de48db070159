//! The same exchange with HTTPS nodes: certificates made here (rcgen), signed by a private CA
//! that is the client's only root.

use super::*;

/// A private CA: its certificate and key.
struct Ca {
    certificate: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Ca {
    fn new() -> Ca {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let certificate = params.self_signed(&key).unwrap();
        Ca { certificate, key }
    }

    /// A server holding a certificate of this CA for `names`.
    fn acceptor(&self, names: &[&str]) -> TlsAcceptor {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = rcgen::CertificateParams::new(names).unwrap();
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![certificate.der().clone()],
                PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    }

    /// A client trusting this CA alone.
    fn client(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.certificate.der().to_vec()))
            .unwrap();
        stream::tls_config(roots).unwrap()
    }
}

async fn get_tls(
    client: &Arc<ClientConfig>,
    authority: &str,
    path: &str,
) -> Result<(StatusCode, Bytes), SendError> {
    let url = format!("https://{authority}{path}");
    send(Call {
        url: &url,
        body: None,
        connect_timeout: Duration::from_secs(2),
        limit: 1024,
        tls: Some(client),
    })
    .await
}

#[tokio::test]
async fn https_answers_in_every_framing_on_one_connection() {
    let ca = Ca::new();
    let chunked: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        4\r\n<res\r\n6\r\nponse>\r\n0\r\n\r\n";
    let script = vec![
        Reply::Bytes(OK, 0),
        Reply::Bytes(chunked, 3),
        Reply::Bytes(OK, 0),
    ];
    let (address, accepted, heads) =
        server_with(vec![script], Some(ca.acceptor(&["127.0.0.1"]))).await;
    let client = ca.client();
    let (status, body) = get_tls(&client, &address, "/api/isMeetingRunning?a=1")
        .await
        .unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"hello"[..]));
    let (_, body) = get_tls(&client, &address, "/b").await.unwrap();
    assert_eq!(&body[..], b"<response>");
    let (_, body) = get_tls(&client, &address, "/c").await.unwrap();
    assert_eq!(&body[..], b"hello");
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection kept");
    assert_eq!(
        heads.lock().unwrap()[0],
        format!("GET /api/isMeetingRunning?a=1 HTTP/1.1\r\nHost: {address}\r\n\r\n")
    );
}

#[tokio::test]
async fn a_tls_connection_the_node_closed_is_replaced_and_an_unanswered_get_sent_again() {
    let ca = Ca::new();
    let client = ca.client();
    // Closed while idle, with a close_notify (as nginx's keep-alive timeout does).
    let (address, accepted, _) = server_with(
        vec![vec![Reply::Bytes(OK, 0)], vec![Reply::Bytes(OK, 0)]],
        Some(ca.acceptor(&["127.0.0.1"])),
    )
    .await;
    get_tls(&client, &address, "/1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, body) = get_tls(&client, &address, "/2").await.unwrap();
    assert_eq!(&body[..], b"hello");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);

    // Dropped after reading the next request, without a close_notify.
    let (address, accepted, heads) = server_with(
        vec![
            vec![Reply::Bytes(OK, 0), Reply::Close],
            vec![Reply::Bytes(OK, 0)],
        ],
        Some(ca.acceptor(&["127.0.0.1"])),
    )
    .await;
    get_tls(&client, &address, "/1").await.unwrap();
    let (_, body) = get_tls(&client, &address, "/2").await.unwrap();
    assert_eq!(&body[..], b"hello");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert_eq!(heads.lock().unwrap().len(), 3, "the GET was sent twice");
}

#[tokio::test]
async fn a_truncated_tls_answer_fails() {
    let ca = Ca::new();
    let truncated: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort";
    let (address, _, _) = server_with(
        vec![vec![Reply::Bytes(truncated, 0)]],
        Some(ca.acceptor(&["127.0.0.1"])),
    )
    .await;
    let error = get_tls(&ca.client(), &address, "/").await.unwrap_err();
    assert!(
        matches!(&error, SendError::Failed(e) if e.contains("closed inside the answer")),
        "{error:?}"
    );
}

#[tokio::test]
async fn untrusted_or_misnamed_certificates_send_nothing() {
    let (ca, other) = (Ca::new(), Ca::new());
    for (acceptor, why) in [
        (other.acceptor(&["127.0.0.1"]), "another CA"),
        (ca.acceptor(&["bbb1.example.org"]), "another name"),
    ] {
        let (address, _, heads) =
            server_with(vec![vec![Reply::Bytes(OK, 0)]], Some(acceptor)).await;
        let error = get_tls(&ca.client(), &address, "/").await.unwrap_err();
        assert!(
            matches!(&error, SendError::NotSent(e) if e.contains("tls handshake error")),
            "{why}: {error:?}"
        );
        assert!(
            heads.lock().unwrap().is_empty(),
            "{why}: a request was sent"
        );
    }
}

#[test]
fn certificates_name_the_authoritys_host() {
    for (authority, name) in [
        ("bbb1.example.org", "bbb1.example.org"),
        ("bbb1.example.org:8443", "bbb1.example.org"),
        ("127.0.0.1:443", "127.0.0.1"),
        ("[::1]:8443", "::1"),
    ] {
        let server_name = stream::server_name(authority).unwrap();
        assert_eq!(server_name.to_str(), name, "{authority}");
    }
}
