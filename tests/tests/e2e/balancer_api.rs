//! The balancer's BBB API over three simulated nodes: proxying, integration isolation, plans,
//! burst spreading, tags, and hostile input.

use conflux_shared::response::Body;
use conflux_shared::{Algorithm, Response};
use conflux_tests::harness::{balancer, eventually, http, sim, Balancer, SimNode};
use reqwest::Method;
use serde_json::json;

const UNI: &str = "uni-secret-0123456789";
const SCHOOL: &str = "school-secret-0123456789";

/// One simulated node behind a balancer with the integration `uni` and the environment `env`,
/// and a meeting `meeting_id` created on it.
async fn one_meeting(env: &[(&str, &str)], meeting_id: &str) -> (SimNode, Balancer) {
    let node = sim().start().await;
    let lb = env
        .iter()
        .fold(
            balancer().node("n1", &node).integration("uni", UNI),
            |b, (k, v)| b.env(k, v),
        )
        .start()
        .await;
    let created = lb
        .client(UNI, Algorithm::Sha1)
        .call("create", &[("meetingID", meeting_id), ("name", "Meeting")])
        .await;
    assert!(created.is_success(), "{created:?}");
    (node, lb)
}

async fn three_nodes() -> (SimNode, SimNode, SimNode) {
    (
        sim().start().await,
        sim().start().await,
        sim().start().await,
    )
}

async fn meetings_on(node: &SimNode) -> u64 {
    let (_, status) = node.control(Method::GET, "status", json!({})).await;
    status["meetings"].as_u64().unwrap()
}

#[tokio::test]
async fn meeting_calls_are_proxied_to_the_hosting_node() {
    let (n1, n2, n3) = three_nodes().await;
    let lb = balancer()
        .nodes(&[&n1, &n2, &n3])
        .integration("uni", UNI)
        .start()
        .await;
    for algorithm in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
        let bbb = lb.client(UNI, algorithm);
        let id = format!("lecture-{algorithm}");
        let created = bbb
            .call(
                "create",
                &[
                    ("meetingID", &id),
                    ("name", "Lecture"),
                    ("moderatorPW", "mp"),
                    ("attendeePW", "ap"),
                ],
            )
            .await;
        assert!(created.is_success(), "{created:?}");
        let again = bbb
            .call("create", &[("meetingID", &id), ("name", "Lecture")])
            .await;
        assert_eq!(
            again.key(),
            Some("duplicateWarning"),
            "a repeated create goes to the same node"
        );

        let join = bbb
            .get(&bbb.url(
                "join",
                &[("meetingID", &id), ("fullName", "Ann"), ("password", "mp")],
            ))
            .await;
        assert_eq!(join.status, 302);
        let location = join.location.unwrap();
        let hosting = [&n1, &n2, &n3]
            .into_iter()
            .find(|n| location.starts_with(&n.url))
            .expect("redirect to a node");
        let followed = http().get(&location).send().await.unwrap();
        assert_eq!(
            followed.status(),
            302,
            "the node accepts the re-signed join"
        );

        let info = bbb.call("getMeetingInfo", &[("meetingID", &id)]).await;
        let Body::Meeting(m) = &info.body else {
            panic!("{info:?}")
        };
        assert_eq!((m.participant_count, m.moderator_count), (1, 1));
        let direct = hosting
            .client(Algorithm::Sha1)
            .call("getMeetingInfo", &[("meetingID", &id)])
            .await;
        assert!(
            direct.is_success(),
            "the meeting lives on the node the join pointed at"
        );
        assert_eq!(
            bbb.call("isMeetingRunning", &[("meetingID", &id)])
                .await
                .field("running"),
            Some("true")
        );

        let Body::Meetings(listed) = bbb.call("getMeetings", &[]).await.body else {
            panic!()
        };
        assert!(listed.iter().any(|m| m.meeting_id == id));

        assert_eq!(
            bbb.call("end", &[("meetingID", &id)]).await.key(),
            Some("sentEndMeetingRequest")
        );
        assert_eq!(
            bbb.call("getMeetingInfo", &[("meetingID", &id)])
                .await
                .key(),
            Some("notFound")
        );
    }
    let bbb = lb.client(UNI, Algorithm::Sha256);
    assert_eq!(
        bbb.call("isMeetingRunning", &[("meetingID", "never")])
            .await
            .field("running"),
        Some("false")
    );
    assert_eq!(
        bbb.call("end", &[("meetingID", "never")]).await.key(),
        Some("notFound")
    );
    let index =
        Response::from_xml(&bbb.get(&format!("{}/bigbluebutton/api", lb.url)).await.body).unwrap();
    assert_eq!(index.field("version"), Some("2.0"));
}

