//! The simulator's BBB API against a Rust client: every call, every checksum algorithm, the
//! counters and the recording calls, plus the control API.

use conflux_shared::response::Body;
use conflux_shared::{Algorithm, Response};
use conflux_tests::harness::{eventually, sim, BbbClient, SimNode};
use reqwest::Method;
use serde_json::json;

/// Query parameters of one call.
type Params<'a> = &'a [(&'a str, &'a str)];

fn meeting(response: &Response) -> &conflux_shared::response::Meeting {
    match &response.body {
        Body::Meeting(m) => m,
        other => panic!("not a meeting: {other:?}"),
    }
}

#[tokio::test]
async fn every_meeting_call_with_every_algorithm() {
    let node = sim().start().await;
    for algorithm in Algorithm::ALL {
        let bbb = node.client(algorithm);
        let id = format!("room-{algorithm}");
        let created = bbb
            .call(
                "create",
                &[
                    ("name", "Room Ä"),
                    ("meetingID", &id),
                    ("attendeePW", "ap"),
                    ("moderatorPW", "mp"),
                    ("record", "true"),
                    ("meta_bbb-origin", "Moodle"),
                    ("meta_bad_name", "x"),
                ],
            )
            .await;
        assert!(created.is_success(), "{algorithm}: {created:?}");
        let Body::Created(c) = &created.body else {
            panic!()
        };
        assert!(c
            .internal_meeting_id
            .ends_with(&format!("-{}", c.create_time)));
        assert_eq!(c.parent_meeting_id, "bbb-none");

        let again = bbb
            .call("create", &[("name", "Room Ä"), ("meetingID", &id)])
            .await;
        assert_eq!(again.key(), Some("duplicateWarning"));
        let clash = bbb
            .call(
                "create",
                &[
                    ("name", "Room"),
                    ("meetingID", &id),
                    ("attendeePW", "other"),
                    ("moderatorPW", "mp"),
                ],
            )
            .await;
        assert_eq!(clash.key(), Some("idNotUnique"));

        let running = bbb.call("isMeetingRunning", &[("meetingID", &id)]).await;
        assert_eq!(
            running.field("running"),
            Some("false"),
            "created but empty is not running"
        );

        let redirect = bbb
            .get(&bbb.url(
                "join",
                &[("meetingID", &id), ("fullName", "Ann"), ("password", "mp")],
            ))
            .await;
        assert_eq!(redirect.status, 302);
        let location = redirect.location.unwrap();
        assert!(
            location.starts_with(&format!("{}/html5client/join?sessionToken=", node.url)),
            "{location}"
        );
        assert_eq!(bbb.get(&location).await.status, 200);

        let joined = bbb
            .call(
                "join",
                &[
                    ("meetingID", &id),
                    ("fullName", "José"),
                    ("role", "viewer"),
                    ("redirect", "false"),
                    ("userID", "u-42"),
                    ("userdata-bbb_auto_join_audio", "true"),
                ],
            )
            .await;
        assert_eq!(joined.key(), Some("successfullyJoined"));
        let Body::Joined(j) = &joined.body else {
            panic!()
        };
        assert_eq!(j.meeting_id, c.internal_meeting_id);
        assert_eq!(j.guest_status, "ALLOW");

        let info = bbb.call("getMeetingInfo", &[("meetingID", &id)]).await;
        let m = meeting(&info);
        assert!(m.running && m.has_user_joined && m.recording);
        assert_eq!((m.participant_count, m.moderator_count), (2, 1));
        assert_eq!(m.attendees[1].user_id, "u-42");
        assert_eq!(
            m.attendees[1].customdata,
            [("bbb_auto_join_audio".to_owned(), "true".to_owned())]
        );
        assert_eq!(
            m.metadata,
            [("bbb-origin".to_owned(), "Moodle".to_owned())],
            "meta names are lower-cased, bad ones dropped"
        );
        assert_eq!(
            bbb.call("isMeetingRunning", &[("meetingID", &id)])
                .await
                .field("running"),
            Some("true")
        );

        let Body::Meetings(all) = bbb.call("getMeetings", &[]).await.body else {
            panic!()
        };
        assert!(all.iter().any(|m| m.meeting_id == id));

        let doc = "<modules><module name=\"presentation\"><document url=\"https://example.org/a.pdf\" filename=\"a.pdf\"/></module></modules>";
        let inserted = bbb
            .post(
                &bbb.url("insertDocument", &[("meetingID", &id)]),
                "application/xml",
                doc.into(),
            )
            .await;
        assert!(
            inserted.body.contains("Presentation is being uploaded"),
            "{}",
            inserted.body
        );
        let chat = bbb
            .call(
                "sendChatMessage",
                &[("meetingID", &id), ("message", "hello")],
            )
            .await;
        assert!(chat.is_success());

        let ended = bbb.call("end", &[("meetingID", &id)]).await;
        assert_eq!(ended.key(), Some("sentEndMeetingRequest"));
        let info = bbb.call("getMeetingInfo", &[("meetingID", &id)]).await;
        let m = meeting(&info);
        assert!(!m.running && m.has_been_forcibly_ended && m.end_time > 0);
        let late = bbb
            .call(
                "join",
                &[
                    ("meetingID", &id),
                    ("fullName", "Late"),
                    ("role", "VIEWER"),
                    ("redirect", "false"),
                ],
            )
            .await;
        assert_eq!(late.key(), Some("meetingForciblyEnded"));
        assert_eq!(
            bbb.call("end", &[("meetingID", &id)]).await.key(),
            Some("notFound")
        );
    }
}

