//! What a hostile client does to the balancer's connections: slow and quiet connections are
//! closed on time, connections over the cap are refused cleanly, many slow connections do not
//! keep normal clients out (the open-file limit is raised at start), and unreadable bodies get
//! BBB XML with the right status.

use std::time::{Duration, Instant};

use conflux_shared::Algorithm;
use conflux_tests::harness::{a_report, balancer, now_ms, post_report, sim, Balancer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const UNI: &str = "uni-secret-0123456789";

fn addr(lb: &Balancer) -> String {
    lb.url.trim_start_matches("http://").to_owned()
}

/// Everything the server sends until it closes the connection or `wait` passes; and whether it
/// closed.
async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> (String, bool) {
    let mut text = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&text).into(), true),
            Ok(Ok(n)) => text.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&text).into(), false),
        }
    }
}

async fn connect(lb: &Balancer) -> TcpStream {
    TcpStream::connect(addr(lb)).await.expect("connect")
}

#[tokio::test]
async fn quiet_and_slow_connections_are_closed() {
    let node = sim().start().await;
    let lb = balancer()
        .node("bbb1", &node)
        .integration("uni", UNI)
        .env("CONFLUX_SERVER__HEADER_TIMEOUT_SECS", "1")
        .env("CONFLUX_SERVER__BODY_TIMEOUT_SECS", "1")
        .start()
        .await;

    // A head that never ends.
    let mut stuck = connect(&lb).await;
    stuck
        .write_all(b"GET /bigbluebutton/api HTTP/1.1\r\nHost: lb\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut stuck, Duration::from_secs(6)).await;
    assert!(closed, "a connection stuck in its headers is closed");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A body announced and never sent.
    let mut silent = connect(&lb).await;
    silent
        .write_all(
            b"POST /bigbluebutton/api/create?meetingID=m HTTP/1.1\r\nHost: lb\r\n\
              Content-Type: application/xml\r\nContent-Length: 1000000\r\n\r\n",
        )
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut silent, Duration::from_secs(6)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("<messageKey>requestTimeout</messageKey>"),
        "{answer}"
    );
    assert!(closed, "the connection is closed after the timeout");

    // A body dripping in far below the minimum rate (1 KiB/s by default).
    let mut drip = connect(&lb).await;
    drip.write_all(
        b"POST /bigbluebutton/api/create?meetingID=m HTTP/1.1\r\nHost: lb\r\n\
          Content-Type: application/xml\r\nContent-Length: 1000000\r\n\r\n",
    )
    .await
    .unwrap();
    let dripping = async {
        for _ in 0..40 {
            if drip.write_all(b"<").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(4), dripping)
        .await
        .ok();
    let (answer, _) = read_until_closed(&mut drip, Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // An idle keep-alive connection.
    let mut idle = connect(&lb).await;
    idle.write_all(b"GET /bigbluebutton/api HTTP/1.1\r\nHost: lb\r\n\r\n")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut idle, Duration::from_secs(6)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "an idle keep-alive connection is closed");
}

#[tokio::test]
async fn unreadable_bodies_get_bbb_xml() {
    let node = sim().start().await;
    let lb = balancer()
        .node("bbb1", &node)
        .integration("uni", UNI)
        .start()
        .await;
    for (request, status, key) in [
        (
            &b"POST /bigbluebutton/api/create?meetingID=m HTTP/1.1\r\nHost: lb\r\n\
               Content-Type: application/xml\r\nContent-Length: 104857600\r\n\r\n"[..],
            "413",
            "requestTooLarge",
        ),
        (
            &b"POST /bigbluebutton/api/create?meetingID=m HTTP/1.1\r\nHost: lb\r\n\
               Content-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n"[..],
            "400",
            "requestMalformed",
        ),
    ] {
        let mut stream = connect(&lb).await;
        stream.write_all(request).await.unwrap();
        let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}")), "{answer}");
        assert!(answer.contains("content-type: text/xml"), "{answer}");
        assert!(
            answer.contains(&format!("<returncode>FAILED</returncode><messageKey>{key}</messageKey>")),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_cleanly() {
    let node = sim().start().await;
    let lb = balancer()
        .node("bbb1", &node)
        .integration("uni", UNI)
        .env("CONFLUX_SERVER__MAX_CONNECTIONS", "16")
        .start()
        .await;
    let mut held = Vec::new();
    let mut refused = None;
    for i in 0..40 {
        let mut stream = connect(&lb).await;
        let mut buf = [0u8; 512];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await
        {
            let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
            assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
            assert!(answer.contains("tooManyConnections"), "{answer}");
            refused = Some(i);
            break;
        }
        held.push(stream);
    }
    let refused = refused.expect("a connection over the cap is refused");
    assert!(refused <= 16, "refused only past the cap, at {refused}");
    drop(held);
    let bbb = lb.client(UNI, Algorithm::Sha256);
    let mut answered = false;
    for _ in 0..50 {
        if bbb.call("getMeetings", &[]).await.is_success() {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        answered,
        "clients are served again once the connections are gone"
    );
}

#[tokio::test]
async fn many_slow_connections_do_not_keep_clients_out() {
    // The test itself holds the slow connections.
    rlimit::increase_nofile_limit(u64::MAX).expect("raise the test's open-file limit");
    let node = sim().start().await;
    let lb = balancer()
        .node("bbb1", &node)
        .integration("uni", UNI)
        .open_files(1024, 4096)
        .start()
        .await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", lb.process.pid())).unwrap();
    let files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect::<Vec<_>>();
    assert_eq!(
        files,
        ["4096", "4096"],
        "the soft limit is raised to the hard one"
    );

    let mut slow = Vec::new();
    for _ in 0..1100 {
        let mut stream = connect(&lb).await;
        stream
            .write_all(b"GET /bigbluebutton/api HTTP/1.1\r\nHost: lb\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    let bbb = lb.client(UNI, Algorithm::Sha256);
    for i in 0..20 {
        let id = format!("room-{i}");
        let created = tokio::time::timeout(
            Duration::from_secs(10),
            bbb.call("create", &[("meetingID", &id), ("name", "Room")]),
        )
        .await
        .expect("a normal client is answered beside 1,100 slow connections");
        assert!(created.is_success(), "{created:?}");
    }
    drop(slow);
}

/// A mobile API URL signed with `salt` (the checksum covers the query, no call name).
fn mobile_url(lb: &Balancer, query: &str, salt: &str) -> String {
    let sum = conflux_shared::checksum::compute(Algorithm::Sha1, "", query, salt);
    format!(
        "{}/bigbluebutton/demo/mobile.jsp?{query}&checksum={sum}",
        lb.url
    )
}

async fn key_from(url: &str, client: &str) -> String {
    let text = conflux_tests::harness::http()
        .get(url)
        .header("x-forwarded-for", client)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let key = text
        .split("<messageKey>")
        .nth(1)
        .and_then(|rest| rest.split("</messageKey>").next())
        .unwrap_or("");
    if key.is_empty() && text.contains("<returncode>SUCCESS</returncode>") {
        return "SUCCESS".into();
    }
    key.into()
}

#[tokio::test]
async fn guessing_secrets_is_throttled_and_honest_clients_are_not() {
    let node = sim().start().await;
    let lb = balancer()
        .node("bbb1", &node)
        .integration("uni", UNI)
        .env("CONFLUX_API__CLIENT_FAILURE_BURST", "5")
        .env("CONFLUX_API__SCOPE_FAILURE_BURST", "12")
        .start()
        .await;
    let salt = &UNI[..5];
    let timestamp = "action=getTimestamp";

    // One client guessing the mobile salt: five wrong guesses, then even the right salt is
    // refused unchecked, so guessing cannot go faster than the refill (30 an hour).
    let guesser = "198.51.100.7";
    for i in 0..5 {
        let wrong = mobile_url(&lb, timestamp, &format!("{i:05x}"));
        assert_eq!(key_from(&wrong, guesser).await, "checksumError");
    }
    let wrong = mobile_url(&lb, timestamp, "fffff");
    assert_eq!(key_from(&wrong, guesser).await, "tooManyFailures");
    let right = mobile_url(&lb, timestamp, salt);
    assert_eq!(key_from(&right, guesser).await, "tooManyFailures");

    // The main API counts the same way.
    let bbb = lb.client(UNI, Algorithm::Sha256);
    let forger = lb.client("not-the-secret-at-all", Algorithm::Sha256);
    let forged = forger.url("getMeetings", &[]);
    for _ in 0..5 {
        assert_eq!(key_from(&forged, "198.51.100.8").await, "checksumError");
    }
    let honest = bbb.url("getMeetings", &[]);
    assert_eq!(key_from(&honest, "198.51.100.8").await, "tooManyFailures");

    // Many users behind one NAT, all signing right, are untouched.
    for _ in 0..300 {
        assert_eq!(key_from(&right, "203.0.113.50").await, "SUCCESS");
        assert_eq!(key_from(&honest, "203.0.113.50").await, "noMeetings");
    }

    // A guesser spreading over many addresses spends the shared budget (12, two already
    // spent above... ten of them), after which every address with a failure is refused, and
    // the NAT still is not.
    for i in 0..10 {
        let client = format!("192.0.2.{i}");
        key_from(&mobile_url(&lb, timestamp, "00000"), &client).await;
    }
    assert_eq!(key_from(&right, "192.0.2.3").await, "tooManyFailures");
    assert_eq!(key_from(&right, "203.0.113.50").await, "SUCCESS");

    let metrics = lb.metrics().await;
    assert!(
        metrics.contains("conflux_api_checksum_failures_total{api=\"mobile\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("conflux_api_checksum_refusals_total{api=\"bbb\"} 1"));
    let log = lb.process.log_text();
    assert!(log.contains("Too many failed checksums"), "{log}");
}

#[tokio::test]
async fn a_report_cannot_be_replayed_after_a_crash() {
    const TOKEN: &str = "enrol-token-0123456789";
    let node = sim().start().await;
    let mut lb = balancer()
        .node("bbb1", &node)
        .config(&format!("[monitor]\nenrolment_token = {TOKEN:?}\n"))
        .start()
        .await;
    let enrolled = lb.enrol(&node, "bbb1", TOKEN).await;
    let body = serde_json::to_vec(&a_report(10.0, 10.0)).unwrap();
    let now = now_ms();
    let (node, key) = (enrolled.node, enrolled.key.as_str());
    assert_eq!(post_report(&lb.url, node, key, now, &body).await, 200);
    // Killed right after the acknowledgement: the replay window was already on disk.
    lb.crash_and_restart().await;
    assert_eq!(
        post_report(&lb.url, node, key, now, &body).await,
        409,
        "a captured report replayed after a crash is refused"
    );
}

/// One fuzzed request: method, path and query, Content-Type, body.
struct Fuzzed {
    method: reqwest::Method,
    url: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

fn fuzzed(
    rng: &mut impl rand::Rng,
    lb: &Balancer,
    bbb: &conflux_tests::harness::BbbClient,
) -> Fuzzed {
    use rand::seq::IndexedRandom;
    const CALLS: &[&str] = &[
        "",
        "create",
        "join",
        "end",
        "isMeetingRunning",
        "getMeetingInfo",
        "getMeetings",
        "insertDocument",
        "sendChatMessage",
        "getRecordings",
        "publishRecordings",
        "deleteRecordings",
        "updateRecordings",
        "getRecordingTextTracks",
        "getServers",
        "getMeetingEvents",
        "nope",
        "../admin",
        "create%00",
    ];
    const NAMES: &[&str] = &[
        "meetingID",
        "name",
        "fullName",
        "role",
        "password",
        "moderatorPW",
        "attendeePW",
        "recordID",
        "publish",
        "state",
        "limit",
        "offset",
        "users",
        "createdAt",
        "meta_x",
        "meta_bbb-recording-ready-url",
        "redirect",
        "duration",
        "voiceBridge",
        "record",
        "preferredServer",
        "meta_server-tag",
        "checksum",
        "createTime",
        "userID",
        "%ff",
    ];
    const VALUES: &[&str] = &[
        "",
        "room-1",
        "room-2",
        "MODERATOR",
        "VIEWER",
        "true",
        "false",
        "-1",
        "0",
        "99999999999999999999",
        "2026-13-45",
        "%",
        "%zz",
        "%00",
        "a%20b",
        "\u{fffd}",
        "<x>",
        "]]>",
        "http://127.0.0.1:9/x",
        "&&",
        "=",
        "room-1,room-2",
    ];
    let call = *CALLS.choose(rng).unwrap();
    let mut params: Vec<(String, String)> = Vec::new();
    for _ in 0..rng.random_range(0..8) {
        let name = NAMES.choose(rng).unwrap().to_string();
        let value = if rng.random_bool(0.1) {
            "x".repeat(rng.random_range(0..5000))
        } else {
            VALUES.choose(rng).unwrap().to_string()
        };
        params.push((name, value));
    }
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut url = match rng.random_range(0..4) {
        // Signed right: the handlers see it.
        0 | 1 => bbb.url(call, &pairs),
        // Raw bytes in the query, unsigned or with a made-up checksum.
        2 => {
            let raw: String = (0..rng.random_range(0..80))
                .map(|_| *b"ab=&%09zZ-_.~+;/?#[]@!$'()*,".choose(rng).unwrap() as char)
                .collect();
            format!(
                "{}/bigbluebutton/api/{call}?{raw}&checksum={:040x}",
                lb.url,
                rng.random::<u128>()
            )
        }
        _ => format!(
            "{}/{}bigbluebutton/api/{call}?checksum={}",
            lb.url,
            ["", "uni/", "nobody/", "UNI/"].choose(rng).unwrap(),
            "0".repeat(rng.random_range(0..130))
        ),
    };
    if rng.random_bool(0.02) {
        url.push_str(&"&a=1".repeat(2000));
    }
    let method = [
        reqwest::Method::GET,
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ]
    .choose(rng)
    .unwrap()
    .clone();
    let content_type = *[
        None,
        Some("application/x-www-form-urlencoded"),
        Some("application/xml"),
        Some("multipart/form-data; boundary=x"),
        Some("text/plain"),
    ]
    .choose(rng)
    .unwrap();
    let body = match rng.random_range(0..4) {
        0 => Vec::new(),
        1 => b"meetingID=room-1&name=x".to_vec(),
        2 => b"<modules><module name=\"presentation\"><document url=\"http://127.0.0.1:9/a.pdf\"/></module></modules>".to_vec(),
        _ => (0..rng.random_range(0..2000)).map(|_| rng.random()).collect(),
    };
    Fuzzed {
        method,
        url,
        content_type,
        body,
    }
}

#[tokio::test]
async fn fuzzed_api_requests_get_bbb_xml_and_never_a_5xx() {
    use futures_util::StreamExt;
    use rand::SeedableRng;
    let node = sim().start().await;
    let lb = balancer()
        .node("bbb1", &node)
        .integration("uni", UNI)
        .env("CONFLUX_API__CLIENT_FAILURE_BURST", "1000000")
        .env("CONFLUX_API__SCOPE_FAILURE_BURST", "1000000")
        .start()
        .await;
    lb.cli_ok(&["integrations", "update", "uni", "--prefix", "uni"]);
    let bbb = lb.client(UNI, Algorithm::Sha1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xC0FFEE);
    let requests: Vec<Fuzzed> = (0..20_000).map(|_| fuzzed(&mut rng, &lb, &bbb)).collect();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let started = Instant::now();
    let failures: Vec<String> = futures_util::stream::iter(requests)
        .map(|r| {
            let client = client.clone();
            async move {
                let shown: String = r.url.chars().take(300).collect();
                let mut request = client.request(r.method.clone(), &r.url).body(r.body);
                if let Some(ct) = r.content_type {
                    request = request.header("content-type", ct);
                }
                let answer = match request.send().await {
                    Ok(answer) => answer,
                    Err(e) => return Some(format!("{} {shown}: no answer: {e}", r.method)),
                };
                let status = answer.status();
                let xml = answer
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/xml"));
                let text = answer.text().await.unwrap_or_default();
                if status.is_server_error() {
                    return Some(format!("{} {shown}: {status} {text:.200}", r.method));
                }
                let redirect = status.as_u16() == 302;
                if !redirect
                    && (!xml || !(text.starts_with("<response>") || text.starts_with("<?xml")))
                {
                    return Some(format!(
                        "{} {}: {status} not BBB XML: {text:.200}",
                        r.method, r.url
                    ));
                }
                None
            }
        })
        .buffer_unordered(32)
        .filter_map(|f| async move { f })
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} of 20,000 fuzzed requests failed, e.g.:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        started.elapsed() < Duration::from_secs(240),
        "the fuzz run hung"
    );
    // The balancer is still whole.
    let created = bbb
        .call(
            "create",
            &[("meetingID", "after-fuzz"), ("name", "After fuzz")],
        )
        .await;
    assert!(created.is_success(), "{created:?}");
}

#[tokio::test]
async fn metrics_can_be_protected_with_a_bearer_token() {
    let node = sim().start().await;
    let lb = balancer()
        .node("bbb1", &node)
        .env("CONFLUX_METRICS__TOKEN", "scrape-token-0123456789")
        .start()
        .await;
    let http = conflux_tests::harness::http();
    let url = format!("{}/metrics", lb.url);
    let refused = http.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    let wrong = http.get(&url).bearer_auth("guess").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let scrape = http
        .get(&url)
        .bearer_auth("scrape-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status(), 200);
    assert!(scrape.text().await.unwrap().contains("conflux_node_online"));
}
