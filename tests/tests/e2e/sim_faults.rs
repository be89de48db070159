//! The simulator under injected faults and hostile input: BBB-style errors, never a crash.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use conflux_shared::{Algorithm, Response};
use conflux_tests::harness::{http, sim};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn injected_faults_and_recovery() {
    let node = sim().start().await;
    let bbb = node.client(Algorithm::Sha256);
    let url = bbb.url("getMeetings", &[]);

    node.control(Method::POST, "fault", json!({"mode": "error"}))
        .await;
    assert_eq!(bbb.get(&url).await.status, 500);

    node.control(Method::POST, "fault", json!({"mode": "hang"}))
        .await;
    let hung = http()
        .get(&url)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(
        hung.is_err_and(|e| e.is_timeout()),
        "a hanging node never answers"
    );

    node.control(
        Method::POST,
        "fault",
        json!({"mode": "slow", "delay_ms": 200}),
    )
    .await;
    let quick = http()
        .get(&url)
        .timeout(Duration::from_millis(50))
        .send()
        .await;
    assert!(quick.is_err(), "a slow node misses a short deadline");
    assert_eq!(
        bbb.get(&url).await.status,
        200,
        "but answers a patient client"
    );

    let (status, status_json) = node.control(Method::GET, "status", json!({})).await;
    assert_eq!(
        (status, status_json["fault"]["mode"].as_str()),
        (200, Some("slow"))
    );
    let (status, _) = node
        .control(Method::POST, "fault", json!({"mode": "sideways"}))
        .await;
    assert_eq!(status, 400);

    node.control(Method::POST, "fault", json!({"mode": "ok"}))
        .await;
    assert!(bbb.call("getMeetings", &[]).await.is_success());
}

#[tokio::test]
async fn hostile_input_gets_bbb_errors() {
    let node = sim().start().await;
    let bbb = node.client(Algorithm::Sha1);
    let api = format!("{}/bigbluebutton/api", node.url);
    let key = |body: &str| {
        Response::from_xml(body)
            .ok()
            .and_then(|r| r.key().map(String::from))
    };

    // Invalid UTF-8 once decoded, signed correctly.
    let query = "meetingID=%FF%FE&name=x";
    let sum = conflux_shared::checksum::compute(Algorithm::Sha1, "create", query, &node.secret);
    let raw = bbb
        .get(&format!("{api}/create?{query}&checksum={sum}"))
        .await;
    assert_eq!(key(&raw.body).as_deref(), Some("validationError"));

    // A request line far beyond any limit, sent raw: refused, and the node lives on.
    let huge = format!(
        "GET /bigbluebutton/api/getMeetings?x={}&checksum=abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(200_000)
    );
    let answer = raw_exchange(&node.url, huge.as_bytes());
    assert!(
        answer.starts_with("HTTP/1.1 4"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    // Long but acceptable to HTTP: over our 64 KiB query limit, answered in BBB's format.
    let long = format!("{api}/getMeetings?x={}&checksum=abc", "a".repeat(65_000));
    let raw = bbb.get(&long).await;
    assert!(
        raw.status >= 400 || key(&raw.body).is_some(),
        "status {}",
        raw.status
    );

    // A body without Content-Type, a body for a call that takes none, a body too large.
    let create = bbb.url("create", &[("meetingID", "b1"), ("name", "Body")]);
    let raw = http()
        .post(&create)
        .body("meetingID=x")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(key(&raw).as_deref(), Some("unsupportedContentType"));
    let raw = bbb
        .post(
            &bbb.url("getMeetings", &[]),
            "application/json",
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(key(&raw.body).as_deref(), Some("unsupportedContentType"));
    let big = http()
        .post(&create)
        .header("content-type", "application/xml")
        .body(vec![b'<'; 33 << 20])
        .send()
        .await;
    // The node answers 413 and stops reading; the client may see that or a broken pipe.
    if let Ok(response) = big {
        assert_eq!(response.status().as_u16(), 413);
    }

    // A form body repeating a URL parameter fails the checksum, as in BBB.
    let raw = bbb
        .post(
            &create,
            "application/x-www-form-urlencoded",
            b"meetingID=other".to_vec(),
        )
        .await;
    assert_eq!(key(&raw.body).as_deref(), Some("checksumError"));
    // All parameters in the body: the checksum covers the empty URL query.
    let sum = conflux_shared::checksum::compute(Algorithm::Sha1, "create", "", &node.secret);
    let raw = bbb
        .post(
            &format!("{api}/create?checksum={sum}"),
            "application/x-www-form-urlencoded",
            b"meetingID=form1&name=Form+room".to_vec(),
        )
        .await;
    assert!(
        Response::from_xml(&raw.body).unwrap().is_success(),
        "{}",
        raw.body
    );

    // Broken XML for insertDocument, unknown methods, garbage checksums.
    let raw = bbb
        .post(
            &bbb.url("insertDocument", &[("meetingID", "form1")]),
            "application/xml",
            b"<modules><oops".to_vec(),
        )
        .await;
    assert_eq!(key(&raw.body).as_deref(), Some("validationError"));
    for garbage in [
        "checksum=",
        "checksum=zz",
        "checksum=%ZZ",
        "&&&",
        "checksum=1&checksum=2",
    ] {
        let raw = bbb.get(&format!("{api}/getMeetings?{garbage}")).await;
        assert_eq!(
            key(&raw.body).as_deref(),
            Some("checksumError"),
            "{garbage}"
        );
    }
    // Still alive and correct afterwards.
    assert!(bbb.call("getMeetings", &[]).await.is_success());
}

/// Sends `request` over a plain TCP connection and returns what came back (lossy UTF-8).
fn raw_exchange(url: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // The server may close early on an oversized request; a write error is fine then.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}