#[tokio::test]
async fn meeting_errors_use_bbb_keys() {
    let node = sim().start().await;
    let bbb = node.client(Algorithm::Sha256);
    let cases: &[(&str, Params, &str)] = &[
        ("create", &[("name", "x y")], "missingParamMeetingID"),
        (
            "create",
            &[("meetingID", "a,b"), ("name", "Room")],
            "validationError",
        ),
        (
            "create",
            &[("meetingID", " padded"), ("name", "Room")],
            "validationError",
        ),
        (
            "create",
            &[("meetingID", "m1"), ("name", "Room"), ("record", "maybe")],
            "validationError",
        ),
        (
            "create",
            &[("meetingID", "m1"), ("name", "Room"), ("attendeePW", "x")],
            "invalidPassword",
        ),
        (
            "create",
            &[
                ("meetingID", "m1"),
                ("name", "Room"),
                ("isBreakout", "true"),
            ],
            "parentMeetingIDMissing",
        ),
        (
            "join",
            &[("fullName", "A"), ("redirect", "false")],
            "missingParamMeetingID",
        ),
        (
            "join",
            &[
                ("meetingID", "nope"),
                ("fullName", "A"),
                ("role", "VIEWER"),
                ("redirect", "false"),
            ],
            "invalidMeetingIdentifier",
        ),
        ("getMeetingInfo", &[("meetingID", "nope")], "notFound"),
        ("getMeetingInfo", &[], "missingParamMeetingID"),
        ("end", &[("meetingID", "nope")], "notFound"),
        (
            "publishRecordings",
            &[("publish", "true")],
            "missingParamRecordID",
        ),
        (
            "publishRecordings",
            &[("recordID", "x")],
            "missingParamPublish",
        ),
        ("deleteRecordings", &[("recordID", "nope")], "notFound"),
        ("frobnicate", &[], "unsupportedRequest"),
    ];
    for (call, params, key) in cases {
        let r = bbb.call(call, params).await;
        assert!(!r.is_success(), "{call} {params:?}");
        assert_eq!(r.key(), Some(*key), "{call} {params:?}: {r:?}");
    }
    assert_eq!(
        bbb.call("isMeetingRunning", &[("meetingID", "nope")])
            .await
            .field("running"),
        Some("false")
    );
    let empty = bbb.call("getMeetings", &[]).await;
    assert_eq!(
        (empty.is_success(), empty.key()),
        (true, Some("noMeetings"))
    );

    bbb.call(
        "create",
        &[
            ("meetingID", "vb1"),
            ("name", "Room"),
            ("voiceBridge", "71111"),
        ],
    )
    .await;
    let clash = bbb
        .call(
            "create",
            &[
                ("meetingID", "vb2"),
                ("name", "Room"),
                ("voiceBridge", "71111"),
            ],
        )
        .await;
    assert_eq!(clash.key(), Some("nonUniqueVoiceBridge"));
    assert_eq!(clash.errors.len(), 1, "legacy error-list shape");

    bbb.call(
        "create",
        &[
            ("meetingID", "full"),
            ("name", "Room"),
            ("maxParticipants", "1"),
            ("moderatorPW", "mp"),
            ("attendeePW", "ap"),
        ],
    )
    .await;
    let join = |name: &'static str| {
        [
            ("meetingID", "full"),
            ("fullName", name),
            ("password", "ap"),
            ("redirect", "false"),
        ]
    };
    assert!(bbb.call("join", &join("one")).await.is_success());
    assert_eq!(
        bbb.call("join", &join("two")).await.key(),
        Some("maxParticipantsReached")
    );
    let wrong = bbb
        .call(
            "join",
            &[
                ("meetingID", "full"),
                ("fullName", "x"),
                ("password", "nope"),
                ("redirect", "false"),
            ],
        )
        .await;
    assert_eq!(wrong.key(), Some("invalidPassword"));

    let failed = bbb
        .get(&bbb.url(
            "join",
            &[
                ("meetingID", "nope"),
                ("fullName", "A"),
                ("role", "VIEWER"),
                ("errorRedirectUrl", "https://lms.example.org/err"),
            ],
        ))
        .await;
    assert_eq!(failed.status, 302);
    let location = failed.location.unwrap();
    assert!(
        location.starts_with("https://lms.example.org/err?errors=")
            && location.contains("invalidMeetingIdentifier"),
        "{location}"
    );
}