#[tokio::test]
async fn integrations_see_only_their_own_meetings() {
    let (n1, n2, n3) = three_nodes().await;
    let lb = balancer()
        .nodes(&[&n1, &n2, &n3])
        .integration("uni", UNI)
        .integration("school", SCHOOL)
        .start()
        .await;
    let uni = lb.client(UNI, Algorithm::Sha1);
    let school = lb.client(SCHOOL, Algorithm::Sha256);
    assert!(uni
        .call(
            "create",
            &[("meetingID", "shared-name"), ("name", "Uni room")]
        )
        .await
        .is_success());
    assert_eq!(
        school
            .call(
                "create",
                &[("meetingID", "shared-name"), ("name", "School")]
            )
            .await
            .key(),
        Some("idNotUnique")
    );
    assert_eq!(
        school
            .call("getMeetingInfo", &[("meetingID", "shared-name")])
            .await
            .key(),
        Some("notFound")
    );
    assert_eq!(
        school
            .call("end", &[("meetingID", "shared-name")])
            .await
            .key(),
        Some("notFound")
    );
    let join = school
        .call(
            "join",
            &[
                ("meetingID", "shared-name"),
                ("fullName", "Eve"),
                ("role", "MODERATOR"),
                ("redirect", "false"),
            ],
        )
        .await;
    assert_eq!(join.key(), Some("invalidMeetingIdentifier"));
    assert_eq!(
        school.call("getMeetings", &[]).await.key(),
        Some("noMeetings")
    );
    assert!(school
        .call(
            "create",
            &[("meetingID", "school-room"), ("name", "School")]
        )
        .await
        .is_success());
    let Body::Meetings(mine) = uni.call("getMeetings", &[]).await.body else {
        panic!()
    };
    assert_eq!(
        mine.iter()
            .map(|m| m.meeting_id.as_str())
            .collect::<Vec<_>>(),
        ["shared-name"]
    );
    assert!(uni
        .call("getMeetingInfo", &[("meetingID", "shared-name")])
        .await
        .is_success());

    // Scalelite's LOADBALANCER_SECRET(S) make a default integration with extra secrets.
    let mobile = lb.client("wrong-secret-0123", Algorithm::Sha1);
    assert_eq!(
        mobile.call("getMeetings", &[]).await.key(),
        Some("checksumError")
    );
}

#[tokio::test]
async fn plans_refuse_with_permission_denied() {
    let node = sim().start().await;
    let lb = balancer()
        .node("bbb1", &node)
        .integration("uni", UNI)
        .start()
        .await;
    lb.cli_ok(&[
        "integrations",
        "update",
        "uni",
        "--max-meetings",
        "1",
        "--recording-allowed",
        "false",
    ]);
    let bbb = lb.client(UNI, Algorithm::Sha1);
    // The serve process picks the change up; the probe has no effect before it does (the node
    // refuses a create without a name).
    assert!(
        eventually(|| async {
            let probe = bbb
                .call("create", &[("meetingID", "probe"), ("record", "true")])
                .await;
            probe.key() == Some("permissionDenied")
        })
        .await
    );
    assert!(bbb
        .call("create", &[("meetingID", "one"), ("name", "One")])
        .await
        .is_success());
    let second = bbb
        .call("create", &[("meetingID", "two"), ("name", "Two")])
        .await;
    assert_eq!(
        (second.key(), second.text()),
        (
            Some("permissionDenied"),
            Some("This application is not allowed to have any more concurrent meetings.")
        )
    );
    bbb.call("end", &[("meetingID", "one")]).await;
    let recorded = bbb
        .call(
            "create",
            &[("meetingID", "rec"), ("name", "Rec"), ("record", "true")],
        )
        .await;
    assert_eq!(
        recorded.text(),
        Some("This application is not allowed to record meetings.")
    );
    let reserved = bbb
        .call(
            "create",
            &[
                ("meetingID", "r"),
                ("name", "Room R"),
                ("meta_mconflb-institution", "x"),
            ],
        )
        .await;
    assert_eq!(reserved.key(), Some("invalidParameters"));
    lb.cli_ok(&["integrations", "update", "uni", "--max-users", "1"]);
    let join = |name: &'static str| {
        [
            ("meetingID", "one"),
            ("fullName", name),
            ("role", "VIEWER"),
            ("redirect", "false"),
        ]
    };
    assert!(bbb
        .call("create", &[("meetingID", "one"), ("name", "One")])
        .await
        .is_success());
    assert!(bbb.call("join", &join("first")).await.is_success());
    // Once a poll has counted the user (and the plan is loaded), the next join is refused.
    assert!(
        eventually(|| async {
            bbb.call("join", &join("second")).await.key() == Some("permissionDenied")
        })
        .await
    );
    lb.cli_ok(&["integrations", "update", "uni", "--api-enabled", "false"]);
    assert!(
        eventually(|| async {
            bbb.call("getMeetings", &[]).await.key() == Some("permissionDenied")
        })
        .await
    );
}

