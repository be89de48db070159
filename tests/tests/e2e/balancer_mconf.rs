//! Mconf-LB's additions on the balancer: the mobile API with the 5-character salt, getServers
//! and getMeetingEvents.

use conflux_shared::checksum::compute;
use conflux_shared::{Algorithm, Element};
use conflux_tests::harness::{balancer, sim};

const SECRET: &str = "abcdefghijklmnopqrstuvwxyz123456";

/// A signed mobile URL: `sha1(query + salt)`, checksum last.
fn mobile(base: &str, query: &str, salt: &str) -> String {
    format!(
        "{base}/bigbluebutton/demo/mobile.jsp?{query}&checksum={}",
        compute(Algorithm::Sha1, "", query, salt)
    )
}

fn now_secs() -> u64 {
    conflux_shared::date::now_ms() / 1000
}

#[tokio::test]
async fn mobile_clients_use_the_first_five_characters_of_the_secret() {
    let node = sim().start().await;
    let lb = balancer()
        .node("bbb1", &node)
        .integration("uni", SECRET)
        .start()
        .await;
    let bbb = lb.client(SECRET, Algorithm::Sha1);
    let get = |url: String| {
        let bbb = &bbb;
        async move { bbb.get(&url).await.body }
    };
    let supported = get(format!("{}/demo/mobile.jsp", lb.url)).await;
    assert!(supported.contains("mobileSupported"), "{supported}");
    // Mconf's mobile clients read the version at SERVER/bigbluebutton/api first: 0.8 sends
    // them to mobile.jsp. Their server is the balancer's /mobile; BBB clients keep 2.0.
    let version = |xml: String| {
        let root = Element::parse(&xml).unwrap();
        assert_eq!(root.child_text("returncode"), Some("SUCCESS"), "{xml}");
        root.child_text("version").unwrap().to_owned()
    };
    let server = format!("{}/mobile", lb.url);
    assert_eq!(
        version(get(format!("{server}/bigbluebutton/api")).await),
        "0.8"
    );
    assert_eq!(
        version(get(format!("{}/bigbluebutton/api", lb.url)).await),
        "2.0"
    );
    let stamp = get(mobile(&server, "action=getTimestamp", "abcde")).await;
    let timestamp = Element::parse(&stamp)
        .unwrap()
        .child_text("timestamp")
        .unwrap()
        .to_owned();
    assert!((timestamp.parse::<i64>().unwrap() - now_secs() as i64).abs() <= 2);

    let created = get(mobile(
        &lb.url,
        &format!("action=create&meetingID=Mobile+Room&timestamp={timestamp}"),
        "abcde",
    ))
    .await;
    assert_eq!(created.trim(), "Mobile Room");
    let list = get(mobile(
        &lb.url,
        &format!("action=getMeetings&timestamp={timestamp}"),
        "abcde",
    ))
    .await;
    let root = Element::parse(&list).unwrap();
    assert_eq!(root.name, "meetings");
    assert_eq!(
        root.children[0].child_text("meetingID"),
        Some("Mobile Room")
    );
    assert_eq!(root.children[0].child_text("returncode"), Some("SUCCESS"));
    let joined = get(mobile(
        &lb.url,
        &format!(
            "action=join&meetingID=Mobile+Room&fullName=Ana&password=mp&timestamp={timestamp}"
        ),
        "abcde",
    ))
    .await;
    let enter = Element::parse(&joined).unwrap();
    assert_eq!(
        (enter.child_text("returncode"), enter.child_text("role")),
        (Some("SUCCESS"), Some("MODERATOR")),
        "{joined}"
    );
    let wrong = get(mobile(
        &lb.url,
        &format!(
            "action=join&meetingID=Mobile+Room&fullName=Ana&password=nope&timestamp={timestamp}"
        ),
        "abcde",
    ))
    .await;
    assert!(wrong.contains("invalidPassword"), "{wrong}");

    // The standard API sees the mobile meeting, with the full secret.
    assert!(bbb
        .call("getMeetingInfo", &[("meetingID", "Mobile Room")])
        .await
        .is_success());

    let refusals = [
        (
            mobile(&lb.url, "action=getTimestamp", "zzzzz"),
            "checksumError",
        ),
        (
            mobile(&lb.url, "action=getTimestamp", "ABCDE"),
            "checksumError",
        ),
        (
            format!("{}/demo/mobile.jsp?action=getTimestamp", lb.url),
            "checksumError",
        ),
        (
            mobile(&lb.url, "action=getMeetings", "abcde"),
            "missingParamTimestamp",
        ),
        (
            mobile(
                &lb.url,
                &format!("action=getMeetings&timestamp={}", now_secs() - 120),
                "abcde",
            ),
            "invalidTimestamp",
        ),
        (
            mobile(
                &lb.url,
                &format!("action=fly&timestamp={timestamp}"),
                "abcde",
            ),
            "invalidAction",
        ),
        (
            mobile(
                &lb.url,
                &format!("action=join&meetingID=x&timestamp={timestamp}"),
                "abcde",
            ),
            "missingParamFullName",
        ),
    ];
    for (url, key) in refusals {
        let body = get(url.clone()).await;
        assert!(
            body.contains(&format!("<messageKey>{key}</messageKey>")),
            "{url}: {body}"
        );
    }
}