#[tokio::test]
async fn checksum_rules_follow_bbb_web() {
    let node = sim().algorithms("sha1,sha256").start().await;
    let good = node.client(Algorithm::Sha1);
    let wrong_secret = BbbClient::new(&node.url, "not-the-secret", Algorithm::Sha1);
    for call in [
        "create",
        "join",
        "end",
        "getMeetingInfo",
        "getMeetings",
        "isMeetingRunning",
        "sendChatMessage",
    ] {
        let r = wrong_secret.call(call, &[("meetingID", "m")]).await;
        assert_eq!(
            (r.key(), r.text()),
            (Some("checksumError"), Some("Checksums do not match")),
            "{call}"
        );
    }
    for call in [
        "getRecordings",
        "publishRecordings",
        "deleteRecordings",
        "updateRecordings",
    ] {
        let r = wrong_secret.call(call, &[("recordID", "r")]).await;
        assert_eq!(
            r.text(),
            Some("You did not pass the checksum security check"),
            "{call}"
        );
    }
    let sha512 = node
        .client(Algorithm::Sha512)
        .call("getMeetings", &[])
        .await;
    assert_eq!(
        sha512.key(),
        Some("checksumError"),
        "sha512 is disabled on this node"
    );

    let api = format!("{}/bigbluebutton/api", node.url);
    let sum = |call: &str, query: &str| {
        conflux_shared::checksum::compute(Algorithm::Sha1, call, query, &node.secret)
    };
    let query = "meetingID=enc&name=John+Doe";
    let first = format!("{api}/create?checksum={}&{query}", sum("create", query));
    assert!(
        Response::from_xml(&good.get(&first).await.body)
            .unwrap()
            .is_success(),
        "checksum may come first"
    );
    let percent = "meetingID=enc&fullName=John%20Doe&role=VIEWER&redirect=false";
    let url = format!("{api}/join?{percent}&checksum={}", sum("join", percent));
    assert!(
        Response::from_xml(&good.get(&url).await.body)
            .unwrap()
            .is_success(),
        "raw %20 is hashed as sent"
    );
    let twice = format!(
        "{api}/getMeetings?checksum={0}&checksum={0}",
        sum("getMeetings", "")
    );
    assert!(good.get(&twice).await.body.contains("checksumError"));
    let missing = format!("{api}/getMeetings");
    assert!(good.get(&missing).await.body.contains("checksumError"));
    let index = good.get(&api).await;
    assert!(index.content_type.starts_with("text/xml"));
    assert_eq!(
        Response::from_xml(&index.body).unwrap().field("bbbVersion"),
        Some("2.7.3")
    );
}