#[tokio::test]
async fn a_burst_of_creates_spreads_over_the_pool() {
    let (n1, n2, n3) = three_nodes().await;
    let lb = balancer()
        .nodes(&[&n1, &n2, &n3])
        .integration("uni", UNI)
        .start()
        .await;
    let bbb = std::sync::Arc::new(lb.client(UNI, Algorithm::Sha256));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..30 {
        let bbb = bbb.clone();
        tasks.spawn(async move {
            bbb.call(
                "create",
                &[("meetingID", &format!("burst-{i}")), ("name", "Burst")],
            )
            .await
            .is_success()
        });
    }
    while let Some(ok) = tasks.join_next().await {
        assert!(ok.unwrap());
    }
    let counts = [
        meetings_on(&n1).await,
        meetings_on(&n2).await,
        meetings_on(&n3).await,
    ];
    assert_eq!(counts, [10, 10, 10], "creates in one burst spread evenly");
}

#[tokio::test]
async fn server_tags_choose_nodes() {
    let (n1, n2) = (sim().start().await, sim().start().await);
    let lb = balancer()
        .node("plain", &n1)
        .node("gpu", &n2)
        .integration("uni", UNI)
        .start()
        .await;
    lb.cli_ok(&["servers", "update", "gpu", "--tags", "gpu"]);
    let bbb = lb.client(UNI, Algorithm::Sha1);
    // Until the tag is loaded, a required-tag create is refused and changes nothing.
    assert!(
        eventually(|| async {
            let probe = bbb
                .call(
                    "create",
                    &[
                        ("meetingID", "g0"),
                        ("name", "Room G"),
                        ("meta_server-tag", "gpu!"),
                    ],
                )
                .await;
            probe.is_success()
        })
        .await
    );
    for i in 0..3 {
        assert!(bbb
            .call(
                "create",
                &[
                    ("meetingID", &format!("g{i}")),
                    ("name", "Room G"),
                    ("meta_server-tag", "gpu!")
                ]
            )
            .await
            .is_success());
        assert!(bbb
            .call(
                "create",
                &[("meetingID", &format!("p{i}")), ("name", "Room P")]
            )
            .await
            .is_success());
    }
    assert_eq!((meetings_on(&n1).await, meetings_on(&n2).await), (3, 3));
    let missing = bbb
        .call(
            "create",
            &[
                ("meetingID", "x"),
                ("name", "Room X"),
                ("meta_server-tag", "asia!"),
            ],
        )
        .await;
    assert_eq!(missing.key(), Some("serverTagUnavailable"));

    // The node gets only the tag it was chosen for: no `!`, one of the alternatives, and none
    // at all when an optional tag fell back to an untagged node.
    let sent_tag = |node: &SimNode, id: &'static str| {
        let client = node.client(Algorithm::Sha1);
        async move {
            let info = client.call("getMeetingInfo", &[("meetingID", id)]).await;
            let Body::Meeting(meeting) = info.body else {
                panic!("{id}: {info:?}")
            };
            meeting
                .metadata
                .into_iter()
                .find(|(k, _)| k == "server-tag")
                .map(|(_, v)| v)
        }
    };
    for (id, tag) in [("t1", "big;gpu"), ("t2", "asia")] {
        let created = bbb
            .call(
                "create",
                &[
                    ("meetingID", id),
                    ("name", "Room T"),
                    ("meta_server-tag", tag),
                ],
            )
            .await;
        assert!(created.is_success(), "{created:?}");
    }
    assert_eq!(sent_tag(&n2, "g0").await.as_deref(), Some("gpu"));
    assert_eq!(sent_tag(&n2, "t1").await.as_deref(), Some("gpu"));
    assert_eq!(sent_tag(&n1, "t2").await, None);
}

