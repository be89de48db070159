//! The callbacks BBB makes for a meeting (analytics, recording ready, meeting ended), relayed by
//! the balancer (`api.public_url`) to the front-end and signed with the integration's secret:
//! the node never learns the front-end's URLs, and callbacks that no node signed are refused
//! without anything reaching the front-end.

use std::time::Duration;

use conflux_shared::response::Body;
use conflux_shared::transfer::{jwt, jwt_claims, JwtAlg};
use conflux_shared::{Algorithm, Query};
use conflux_tests::harness::{balancer, http, sim, Balancer, BbbClient, SimNode};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use warp::Filter;

const UNI: &str = "uni-secret-0123456789";

/// One request the front-end received.
#[derive(Debug)]
struct Hit {
    path: String,
    query: String,
    authorization: Option<String>,
    body: String,
}

/// A front-end that records every request it gets.
async fn front_end() -> (String, mpsc::UnboundedReceiver<Hit>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let record = warp::path::full()
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::body::bytes())
        .map(
            move |path: warp::path::FullPath,
                  query: String,
                  authorization,
                  body: warp::hyper::body::Bytes| {
                let _ = tx.send(Hit {
                    path: path.as_str().to_owned(),
                    query,
                    authorization,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                "ok"
            },
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(warp::serve(record).incoming(listener).run());
    (url, rx)
}

/// A balancer relaying the callbacks of `node`'s meetings, with one setting from the
/// environment.
async fn relaying(node: &SimNode, key: &str, value: &str) -> Balancer {
    balancer()
        .nodes(&[node])
        .integration("uni", UNI)
        .public_url()
        .env(key, value)
        .start()
        .await
}

async fn next_hit(rx: &mut mpsc::UnboundedReceiver<Hit>) -> Hit {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no callback reached the front-end")
        .expect("front-end gone")
}

fn now_secs() -> i64 {
    i64::try_from(conflux_shared::date::now_ms() / 1000).unwrap()
}

async fn metadata_on_node(node: &BbbClient, meeting_id: &str) -> Vec<(String, String)> {
    match node
        .call("getMeetingInfo", &[("meetingID", meeting_id)])
        .await
        .body
    {
        Body::Meeting(m) => m.metadata,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn callbacks_reach_the_front_end_signed_with_its_secret() {
    let (fe, mut hits) = front_end().await;
    let n1 = sim().start().await;
    let lb = relaying(&n1, "CONFLUX_RECORDINGS__REQUIRE_RECORDER", "false").await;
    let uni = lb.client(UNI, Algorithm::Sha256);
    let (analytics_url, ended_url, ready_url) = (
        format!("{fe}/analytics"),
        format!("{fe}/ended?room=7"),
        format!("{fe}/ready"),
    );
    assert!(uni
        .call(
            "create",
            &[
                ("meetingID", "m1"),
                ("name", "Lecture"),
                ("record", "true"),
                ("meta_analytics-callback-url", &analytics_url),
                ("meta_endCallbackUrl", &ended_url),
                ("meta_bbb-recording-ready-url", &ready_url),
            ],
        )
        .await
        .is_success());

    // The node is given the balancer's URLs, never the front-end's.
    let node = n1.client(Algorithm::Sha1);
    let metadata = metadata_on_node(&node, "m1").await;
    let on_node = |key: &str| {
        metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{key} not sent: {metadata:?}"))
    };
    let callback_base = format!("{}/conflux/callback/", lb.url);
    for key in [
        "analytics-callback-url",
        "endcallbackurl",
        "bbb-recording-ready-url",
    ] {
        assert!(on_node(key).starts_with(&callback_base), "{key}");
    }
    assert!(
        metadata.iter().all(|(_, v)| !v.contains(&fe)),
        "{metadata:?}"
    );

    // The meeting ends: the meeting-ended GET and the analytics POST are relayed.
    assert!(uni.call("end", &[("meetingID", "m1")]).await.is_success());
    let (mut ended, mut analytics) = (None, None);
    while ended.is_none() || analytics.is_none() {
        let hit = next_hit(&mut hits).await;
        match hit.path.as_str() {
            "/ended" => ended = Some(hit),
            "/analytics" => analytics = Some(hit),
            other => panic!("unexpected callback {other}: {hit:?}"),
        }
    }
    let ended = ended.unwrap();
    assert_eq!(ended.query, "room=7&recordingmarks=false&meetingID=m1");
    let analytics = analytics.unwrap();
    let token = analytics
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .expect("a bearer token");
    assert!(token.starts_with("eyJhbGciOiJIUzUxMiIs"), "HS512: {token}");
    let claims = jwt_claims(UNI, token, now_secs()).expect("signed with the integration's secret");
    assert!(claims["exp"].as_i64().unwrap() > now_secs() + 3600);
    assert!(
        jwt_claims(&n1.secret, token, now_secs()).is_none(),
        "not the node's"
    );
    let data: Value = serde_json::from_str(&analytics.body).unwrap();
    assert_eq!(data["meeting_id"], "m1", "the node's JSON, as sent");

    // The recording is ready on the node: the balancer lists it, then tells the front-end.
    let (status, body) = n1
        .control(Method::POST, "meetings/m1/recording", json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let record_id = body["recordID"].as_str().unwrap().to_owned();
    let ready = next_hit(&mut hits).await;
    assert_eq!(ready.path, "/ready");
    let form = Query::parse(&ready.body).unwrap();
    let signed = form.get("signed_parameters").expect("signed_parameters");
    let claims = jwt_claims(UNI, signed, now_secs()).expect("signed with the integration's secret");
    assert_eq!(claims["record_id"], record_id.as_str());
    assert_eq!(claims["meeting_id"], "m1");
    match uni.call("getRecordings", &[("meetingID", "m1")]).await.body {
        Body::Recordings(list) => assert_eq!(list.len(), 1, "listed before the callback"),
        other => panic!("{other:?}"),
    }

    // Callbacks no node signed, or for another meeting, reach nobody.
    let analytics_path = on_node("analytics-callback-url");
    let analytics = |token: Option<String>| {
        let mut request = http()
            .post(&analytics_path)
            .json(&json!({ "meeting_id": "m1" }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let forged = jwt(JwtAlg::Hs512, UNI, &json!({ "exp": now_secs() + 60 }));
    assert_eq!(analytics(Some(forged)).await, 401);
    assert_eq!(analytics(None).await, 401);
    let expired = jwt(JwtAlg::Hs512, &n1.secret, &json!({ "exp": now_secs() - 5 }));
    assert_eq!(analytics(Some(expired)).await, 401, "expired");
    let ready_path = on_node("bbb-recording-ready-url");
    let wrong = jwt(
        JwtAlg::Hs256,
        "not-a-node-secret",
        &json!({ "meeting_id": "m1", "record_id": record_id }),
    );
    let refused = http()
        .post(&ready_path)
        .form(&[("signed_parameters", wrong)])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let ended_path = on_node("endcallbackurl");
    for query in ["meetingID=other&recordingmarks=false", ""] {
        let refused = http()
            .get(format!("{ended_path}?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401, "the tag names m1 only ({query})");
    }
    let other_integration = ended_path.replacen("/callback/", "/callback/9", 1);
    let refused = http()
        .get(format!("{other_integration}?meetingID=m1"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 404);
    // A caller that keeps forging is refused unchecked, as the API's checksum guessers are.
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(analytics(Some("x.y.z".into())).await);
    }
    assert!(
        statuses.contains(&401) && statuses.ends_with(&[429]),
        "{statuses:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        hits.try_recv().is_err(),
        "a refused callback reached the front-end"
    );
}

#[tokio::test]
async fn a_meeting_ended_on_its_node_shows_ended_between_polls() {
    let (fe, mut hits) = front_end().await;
    let n1 = sim().start().await;
    let lb = relaying(&n1, "CONFLUX_POLLER__INTERVAL_SECS", "600").await;
    let uni = lb.client(UNI, Algorithm::Sha256);
    let ended_url = format!("{fe}/ended");
    assert!(uni
        .call(
            "create",
            &[
                ("meetingID", "m2"),
                ("name", "Seminar"),
                ("meta_endCallbackUrl", &ended_url)
            ],
        )
        .await
        .is_success());
    assert_eq!(ended_at(&uni, "m2").await, Some(0));
    // The meeting ends on the node (its last user left, its duration ran out...).
    let started = std::time::Instant::now();
    let (status, body) = n1.control(Method::POST, "meetings/m2/end", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        next_hit(&mut hits).await.query,
        "recordingmarks=false&meetingID=m2"
    );
    let mut shown = false;
    while started.elapsed() < Duration::from_secs(3) {
        if ended_at(&uni, "m2").await.is_some_and(|t| t > 0) {
            shown = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        shown,
        "getMeetings still shows m2 running 3 s after it ended"
    );
}

/// When getMeetings says `meeting_id` ended (0: running or not started).
async fn ended_at(client: &BbbClient, meeting_id: &str) -> Option<u64> {
    match client.call("getMeetings", &[]).await.body {
        Body::Meetings(list) => list
            .iter()
            .find(|m| m.meeting_id == meeting_id)
            .map(|m| m.end_time),
        other => panic!("{other:?}"),
    }
}