#[tokio::test]
async fn participants_counters_and_lifecycle() {
    // A BBB minute lasts 0.3 s here, so expiry timers can be observed.
    let node = sim()
        .minute_secs(0.3)
        .ended_retention_secs(0.5)
        .start()
        .await;
    let bbb = node.client(Algorithm::Sha256);
    bbb.call("create", &[("meetingID", "live"), ("name", "Live")])
        .await;
    let add = |body| node.control(Method::POST, "meetings/live/participants", body);
    let (status, mod1) =
        add(json!({"fullName": "Ann", "role": "MODERATOR", "audio": "voice", "video": 2})).await;
    assert_eq!(status, 200, "{mod1}");
    add(json!({"fullName": "Bob", "audio": "listen"})).await;
    let (_, viewer) = add(json!({"fullName": "Cy", "video": 1})).await;
    let info = bbb.call("getMeetingInfo", &[("meetingID", "live")]).await;
    let m = meeting(&info);
    assert_eq!(
        (
            m.participant_count,
            m.moderator_count,
            m.voice_participant_count,
            m.listener_count,
            m.video_count
        ),
        (3, 1, 1, 1, 3)
    );
    assert_eq!(m.audio_users(), 2);

    let cy = viewer["userID"].as_str().unwrap().to_owned();
    let (status, _) = node
        .control(
            Method::PATCH,
            &format!("meetings/live/participants/{cy}"),
            json!({"audio": "voice", "video": 0}),
        )
        .await;
    assert_eq!(status, 200);
    let m2 = bbb.call("getMeetingInfo", &[("meetingID", "live")]).await;
    assert_eq!(
        (
            meeting(&m2).voice_participant_count,
            meeting(&m2).video_count
        ),
        (2, 2)
    );

    for user in meeting(&m2).attendees.clone() {
        let (status, _) = node
            .control(
                Method::DELETE,
                &format!("meetings/live/participants/{}", user.user_id),
                json!({}),
            )
            .await;
        assert_eq!(status, 200);
    }
    // Last user left: the meeting ends after meetingExpireWhenLastUserLeftInMinutes (1 "minute").
    let ended = eventually(|| async {
        !meeting(&bbb.call("getMeetingInfo", &[("meetingID", "live")]).await).running
    })
    .await;
    assert!(ended);
    // ...and is forgotten after the retention period.
    assert!(
        eventually(|| async {
            bbb.call("getMeetingInfo", &[("meetingID", "live")])
                .await
                .key()
                == Some("notFound")
        })
        .await
    );

    // duration: a 1-"minute" meeting ends by itself even with users in it.
    bbb.call(
        "create",
        &[("meetingID", "short"), ("name", "Short"), ("duration", "1")],
    )
    .await;
    add_user(&node, "short").await;
    assert!(
        eventually(|| async {
            bbb.call("isMeetingRunning", &[("meetingID", "short")])
                .await
                .field("running")
                == Some("false")
        })
        .await
    );

    let (status, _) = node
        .control(
            Method::POST,
            "meetings/nope/participants",
            json!({"fullName": "x"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = node
        .control(
            Method::POST,
            "meetings/short/participants",
            json!({"bogus": 1}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn recordings_are_produced_listed_changed_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = sim().recordings_dir(dir.path()).start().await;
    let bbb = node.client(Algorithm::Sha1);
    bbb.call(
        "create",
        &[
            ("meetingID", "rec"),
            ("name", "Recorded"),
            ("record", "true"),
            ("meta_course", "cs101"),
        ],
    )
    .await;
    bbb.call(
        "create",
        &[("meetingID", "norec"), ("name", "Not recorded")],
    )
    .await;
    add_user(&node, "rec").await;
    let (status, body) = node
        .control(Method::POST, "meetings/norec/recording", json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = node
        .control(
            Method::POST,
            "meetings/rec/recording",
            json!({"size_bytes": 100_000}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let record_id = body["recordID"].as_str().unwrap().to_owned();
    let folder = dir.path().join(&record_id);
    assert!(folder.join("metadata.xml").exists());
    assert_eq!(
        std::fs::metadata(folder.join("video/webcams.webm"))
            .unwrap()
            .len(),
        100_000
    );

    let listed = |params: Vec<(&'static str, String)>| {
        let bbb = &bbb;
        async move {
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            match bbb.call("getRecordings", &params).await.body {
                Body::Recordings(r) => r,
                other => panic!("{other:?}"),
            }
        }
    };
    let all = listed(vec![]).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].meeting_id, "rec");
    assert_eq!(all[0].meta("course"), Some("cs101"));
    assert_eq!(
        listed(vec![("meetingID", "rec,other".into())]).await.len(),
        1
    );
    assert_eq!(
        listed(vec![("recordID", record_id[..10].to_owned())])
            .await
            .len(),
        1,
        "recordID prefix matches"
    );
    assert_eq!(listed(vec![("meta_course", "cs999".into())]).await.len(), 0);
    assert_eq!(
        bbb.call("getRecordings", &[("meetingID", "zzz")])
            .await
            .key(),
        Some("noRecordings")
    );

    let published = bbb
        .call(
            "publishRecordings",
            &[("recordID", &record_id), ("publish", "false")],
        )
        .await;
    assert_eq!(published.field("published"), Some("false"));
    assert_eq!(listed(vec![("state", "unpublished".into())]).await.len(), 1);
    let updated = bbb
        .call(
            "updateRecordings",
            &[
                ("recordID", &record_id),
                ("meta_course", ""),
                ("meta_term", "fall"),
            ],
        )
        .await;
    assert_eq!(updated.field("updated"), Some("true"));
    let tracks = bbb
        .get(&bbb.url("getRecordingTextTracks", &[("recordID", &record_id)]))
        .await;
    assert!(tracks.content_type.starts_with("application/json"));
    assert!(tracks.body.contains("\"tracks\":[]"), "{}", tracks.body);
    let none = bbb
        .get(&bbb.url("getRecordingTextTracks", &[("recordID", "nope")]))
        .await;
    assert!(none.body.contains("noRecordings"));

    drop(node);
    let node = sim().recordings_dir(dir.path()).start().await;
    let bbb = node.client(Algorithm::Sha1);
    let Body::Recordings(after) = bbb.call("getRecordings", &[("state", "any")]).await.body else {
        panic!()
    };
    assert_eq!(after.len(), 1);
    assert_eq!(
        (
            after[0].state.as_str(),
            after[0].meta("term"),
            after[0].meta("course")
        ),
        ("unpublished", Some("fall"), None)
    );
    assert_eq!(
        bbb.call("deleteRecordings", &[("recordID", &record_id)])
            .await
            .field("deleted"),
        Some("true")
    );
    assert_eq!(
        bbb.call("getRecordings", &[]).await.key(),
        Some("noRecordings")
    );
}

pub(crate) async fn add_user(node: &SimNode, meeting_id: &str) {
    let (status, body) = node
        .control(
            Method::POST,
            &format!("meetings/{meeting_id}/participants"),
            json!({"fullName": "Someone"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn thousands_of_meetings() {
    let node = sim().start().await;
    let bbb = std::sync::Arc::new(node.client(Algorithm::Sha256));
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let bbb = bbb.clone();
        tasks.spawn(async move {
            for i in 0..125 {
                let id = format!("bulk-{worker}-{i}");
                let r = bbb
                    .call("create", &[("meetingID", &id), ("name", "Bulk")])
                    .await;
                assert!(r.is_success(), "{id}: {r:?}");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let Body::Meetings(all) = bbb.call("getMeetings", &[]).await.body else {
        panic!()
    };
    assert_eq!(all.len(), 2000);
    let mut bridges: Vec<_> = all.iter().map(|m| m.voice_bridge.clone()).collect();
    bridges.sort();
    bridges.dedup();
    assert_eq!(bridges.len(), 2000, "voice bridges are unique");
}