#[tokio::test]
async fn hostile_input_gets_bbb_errors() {
    let node = sim().start().await;
    let lb = balancer()
        .node("bbb1", &node)
        .integration("uni", UNI)
        .start()
        .await;
    let bbb = lb.client(UNI, Algorithm::Sha1);
    let api = format!("{}/bigbluebutton/api", lb.url);
    let key = |body: &str| {
        Response::from_xml(body)
            .ok()
            .and_then(|r| r.key().map(String::from))
    };
    for garbage in [
        "",
        "checksum=",
        "checksum=zz",
        "checksum=%ZZ&&&",
        "checksum=1&checksum=2",
        "meetingID=%FF",
    ] {
        let raw = bbb.get(&format!("{api}/getMeetings?{garbage}")).await;
        assert!(
            matches!(
                key(&raw.body).as_deref(),
                Some("checksumError" | "validationError")
            ),
            "{garbage}: {}",
            raw.body
        );
    }
    assert_eq!(
        bbb.call("frobnicate", &[]).await.key(),
        Some("unsupportedRequest")
    );
    assert_eq!(
        bbb.call("create", &[("name", "x")]).await.key(),
        Some("missingParamMeetingID")
    );
    let post = bbb
        .post(
            &bbb.url("getMeetings", &[]),
            "application/json",
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(key(&post.body).as_deref(), Some("unsupportedContentType"));
    let big = http()
        .post(bbb.url("create", &[("meetingID", "b"), ("name", "Room B")]))
        .header("content-type", "application/xml")
        .body(vec![b'<'; 33 << 20])
        .send()
        .await;
    if let Ok(r) = big {
        assert_eq!(r.status().as_u16(), 413);
    }
    let long = bbb
        .get(&format!(
            "{api}/getMeetings?x={}&checksum=abc",
            "a".repeat(65_000)
        ))
        .await;
    assert!(long.status >= 400 || key(&long.body).is_some());
    assert!(
        bbb.call("getMeetings", &[]).await.is_success(),
        "still serving"
    );
}

#[tokio::test]
async fn a_prefix_names_the_integration_by_path_or_host() {
    let node = sim().start().await;
    let lb = balancer()
        .node("bbb1", &node)
        .integration("uni", UNI)
        .integration("school", SCHOOL)
        .start()
        .await;
    lb.cli_ok(&["integrations", "update", "uni", "--prefix", "uni"]);
    assert_eq!(
        lb.cli(&["integrations", "update", "school", "--prefix", "uni"])
            .status
            .code(),
        Some(2),
        "prefixes are unique"
    );
    assert_eq!(
        lb.cli(&["integrations", "update", "school", "--prefix", "bad prefix"])
            .status
            .code(),
        Some(2)
    );
    let by_path = conflux_tests::harness::BbbClient::new(
        &format!("{}/uni/bigbluebutton/api", lb.url),
        UNI,
        Algorithm::Sha256,
    );
    // An unknown prefix is a checksum error until the serve process loads the new one.
    assert!(
        eventually(|| async {
            by_path
                .call("create", &[("meetingID", "p1"), ("name", "Prefixed")])
                .await
                .is_success()
        })
        .await
    );
    let wrong = conflux_tests::harness::BbbClient::new(
        &format!("{}/uni/bigbluebutton/api", lb.url),
        SCHOOL,
        Algorithm::Sha256,
    );
    assert_eq!(
        wrong.call("getMeetings", &[]).await.key(),
        Some("checksumError"),
        "only uni's secrets are tried"
    );
    let unknown = conflux_tests::harness::BbbClient::new(
        &format!("{}/nobody/bigbluebutton/api", lb.url),
        UNI,
        Algorithm::Sha256,
    );
    assert_eq!(
        unknown.call("getMeetings", &[]).await.key(),
        Some("checksumError")
    );
    let url = lb.client(SCHOOL, Algorithm::Sha1).url("getMeetings", &[]);
    let by_host = http()
        .get(&url)
        .header("host", "uni.lb.example.org")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        by_host.contains("checksumError"),
        "the Host label names uni: {by_host}"
    );
    let plain = lb.client(UNI, Algorithm::Sha1);
    assert!(
        plain
            .call("getMeetingInfo", &[("meetingID", "p1")])
            .await
            .is_success(),
        "without a prefix every secret is tried"
    );
}