#[tokio::test]
async fn get_servers_and_meeting_events() {
    let (n1, n2) = (sim().start().await, sim().start().await);
    let lb = balancer()
        .nodes(&[&n1, &n2])
        .integration("uni", SECRET)
        .start()
        .await;
    let bbb = lb.client(SECRET, Algorithm::Sha256);
    let servers = bbb.call("getServers", &[]).await;
    assert!(servers.is_success());
    let xml = servers.to_xml();
    assert!(
        xml.contains("<name>bbb1</name>") && xml.contains("<name>bbb2</name>"),
        "{xml}"
    );
    assert!(
        xml.contains("<status>2</status>") && !xml.contains(&n1.secret),
        "{xml}"
    );

    for i in 0..3 {
        let id = format!("ev{i}");
        bbb.call(
            "create",
            &[
                ("meetingID", &id),
                ("name", "Event room"),
                ("meta_course", "cs101"),
            ],
        )
        .await;
        if i > 0 {
            let join = bbb
                .get(&bbb.url(
                    "join",
                    &[
                        ("meetingID", &id),
                        ("fullName", "Ann"),
                        ("role", "MODERATOR"),
                    ],
                ))
                .await;
            assert_eq!(join.status, 302);
        }
    }
    bbb.call("end", &[("meetingID", "ev2")]).await;
    let events = bbb
        .call("getMeetingEvents", &[("users", "1"), ("limit", "10")])
        .await;
    assert!(events.is_success());
    let xml = events.to_xml();
    let root = Element::parse(&xml).unwrap();
    let list: Vec<&Element> = root.child("events").unwrap().children.iter().collect();
    assert_eq!(
        list.iter()
            .map(|e| e.child_text("meetingID").unwrap())
            .collect::<Vec<_>>(),
        ["ev2", "ev1"],
        "newest first, rooms without users skipped"
    );
    assert!(list[0].child_text("endedAt").unwrap() != "0");
    assert_eq!(list[1].child_text("endedAt"), Some("0"));
    assert_eq!(
        list[0].child("users").unwrap().children[0].child_text("role"),
        Some("moderator")
    );
    assert_eq!(
        list[0].child("query").unwrap().child_text("meta_course"),
        Some("cs101")
    );
    let today = bbb
        .call(
            "getMeetingEvents",
            &[("users", "0"), ("createdAt", "2000-01-01")],
        )
        .await;
    assert_eq!(
        Element::parse(&today.to_xml())
            .unwrap()
            .child("events")
            .unwrap()
            .children
            .len(),
        3
    );
    let bad = bbb
        .call("getMeetingEvents", &[("createdAt", "yesterday")])
        .await;
    assert_eq!(bad.key(), Some("invalidParameters"));
}