#[tokio::test]
async fn a_taken_voice_bridge_is_replaced_by_a_free_one() {
    let node = sim().start().await;
    let lb = balancer()
        .node("bbb1", &node)
        .integration("uni", UNI)
        .start()
        .await;
    let bbb = lb.client(UNI, Algorithm::Sha1);
    let first = bbb
        .call(
            "create",
            &[
                ("meetingID", "vb-1"),
                ("name", "Room one"),
                ("voiceBridge", "71111"),
            ],
        )
        .await;
    let second = bbb
        .call(
            "create",
            &[
                ("meetingID", "vb-2"),
                ("name", "Room two"),
                ("voiceBridge", "71111"),
            ],
        )
        .await;
    let (Body::Created(a), Body::Created(b)) = (&first.body, &second.body) else {
        panic!("{first:?} {second:?}")
    };
    assert_eq!(a.voice_bridge, "71111");
    assert_ne!(
        b.voice_bridge, "71111",
        "the balancer picked another bridge and reports it"
    );
}

/// The `errors` a refused join's redirect carries: (where it goes, the first error's key).
fn refusal(location: Option<&str>) -> (String, String) {
    let location = location.expect("a redirect");
    let (target, query) = location
        .split_once("?errors=")
        .or_else(|| location.split_once("&errors="))
        .unwrap_or_else(|| panic!("no errors parameter: {location}"));
    let errors: serde_json::Value =
        serde_json::from_str(&percent_encoding::percent_decode_str(query).decode_utf8_lossy())
            .expect("errors as JSON");
    assert!(errors[0]["message"].is_string(), "{errors}");
    (
        target.to_owned(),
        errors[0]["key"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_refused_join_sends_the_browser_back_as_bbb_does() {
    let node = sim().start().await;
    let lb = balancer()
        .node("n1", &node)
        .integration("uni", UNI)
        .config("[api]\njoin_error_url = \"https://portal.example.org/bbb\"\n")
        .start()
        .await;
    let uni = lb.client(UNI, Algorithm::Sha256);
    let logout = "https://lms.example.org/course/7";
    let create = [
        ("meetingID", "lecture"),
        ("name", "Lecture"),
        ("logoutURL", logout),
    ];
    let created = uni.call("create", &create).await;
    assert!(created.is_success(), "{created:?}");

    // Signed, but without a name: back to the meeting's logoutURL.
    let join = uni.url("join", &[("meetingID", "lecture"), ("role", "VIEWER")]);
    let answer = uni.get(&join).await;
    assert_eq!(answer.status, 302);
    assert_eq!(
        refusal(answer.location.as_deref()),
        (logout.to_owned(), "missingParamFullName".to_owned())
    );
    // A signed errorRedirectUrl comes first.
    let asked = "https://lms.example.org/error?from=bbb";
    let join = uni.url(
        "join",
        &[
            ("meetingID", "nope"),
            ("fullName", "Ada"),
            ("errorRedirectUrl", asked),
        ],
    );
    let answer = uni.get(&join).await;
    let (target, key) = refusal(answer.location.as_deref());
    assert_eq!(
        (target.as_str(), key.as_str()),
        (asked, "invalidMeetingIdentifier")
    );
    assert!(answer
        .location
        .unwrap()
        .starts_with(&format!("{asked}&errors=")));
    // A wrong checksum's errorRedirectUrl is not believed: no open redirect.
    let forged = format!(
        "{}/bigbluebutton/api/join?meetingID=lecture&fullName=Eve&\
         errorRedirectUrl=https%3A%2F%2Fevil.example%2F&checksum=0000",
        lb.url
    );
    let answer = uni.get(&forged).await;
    assert_eq!(
        refusal(answer.location.as_deref()),
        (logout.to_owned(), "checksumError".to_owned())
    );
    let forged = forged.replace("meetingID=lecture", "meetingID=unknown");
    let answer = uni.get(&forged).await;
    let (target, _) = refusal(answer.location.as_deref());
    assert_eq!(target, "https://portal.example.org/bbb");
    // redirect=false: the error as XML.
    let answer = uni
        .call("join", &[("meetingID", "lecture"), ("redirect", "false")])
        .await;
    assert_eq!(answer.key(), Some("missingParamFullName"));
}

#[tokio::test]
async fn an_override_of_redirect_wins_over_the_client() {
    let (node, lb) = one_meeting(&[("OVERRIDE_JOIN_PARAMS", "redirect=true")], "room").await;
    let uni = lb.client(UNI, Algorithm::Sha1);
    let join = uni.url(
        "join",
        &[
            ("meetingID", "room"),
            ("fullName", "Ada"),
            ("role", "VIEWER"),
            ("redirect", "false"),
        ],
    );
    let answer = uni.get(&join).await;
    assert_eq!(answer.status, 302, "{}", answer.body);
    assert!(answer.location.unwrap().starts_with(&node.url));
}

#[tokio::test]
async fn switched_off_calls_need_no_checksum_and_unknown_paths_get_bbb_errors() {
    let node = sim().start().await;
    let lb = balancer()
        .node("n1", &node)
        .integration("uni", UNI)
        .env("GET_MEETINGS_API_DISABLED", "TRUE")
        .env("RECORDING_DISABLED", "true")
        .start()
        .await;
    let answer = |path: &'static str| {
        let url = format!("{}{path}", lb.url);
        async move {
            let response = http().get(url).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200, "{path}");
            let body = response.text().await.unwrap();
            Response::from_xml(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body:?}"))
        }
    };
    // Scalelite answers these without a checksum.
    for (path, success, key) in [
        ("/bigbluebutton/api/getMeetings", true, "noMeetings"),
        (
            "/bigbluebutton/api/getRecordings?meetingID=x",
            true,
            "noRecordings",
        ),
        (
            "/bigbluebutton/api/publishRecordings?recordID=r&publish=true",
            false,
            "notFound",
        ),
        (
            "/bigbluebutton/api/deleteRecordings?recordID=r",
            false,
            "notFound",
        ),
    ] {
        let response = answer(path).await;
        assert_eq!(
            (response.is_success(), response.key()),
            (success, Some(key)),
            "{path}"
        );
    }
    // A path it does not serve: BBB's unsupportedRequest, not an empty 404.
    for path in [
        "/nothing/here",
        "/recording/rec-1/presentation",
        "/bigbluebutton/api/getMeetings.xml",
        "/bigbluebutton/nothing",
    ] {
        assert_eq!(
            answer(path).await.key(),
            Some("unsupportedRequest"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn sha512_only_nodes_get_sha512_and_the_integration_as_tenant() {
    let node = sim().algorithms("sha512").start().await;
    let lb = balancer()
        .node("n1", &node)
        .integration("uni", UNI)
        .env("LOADBALANCER_CHECKSUM_ALGORITHM", "SHA1:SHA512")
        .start()
        .await;
    let uni = lb.client(UNI, Algorithm::Sha1);
    let created = uni
        .call("create", &[("meetingID", "room"), ("name", "Room")])
        .await;
    assert!(created.is_success(), "{created:?}");
    let info = node
        .client(Algorithm::Sha512)
        .call("getMeetingInfo", &[("meetingID", "room")])
        .await;
    let Body::Meeting(meeting) = info.body else {
        panic!("{info:?}")
    };
    let meta = |key: &str| {
        meeting
            .metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    assert!(meta("tenant-id").is_some_and(|id| id.parse::<i64>().is_ok()));
    assert_eq!(meta("tenant-name").as_deref(), Some("uni"));
}

#[tokio::test]
async fn a_meeting_pinned_to_a_cordoned_node_that_ended_it_is_created_elsewhere() {
    let (n1, n2) = (sim().start().await, sim().start().await);
    let lb = balancer()
        .node("one", &n1)
        .node("two", &n2)
        .integration("uni", UNI)
        .start()
        .await;
    let uni = lb.client(UNI, Algorithm::Sha1);
    let create = [("meetingID", "class"), ("name", "Class")];
    assert!(uni.call("create", &create).await.is_success());
    let (hosting, name, other, other_name) = if meetings_on(&n1).await == 1 {
        (&n1, "one", &n2, "two")
    } else {
        (&n2, "two", &n1, "one")
    };
    let join = [
        ("meetingID", "class"),
        ("fullName", "Ada"),
        ("role", "VIEWER"),
        ("redirect", "false"),
    ];
    assert!(uni.call("join", &join).await.is_success());
    // Cordoned, the node keeps its running meeting: a create again finds it there.
    lb.cli_ok(&["servers", "cordon", name]);
    let cordoned = || async {
        lb.admin_json("/nodes")
            .await
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["name"] == name && n["state"] != "enabled")
    };
    assert!(
        eventually(cordoned).await,
        "the balancer never saw the cordon"
    );
    assert!(uni.call("create", &create).await.is_success());
    assert_eq!(
        (meetings_on(hosting).await, meetings_on(other).await),
        (1, 0)
    );
    // Ended on the node behind the balancer's back: the next create places it anew.
    let ended = hosting
        .client(Algorithm::Sha1)
        .call("end", &[("meetingID", "class")])
        .await;
    assert!(ended.is_success(), "{ended:?}");
    assert!(uni.call("create", &create).await.is_success());
    assert_eq!(
        meetings_on(other).await,
        1,
        "re-created on {other_name}: {}",
        lb.process.log_text()
    );
    let info = uni.call("getMeetingInfo", &[("meetingID", "class")]).await;
    assert!(info.is_success(), "later calls follow it: {info:?}");
    assert!(uni.call("join", &join).await.is_success());
}

#[tokio::test]
async fn a_form_body_may_carry_the_checksum_of_the_url_query() {
    let node = sim().start().await;
    let lb = balancer()
        .node("n1", &node)
        .integration("uni", UNI)
        .start()
        .await;
    let bbb = lb.client(UNI, Algorithm::Sha256);
    let post = |call: &'static str, query: &'static str, fields: &'static str| {
        // Scalelite hashes the URL query only, whatever the body holds.
        let sum = conflux_shared::checksum::compute(Algorithm::Sha256, call, query, UNI);
        let url = format!("{}/bigbluebutton/api/{call}?{query}", lb.url);
        let body = format!("{fields}&checksum={sum}");
        let bbb = &bbb;
        async move {
            let raw = bbb
                .post(&url, "application/x-www-form-urlencoded", body.into_bytes())
                .await;
            Response::from_xml(&raw.body).unwrap_or_else(|e| panic!("{call}: {e}: {}", raw.body))
        }
    };
    let created = post("create", "meetingID=room", "name=Form+room").await;
    assert!(created.is_success(), "{created:?}");
    let info = post("getMeetingInfo", "", "meetingID=room").await;
    assert!(info.is_success(), "{info:?}");
    let listed = post("getMeetings", "", "").await;
    assert!(listed.is_success(), "{listed:?}");
    // A checksum in the body that does not match the URL query is refused.
    let sum = conflux_shared::checksum::compute(Algorithm::Sha256, "getMeetings", "x=1", UNI);
    let raw = bbb
        .post(
            &format!("{}/bigbluebutton/api/getMeetings", lb.url),
            "application/x-www-form-urlencoded",
            format!("checksum={sum}").into_bytes(),
        )
        .await;
    assert_eq!(
        Response::from_xml(&raw.body).unwrap().key(),
        Some("checksumError")
    );
}

#[tokio::test]
async fn get_meetings_sees_a_join_within_seconds_not_at_the_next_poll() {
    let (_node, lb) = one_meeting(&[("CONFLUX_POLLER__INTERVAL_SECS", "600")], "live").await;
    let uni = lb.client(UNI, Algorithm::Sha1);
    let participants = || async {
        match uni.call("getMeetings", &[]).await.body {
            Body::Meetings(list) => list.first().map_or(0, |m| m.participant_count),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(participants().await, 0);
    // The browser follows the join's redirect to the node.
    let join = uni.url(
        "join",
        &[
            ("meetingID", "live"),
            ("fullName", "Ada"),
            ("role", "VIEWER"),
        ],
    );
    let redirect = uni.get(&join).await;
    assert_eq!(redirect.status, 302);
    let entered = http().get(redirect.location.unwrap()).send().await.unwrap();
    assert!(entered.status().as_u16() < 400);
    let joined = std::time::Instant::now();
    while participants().await != 1 {
        assert!(
            joined.elapsed() < std::time::Duration::from_secs(3),
            "getMeetings still shows no participant"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_multipart_body_may_carry_the_parameters_and_the_checksum() {
    let (_node, lb) = one_meeting(&[], "room").await;
    let bbb = lb.client(UNI, Algorithm::Sha256);
    let multipart = |call: &str, fields: &[(&str, &str)], checksum: &str| {
        let boundary = "conflux-test-boundary";
        let mut body = String::new();
        for (name, value) in fields.iter().chain([&("checksum", checksum)]) {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        let url = format!("{}/bigbluebutton/api/{call}", lb.url);
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let bbb = &bbb;
        async move {
            let raw = bbb.post(&url, &content_type, body.into_bytes()).await;
            Response::from_xml(&raw.body).unwrap_or_else(|e| panic!("{e}: {}", raw.body))
        }
    };
    // Only the (empty) URL query is hashed, as Scalelite does.
    let sum = conflux_shared::checksum::compute(Algorithm::Sha256, "getMeetingInfo", "", UNI);
    let info = multipart("getMeetingInfo", &[("meetingID", "room")], &sum).await;
    assert!(info.is_success(), "{info:?}");
    let wrong = multipart("getMeetingInfo", &[("meetingID", "room")], "0000").await;
    assert_eq!(wrong.key(), Some("checksumError"));
}

#[tokio::test]
async fn a_large_get_meetings_is_gzipped_for_callers_that_accept_it() {
    let (_node, lb) = one_meeting(&[], "m0").await;
    let uni = lb.client(UNI, Algorithm::Sha1);
    for i in 1..8 {
        let name = format!("A meeting with a rather long name, number {i}");
        let created = uni
            .call(
                "create",
                &[("meetingID", &format!("m{i}")), ("name", &name)],
            )
            .await;
        assert!(created.is_success(), "{created:?}");
    }
    let url = uni.url("getMeetings", &[]);
    let get = |accept: &'static str| {
        let url = url.clone();
        async move {
            let answer = http()
                .get(&url)
                .header("accept-encoding", accept)
                .send()
                .await
                .unwrap();
            let encoding = answer
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_owned());
            (encoding, answer.bytes().await.unwrap())
        }
    };
    let (encoding, plain) = get("identity").await;
    assert_eq!(encoding, None);
    let plain = String::from_utf8(plain.to_vec()).unwrap();
    assert!(plain.len() > 4096 && plain.matches("<meeting>").count() == 8);

    // Ruby's Net::HTTP (Greenlight, Scalelite's own clients) asks so by default.
    let (encoding, zipped) = get("gzip;q=1.0,deflate;q=0.6,identity;q=0.3").await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert!(zipped.len() < plain.len() / 3, "{} bytes", zipped.len());
    let mut unzipped = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&zipped[..]),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped, plain);
    assert_eq!(get("gzip").await.1, zipped, "the gzip is cached");

    assert_eq!(get("gzip;q=0").await, (None, plain.clone().into()));
    // A change is seen in both forms.
    uni.call("end", &[("meetingID", "m7")]).await;
    let (_, zipped) = get("gzip").await;
    let mut unzipped = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&zipped[..]),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped.matches("<meeting>").count(), 7);
}
